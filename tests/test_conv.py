"""conv2d / conv_transpose2d: forward against references written from the formulas,
gradients against finite differences and against the literal seed-004 construction,
every kernel path, argument validation, layouts, dtypes, and the nn layers."""
import contextlib
import os
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import _blas, kernels
from minigrad.ops import conv_dispatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_spy import poison_workspaces, ran  # noqa: E402

# Every numeric test runs on each kernel family; 'gemm-chunked' shrinks the workspace
# bound so the batch goes through im2col/col2im one sample at a time; 'blas-rows' shrinks
# the per-thread im2col block of the 'blas' path to one output row, 'blas-batch' grows it
# to ⌈N / threads⌉ whole samples (the last block shorter when that does not divide N);
# 'winograd' and 'winograd4' run the Winograd F(2×2, 3×3) / F(4×4, 3×3) forward wherever it
# applies (3×3, stride 1, dilation 1, one group), the usual choice elsewhere.
PATHS = ["direct", "gemm", "gemm-chunked", "blas", "blas-rows", "blas-batch", "winograd", "winograd4"]


# the kernels.Tuning each test path sets besides forcing its family
TUNING = {"gemm-chunked": dict(workspace_bytes=1),
          "blas-rows": dict(blas_block_bytes=1, blas_min_columns=1, blas_batch_columns=1),
          "blas-batch": dict(blas_batch_columns=1 << 40, blas_batch_below=1 << 40)}


@contextlib.contextmanager
def kernel_path(path):
    """kernels.use() of the path's family with its TUNING, the workspaces poisoned."""
    if path.startswith("blas") and not _blas.available():
        pytest.skip("no OpenBLAS next to NumPy: the 'blas' path is not available here")
    poison_workspaces()
    with kernels.use(path.split("-")[0], **TUNING.get(path, {})):
        yield


@pytest.mark.parametrize("N,R,OH,OW", [(5, 27, 8, 8), (3, 150, 10, 10), (4, 576, 56, 56),
                                       (7, 9, 300, 2)])
