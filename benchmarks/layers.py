"""Speed of issue 11's layers (forward + backward, float32): minigrad vs PyTorch if importable.

    python benchmarks/layers.py            # the table
    python benchmarks/layers.py --quick    # fewer repetitions

Each row times y = op(x); y.backward(δ) end to end through the public API, hot (every
timed call follows an untimed one), minigrad and PyTorch in turn; medians in ms. The
shapes are where the op sits in the model it comes from.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minigrad as mg                      # noqa: E402
import minigrad.nn.functional as F         # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:                        # pragma: no cover
    torch = None

ROWS = [
    # name, input shape, minigrad op, torch op
    ("relu6 (MobileNetV2 112²)", (32, 32, 112, 112), F.relu6, lambda x: TF.relu6(x)),
    ("gelu exact", (32, 64, 56, 56), F.gelu, lambda x: TF.gelu(x)),
    ("leaky_relu", (32, 64, 56, 56), lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    ("silu", (32, 64, 56, 56), F.silu, TF.silu),
    ("lrn 5 (AlexNet conv1)", (32, 96, 55, 55), lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0),
     lambda x: TF.local_response_norm(x, 5, 1e-4, 0.75, 2.0)),
    ("adaptive_max 7→3", (64, 256, 7, 7), lambda x: F.adaptive_max_pool2d(x, 3),
     lambda x: TF.adaptive_max_pool2d(x, 3)),
    ("adaptive_avg 13→6", (64, 256, 13, 13), lambda x: F.adaptive_avg_pool2d(x, 6),
     lambda x: TF.adaptive_avg_pool2d(x, 6)),
    ("interpolate bilinear ×2", (16, 64, 56, 56), lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"),
     lambda x: TF.interpolate(x, scale_factor=2, mode="bilinear")),
    ("interpolate nearest ×2", (16, 64, 56, 56), lambda x: F.interpolate(x, scale_factor=2),
     lambda x: TF.interpolate(x, scale_factor=2)),
    ("group_norm 32 groups", (32, 256, 28, 28), lambda x: F.group_norm(x, 32), lambda x: TF.group_norm(x, 32)),
]


def timed(fn, reps):
    """Median ms of `reps` hot calls (each timed call follows an untimed one)."""
    times = []
    for _ in range(reps):
        fn()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 3 if args.quick else 9
    rng = np.random.default_rng(0)
    print(f"{'op (fwd+bwd)':<28}{'shape':<22}{'minigrad ms':>12}{'torch ms':>10}")
    for name, shape, op, top in ROWS:
        a = rng.standard_normal(shape).astype(np.float32)
        x = mg.tensor(a, requires_grad=True)
        δ = np.ones(op(x).shape, np.float32)

        def ours():
            x.grad = None
            op(x).backward(δ)
        m = timed(ours, reps)
        t = float("nan")
        if torch is not None:
            xt = torch.tensor(a, requires_grad=True)
            δt = torch.tensor(δ)

            def theirs():
                xt.grad = None
                top(xt).backward(δt)
            t = timed(theirs, reps)
        print(f"{name:<28}{str(shape):<22}{m:>12.2f}{t:>10.2f}")


if __name__ == "__main__":
    main()
