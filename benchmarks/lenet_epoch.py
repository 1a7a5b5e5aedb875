"""One epoch of examples/lenet.py's recipe, minigrad vs PyTorch, same data and settings.

    python benchmarks/lenet_epoch.py [--epochs 1] [--batch-size 64]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lenet_epoch.py

Recipe: LeNet-5 (ReLU, max pool), Adam lr 2e-3 with a per-step cosine schedule, batch 64,
standardised inputs, shuffled with the same seeded permutation; both at their default
thread counts. Reports training time per epoch (no evaluation), images/s, and test accuracy.
"""
import argparse
import os
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "examples"))
import minigrad as mg  # noqa: E402  (before torch: see common.py)
import minigrad.nn.functional as F  # noqa: E402
from common import blas_info, print_table, try_torch  # noqa: E402
from lenet import lenet5  # noqa: E402
from minigrad.data import load_fashion_mnist  # noqa: E402


def run_minigrad(x, y, xt, yt, epochs, bs, seed):
    mg.manual_seed(seed)
    model = lenet5()
    opt = mg.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(x) // bs)
    sched = mg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    t0 = time.perf_counter()
    for ep in range(epochs):
        perm = np.random.default_rng(seed + ep).permutation(len(x))
        for i in range(len(x) // bs):
            idx = perm[i * bs:(i + 1) * bs]
            loss = F.cross_entropy(model(mg.tensor(x[idx])), mg.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    train = time.perf_counter() - t0
    model.eval()
    with mg.no_grad():
        acc = float(np.mean(np.concatenate([model(mg.tensor(xt[i:i + 1000])).numpy().argmax(1)
                                            for i in range(0, len(xt), 1000)]) == yt))
    return train, acc


def run_torch(torch, x, y, xt, yt, epochs, bs, seed):
    nn = torch.nn
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(x) // bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    t0 = time.perf_counter()
    for ep in range(epochs):
        perm = np.random.default_rng(seed + ep).permutation(len(x))
        for i in range(len(x) // bs):
            idx = perm[i * bs:(i + 1) * bs]
            loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    train = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xt)).argmax(1).numpy() == yt).mean())
    return train, acc


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=1, help="alternate the two this many times")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args(argv)
    torch = try_torch()
    print(blas_info())
    x, y = load_fashion_mnist(args.data, train=True)
    xt, yt = load_fashion_mnist(args.data, train=False)
    mean, std = x.mean(), x.std()
    x, xt = (x - mean) / std, (xt - mean) / std
    rows = []
    for r in range(args.rounds):
        tm, am = run_minigrad(x, y, xt, yt, args.epochs, args.batch_size, r)
        row = [r, f"{tm / args.epochs:.1f}", f"{len(x) * args.epochs / tm:,.0f}", f"{am:.4f}"]
        if torch is not None:
            tt, at = run_torch(torch, x, y, xt, yt, args.epochs, args.batch_size, r)
            row += [f"{tt / args.epochs:.1f}", f"{len(x) * args.epochs / tt:,.0f}", f"{at:.4f}", f"{tm / tt:.2f}×"]
        rows.append(row)
    headers = ["round", "minigrad s/epoch", "img/s", "test acc"]
    if torch is not None:
        headers += ["torch s/epoch", "img/s", "test acc", "ratio"]
    print_table(headers, rows)


if __name__ == "__main__":
    main()