def test_kernel_path_settings_give_the_blocks_they_name(N, R, OH, OW):
    """The 'blas-rows' and 'blas-batch' settings really reach the block shapes the
    parametrized tests rely on, whatever the default block sizes are tuned to."""
    nt = 2
    with kernel_path("blas-rows"):
        assert kernels._blas_blocks(N, R, OH, OW, 4, nt) == (1, 1)
    with kernel_path("blas-batch"):
        assert kernels._blas_blocks(N, R, OH, OW, 4, nt) == (-(-N // nt), OH)
    nb, rows = kernels._blas_blocks(N, R, OH, OW, 4, nt)     # defaults: a block of whole rows,
    assert 1 <= nb <= N and 1 <= rows <= OH               # or of whole samples
    assert nb == 1 or rows == OH


# ---- references, straight from the formulas --------------------------------------

def pad_amounts(padding, H, W, kh, kw, S, D):
    """(top, bottom, left, right), with TensorFlow's rule for 'same'."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        def one(n, k, s, d):
            out = -(-n // s)
            total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
            return total // 2, total - total // 2
        return one(H, kh, S[0], D[0]) + one(W, kw, S[1], D[1])
    return padding[0], padding[0], padding[1], padding[1]


def conv2d_reference(x, w, b, S, P4, D, G):
    """y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]"""
    N, Cin, H, W = x.shape
    K, Cg, kh, kw = w.shape
    pt, pb, pl, pr = P4
    xp = np.zeros((N, Cin, H + pt + pb, W + pl + pr))
    xp[:, :, pt:pt + H, pl:pl + W] = x
    OH = (H + pt + pb - D[0] * (kh - 1) - 1) // S[0] + 1
    OW = (W + pl + pr - D[1] * (kw - 1) - 1) // S[1] + 1
    Kg = K // G
    y = np.zeros((N, K, OH, OW))
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for i in range(OH):
                for j in range(OW):
                    s = 0.0 if b is None else b[k]
                    for c in range(Cg):
                        for p in range(kh):
                            for q in range(kw):
                                s += xp[n, g * Cg + c, i * S[0] + p * D[0], j * S[1] + q * D[1]] * w[k, c, p, q]
                    y[n, k, i, j] = s
    return y


def input_grad_literal(δ, w, x_shape, S, P4, D, G):
    """Seed 004, literally: dilate δ by S (S−1 zeros between entries), pad it by D·(K−1)
    (a full correlation; cropping P afterwards is the '−P' of D·(K−1)−P) and with the rows
    the forward dropped at the bottom/right, then correlate with the kernel flipped 180°,
    its channel axes swapped, dilated by D. Every zero is multiplied here on purpose."""
    N, Cin, H, W = x_shape
    K, Cg, kh, kw = w.shape
    _, _, OH, OW = δ.shape
    pt, pb, pl, pr = P4
    Kg = K // G
    eh, ew = D[0] * (kh - 1), D[1] * (kw - 1)
    dil = np.zeros((N, K, (OH - 1) * S[0] + 1, (OW - 1) * S[1] + 1))
    dil[:, :, ::S[0], ::S[1]] = δ                                  # 1. dilate
    Hp, Wp = H + pt + pb, W + pl + pr                              # padded input size
    big = np.zeros((N, K, Hp + eh, Wp + ew))                       # 2. pad (incl. dropped rows)
    big[:, :, eh:eh + dil.shape[2], ew:ew + dil.shape[3]] = dil
    flipped = np.zeros((Cin, K, kh, kw))                           # 3. flip 180°, swap channels
    for k in range(K):
        g = k // Kg
        flipped[g * Cg:(g + 1) * Cg, k] = w[k, :, ::-1, ::-1]
    dx_pad = np.zeros((N, Cin, Hp, Wp))                            # 4. correlate
    for c in range(Cin):
        for k in range(K):
            for p in range(kh):
                for q in range(kw):
                    dx_pad[:, c] += big[:, k, p * D[0]:p * D[0] + Hp, q * D[1]:q * D[1] + Wp] * flipped[c, k, p, q]
    return dx_pad[:, :, pt:pt + H, pl:pl + W]


def conv_transpose2d_reference(x, w, b, S, P, OP, G, D):
    """y[n, g·Cog+co, i·S + p·D − P, j·S + q·D − P] += x[n,ci,i,j] · w[ci,co,p,q]  (+ b)"""
    N, Cin, H, W = x.shape
    _, Cog, kh, kw = w.shape
    Ho = (H - 1) * S[0] - 2 * P[0] + D[0] * (kh - 1) + OP[0] + 1
    Wo = (W - 1) * S[1] - 2 * P[1] + D[1] * (kw - 1) + OP[1] + 1
    Cig = Cin // G
    y = np.zeros((N, Cog * G, Ho, Wo))
    for n in range(N):
        for ci in range(Cin):
            g = ci // Cig
            for co in range(Cog):
                for i in range(H):
                    for j in range(W):
                        for p in range(kh):
                            for q in range(kw):
                                r, s = i * S[0] + p * D[0] - P[0], j * S[1] + q * D[1] - P[1]
                                if 0 <= r < Ho and 0 <= s < Wo:
                                    y[n, g * Cog + co, r, s] += x[n, ci, i, j] * w[ci, co, p, q]
    if b is not None:
        y += b.reshape(-1, 1, 1)
    return y


# ---- hypothesis strategies ---------------------------------------------------------

@st.composite
def conv_cases(draw, max_batch=2):
    G = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = G > 1 and draw(st.booleans())
    Cg = 1 if depthwise else draw(st.integers(1, 3))
    Kg = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    D = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                             st.sampled_from(["same", "valid"])))
    pads = (0, 0) if padding == "same" or padding == "valid" else padding
    # input size: from "kernel = padded input" (extra 0) up to a few pixels more
    H = max(1, D[0] * (kh - 1) + 1 - 2 * pads[0]) + draw(st.integers(0, 6))
    W = max(1, D[1] * (kw - 1) + 1 - 2 * pads[1]) + draw(st.integers(0, 6))
    N = draw(st.integers(1, max_batch))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31))
    return dict(N=N, G=G, Cg=Cg, Kg=Kg, kh=kh, kw=kw, S=S, D=D, padding=padding,
                H=H, W=W, bias=bias, seed=seed)


def arrays(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["G"] * case["Cg"], case["H"], case["W"])).astype(dtype)
    w = rng.standard_normal((case["G"] * case["Kg"], case["Cg"], case["kh"], case["kw"])).astype(dtype)
    b = rng.standard_normal(case["G"] * case["Kg"]).astype(dtype) if case["bias"] else None
    return x, w, b


def call(case, x, w, b):
    return F.conv2d(x, w, b, stride=case["S"], padding=case["padding"],
                    dilation=case["D"], groups=case["G"])


def P4(case):
    return pad_amounts(case["padding"], case["H"], case["W"], case["kh"], case["kw"],
                       case["S"], case["D"])


# ---- conv2d: forward, gradients --------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@given(case=conv_cases())
def test_forward_matches_reference(path, case):
    x, w, b = arrays(case)
    with kernel_path(path):
        y = call(case, mg.tensor(x), mg.tensor(w), None if b is None else mg.tensor(b))
    ref = conv2d_reference(x, w, b, case["S"], P4(case), case["D"], case["G"])
    assert y.shape == ref.shape
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
@given(case=conv_cases())
def test_gradcheck_x_w_b(path, case):
    x, w, b = arrays(case)
    inputs = [mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)]
    if b is not None:
        inputs.append(mg.tensor(b, requires_grad=True))
    with kernel_path(path):
        assert mg.gradcheck(lambda *t: call(case, t[0], t[1], t[2] if len(t) > 2 else None), inputs)


@pytest.mark.parametrize("path", PATHS)
@given(case=conv_cases())
def test_input_grad_equals_dilated_padded_flipped_correlation(path, case):
    x, w, b = arrays(case)
    xt = mg.tensor(x, requires_grad=True)
    with kernel_path(path):
        y = call(case, xt, mg.tensor(w), None)
        δ = np.random.default_rng(case["seed"] + 1).standard_normal(y.shape)
        y.backward(δ)
    dx = input_grad_literal(δ, w, x.shape, case["S"], P4(case), case["D"], case["G"])
    assert xt.grad.shape == x.shape
    np.testing.assert_allclose(xt.grad.data, dx, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("path", PATHS)
@given(case=conv_cases())
def test_float32_matches_float64(path, case):
    x, w, b = arrays(case)
    grads = {}
    with kernel_path(path):
        for dt in (np.float32, np.float64):
            ts = [mg.tensor(a.astype(dt), requires_grad=True) for a in (x, w) + (() if b is None else (b,))]
            y = call(case, ts[0], ts[1], ts[2] if b is not None else None)
            assert y.dtype == dt
            (y * y).sum().backward()
            grads[dt] = [y.data] + [t.grad.data for t in ts]
            assert all(g.dtype == dt for g in grads[dt])
    for g32, g64 in zip(grads[np.float32], grads[np.float64]):
        scale = max(1.0, float(np.abs(g64).max()))
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stride, padding, dilation, groups", [
    (1, 1, 1, 1), (2, 1, 1, 1), ((2, 3), (0, 2), (1, 2), 2), (1, "same", 2, 8), (3, "same", 1, 4)])
def test_medium_shapes(path, stride, padding, dilation, groups):
    """Bigger than the property tests: many planes per thread, several chunks."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 8, 13, 10))
    w = rng.standard_normal((8, 8 // groups, 3, 3))
    b = rng.standard_normal(8)
    S = (stride, stride) if isinstance(stride, int) else stride
    D = (dilation, dilation) if isinstance(dilation, int) else dilation
    Pn = (padding, padding) if isinstance(padding, int) else padding
    xt, wt, bt = (mg.tensor(a, requires_grad=True) for a in (x, w, b))
    with kernel_path(path):
        y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, dilation=dilation, groups=groups)
        δ = rng.standard_normal(y.shape)
        y.backward(δ)
    P = pad_amounts(Pn, 13, 10, 3, 3, S, D)
    np.testing.assert_allclose(y.data, conv2d_reference(x, w, b, S, P, D, groups), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(xt.grad.data, input_grad_literal(δ, w, x.shape, S, P, D, groups),
                               rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(bt.grad.data, δ.sum(axis=(0, 2, 3)), rtol=1e-12)
    dw = np.zeros_like(w)                     # ∂L/∂w = x correlated with δ, literally
    xp = np.pad(x, ((0, 0), (0, 0), (P[0], P[1]), (P[2], P[3])))
    OH, OW = δ.shape[2:]
    Kg, Cg = 8 // groups, 8 // groups
    for k in range(8):
        for c in range(Cg):
            for p in range(3):
                for q in range(3):
                    win = xp[:, (k // Kg) * Cg + c, p * D[0]:p * D[0] + (OH - 1) * S[0] + 1:S[0],
                             q * D[1]:q * D[1] + (OW - 1) * S[1] + 1:S[1]]
                    dw[k, c, p, q] = np.sum(δ[:, k] * win)
    np.testing.assert_allclose(wt.grad.data, dw, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("path", PATHS)
def test_seed000_x_kernel(path):
    """Seed 000: the 5×5 image with the 3×3 X-shaped kernel."""
    img = np.array([[1, 1, 1, 0, 0],
                    [0, 1, 1, 1, 0],
                    [0, 0, 1, 1, 1],
                    [0, 0, 1, 1, 0],
                    [0, 1, 1, 0, 0]], np.float32)
    k = np.array([[1, 0, 1],
                  [0, 1, 0],
                  [1, 0, 1]], np.float32)
    with kernel_path(path):
        y = F.conv2d(mg.tensor(img[None, None]), mg.tensor(k[None, None]))
        y3 = F.conv2d(mg.tensor(img[None]), mg.tensor(k[None, None]), padding="valid")
    expected = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    np.testing.assert_array_equal(y.data[0, 0], expected)
    np.testing.assert_array_equal(y3.data[0], expected)      # unbatched (C, H, W)


@pytest.mark.parametrize("path", PATHS)
def test_convolution_is_correlation_with_flipped_kernel(path):
    """Seed 001: g(i,j) = Σ_{k,l} f(k,l) w(i−k, j−l) (true convolution, kernel centred)
    equals conv2d — a correlation — with the kernel flipped 180°."""
    f = np.array([[17, 24, 1, 8, 15],
                  [23, 5, 7, 14, 16],
                  [4, 6, 13, 20, 22],
                  [10, 12, 19, 21, 3],
                  [11, 18, 25, 2, 9]], np.float64)
    w = np.array([[8, 1, 6], [3, 5, 7], [4, 9, 2]], np.float64)
    conv = np.zeros((5, 5))
    for i in range(5):
        for j in range(5):
            for k in range(5):
                for l in range(5):
                    a, c = i - k + 1, j - l + 1
                    if 0 <= a < 3 and 0 <= c < 3:
                        conv[i, j] += f[k, l] * w[a, c]
    with kernel_path(path):
        corr = F.conv2d(mg.tensor(f[None, None]), mg.tensor(w[None, None]), padding=1).data[0, 0]
        flipped = F.conv2d(mg.tensor(f[None, None]), mg.tensor(w[::-1, ::-1].copy()[None, None]),
                           padding=1).data[0, 0]
    np.testing.assert_allclose(flipped, conv)
    assert not np.allclose(corr, conv)        # without the flip it is a different operator
    # by hand, centre pixel: 21·8 + 19·1 + 12·6 + 20·3 + 13·5 + 6·7 + 14·4 + 7·9 + 5·2
    assert conv[2, 2] == 555


@pytest.mark.parametrize("path", PATHS)
def test_rows_dropped_by_the_forward_get_zero_gradient(path):
    # H = 8, k = 3, S = 3: outputs read rows 0..6 (i'·3 + 0..2, i' ∈ {0, 1, 2}); row 7 is dropped.
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 2, 8, 7)), requires_grad=True)
    w = mg.tensor(np.random.default_rng(1).standard_normal((3, 2, 3, 2)))
    with kernel_path(path):
        y = F.conv2d(x, w, stride=(3, 2))
        assert y.shape == (2, 3, 2, 3)
        y.sum().backward()
    assert x.grad.shape == x.shape
    assert np.all(x.grad.data[:, :, 6:, :] == 0)      # rows 6, 7 are never read
    assert np.all(x.grad.data[:, :, :, 6] == 0)       # column 6 is never read
    assert np.all(x.grad.data[:, :, :6, :6] != 0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("hw, k, s, d, out", [
    ((32, 32), 5, 2, 1, (16, 16)),   # seed 000: layers.Conv2D(4, 5, strides=2, padding='same')
    ((32, 32), 5, 1, 1, (32, 32)),
    ((7, 10), 3, 3, 1, (3, 4)),
    ((9, 6), 4, 2, 2, (5, 3)),       # even kernel, dilation: asymmetric padding
    ((5, 5), 3, 1, 3, (5, 5)),
])
def test_same_padding_shapes(path, hw, k, s, d, out):
    x = mg.tensor(np.random.default_rng(0).standard_normal((1, 3) + hw), requires_grad=True)
    w = mg.tensor(np.random.default_rng(1).standard_normal((4, 3, k, k)), requires_grad=True)
    with kernel_path(path):
        y = F.conv2d(x, w, stride=s, padding="same", dilation=d)
        assert y.shape == (1, 4) + out
        P = pad_amounts("same", hw[0], hw[1], k, k, (s, s), (d, d))
        np.testing.assert_allclose(y.data, conv2d_reference(x.data, w.data, None, (s, s), P, (d, d), 1))
        y.sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


@pytest.mark.parametrize("path", PATHS)
def test_empty_batch(path):
    x = mg.tensor(np.zeros((0, 4, 6, 5)), requires_grad=True)
    w = mg.tensor(np.ones((6, 2, 3, 3)), requires_grad=True)
    b = mg.tensor(np.ones(6), requires_grad=True)
    with kernel_path(path):
        y = F.conv2d(x, w, b, stride=2, padding=1, groups=2)
        assert y.shape == (0, 6, 3, 3)
        y.sum().backward()
        t = F.conv_transpose2d(mg.tensor(np.zeros((0, 6, 3, 3))), mg.tensor(np.ones((6, 1, 3, 3))), groups=2)
        assert t.shape == (0, 2, 5, 5)
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.data, 0)
    np.testing.assert_array_equal(b.grad.data, 0)


@pytest.mark.parametrize("path", PATHS)
def test_unbatched_input(path):
    rng = np.random.default_rng(3)
    x3 = rng.standard_normal((2, 6, 5))
    w = rng.standard_normal((3, 2, 2, 3))
    with kernel_path(path):
        a = mg.tensor(x3, requires_grad=True)
        ya = F.conv2d(a, w, stride=(2, 1), padding=(1, 0))
        (ya * ya).sum().backward()
        b = mg.tensor(x3[None], requires_grad=True)
        yb = F.conv2d(b, w, stride=(2, 1), padding=(1, 0))
        (yb * yb).sum().backward()
        assert mg.gradcheck(lambda t: F.conv2d(t, w, padding="same"), [mg.tensor(x3, requires_grad=True)])
    assert ya.shape == yb.shape[1:]
    np.testing.assert_array_equal(ya.data, yb.data[0])
    np.testing.assert_array_equal(a.grad.data, b.grad.data[0])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("layout", ["fortran", "transposed", "negative", "strided", "broadcast"])
def test_memory_layouts_give_the_same_numbers(path, layout):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    if layout == "fortran":
        xl, wl, bl = np.asfortranarray(x), np.asfortranarray(w), b
    elif layout == "transposed":
        xl = np.ascontiguousarray(x.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0)
        wl = np.ascontiguousarray(w.transpose(2, 3, 0, 1)).transpose(2, 3, 0, 1)
        bl = b
    elif layout == "negative":
        xl = np.ascontiguousarray(x[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
        wl = np.ascontiguousarray(w[::-1])[::-1]
        bl = np.ascontiguousarray(b[::-1])[::-1]
    elif layout == "strided":
        big = np.zeros((2, 4, 14, 12), np.float32)
        big[:, :, ::2, ::2] = x
        xl, wl, bl = big[:, :, ::2, ::2], w, np.repeat(b, 2)[::2]
    else:       # zero strides
        x = np.broadcast_to(rng.standard_normal((1, 4, 1, 6)).astype(np.float32), (2, 4, 7, 6))
        xl, wl, bl = x, w, b
    assert not xl.flags.c_contiguous or not wl.flags.c_contiguous or not bl.flags.c_contiguous
    with kernel_path(path):
        ref = F.conv2d(mg.tensor(np.ascontiguousarray(x)), mg.tensor(w), mg.tensor(b), stride=2,
                       padding=1, groups=2).data
        got = F.conv2d(mg.Tensor._wrap(xl, False), mg.Tensor._wrap(wl, False), mg.Tensor._wrap(bl, False),
                       stride=2, padding=1, groups=2).data
        np.testing.assert_array_equal(got, ref)
        δ = np.broadcast_to(np.float32(1.5), ref.shape)          # a zero-stride δ
        wt = mg.Tensor._wrap(wl, True)
        F.conv2d(mg.Tensor._wrap(xl, False), wt, stride=2, padding=1, groups=2).backward(δ)
        wc = mg.tensor(w, requires_grad=True)
        F.conv2d(mg.tensor(np.ascontiguousarray(x)), wc, stride=2, padding=1, groups=2).backward(δ)
    np.testing.assert_array_equal(wt.grad.data, wc.grad.data)


def test_dtypes():
    x32 = np.ones((1, 2, 5, 5), np.float32)
    w32 = np.ones((3, 2, 3, 3), np.float32)
    assert F.conv2d(mg.tensor(x32), mg.tensor(w32)).dtype == np.float32
    assert F.conv2d(mg.tensor(x32.astype(np.float64)), mg.tensor(w32.astype(np.float64))).dtype == np.float64
    # PyTorch's rule: conv2d and conv_transpose2d never mix dtypes (ops/nn.check_same_dtype)
    for args in ((x32, w32.astype(np.float64)), (x32.astype(np.float64), w32),
                 (x32, w32, np.zeros(3)), (x32.astype(np.float16), w32)):
        with pytest.raises(TypeError, match=r"conv2d\(\).*\.float\(\).*\.double\(\).*model\.to"):
            F.conv2d(*[mg.tensor(a) for a in args])
    y16 = F.conv2d(mg.tensor(x32.astype(np.float16)), mg.tensor(w32.astype(np.float16)))
    assert y16.dtype == np.float16 and np.all(y16.data == 18)
    with pytest.raises(TypeError, match=r"conv_transpose2d\(\): weight has dtype float64"):
        F.conv_transpose2d(mg.tensor(x32), mg.tensor(np.ones((2, 3, 3, 3))))
    for bad in (np.int64, np.int32, np.bool_, np.complex64):
        with pytest.raises(TypeError, match="input"):
            F.conv2d(x32.astype(bad), mg.tensor(w32))
        with pytest.raises(TypeError, match="weight"):
            F.conv2d(mg.tensor(x32), w32.astype(bad))
        with pytest.raises(TypeError, match="input"):
            F.conv_transpose2d(x32.astype(bad), mg.tensor(w32))


@pytest.mark.parametrize("path", PATHS)
def test_needed_gradients_only(path):
    """LeNet's first layer: the input does not require grad, so ∂L/∂x is not computed;
    a frozen weight gets no ∂L/∂w work."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((2, 1, 8, 8)))
    w = mg.tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    with kernel_path(path):
        y = F.conv2d(x, w, padding=1)
        with kernels.trace() as calls:
            y.sum().backward()
    assert [c.which for c in calls] == ["weight_grad"], calls
    assert x.grad is None and w.grad is not None
    w2 = mg.tensor(w.data)
    x2 = mg.tensor(x.data, requires_grad=True)
    with kernel_path(path):
        y = F.conv2d(x2, w2, padding=1)
        with kernels.trace() as calls:
            y.sum().backward()
    assert [c.which for c in calls] == ["input_grad"], calls
    assert w2.grad is None and x2.grad is not None


@pytest.mark.parametrize("path", PATHS)
def test_tap_entirely_in_the_padding(path):
    """A tap whose every read lands in the padding (here q = 0 and q = 2 of a width-1 input
    padded by 2, dilation 2): its im2col row is all zeros and nothing is written past the
    row (found by a bounds-checked build: the zero fill ran beyond OW)."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((3, 2, 2, 1)), rng.standard_normal((2, 2, 1, 3))
    ts = [mg.tensor(a, requires_grad=True) for a in (x, w)]
    with kernel_path(path):
        y = F.conv2d(*ts, padding=(0, 2), dilation=(1, 2))
        ref = conv2d_reference(x, w, None, (1, 1), (0, 0, 2, 2), (1, 2), 1)
        np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-12)
        assert mg.gradcheck(lambda a, b: F.conv2d(a, b, padding=(0, 2), dilation=(1, 2)), ts)


# (x shape, w shape, stride, padding, dilation): short output rows (of another width than
# the input rows, or strided), where the 'blas' path's im2col first shifts the input
# rows (ext/conv_im2col.pyx _im2col_shifted), for blocks of whole samples and of single rows.
SHIFT_CASES = [
    ((3, 2, 7, 9), (4, 2, 3, 3), (1, 1), (0, 0), (1, 1)),    # 'valid'
    ((2, 3, 6, 5), (2, 3, 3, 2), (1, 2), (1, 0), (1, 1)),    # column stride 2, rows padded
    ((2, 2, 8, 8), (3, 2, 3, 3), (1, 1), (0, 3), (2, 1)),    # dilated rows, wide column padding
    ((2, 1, 1, 6), (2, 1, 3, 3), (1, 1), (2, 0), (1, 1)),    # taps whose rows are all padding
    ((2, 2, 4, 1), (3, 2, 3, 3), (1, 2), (1, 2), (1, 2)),    # taps whose columns are all padding
    ((5, 6, 14, 14), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1)),  # LeNet's second layer
    ((2, 3, 9, 9), (4, 3, 3, 3), (2, 2), (1, 1), (1, 1)),    # stride 2: two row phases
    ((2, 2, 11, 7), (3, 2, 3, 2), (3, 1), (2, 1), (2, 1)),   # stride 3, dilated, padded
    ((1, 2, 6, 6), (2, 2, 2, 2), (2, 2), (4, 0), (1, 1)),    # row phases starting in padding
]


@pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")
@pytest.mark.parametrize("xs,ws,S,P,D", SHIFT_CASES)
def test_blas_shifted_rows_im2col(xs, ws, S, P, D):
    """The two-step im2col (shifted rows in row-phase planes, then one copy per tap)
    gives the reference's forward, and the same gradients as the direct loops, which
    use no im2col at all."""
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    N, Cin, H, W = xs
    OH = (H + 2 * P[0] - D[0] * (ws[2] - 1) - 1) // S[0] + 1
    OW = (W + 2 * P[1] - D[1] * (ws[3] - 1) - 1) // S[1] + 1
    δ = rng.standard_normal((N, ws[0], OH, OW))
    grads = {}
    for path in ("blas", "blas-batch", "blas-rows", "direct"):
        with kernel_path(path):
            if path != "direct":
                nb, rows = kernels._blas_blocks(N, Cin * ws[2] * ws[3], OH, OW, 8, mg.get_num_threads())
                assert kernels._blas_shift_rows(xs, ws[2], ws[3], OH, OW, conv_dispatch.Geom(S, P, D, 1), rows) > 0
            ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
            poison_workspaces()
            y = F.conv2d(*ts, stride=S, padding=P, dilation=D)
            ref = conv2d_reference(x, w, b, S, (P[0], P[0], P[1], P[1]), D, 1)
            np.testing.assert_allclose(y.data, ref, rtol=1e-10, atol=1e-10)
            poison_workspaces()
            y.backward(δ)
            grads[path] = [t.grad for t in ts]
    for path in ("blas", "blas-batch", "blas-rows"):
        for a, r in zip(grads[path], grads["direct"]):
            np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")
def test_blas_path_skips_unneeded_gradients():
    """The fused kernel is told which gradients to form: LeNet's first layer (input without
    grad) gets no ∂L/∂x work, a frozen weight no ∂L/∂w work."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((4, 2, 3, 3))
    with kernel_path("blas"):
        for need in [(False, True, True), (True, False, False), (True, True, False)]:
            xt = mg.tensor(x, requires_grad=need[0])
            wt = mg.tensor(w, requires_grad=need[1])
            bt = mg.tensor(np.zeros(4), requires_grad=need[2])
            y = F.conv2d(xt, wt, bt, padding=1).sum()
            with kernels.trace() as calls:
                y.backward()
            passes = ("input_grad", "weight_grad", "bias_grad")
            assert [(c.which, c.path) for c in calls] == [(p, "blas") for p, n in zip(passes, need) if n]
            assert [t.grad is not None for t in (xt, wt, bt)] == list(need)


@pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("groups, K, Cg", [(1, 40, 37), (2, 6, 3), (3, 33, 11)])
@pytest.mark.parametrize("dw_rows_min_k", [10**9, 0])
def test_blas_backward_sums_thread_partials(threads, groups, K, Cg, dw_rows_min_k):
    """The 'blas' backward accumulates ∂L/∂wᵀ per thread, then sums the threads' partials
    and transposes them back in one tiled pass (ext/conv_im2col.pyx sum_transpose), or,
    for many output channels (blas_dw_rows_min_k), accumulates ∂L/∂w's own rows and sums
    them: either way, over thread counts, groups, and weights not a multiple of the
    32×32 tiles, the direct loops' gradients."""
    rng = np.random.default_rng(threads)
    x = rng.standard_normal((5, groups * Cg, 4, 5))
    w = rng.standard_normal((K, Cg, 3, 3))
    δ = rng.standard_normal((5, K, 4, 5))
    g = conv_dispatch.Geom((1, 1), (1, 1), (1, 1), groups)
    before = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        paths = kernels.Paths("blas", "blas", "blas")
        poison_workspaces()
        with kernels.use(None, blas_dw_rows_min_k=dw_rows_min_k):
            got = conv_dispatch.backward(x, x.shape, δ, w, g, True, True, True, paths)
        want = conv_dispatch.backward(x, x.shape, δ, w, g, True, True, True,
                                      kernels.Paths("direct", "direct", "direct"))
    finally:
        mg.set_num_threads(before)
    for a, r in zip(got, want):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("rows", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [100, 40000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_partials_summed_in_order_as_numpy_sums_them(rows, n, dtype):
    """The 'blas' backward's per-thread partial ∂L/∂w rows are summed on the threads (large
    rows) in order, acc[0] + acc[1] + …: NumPy's sum over axis 0, bit for bit, into a new
    array (acc is a reused workspace)."""
    acc = np.random.default_rng(rows).standard_normal((rows, n)).astype(dtype) * 1e3
    before = acc.copy()
    got = conv_dispatch._rows_summed(acc)
    np.testing.assert_array_equal(got, acc.sum(axis=0))
    np.testing.assert_array_equal(acc, before)
    assert not np.shares_memory(got, acc)


@pytest.mark.parametrize("xs, ws, padding", [
    ((3, 16, 15, 17), (8, 16, 3, 3), 1),        # ResNet-20-like, odd sizes
    ((2, 12, 14, 14), (20, 12, 3, 3), 0),       # no padding: δ padded by F−1 all round
    ((2, 8, 16, 18), (16, 8, 5, 5), 2),
    ((2, 9, 16, 15), (9, 9, 3, 3), "same"),
    ((2, 10, 14, 16), (6, 10, 2, 2), "same"),   # even kernel: the odd row of 'same'
    ((3, 6, 14, 14), (16, 6, 5, 5), 0),         # LeNet-5's second layer: 6 channels of ∂L/∂x
])
def test_input_grad_by_w16_matches_direct(xs, ws, padding):
    """∂L/∂x at stride 1 is the forward correlation of δ padded by F−1−P with the flipped,
    channel-swapped kernel; where C and K are small (5 ≤ C ≤ 32, K ≤ 32) and rows wide,
    the chooser runs it on w16's loops (ext/direct16.h): the same gradients as the direct
    loops' phase-by-phase ∂L/∂x."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    got = {}
    for path in (None, "direct"):
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        with kernels.use(path, w16_min_ow=1), kernels.trace() as calls:
            y = F.conv2d(xt, wt, padding=padding)
            g = np.cos(np.arange(y.numpy().size, dtype=np.float32)).reshape(y.shape)
            (y * mg.tensor(g)).sum().backward()
        got[path] = (xt.grad.numpy(), wt.grad.numpy())
        paths = {c.which: c.path for c in calls if c.op == "conv2d"}
        if path is None and kernels._SIMD_LEVEL > 0:
            assert paths["input_grad"] == "w16"
    for a, r in zip(got[None], got["direct"]):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


def test_w16_input_grad_takes_five_channels_and_more():
    """w16's ∂L/∂x from C = w16_min_k (5) output channels — LeNet-5's second layer, 6 — and
    not below it (C = 4 stays on blas), for w16's SIMD builds."""
    if kernels._SIMD_LEVEL == 0:
        pytest.skip("w16 needs AVX2 or AVX-512")
    assert kernels.choose((256, 6, 14, 14), (16, 6, 5, 5)).input_grad == "w16"
    assert kernels.choose((64, 5, 16, 16), (16, 5, 3, 3), padding=1).input_grad == "w16"
    assert kernels.choose((256, 4, 14, 14), (16, 4, 5, 5)).input_grad != "w16"
    with kernels.use(None, w16_min_k=7):
        assert kernels.choose((256, 6, 14, 14), (16, 6, 5, 5)).input_grad != "w16"


def test_fallback_without_openblas(monkeypatch):
    """Without a usable OpenBLAS next to NumPy, the default path is np.matmul's ('gemm'),
    with the same numbers."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 4, 9, 8)), rng.standard_normal((5, 4, 3, 2)), rng.standard_normal(5)
    ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
    monkeypatch.setattr(_blas, "_lib", None)
    assert not _blas.available()
    assert kernels.choose(x.shape, w.shape, stride=(2, 1), padding=1, dtype=x.dtype) == ("gemm",) * 3
    y = F.conv2d(*ts, stride=(2, 1), padding=1)
    y.backward(np.ones(y.shape))
    ref = conv2d_reference(x, w, b, (2, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(y.data, ref, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(ts[2].grad.data, np.full(5, y.shape[0] * y.shape[2] * y.shape[3]))


@pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")
def test_openblas_thread_count_restored():
    """The 'blas' kernels run OpenBLAS single-threaded only while they run, also when
    several Python threads overlap; NumPy's matmul keeps its thread count afterwards."""
    before = _blas._lib["get_threads"]()
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((4, 3, 10, 10)).astype(np.float32), rng.standard_normal((6, 3, 3, 3)).astype(np.float32)

    def run():
        with kernels.use("blas"):                  # (each thread chooses for itself)
            for _ in range(20):
                xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
                F.conv2d(xt, wt, padding=1).sum().backward()

    with kernel_path("blas"):
        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert _blas._lib["get_threads"]() == before and _blas._users == 0


@pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")
def test_blas_gemm_found_is_checked():
    """The GEMM the kernels call is NumPy's OpenBLAS, verified against NumPy at load."""
    assert "openblas" in _blas.info().lower()
    for dt in (np.float32, np.float64):
        addr, ilp64 = _blas.gemm(dt)
        assert isinstance(addr, int) and addr != 0 and isinstance(ilp64, bool)
    assert _blas._candidate_paths()


@pytest.mark.parametrize("path", PATHS)
def test_inputs_and_delta_not_mutated(path):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 2, 6, 5)), rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2)
    δ = rng.standard_normal((2, 2, 3, 3))
    copies = [a.copy() for a in (x, w, b, δ)]
    ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
    with kernel_path(path):
        y = F.conv2d(*ts, stride=2, padding=1, groups=2)
        y.backward(δ)
        t = F.conv_transpose2d(*ts[:2], stride=2, groups=2)
        t.backward(np.ones(t.shape))
    for t_, c in zip(ts, copies):
        np.testing.assert_array_equal(t_.data, c)
    np.testing.assert_array_equal(δ, copies[3])
    gx, gw, gb = (t_.grad.data for t_ in ts)
    assert not np.shares_memory(gx, gw) and not np.shares_memory(gw, gb)


# ---- conv_transpose2d ----------------------------------------------------------------

@st.composite
def transpose_cases(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    Cig, Cog = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    D = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    OP = (draw(st.integers(0, max(S[0], D[0]) - 1)), draw(st.integers(0, max(S[1], D[1]) - 1)))
    H, W = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    # padding small enough that the output is non-empty
    Pmax = [((n - 1) * s + d * (k - 1) + op) // 2
            for n, s, d, k, op in ((H, S[0], D[0], kh, OP[0]), (W, S[1], D[1], kw, OP[1]))]
    P = (draw(st.integers(0, min(2, Pmax[0]))), draw(st.integers(0, min(2, Pmax[1]))))
    return dict(N=draw(st.integers(1, 2)), G=G, Cig=Cig, Cog=Cog, kh=kh, kw=kw, S=S, D=D,
                OP=OP, P=P, H=H, W=W, bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


def transpose_arrays(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["G"] * case["Cig"], case["H"], case["W"]))
    w = rng.standard_normal((case["G"] * case["Cig"], case["Cog"], case["kh"], case["kw"]))
    b = rng.standard_normal(case["G"] * case["Cog"]) if case["bias"] else None
    return x, w, b


def call_t(case, x, w, b):
    return F.conv_transpose2d(x, w, b, stride=case["S"], padding=case["P"],
                              output_padding=case["OP"], groups=case["G"], dilation=case["D"])


@pytest.mark.parametrize("path", PATHS)
@given(case=transpose_cases())
def test_conv_transpose_matches_reference(path, case):
    x, w, b = transpose_arrays(case)
    with kernel_path(path):
        y = call_t(case, mg.tensor(x), mg.tensor(w), None if b is None else mg.tensor(b))
    ref = conv_transpose2d_reference(x, w, b, case["S"], case["P"], case["OP"], case["G"], case["D"])
    assert y.shape == ref.shape
    np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("path", PATHS)
@given(case=transpose_cases())
def test_conv_transpose_gradcheck(path, case):
    x, w, b = transpose_arrays(case)
    inputs = [mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)]
    if b is not None:
        inputs.append(mg.tensor(b, requires_grad=True))
    with kernel_path(path):
        assert mg.gradcheck(lambda *t: call_t(case, t[0], t[1], t[2] if len(t) > 2 else None), inputs)


@pytest.mark.parametrize("path", PATHS)
@given(case=conv_cases())
def test_conv_transpose_is_the_adjoint_of_conv(path, case):
    """⟨conv2d(x, w), u⟩ = ⟨x, conv_transpose2d(u, w)⟩ when the output size is pinned."""
    if case["padding"] in ("same", "valid") or case["G"] * case["Kg"] == 0:
        return
    x, w, _ = arrays(case)
    with kernel_path(path):
        y = call(case, mg.tensor(x), mg.tensor(w), None)
        u = np.random.default_rng(case["seed"] + 7).standard_normal(y.shape)
        H, W = x.shape[2:]
        base = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                ((y.shape[2], case["S"][0], case["padding"][0], case["D"][0], case["kh"]),
                 (y.shape[3], case["S"][1], case["padding"][1], case["D"][1], case["kw"]))]
        op = (H - base[0], W - base[1])
        if not all(0 <= o < max(s, d) for o, s, d in zip(op, case["S"], case["D"])):
            return
        t = F.conv_transpose2d(mg.tensor(u), mg.tensor(w), stride=case["S"], padding=case["padding"],
                               output_padding=op, groups=case["G"], dilation=case["D"])
    assert t.shape == x.shape
    np.testing.assert_allclose(np.vdot(y.data, u), np.vdot(x, t.data), rtol=1e-10)


# ---- validation ------------------------------------------------------------------------

X = np.zeros((2, 4, 8, 8))
Wt = np.zeros((6, 2, 3, 3))

BAD_CONV = [
    (dict(x=np.zeros((4, 8))), ValueError, "input"),
    (dict(x=np.zeros((1, 1, 4, 8, 8))), ValueError, "input"),
    (dict(w=np.zeros((6, 2, 3))), ValueError, "weight"),
    (dict(w=np.zeros((6, 3, 3, 3))), ValueError, "channels"),        # C mismatch
    (dict(groups=3), ValueError, "groups"),                          # 3 ∤ 4
    (dict(w=np.zeros((5, 2, 3, 3))), ValueError, "groups"),          # 2 ∤ 5
    (dict(groups=0), ValueError, "groups"),
    (dict(groups=2.0), TypeError, "groups"),
    (dict(b=np.zeros(5)), ValueError, "bias"),
    (dict(b=np.zeros((6, 1))), ValueError, "bias"),
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=(1, -1)), ValueError, "stride"),
    (dict(stride=1.0), TypeError, "stride"),
    (dict(stride=True), TypeError, "stride"),
    (dict(stride=(1, 2, 3)), ValueError, "stride"),
    (dict(dilation=0), ValueError, "dilation"),
    (dict(dilation="2"), TypeError, "dilation"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding=(0, -2)), ValueError, "padding"),
    (dict(padding="full"), ValueError, "padding"),
    (dict(padding=0.5), TypeError, "padding"),
    (dict(w=np.zeros((6, 2, 9, 3))), ValueError, "larger than the padded input"),
    (dict(w=np.zeros((6, 2, 3, 3)), dilation=(1, 4)), ValueError, "larger than the padded input"),
    (dict(w=np.zeros((6, 2, 9, 3)), padding="valid"), ValueError, "larger than the padded input"),
    (dict(w=np.zeros((0, 2, 3, 3))), ValueError, "weight"),
    (dict(x=np.zeros((2, 4, 0, 8))), ValueError, "input"),
    (dict(x=np.zeros((2, 4, 8, 8), np.int64)), TypeError, "input"),
    (dict(x=np.zeros((2, 4, 8, 8), object)), TypeError, "input"),
    (dict(b=np.zeros(6, np.int32)), TypeError, "bias"),
]


