"""Correlation versus convolution, on the 5×5 magic square with the 3×3 magic square as
the kernel; the 180° flip that turns one into the other.

    python examples/lecture/correlation_vs_convolution.py

In one dimension, with a kernel of two taps (w1, w2):
    correlation  y_i' = Σ_i w_i · x_(i'+i−1)           y1 = w1·x1 + w2·x2
    convolution  y_i' = Σ_i w_(M+1−i) · x_(i'+i−1)     the kernel read backwards
In two dimensions the convolution of signal processing is
    g(i, j) = Σ_k Σ_l f(k, l) · w(i − k, j − l),
and it equals a correlation with the kernel flipped 180° (rows and columns reversed).
Every deep-learning framework, minigrad included, computes the *correlation* in conv2d
and still calls it a convolution; for a learned kernel the difference is only which way
round the numbers are stored.
"""
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _show import show  # noqa: E402

F_MAGIC = np.array([[17, 24, 1, 8, 15],
                    [23, 5, 7, 14, 16],
                    [4, 6, 13, 20, 22],
                    [10, 12, 19, 21, 3],
                    [11, 18, 25, 2, 9]], np.float64)
W_MAGIC = np.array([[8, 1, 6],
                    [3, 5, 7],
                    [4, 9, 2]], np.float64)


def convolution_by_definition(f, w):
    """g(i, j) = Σ_k Σ_l f(k, l) · w(i − k, j − l), the kernel centred (its middle is w(0, 0)),
    zero outside f: written from the formula, with loops, no minigrad."""
    r = w.shape[0] // 2
    g = np.zeros_like(f)
    for i in range(f.shape[0]):
        for j in range(f.shape[1]):
            for k in range(f.shape[0]):
                for l in range(f.shape[1]):
                    a, b = i - k + r, j - l + r                # w(i − k, j − l) in array indices
                    if 0 <= a < w.shape[0] and 0 <= b < w.shape[1]:
                        g[i, j] += f[k, l] * w[a, b]
    return g


def main():
    x1, x2, x3, w1, w2 = 1.0, 2.0, 3.0, 10.0, 20.0
    corr1 = F.conv2d(mg.tensor([[[[x1, x2, x3]]]], dtype=np.float64),
                     mg.tensor([[[[w1, w2]]]], dtype=np.float64)).numpy().ravel()
    print(f"1-d: x = ({x1:g}, {x2:g}, {x3:g}), w = ({w1:g}, {w2:g})")
    print(f"    correlation y1 = w1·x1 + w2·x2 = {w1 * x1 + w2 * x2:g}, y2 = w1·x2 + w2·x3 = "
          f"{w1 * x2 + w2 * x3:g}; F.conv2d gives {corr1[0]:g}, {corr1[1]:g}")

    show("f, the 5×5 magic square:", F_MAGIC)
    show("w, the 3×3 magic square:", W_MAGIC)
    x = mg.tensor(F_MAGIC[None, None])
    corr = F.conv2d(x, mg.tensor(W_MAGIC[None, None]), padding=1).numpy()[0, 0]
    flipped = W_MAGIC[::-1, ::-1].copy()
    conv = F.conv2d(x, mg.tensor(flipped[None, None]), padding=1).numpy()[0, 0]
    reference = convolution_by_definition(F_MAGIC, W_MAGIC)
    show("correlation f ⋆ w (F.conv2d, padding 1):", corr)
    show("w flipped 180°:", flipped)
    show("convolution f * w = F.conv2d with the flipped kernel:", conv)
    show("convolution from its definition Σ f(k,l)·w(i−k, j−l) (NumPy loops):", reference)
    print("centre pixel by hand: 21·8 + 19·1 + 12·6 + 20·3 + 13·5 + 6·7 + 14·4 + 7·9 + 5·2 =",
          21 * 8 + 19 * 1 + 12 * 6 + 20 * 3 + 13 * 5 + 6 * 7 + 14 * 4 + 7 * 9 + 5 * 2)
    print("equal:", np.array_equal(conv, reference), "| correlation differs:",
          not np.array_equal(corr, reference))
    return {"corr1d": corr1, "correlation": corr, "convolution": conv, "reference": reference}


if __name__ == "__main__":
    main()
