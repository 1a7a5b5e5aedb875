"""The input gradient of a convolution, by hand: seed 004's four steps in NumPy, next to
minigrad's kernel, on a LeNet-sized layer.

    python examples/conv_backward_by_hand.py

For y = x ⋆ w (stride S, padding P, dilation D) and δ = ∂L/∂y, seed 004 computes ∂L/∂x as

    1. flip each kernel 180° and swap its channel axes  (w (K, C, F_h, F_w) -> (C, K, F_h, F_w))
    2. dilate δ: put S−1 zeros between neighbouring entries
    3. pad the dilated δ by D·(F−1) − P on each side (more at the bottom/right when the
       forward dropped rows, so that the result has x's shape)
    4. correlate the padded, dilated δ with the flipped kernel.

Step 4 multiplies every zero that steps 2 and 3 inserted. The kernel minigrad runs under
`kernels.use("direct")` (ext/conv_direct.pyx, conv2d_input_grad_direct) computes the same
sums without them: input row i meets tap p only when i + P ≡ p·D (mod S), so the rows
split into S phases, each a stride-1 correlation of the undilated δ with the taps of that
phase. This script does all three — the four steps, the phases in NumPy, the kernel —
and shows that they agree.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minigrad as mg                      # noqa: E402
import minigrad.nn.functional as F         # noqa: E402
from minigrad import kernels               # noqa: E402


def four_steps(δ, w, x_shape, S, P, D):
    """∂L/∂x by seed 004's four steps, literally (one group). Returns (∂L/∂x, number of
    products, number of those that multiply an inserted zero)."""
    N, C, H, W = x_shape
    K, _, Fh, Fw = w.shape
    _, _, OH, OW = δ.shape
    # 1. flip 180° and swap the channel axes: w_flip[c, k, p, q] = w[k, c, F_h−1−p, F_w−1−q]
    w_flip = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)                 # (C, K, F_h, F_w)
    # 2. dilate: S−1 zeros between neighbouring entries
    δ_dil = np.zeros((N, K, (OH - 1) * S[0] + 1, (OW - 1) * S[1] + 1))
    δ_dil[:, :, ::S[0], ::S[1]] = δ                                      # (N, K, (OH−1)·S+1, …)
    # 3. pad by D·(F−1) − P on the top/left; on the bottom/right as much as makes the
    #    result H×W (that is D·(F−1) − P plus the rows the forward dropped)
    top, left = D[0] * (Fh - 1) - P[0], D[1] * (Fw - 1) - P[1]
    bottom = H + D[0] * (Fh - 1) - top - δ_dil.shape[2]
    right = W + D[1] * (Fw - 1) - left - δ_dil.shape[3]
    assert min(top, left, bottom, right) >= 0, "this walk-through assumes P ≤ D·(F−1)"
    δ_pad = np.pad(δ_dil, ((0, 0), (0, 0), (top, bottom), (left, right)))
    real = np.zeros(δ_pad.shape[2:])                     # 1 where δ_pad holds a real δ entry
    real[top:top + δ_dil.shape[2]:S[0], left:left + δ_dil.shape[3]:S[1]] = 1
    # 4. correlate with the flipped kernel (dilated by D): dx[n,c,i,j] =
    #    Σ_k Σ_p Σ_q δ_pad[n, k, i + p·D, j + q·D] · w_flip[c, k, p, q]
    dx = np.zeros(x_shape)
    products = zeros = 0
    for p in range(Fh):
        for q in range(Fw):
            window = δ_pad[:, :, p * D[0]:p * D[0] + H, q * D[1]:q * D[1] + W]   # (N, K, H, W)
            dx += np.einsum("nkij,ck->ncij", window, w_flip[:, :, p, q])
            hits = real[p * D[0]:p * D[0] + H, q * D[1]:q * D[1] + W]
            products += N * C * K * H * W
            zeros += N * C * K * int(H * W - hits.sum())
    return dx, products, zeros


def by_phases(δ, w, x_shape, S, P, D):
    """The same sums phase by phase, as ext/conv_direct.pyx's loops do (one group): for
    each phase (r_h, r_w) and each of its taps (p, q), δ times w[:, :, p, q] lands on the
    input rows i = i'·S + p·D − P (stride S) — no zero formed or multiplied.
    Returns (∂L/∂x, number of products)."""
    N, C, H, W = x_shape
    K, _, Fh, Fw = w.shape
    _, _, OH, OW = δ.shape
    dx = np.zeros(x_shape)
    products = 0
    phases = sorted({((p * D[0]) % S[0], (q * D[1]) % S[1]) for p in range(Fh) for q in range(Fw)})
    for rh, rw in phases:                              # rows i with (i + P) mod S = rh, …
        for p in [p for p in range(Fh) if (p * D[0]) % S[0] == rh]:
            # δ rows i' whose input row i'·S + p·D − P lies in [0, H)
            i0 = max(0, -(-(P[0] - p * D[0]) // S[0]))
            i1 = min(OH, (H - 1 + P[0] - p * D[0]) // S[0] + 1)
            for q in [q for q in range(Fw) if (q * D[1]) % S[1] == rw]:
                j0 = max(0, -(-(P[1] - q * D[1]) // S[1]))
                j1 = min(OW, (W - 1 + P[1] - q * D[1]) // S[1] + 1)
                if i1 <= i0 or j1 <= j0:
                    continue
                rows = slice(i0 * S[0] + p * D[0] - P[0], (i1 - 1) * S[0] + p * D[0] - P[0] + 1, S[0])
                cols = slice(j0 * S[1] + q * D[1] - P[1], (j1 - 1) * S[1] + q * D[1] - P[1] + 1, S[1])
                dx[:, :, rows, cols] += np.einsum("nkij,kc->ncij", δ[:, :, i0:i1, j0:j1], w[:, :, p, q])
                products += N * C * K * (i1 - i0) * (j1 - j0)
    return dx, products


def by_kernel(x, w, δ, S, P, D, path):
    """minigrad's ∂L/∂x with `path` forced (None: the default choice); (∂L/∂x, path run)."""
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w)
    with kernels.use(path), kernels.trace() as calls:
        F.conv2d(xt, wt, stride=S, padding=P, dilation=D).backward(δ)
    ran = [c.path for c in calls if c.which == "input_grad"]
    return xt.grad.numpy(), ran[0]


