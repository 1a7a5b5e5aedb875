"""Deterministic edge geometries for every conv path: windows that start or end outside a
1-pixel-wide input (the taps of a dilated kernel that land entirely in the padding).
CI's sanitizer pass (bounds checks on) turns any out-of-bounds write here into an IndexError."""
import itertools

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels


def naive_conv2d(x, w, S, P, D):
    """y[n,f,i,j] = Σ_c Σ_p Σ_q x_pad[n, c, i·S + p·D, j·S + q·D] · w[f, c, p, q]."""
    (sh, sw), (ph0, ph1, pw0, pw1), (dh, dw) = S, P, D
    xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)))
    N, C, H, W = xp.shape
    F_, _, kh, kw = w.shape
    OH, OW = (H - dh * (kh - 1) - 1) // sh + 1, (W - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((N, F_, OH, OW))
    for i, j in itertools.product(range(OH), range(OW)):
        patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
        y[:, :, i, j] = np.einsum("ncpq,fcpq->nf", patch, w)
    return y


CASES = [  # (H, W, kh, kw, S, P, D)
    (1, 1, 1, 3, (1, 1), (0, 2), (1, 2)),
    (1, 1, 3, 1, (1, 1), (2, 0), (2, 1)),
    (1, 2, 1, 3, (1, 2), (0, 3), (1, 3)),
    (2, 1, 3, 3, (2, 1), (2, 2), (2, 2)),
    (1, 1, 3, 3, (3, 3), (3, 3), (3, 3)),
]


@pytest.mark.parametrize("path", ["direct", "gemm", "blas", None])
@pytest.mark.parametrize("case", CASES)
def test_taps_entirely_in_the_padding(path, case):
    with kernels.use(path):
        check_taps_entirely_in_the_padding(case)


def check_taps_entirely_in_the_padding(case):
    H, W, kh, kw, S, P, D = case
    rng = np.random.default_rng(0)
    for N in (1, 3):
        x = rng.standard_normal((N, 2, H, W))
        w = rng.standard_normal((3, 2, kh, kw))
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=S, padding=P, dilation=D)
        np.testing.assert_allclose(y.numpy(), naive_conv2d(x, w, S, (P[0], P[0], P[1], P[1]), D),
                                   rtol=1e-12, atol=1e-12)
        assert mg.gradcheck(lambda a, b: F.conv2d(a, b, stride=S, padding=P, dilation=D), [xt, wt])
        # the transposed convolution (weight layout (in=3, out=2, kh, kw)) runs the same
        # kernels the other way round, wherever its output size is positive
        oh = (y.shape[2] - 1) * S[0] - 2 * P[0] + D[0] * (kh - 1) + 1
        ow = (y.shape[3] - 1) * S[1] - 2 * P[1] + D[1] * (kw - 1) + 1
        if oh > 0 and ow > 0:
            u = mg.tensor(rng.standard_normal(y.shape), requires_grad=True)
            assert mg.gradcheck(lambda a, b: F.conv_transpose2d(a, b, stride=S, padding=P, dilation=D),
                                [u, wt])