@pytest.mark.parametrize("kwargs, exc, words", BAD_CONV)
def test_conv2d_rejects_bad_arguments(kwargs, exc, words):
    args = dict(x=X, w=Wt, b=None, stride=1, padding=0, dilation=1, groups=2)
    args.update(kwargs)
    with kernels.trace() as calls, pytest.raises(exc, match=words) as info:
        F.conv2d(args["x"], args["w"], args["b"], stride=args["stride"], padding=args["padding"],
                 dilation=args["dilation"], groups=args["groups"])
    assert "conv2d()" in str(info.value)
    assert not calls, "a kernel ran before validation finished"


XT = np.zeros((2, 4, 5, 5))
WT = np.zeros((4, 3, 3, 3))

BAD_TRANSPOSE = [
    (dict(x=np.zeros((2, 3, 5, 5))), ValueError, "channels"),
    (dict(x=np.zeros((5, 5))), ValueError, "input"),
    (dict(w=np.zeros((4, 3, 3))), ValueError, "weight"),
    (dict(groups=3), ValueError, "groups"),
    (dict(b=np.zeros(4)), ValueError, "bias"),
    (dict(stride=0), ValueError, "stride"),
    (dict(dilation=(0, 1)), ValueError, "dilation"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding="same"), ValueError, "padding"),
    (dict(padding=4), ValueError, "too large"),
    (dict(output_padding=1), ValueError, "output_padding"),              # stride 1, dilation 1
    (dict(output_padding=2, stride=2), ValueError, "output_padding"),
    (dict(output_padding=-1, stride=2), ValueError, "output_padding"),
    (dict(stride=2.5), TypeError, "stride"),
    (dict(x=np.zeros((2, 4, 5, 5), np.int8)), TypeError, "input"),
]


