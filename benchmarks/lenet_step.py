"""LeNet-5 training step (SGD with momentum, cross-entropy): minigrad vs PyTorch.

    python benchmarks/lenet_step.py [--batch 64 256] [--repeat 30] [--rounds 3]
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lenet_step.py

Same architecture, same batch; one step = forward, loss, zero_grad, backward, optimizer
step. Two tables:

  one process    both libraries in this process (minigrad imported first, the model's
                 initial weights copied to PyTorch), steps alternated, paired medians
                 (see common.py). minigrad's GOMP_SPINCOUNT then applies to PyTorch's
                 OpenMP threads too;
  own process    each library in a fresh process of its own, with nothing of the other
                 loaded (PyTorch with all its defaults), `--rounds` rounds alternating
                 minigrad and PyTorch; per round the ratio of the two medians, and the
                 median of those ratios.
"""
import argparse
import json
import os
import statistics
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "examples"))
from common import (RESULTS_HELP, blas_info, child_json, fmt_ms, fmt_ratio, paired, torch_train_step,  # noqa: E402
                    print_table, record_results, timeit, torch_lenet5, try_torch)


def batch(n):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


def minigrad_step(n, model=None):
    """(step function, model) of a minigrad LeNet-5 on a fixed batch of n images."""
    import minigrad as mg
    import minigrad.nn.functional as F
    from lenet import lenet5
    x, y = batch(n)
    if model is None:
        mg.manual_seed(0)
        model = lenet5()
    opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xt, yt = mg.tensor(x), mg.tensor(y)

    def step():
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, model


def torch_step(torch, n, weights=None):
    x, y = batch(n)
    torch.manual_seed(0)
    t = torch_lenet5(torch)
    if weights is not None:
        t.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in weights.items()})
    return torch_train_step(torch, t, x, y)


def child(lib, batches, repeat):
    """Print {batch: [seconds per step]} as JSON, importing only `lib`."""
    out = {}
    for n in batches:
        if lib == "minigrad":
            step, _ = minigrad_step(n)
        else:
            import torch
            step = torch_step(torch, n)
        for _ in range(5):
            step()
        out[n] = timeit(step, repeat)
    print(json.dumps(out))


def one_process(batches, repeat):
    import minigrad as mg                       # before torch (see common.child_json)
    torch = try_torch()
    print(f"minigrad threads: {mg.get_num_threads()}"
          + (f"; torch {torch.__version__} threads: {torch.get_num_threads()}" if torch else "; torch not installed"))
    rows = []
    for n in batches:
        step_mg, model = minigrad_step(n)
        step_t = None if torch is None else torch_step(torch, n, model.state_dict())
        a, b, r = paired(step_mg, step_t, repeat=repeat, warmup=5)
        rows.append((n, fmt_ms(a), fmt_ms(b), fmt_ratio(r), f"{n / a:,.0f}", "—" if b is None else f"{n / b:,.0f}"))
    print_table(["batch", "minigrad ms", "torch ms", "ratio", "minigrad img/s", "torch img/s"], rows)


def own_processes(batches, repeat, rounds):
    script = os.path.abspath(__file__)
    med = {"minigrad": {n: [] for n in batches}, "torch": {n: [] for n in batches}}
    for _ in range(rounds):
        for lib in med:
            r = child_json(script, ["--child", lib, "--repeat", repeat, "--batch", *batches])
            for n in batches:
                med[lib][n].append(statistics.median(r[str(n)]))
    rows = []
    for n in batches:
        a, b = statistics.median(med["minigrad"][n]), statistics.median(med["torch"][n])
        ratio = statistics.median(x / y for x, y in zip(med["minigrad"][n], med["torch"][n]))
        rows.append((n, fmt_ms(a), fmt_ms(b), fmt_ratio(ratio), f"{n / a:,.0f}", f"{n / b:,.0f}"))
    print_table(["batch", "minigrad ms", "torch ms", "ratio", "minigrad img/s", "torch img/s"], rows)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3, help="own-process rounds per library")
    p.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--results", action="store_true", help=RESULTS_HELP)
    args = p.parse_args(argv)
    if args.results and not args.child:
        record_results("lenet_step.py")
    if args.child:
        return child(args.child, args.batch, args.repeat)
    print(blas_info())
    print("\n== one process ==")
    one_process(args.batch, args.repeat)
    if try_torch() is not None:
        print(f"\n== own process each, {args.rounds} rounds ==")
        own_processes(args.batch, args.repeat, args.rounds)


if __name__ == "__main__":
    main()
