"""Where a LeNet-5 training step spends its time: each op's forward and backward, and the
rest (graph bookkeeping, Python overhead of Tensor/Module/optimizer).

    python benchmarks/profile_lenet.py [--batch 64] [--steps 200]

Wraps every Function's forward/backward with a timer, runs `steps` SGD-momentum steps, and
prints the mean time per step of each op next to the whole step's wall time.
"""
import argparse
import collections
import os
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "examples"))
import minigrad as mg  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from common import instrument_functions  # noqa: E402
from lenet import lenet5  # noqa: E402

totals = collections.Counter()


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 10, args.batch))
    mg.manual_seed(0)
    model = lenet5()
    opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(20):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    plain = (time.perf_counter() - t0) / args.steps
    instrument_functions(totals)
    for _ in range(5):
        step()
    totals.clear()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    timed = (time.perf_counter() - t0) / args.steps
    ops = sum(totals.values()) / args.steps
    print(f"LeNet-5 step, batch {args.batch}, {mg.get_num_threads()} threads: "
          f"{plain * 1e3:.2f} ms (instrumented {timed * 1e3:.2f} ms)")
    print(f"{'op':<28}{'ms/step':>9}{'share':>8}")
    for name, t in totals.most_common():
        print(f"{name:<28}{t / args.steps * 1e3:9.3f}{t / args.steps / timed:8.1%}")
    print(f"{'ops total':<28}{ops * 1e3:9.3f}{ops / timed:8.1%}")
    print(f"{'rest (graph, Python, optim)':<28}{(timed - ops) * 1e3:9.3f}{(timed - ops) / timed:8.1%}")


if __name__ == "__main__":
    main()