@pytest.mark.parametrize("kwargs, exc, words", BAD_TRANSPOSE)
def test_conv_transpose2d_rejects_bad_arguments(kwargs, exc, words):
    args = dict(x=XT, w=WT, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1)
    args.update(kwargs)
    with kernels.trace() as calls, pytest.raises(exc, match=words) as info:
        F.conv_transpose2d(args["x"], args["w"], args["b"], stride=args["stride"],
                           padding=args["padding"], output_padding=args["output_padding"],
                           groups=args["groups"], dilation=args["dilation"])
    assert "conv_transpose2d()" in str(info.value)
    assert not calls, "a kernel ran before validation finished"


def test_error_message_names_the_shapes():
    with pytest.raises(ValueError) as info:
        F.conv2d(np.zeros((2, 3, 8, 8)), np.zeros((6, 2, 3, 3)))
    assert "(2, 3, 8, 8)" in str(info.value) and "(6, 2, 3, 3)" in str(info.value)


# ---- concurrency ---------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
def test_threads_get_the_serial_results(path):
    """Kernels keep no global state; the im2col workspace is per Python thread, and so is
    the kernels.use() in effect: each worker enters it."""
    rng = np.random.default_rng(9)
    shapes = [((3, 4, 9, 7), (6, 2, 3, 3), 2), ((2, 3, 12, 10), (5, 3, 5, 4), 1),
              ((4, 2, 6, 6), (2, 1, 2, 2), 2), ((1, 6, 10, 11), (6, 1, 3, 3), 6)]
    data = [(rng.standard_normal(xs), rng.standard_normal(ws), g) for xs, ws, g in shapes]

    def run(i):
        x, w, g = data[i % len(data)]
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=(1, 2), padding=1, groups=g)
        (y * y).sum().backward()
        return y.data, xt.grad.data, wt.grad.data

    with kernel_path(path):
        serial = [run(i) for i in range(8)]
        results = [None] * 8

        def worker(i):
            with kernels.use(path.split("-")[0], **TUNING.get(path, {})):   # per thread
                for _ in range(5):
                    results[i] = run(i)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for a, b in zip(serial, results):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


