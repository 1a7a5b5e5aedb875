"""First-order speed of the normalisations, losses and activations whose backward became
ops of their own for the gradient of a gradient (issue 13), and what a double backward
through them costs (float32, minigrad only).

    python benchmarks/norm_loss.py            # the table
    python benchmarks/norm_loss.py --quick    # fewer repetitions

"fwd+bwd ms" times y = op(x); y.backward(δ) (first order: the backward ops run under
no_grad, as their fused kernels plus a few µs each). "penalty ms" times the gradient
penalty step g = ∂⟨δ, op(x)⟩/∂x (create_graph=True), then (g · g).sum().backward(): the
double backward, written over tensors. Medians of back-to-back calls after a warm-up
call; "— (linear)" where ∂L/∂x does not depend on x (nll_loss of its input). To compare
two checkouts, run this script in each, alternately, and compare medians; see
benchmarks/layers.py for the activations against PyTorch.
"""
import argparse
import os
import statistics
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, ".."))
from common import timeit                  # noqa: E402
import minigrad as mg                      # noqa: E402
import minigrad.nn.functional as F         # noqa: E402
from minigrad.autograd import grad         # noqa: E402


def median_ms(fn, reps):
    """Median ms of `reps` back-to-back calls after a warm-up call (common.timeit)."""
    fn()
    return statistics.median(timeit(fn, reps)) * 1e3


def rows():
    C = 64
    ones, zeros = np.ones(C, np.float32), np.zeros(C, np.float32)
    w = mg.tensor(ones, requires_grad=True)
    b = mg.tensor(zeros, requires_grad=True)
    labels = np.random.default_rng(1).integers(0, 10, 256)
    return [
        # name, input shape, op, repetitions scale
        ("batch_norm train", (64, C, 28, 28), lambda x: F.batch_norm(x, zeros.copy(), ones.copy(), w, b, training=True), 1),
        ("batch_norm eval", (64, C, 28, 28), lambda x: F.batch_norm(x, zeros, ones, w, b, training=False), 1),
        ("batch_norm train, small", (64, 16, 8, 8), lambda x: F.batch_norm(x, None, None, None, None, training=True), 10),
        ("group_norm 32 groups", (32, 256, 28, 28), lambda x: F.group_norm(x, 32), 1),
        ("lrn 5", (32, 96, 27, 27), lambda x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0), 1),
        ("cross_entropy", (256, 10), lambda z: F.cross_entropy(z, labels), 20),
        ("nll_loss", (256, 10), lambda z: F.nll_loss(z, labels), 20),
        ("silu", (32, 64, 28, 28), F.silu, 1),
        ("gelu exact", (32, 64, 28, 28), F.gelu, 1),
        ("leaky_relu", (32, 64, 28, 28), lambda x: F.leaky_relu(x, 0.1), 1),
        ("hardswish", (32, 64, 28, 28), F.hardswish, 1),
        ("relu6, small", (64, 100), F.relu6, 20),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    reps = 3 if args.quick else 9
    rng = np.random.default_rng(0)
    print(f"{'op':<26}{'shape':<20}{'fwd+bwd ms':>12}{'penalty ms':>12}")
    for name, shape, op, scale in rows():
        x = mg.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
        δ = mg.tensor(np.ones(op(x).shape, np.float32))

        def first_order():
            x.grad = None
            op(x).backward(δ)

        def penalty():
            x.grad = None
            g, = grad(op(x), x, δ, create_graph=True)
            (g * g).sum().backward()
        g, = grad(op(x), x, δ, create_graph=True)
        second = f"{median_ms(penalty, reps * scale):>12.3f}" if g.requires_grad else f"{'— (linear)':>12}"
        print(f"{name:<26}{str(shape):<20}{median_ms(first_order, reps * scale):>12.3f}{second}")


if __name__ == "__main__":
    main()
