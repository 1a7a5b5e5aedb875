"""The gradient of a convolution, written out term by term: a 2×2 kernel over a 3×3 input
(∂L/∂w, ∂L/∂b and ∂L/∂x), compared with what backward() gives.

    python examples/lecture/weight_gradient.py

Forward (stride 1, no padding), four outputs:
    O00 = x00·w00 + x01·w01 + x10·w10 + x11·w11 + b
    O01 = x01·w00 + x02·w01 + x11·w10 + x12·w11 + b
    O10 = x10·w00 + x11·w01 + x20·w10 + x21·w11 + b
    O11 = x11·w00 + x12·w01 + x21·w10 + x22·w11 + b
With δ_ij = ∂L/∂O_ij, the chain rule sums over every output a weight touched:
    ∂L/∂w00 = Σ_ij ∂L/∂O_ij · ∂O_ij/∂w00 = δ00·x00 + δ01·x01 + δ10·x10 + δ11·x11
i.e. ∂L/∂w_pq = Σ_u Σ_v δ_uv · x_(u+p, v+q): the input correlated with δ. The bias
touches every output once: ∂L/∂b = Σ δ. And the input's gradient (the residual passed
to the layer before) is δ padded with F − 1 zeros and correlated with the kernel
flipped 180°.
"""
import os
import sys

import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _show import show  # noqa: E402

X = np.arange(1.0, 10.0).reshape(3, 3)            # x00 … x22 = 1 … 9
W = np.array([[1.0, -1.0], [2.0, 0.5]])           # w00 w01 / w10 w11
B = 0.25
DELTA = np.array([[1.0, 2.0], [-1.0, 0.5]])      # δ = ∂L/∂O, as if from the layers above


def main(delta=DELTA):
    x = mg.tensor(X[None, None], requires_grad=True)
    w = mg.tensor(W[None, None], requires_grad=True)
    b = mg.tensor([B], dtype=np.float64, requires_grad=True)
    O = F.conv2d(x, w, b)                                            # (1, 1, 2, 2)
    (O * mg.tensor(delta[None, None])).sum().backward()             # L = Σ δ ⊙ O, so ∂L/∂O = δ
    show("x (3×3):", X)
    show("w (2×2):", W)
    show(f"O = x ⋆ w + {B:g}:", O.numpy()[0, 0])
    show("δ = ∂L/∂O:", delta)

    by_hand = np.zeros((2, 2))
    for p in range(2):
        for q in range(2):
            terms = [(delta[u, v], X[u + p, v + q], f"δ{u}{v}·x{u + p}{v + q}")
                     for u in range(2) for v in range(2)]
            by_hand[p, q] = sum(d * a for d, a, _ in terms)
            print(f"∂L/∂w{p}{q} = " + " + ".join(t for _, _, t in terms) + " = "
                  + " + ".join(f"{d:g}·{a:g}" for d, a, _ in terms) + f" = {by_hand[p, q]:g}")
    show("∂L/∂w term by term:", by_hand)
    show("∂L/∂w from backward():", w.grad.numpy()[0, 0])
    print(f"∂L/∂b = Σ δ = {delta.sum():g}; backward() gives {b.grad.numpy()[0]:g}")

    # the residual for the layer before: pad δ by F − 1 = 1, correlate with w flipped 180°
    padded = np.pad(delta, 1)
    flipped = W[::-1, ::-1]
    dx = np.array([[np.sum(padded[i:i + 2, j:j + 2] * flipped) for j in range(3)] for i in range(3)])
    show("δ padded with one ring of zeros:", padded)
    show("w flipped 180°:", flipped)
    show("∂L/∂x = padded δ ⋆ flipped w:", dx)
    show("∂L/∂x from backward():", x.grad.numpy()[0, 0])
    return {"dw_by_hand": by_hand, "dw": w.grad.numpy()[0, 0], "db": b.grad.numpy()[0],
            "dx_by_hand": dx, "dx": x.grad.numpy()[0, 0]}


if __name__ == "__main__":
    main()