# ---- nn layers -----------------------------------------------------------------------

def test_conv2d_layer_init_shapes_and_repr():
    mg.manual_seed(0)
    m = nn.Conv2d(3, 8, 5, stride=2, padding="same")
    assert m.weight.shape == (8, 3, 5, 5) and m.bias.shape == (8,)
    assert m.weight.dtype == np.float32 and m.weight.requires_grad
    bound = 1 / np.sqrt(3 * 25)
    assert np.abs(m.weight.data).max() <= bound and np.abs(m.bias.data).max() <= bound
    assert np.abs(m.weight.data).max() > 0.9 * bound           # uniform over the whole range
    assert abs(m.weight.data.std() - bound / np.sqrt(3)) < 0.1 * bound
    assert m(mg.randn(1, 3, 32, 32)).shape == (1, 8, 16, 16)
    mg.manual_seed(0)
    m2 = nn.Conv2d(3, 8, 5, stride=2, padding="same")
    np.testing.assert_array_equal(m.weight.data, m2.weight.data)
    assert repr(m) == "Conv2d(3, 8, kernel_size=(5, 5), stride=(2, 2), padding=same)"
    assert repr(nn.Conv2d(1, 6, 5, padding=2)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    assert (repr(nn.Conv2d(4, 4, (3, 1), dilation=2, groups=4, bias=False))
            == "Conv2d(4, 4, kernel_size=(3, 1), stride=(1, 1), dilation=(2, 2), groups=4, bias=False)")
    assert [n for n, _ in nn.Conv2d(2, 2, 1).named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in nn.Conv2d(2, 2, 1, bias=False).named_parameters()] == ["weight"]


def test_conv_layers_train_like_the_functional_form():
    mg.manual_seed(1)
    m = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, groups=2)
    x = mg.randn(2, 4, 7, 6)
    y = m(x)
    np.testing.assert_array_equal(
        y.data, F.conv2d(x, m.weight, m.bias, (2, 1), 1, 1, 2).data)
    y.sum().backward()
    assert m.weight.grad.shape == m.weight.shape and m.bias.grad.shape == (6,)
    np.testing.assert_allclose(m.bias.grad.data, np.full(6, y.shape[0] * y.shape[2] * y.shape[3]))