def main(verbose=True):
    """Run the walk-through; returns {configuration: largest difference to the four steps}."""
    say = print if verbose else (lambda *a: None)
    rng = np.random.default_rng(4)
    # LeNet-5's second layer (6 -> 16 channels, 5×5), here at stride 2 with padding 2 so
    # that steps 2 and 3 both insert zeros
    N, C, H, W, K, Fh, Fw = 8, 6, 14, 14, 16, 5, 5
    S, P, D = (2, 2), (2, 2), (1, 1)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, Fh, Fw)) / np.sqrt(C * Fh * Fw)
    OH = (H + 2 * P[0] - D[0] * (Fh - 1) - 1) // S[0] + 1
    OW = (W + 2 * P[1] - D[1] * (Fw - 1) - 1) // S[1] + 1
    δ = rng.standard_normal((N, K, OH, OW))
    say(f"x {x.shape}, w {w.shape}, stride {S}, padding {P}, dilation {D}: y and δ {δ.shape}")
    say(f"by default:\n{kernels.explain(x.shape, w.shape, stride=S, padding=P, dilation=D, dtype=np.float64)}\n")

    dx4, products, zeros = four_steps(δ, w, x.shape, S, P, D)
    say(f"four steps : {products:,} products, {zeros:,} of them ({zeros / products:.0%}) "
        f"multiply a zero that steps 2-3 inserted")
    dxp, real = by_phases(δ, w, x.shape, S, P, D)
    say(f"phases     : {real:,} products (the same sums, without the zeros)")
    diffs = {"phases (NumPy)": float(np.abs(dxp - dx4).max())}
    for path in ("direct", None):
        dxk, ran = by_kernel(x, w, δ, S, P, D, path)
        diffs[f"kernel '{ran}'" + (" (forced)" if path else " (default)")] = float(np.abs(dxk - dx4).max())
    for name, d in diffs.items():
        say(f"  {name:24s} max |Δ| vs the four steps = {d:.1e}")

    # the same agreement on other layers: LeNet's first layer, stride 1, dilation, stride 3
    for xs, ws, S, P, D in [((8, 1, 28, 28), (6, 1, 5, 5), (1, 1), (2, 2), (1, 1)),
                            ((8, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1)),
                            ((4, 6, 14, 13), (16, 6, 3, 3), (2, 3), (1, 0), (2, 2)),
                            ((4, 6, 15, 15), (16, 6, 5, 3), (3, 2), (2, 1), (1, 1))]:
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        OH = (xs[2] + 2 * P[0] - D[0] * (ws[2] - 1) - 1) // S[0] + 1
        OW = (xs[3] + 2 * P[1] - D[1] * (ws[3] - 1) - 1) // S[1] + 1
        δ = rng.standard_normal((xs[0], ws[0], OH, OW))
        dx4 = four_steps(δ, w, xs, S, P, D)[0]
        dxk, ran = by_kernel(x, w, δ, S, P, D, "direct")
        key = f"x {xs}, w {ws}, S {S}, P {P}, D {D}"
        diffs[key] = float(max(np.abs(dxk - dx4).max(), np.abs(by_phases(δ, w, xs, S, P, D)[0] - dx4).max()))
        say(f"{key}: kernel '{ran}' and phases vs four steps, max |Δ| = {diffs[key]:.1e}")
    return diffs


if __name__ == "__main__":
    main()
