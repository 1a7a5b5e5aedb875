"""The backward of a strided convolution, step by step: flip the kernel, dilate δ by the
stride, pad it, correlate — and it equals what backward() computes.

    python examples/lecture/stride2_backward.py

At stride 1 the residual for the layer before is δ padded with F − 1 zeros, correlated
with the kernel flipped 180°. At stride S ≠ 1 the notes add one step:
    1. flip the kernel 180°;
    2. fill zeros into δ where the stride skipped positions: S − 1 zeros between
       neighbouring entries ("dilate δ by the stride");
    3. pad the result with zeros all round: D·(F − 1) − P on each side, plus, at the
       bottom and right, the rows and columns the forward dropped (the kernel could not
       reach them, so their gradient is 0);
    4. correlate the padded, dilated δ with the flipped kernel (stride 1).
The result has exactly the input's shape. (D is the dilation, 1 here; P the padding.)

minigrad's kernels compute the same numbers without multiplying the inserted zeros
(see ext/conv.pyx, conv2d_input_grad_direct); this script builds every intermediate
array so they can be printed.
"""
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _show import show  # noqa: E402


def input_grad_by_steps(δ, w, x_hw, S, P=0, D=1):
    """∂L/∂x of y = conv2d(x, w, stride=S, padding=P, dilation=D) for one channel, by the
    notes' four steps. δ (OH, OW), w (F, F), x_hw the input's (H, W). Returns a dict of
    every intermediate array: flipped, dilated, padded, dx."""
    H, W = x_hw
    OH, OW = δ.shape
    Fh, Fw = w.shape
    flipped = w[::-1, ::-1]                                             # 1. flip 180°
    dilated = np.zeros(((OH - 1) * S + 1, (OW - 1) * S + 1))           # 2. S − 1 zeros between
    dilated[::S, ::S] = δ
    edge_h, edge_w = D * (Fh - 1) - P, D * (Fw - 1) - P                 # 3. pad
    dropped_h = (H + 2 * P - D * (Fh - 1) - 1) % S                      #    rows the forward never read
    dropped_w = (W + 2 * P - D * (Fw - 1) - 1) % S
    padded = _pad(dilated, edge_h, edge_h + dropped_h, edge_w, edge_w + dropped_w)
    dx = np.zeros((H, W))                                               # 4. correlate (stride 1)
    for i in range(H):
        for j in range(W):
            window = padded[i:i + D * (Fh - 1) + 1:D, j:j + D * (Fw - 1) + 1:D]   # (F, F)
            dx[i, j] = np.sum(window * flipped)
    return {"flipped": flipped, "dilated": dilated, "padded": padded, "dx": dx,
            "pads": (edge_h, edge_h + dropped_h, edge_w, edge_w + dropped_w)}


def _pad(a, top, bottom, left, right):
    """Zero padding that also accepts negative amounts (which crop): P > D·(F − 1) pads δ
    by a negative amount, i.e. cuts the padded border's gradient away."""
    out = np.pad(a, ((max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))))
    return out[max(-top, 0):out.shape[0] - max(-bottom, 0), max(-left, 0):out.shape[1] - max(-right, 0)]


def run_case(x, w, δ, S, P=0, D=1, verbose=True):
    """backward() of minigrad's conv2d next to the four steps; returns both."""
    xt = mg.tensor(x[None, None], requires_grad=True)
    y = F.conv2d(xt, mg.tensor(w[None, None]), stride=S, padding=P, dilation=D)
    assert y.shape[-2:] == δ.shape, (y.shape, δ.shape)
    y.backward(δ[None, None])
    steps = input_grad_by_steps(δ, w, x.shape, S, P, D)
    if verbose:
        print(f"--- input {x.shape[0]}×{x.shape[1]}, kernel {w.shape[0]}×{w.shape[1]}, "
              f"stride {S}, padding {P}, dilation {D}: output {δ.shape[0]}×{δ.shape[1]}")
        show("δ = ∂L/∂y:", δ)
        show("1. kernel flipped 180°:", steps["flipped"])
        show(f"2. δ dilated by the stride ({S} − 1 zero between entries):", steps["dilated"])
        top, bottom, _, _ = steps["pads"]
        show(f"3. padded: D·(F − 1) − P = {top} zeros at the top and left, {bottom} at the bottom "
             f"and right ({bottom - top} for the rows the forward dropped):", steps["padded"])
        show("4. correlated with the flipped kernel = ∂L/∂x:", steps["dx"])
        show("∂L/∂x from minigrad's backward():", xt.grad.numpy()[0, 0])
    return steps, xt.grad.numpy()[0, 0]


CASES = [   # (input size, stride, padding): the notes' stride 2, then with padding and a dropped row
    (5, 2, 0),
    (6, 2, 1),
]


def main():
    rng = np.random.default_rng(4)
    w = np.array([[1.0, 2.0, 0.0], [-1.0, 3.0, 1.0], [0.0, -2.0, 1.0]])
    results = []
    for n, S, P in CASES:
        x = rng.integers(-3, 4, (n, n)).astype(np.float64)
        OH = (n + 2 * P - 3) // S + 1
        δ = np.arange(1.0, OH * OH + 1).reshape(OH, OH)
        steps, dx = run_case(x, w, δ, S, P)
        print("equal:", np.allclose(steps["dx"], dx))
        results.append((steps, dx))
    return results


if __name__ == "__main__":
    main()