def test_conv_transpose_layer():
    mg.manual_seed(2)
    t = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert t.weight.shape == (4, 3, 3, 3) and t.bias.shape == (6,)
    bound = 1 / np.sqrt(3 * 9)                                 # fan_in = weight.shape[1]·kh·kw
    assert np.abs(t.weight.data).max() <= bound and np.abs(t.weight.data).max() > 0.8 * bound
    assert (repr(t) == "ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), "
                       "output_padding=(1, 1), groups=2)")
    x = mg.randn(2, 4, 5, 5)
    assert t(x).shape == (2, 6, 10, 10)
    t0 = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert t0(x, output_size=(10, 10)).shape == (2, 6, 10, 10)
    assert t0(x, output_size=(2, 6, 9, 9)).shape == (2, 6, 9, 9)
    with pytest.raises(ValueError, match="output size"):
        t0(x, output_size=(12, 12))


@pytest.mark.parametrize("bad, exc", [
    (dict(in_channels=0), ValueError), (dict(in_channels=3, groups=2), ValueError),
    (dict(out_channels=5, groups=2), ValueError), (dict(kernel_size=0), ValueError),
    (dict(kernel_size=2.0), TypeError), (dict(stride=0), ValueError),
    (dict(padding="full"), ValueError), (dict(padding=-1), ValueError),
    (dict(dilation=(1, 0)), ValueError), (dict(groups=True), TypeError),
])
def test_layer_rejects_bad_arguments(bad, exc):
    args = dict(in_channels=4, out_channels=6, kernel_size=3)
    args.update(bad)
    with pytest.raises(exc):
        nn.Conv2d(**args)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("H, W, kh, kw, P, D", [
    (14, 14, 3, 3, (1, 1), (1, 1)),      # 'same': output rows as wide as input rows
    (7, 5, 5, 3, (2, 1), (1, 1)),
    (6, 4, 3, 3, (2, 2), (2, 2)),        # dilated 'same'
    (3, 4, 5, 3, (4, 2), (2, 2)),        # taps whose rows lie wholly in the padding
    (1, 3, 3, 1, (2, 0), (2, 1)),        # every row of an outer tap in the padding
    (5, 6, 1, 1, (0, 0), (1, 1)),        # 1×1: no padding at all
    (3, 40, 3, 3, (1, 1), (1, 1)),       # rows wider than the memcpy-per-tap limit
])
def test_same_width_stride1_im2col(path, H, W, kh, kw, P, D):
    """Stride 1 with OW = W (≤ 32): the im2col block copies each tap's rows with one
    memcpy and zeroes the padding columns afterwards (wider rows: row by row); checked against the reference for whole-sample,
    one-row and several-sample blocks, forward and gradients."""
    rng = np.random.default_rng(11)
    x, w, b = (rng.standard_normal((3, 2, H, W)), rng.standard_normal((4, 2, kh, kw)),
               rng.standard_normal(4))
    ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
    f = lambda a, c, d: F.conv2d(a, c, d, padding=P, dilation=D)  # noqa: E731
    with kernel_path(path):
        y = f(*ts)
        assert y.shape[3] == W
        ref = conv2d_reference(x, w, b, (1, 1), (P[0], P[0], P[1], P[1]), D, 1)
        np.testing.assert_allclose(y.data, ref, rtol=1e-12, atol=1e-12)
        assert mg.gradcheck(f, ts)


