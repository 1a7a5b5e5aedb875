"""Channel concatenation speed (Inception/DenseNet shapes): minigrad vs a bare NumPy copy
vs PyTorch (where importable).

    python benchmarks/cat.py            # the table
    python benchmarks/cat.py --quick    # fewer repetitions

float32, hot calls (each timed call follows an untimed one), minigrad and PyTorch in
turn, medians. Rows:
  fwd      y = cat(xs, dim=1) with the inputs requiring grad
  fwd+bwd  y = cat(xs, dim=1); y.backward(δ) (the inputs are leaves, so each .grad is
           a copy of its slice of δ: the backward itself hands out views)
  copy     NumPy: one memcpy of y's size (the floor for the forward)
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minigrad as mg                      # noqa: E402
from layers import timed                   # noqa: E402

try:
    import torch
except ImportError:                        # pragma: no cover
    torch = None

SHAPES = {
    # GoogLeNet inception 3a: 64 + 128 + 32 + 32 channels at 28×28, batch 32
    "inception3a": [(32, 64, 28, 28), (32, 128, 28, 28), (32, 32, 28, 28), (32, 32, 28, 28)],
    # DenseNet-121 block 1 late: 224 + 32 channels at 56×56, batch 16
    "dense-56": [(16, 224, 56, 56), (16, 32, 56, 56)],
    # small CIFAR-sized: 16 tensors of 12 channels at 16×16, batch 64
    "dense-16x12": [(64, 12, 16, 16)] * 16,
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 5 if args.quick else 15
    rng = np.random.default_rng(0)
    print(f"{'shape':<14}{'row':<9}{'minigrad ms':>12}{'torch ms':>10}{'numpy copy ms':>15}")
    for name, shapes in SHAPES.items():
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        xs = [mg.tensor(a, requires_grad=True) for a in arrays]
        y = mg.cat(xs, 1)
        δ = np.ones(y.shape, np.float32)
        full = np.concatenate(arrays, axis=1)

        def mg_fb():
            for x in xs:
                x.grad = None
            mg.cat(xs, 1).backward(δ)
        rows = {"fwd": [lambda: mg.cat(xs, 1)], "fwd+bwd": [mg_fb]}
        if torch is not None:
            ts = [torch.tensor(a, requires_grad=True) for a in arrays]
            tδ = torch.tensor(δ)

            def t_fb():
                for t in ts:
                    t.grad = None
                torch.cat(ts, 1).backward(tδ)
            rows["fwd"].append(lambda: torch.cat(ts, 1))
            rows["fwd+bwd"].append(t_fb)
        for row, fns in rows.items():
            m = timed(fns[0], reps)
            t = timed(fns[1], reps) if len(fns) > 1 else float("nan")
            c = timed(lambda: full.copy(), reps) if row == "fwd" else float("nan")
            print(f"{name:<14}{row:<9}{m:>12.2f}{t:>10.2f}{c:>15.2f}")


if __name__ == "__main__":
    main()
