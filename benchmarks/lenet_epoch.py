"""One epoch of examples/lenet.py's recipe, minigrad vs PyTorch, same data and settings.

    python benchmarks/lenet_epoch.py [--epochs 1] [--batch-size 64] [--rounds 1]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lenet_epoch.py

Recipe: LeNet-5 (ReLU, max pool), Adam lr 2e-3 with a per-step cosine schedule, batch 64,
standardised inputs, shuffled with the same seeded permutation; both at their default
thread counts. Reports training time per epoch (no evaluation), images/s, and test accuracy.
Each library trains in a fresh process of its own (PyTorch's is started with torch
imported before anything of minigrad, so it runs with all its own OpenMP defaults; see
common.child_json), the two alternating for `--rounds` rounds.
"""
import argparse
import json
import os
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "examples"))
from common import (RESULTS_HELP, blas_info, child_json, print_table, record_results,  # noqa: E402
                    timed, torch_lenet5, try_torch)


def run_minigrad(x, y, xt, yt, epochs, bs, seed):
    import minigrad as mg
    import minigrad.nn.functional as F
    from lenet import lenet5
    mg.manual_seed(seed)
    model = lenet5()
    opt = mg.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(x) // bs)
    sched = mg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    def epochs_of_training():
        for ep in range(epochs):
            perm = np.random.default_rng(seed + ep).permutation(len(x))
            for i in range(len(x) // bs):
                idx = perm[i * bs:(i + 1) * bs]
                loss = F.cross_entropy(model(mg.tensor(x[idx])), mg.tensor(y[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    train, _ = timed(epochs_of_training)
    model.eval()
    with mg.no_grad():
        acc = float(np.mean(np.concatenate([model(mg.tensor(xt[i:i + 1000])).numpy().argmax(1)
                                            for i in range(0, len(xt), 1000)]) == yt))
    return train, acc


def run_torch(torch, x, y, xt, yt, epochs, bs, seed):
    torch.manual_seed(seed)
    model = torch_lenet5(torch)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(x) // bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    def epochs_of_training():
        for ep in range(epochs):
            perm = np.random.default_rng(seed + ep).permutation(len(x))
            for i in range(len(x) // bs):
                idx = perm[i * bs:(i + 1) * bs]
                loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    train, _ = timed(epochs_of_training)
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())
    return train, acc


def child(lib, args):
    """Train in this process with `lib` only; print {"train": seconds, "acc": accuracy}."""
    torch = None
    if lib == "torch":
        import torch                            # before minigrad's data loader: its defaults
    from minigrad.data import load_fashion_mnist
    x, y = load_fashion_mnist(args.data, train=True)
    xt, yt = load_fashion_mnist(args.data, train=False)
    mean, std = x.mean(), x.std()
    x, xt = (x - mean) / std, (xt - mean) / std
    if lib == "torch":
        train, acc = run_torch(torch, x, y, xt, yt, args.epochs, args.batch_size, args.seed)
    else:
        train, acc = run_minigrad(x, y, xt, yt, args.epochs, args.batch_size, args.seed)
    print(json.dumps({"train": train, "acc": acc}))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=1, help="alternate the two this many times")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--results", action="store_true", help=RESULTS_HELP)
    args = p.parse_args(argv)
    if args.results and not args.child:
        record_results("lenet_epoch.py")
    if args.child:
        return child(args.child, args)
    has_torch = try_torch() is not None
    print(blas_info())
    script = os.path.abspath(__file__)
    common = ["--epochs", args.epochs, "--batch-size", args.batch_size, "--data", args.data]
    n = 60000 * args.epochs
    rows = []
    for r in range(args.rounds):
        m = child_json(script, ["--child", "minigrad", "--seed", r, *common])
        row = [r, f"{m['train'] / args.epochs:.1f}", f"{n / m['train']:,.0f}", f"{m['acc']:.4f}"]
        if has_torch:
            t = child_json(script, ["--child", "torch", "--seed", r, *common])
            row += [f"{t['train'] / args.epochs:.1f}", f"{n / t['train']:,.0f}", f"{t['acc']:.4f}",
                    f"{m['train'] / t['train']:.2f}×"]
        rows.append(row)
    headers = ["round", "minigrad s/epoch", "img/s", "test acc"]
    if has_torch:
        headers += ["torch s/epoch", "img/s", "test acc", "ratio"]
    print_table(headers, rows)


if __name__ == "__main__":
    main()