@pytest.mark.parametrize("L", [1, 7, 8, 9, 15, 16, 17, 100, 1024])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_sums_are_the_double_sums_rounded_once(L, dtype):
    """∂L/∂b by ext/_sums.pxi's eight-way double sums (the 'hwnc', Winograd, k32, w16 and
    depthwise paths), over plane lengths around the eight lanes and their tail: float32
    within a unit in the last place of the exact sum (double holds it almost exactly);
    float64 within double's error bound for a sum of that many terms."""
    import math
    rng = np.random.default_rng(L)
    δ = (rng.standard_normal((3, 5, L)) * 10.0 ** rng.integers(-3, 4, (3, 5, L))).astype(dtype)
    got = conv_dispatch._bias_sums(δ.reshape(3, 5, L, 1))
    exact = [math.fsum(δ[:, k].ravel().astype(np.float64)) for k in range(5)]
    if dtype == np.float32:
        np.testing.assert_array_max_ulp(got, np.array(exact, np.float32), maxulp=1)
    else:
        bound = 3 * L * np.finfo(np.float64).eps * np.abs(δ).sum(axis=(0, 2))
        assert np.all(np.abs(got - exact) <= bound), (got - exact, bound)


def test_pointwise_bias_gradient_sums_every_sample():
    """The 1×1 path's ∂L/∂b (its per-sample eight-way sums, added over the samples) and the
    batched form's, against the exact sums."""
    import math
    rng = np.random.default_rng(3)
    for shape in ((3, 16, 9, 9), (40, 24, 2, 2)):          # per sample; batched (small planes)
        x = mg.tensor(rng.standard_normal(shape).astype(np.float32))
        w = mg.tensor(rng.standard_normal((7, shape[1], 1, 1)).astype(np.float32))
        b = mg.tensor(np.zeros(7, np.float32), requires_grad=True)
        δ = rng.standard_normal((shape[0], 7) + shape[2:]).astype(np.float32)
        with kernels.trace() as calls:
            F.conv2d(x, w, b).backward(mg.tensor(δ))
        assert {c.path for c in calls if c.which == "bias_grad"} == {"pointwise"}
        want = [math.fsum(δ[:, k].ravel().astype(np.float64)) for k in range(7)]
        np.testing.assert_allclose(b.grad.numpy(), want, rtol=1e-6, atol=1e-6)
