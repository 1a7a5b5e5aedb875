"""The fixed cost of one op: forward + backward of an op on tensors so small that the
arithmetic is nothing and what is left is the framework — Python, the graph, argument
checks, the kernel choice, the calls into the kernels. minigrad vs PyTorch (if installed),
each library in a process of its own, alternating rounds.

    python benchmarks/overhead.py              # the table
    python benchmarks/overhead.py --rounds 5   # more rounds
    python benchmarks/overhead.py --results    # also append to RESULTS.md

Each row chains 100 applications of the op (each one's output the next one's input; for
BatchNorm 100 modules, a fresh one per step of the chain, as in a network), then one
backward through the chain, hot (every timed chain follows an untimed one): µs per op =
median of the chains' times / 100. DenseNet-121 runs about 1,700 ops a training step,
most of them on planes of 2×2 to 16×16 pixels, where this cost is a large share.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS_HELP, child_json, print_table, record_results, try_torch  # noqa: E402

OPS = ["add", "relu", "batch_norm", "conv2d 3×3", "linear"]
CHAIN = 100
SHAPE = (2, 4, 3, 3)                    # (N, C, H, W): a few dozen numbers


def chains(lib):
    """{op: function running one chain forward and backward} for `lib`."""
    import numpy as np
    x0 = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32) * 0.1
    w0 = np.random.default_rng(1).standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.1
    l0 = np.random.default_rng(2).standard_normal((36, 36)).astype(np.float32) * 0.1
    if lib == "torch":
        import torch
        import torch.nn.functional as F
        torch.set_num_threads(2)
        x, w, lw = (torch.tensor(a, requires_grad=True) for a in (x0, w0, l0))
        bns = [torch.nn.BatchNorm2d(4) for _ in range(CHAIN)]
    else:
        import minigrad as mg
        import minigrad.nn.functional as F
        mg.set_num_threads(2)
        x, w, lw = (mg.tensor(a, requires_grad=True) for a in (x0, w0, l0))
        bns = [mg.nn.BatchNorm2d(4) for _ in range(CHAIN)]

    def run(step, start=None):
        def chain():
            h = x if start is None else start()
            for i in range(CHAIN):
                h = step(h, i)
            h.sum().backward()
        return chain

    return {"add": run(lambda h, i: h + x),
            "relu": run(lambda h, i: F.relu(h)),
            "batch_norm": run(lambda h, i: bns[i](h)),
            "conv2d 3×3": run(lambda h, i: F.conv2d(h, w, padding=1)),
            "linear": run(lambda h, i: F.linear(h, lw), lambda: x.reshape(2, 36))}


def child(lib, reps):
    """{op: µs per op} for one library (printed as JSON by the child process)."""
    out = {}
    for op, fn in chains(lib).items():
        times = []
        for _ in range(reps):
            fn()
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        out[op] = statistics.median(times) / CHAIN * 1e6
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="rounds alternating the libraries")
    ap.add_argument("--reps", type=int, default=21, help="timed chains per op and process")
    ap.add_argument("--results", action="store_true", help=RESULTS_HELP)
    ap.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import json
        print(json.dumps(child(args.child, args.reps)))
        return
    if args.results:
        record_results("overhead.py")
    libs = ["minigrad"] + (["torch"] if try_torch() is not None else [])
    got = {lib: [] for lib in libs}
    for _ in range(args.rounds):
        for lib in libs:
            got[lib].append(child_json(os.path.abspath(__file__),
                                       ["--child", lib, "--reps", args.reps]))
    print(f"one op's forward + backward on {'×'.join(map(str, SHAPE))} tensors, chains of "
          f"{CHAIN}, 2 threads, each library in its own process, {args.rounds} rounds × "
          f"{args.reps} chains; µs per op (median over rounds of the per-round medians)")
    rows = []
    for op in OPS:
        med = {lib: statistics.median(r[op] for r in got[lib]) for lib in libs}
        row = [op, f"{med['minigrad']:.1f}"]
        if "torch" in med:
            ratios = [m[op] / t[op] for m, t in zip(got["minigrad"], got["torch"])]
            row += [f"{med['torch']:.1f}", f"{statistics.median(ratios):.2f}×"]
        rows.append(row)
    print_table(["op", "minigrad µs"] + (["torch µs", "mg/torch"] if "torch" in libs else []), rows)


if __name__ == "__main__":
    main()
