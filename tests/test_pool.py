"""Pooling: max, average, adaptive and global average pooling (issue 4).

Forward values (and max pooling's indices) are checked against naive loop references
written below straight from the formulas in minigrad/ops/pool.py's docstring; gradients
against central finite differences in float64 (mg.gradcheck) and against the naive
scatter of δ. Max-pool inputs for gradcheck have no ties (a scaled random permutation):
a tie has no derivative.
"""
import os
import sys
import threading

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import kernels
from minigrad.ops.pool import pool_geometry

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402


# ---- naive references ----------------------------------------------------------------------

def axis_geometry(n, k, s, p, d, ceil_mode):
    """(number of windows, padding before) along one axis."""
    span = d * (k - 1) + 1
    if p == "same":                                   # Keras/TensorFlow
        out = -(-n // s)
        return out, max((out - 1) * s + span - n, 0) // 2
    p = 0 if p == "valid" else p
    if ceil_mode:
        out = -(-(n + 2 * p - span) // s) + 1
        if (out - 1) * s >= n + p:                    # would start in the bottom padding
            out -= 1
    else:
        out = (n + 2 * p - span) // s + 1
    return out, p


def naive_max_pool(x, k, s, p, d, ceil_mode):
    """y and the flat winner index (−1: no real element) by explicit loops."""
    N, C, H, W = x.shape
    OH, pt = axis_geometry(H, k[0], s[0], p[0], d[0], ceil_mode)
    OW, pl = axis_geometry(W, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.full((N, C, OH, OW), -np.inf, x.dtype)
    idx = np.full((N, C, OH, OW), -1, np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    best, arg = -np.inf, -1
                    for a in range(k[0]):
                        h = i * s[0] - pt + a * d[0]
                        for b in range(k[1]):
                            w = j * s[1] - pl + b * d[1]
                            if not (0 <= h < H and 0 <= w < W):
                                continue                      # −inf padding never wins
                            v = x[n, c, h, w]
                            if arg == -1:
                                arg = h * W + w               # the first real element
                            if v > best or np.isnan(v):
                                best, arg = v, h * W + w
                    y[n, c, i, j], idx[n, c, i, j] = best, arg
    return y, idx


def naive_max_pool_backward(dy, idx, x_shape):
    dx = np.zeros(x_shape, dy.dtype)
    N, C, H, W = x_shape
    for n, c, i, j in np.ndindex(*dy.shape):
        if idx[n, c, i, j] >= 0:
            dx[n, c, idx[n, c, i, j] // W, idx[n, c, i, j] % W] += dy[n, c, i, j]
    return dx


def avg_windows(H, W, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """[(i, j, rows slice, cols slice, divisor)] following the module docstring's rules."""
    OH, pt = axis_geometry(H, k[0], s[0], p[0], 1, ceil_mode)
    OW, pl = axis_geometry(W, k[1], s[1], p[1], 1, ceil_mode)
    out = []
    for i in range(OH):
        h0 = i * s[0] - pt
        h1 = min(h0 + k[0], H + pt)                   # end within the padded input
        for j in range(OW):
            w0 = j * s[1] - pl
            w1 = min(w0 + k[1], W + pl)
            rows, cols = slice(max(h0, 0), min(h1, H)), slice(max(w0, 0), min(w1, W))
            real = (rows.stop - rows.start) * (cols.stop - cols.start)
            if divisor_override is not None:
                div = divisor_override
            elif count_include_pad and p[0] != "same":
                div = (h1 - h0) * (w1 - w0)
            else:
                div = real
            out.append((i, j, rows, cols, div))
    return (OH, OW), out


def naive_avg_pool(x, k, s, p, ceil_mode=False, count_include_pad=True, divisor_override=None):
    N, C, H, W = x.shape
    (OH, OW), wins = avg_windows(H, W, k, s, p, ceil_mode, count_include_pad, divisor_override)
    y = np.zeros((N, C, OH, OW), x.dtype)
    for i, j, rows, cols, div in wins:
        y[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / div
    return y


def naive_avg_pool_backward(dy, x_shape, k, s, p, ceil_mode=False, count_include_pad=True,
                            divisor_override=None):
    dx = np.zeros(x_shape, dy.dtype)
    _, wins = avg_windows(x_shape[2], x_shape[3], k, s, p, ceil_mode, count_include_pad,
                          divisor_override)
    for i, j, rows, cols, div in wins:
        dx[:, :, rows, cols] += (dy[:, :, i, j] / div)[:, :, None, None]
    return dx


def naive_adaptive_avg_pool(x, out):
    N, C, H, W = x.shape
    y = np.zeros((N, C) + out, x.dtype)
    for i in range(out[0]):
        h0, h1 = (i * H) // out[0], -(-((i + 1) * H) // out[0])
        for j in range(out[1]):
            w0, w1 = (j * W) // out[1], -(-((j + 1) * W) // out[1])
            y[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
    return y


# ---- strategies ------------------------------------------------------------------------------

def layout(a, kind):
    """The same values in another memory layout: C, Fortran, negative strides, a strided slice."""
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "reversed":
        return a[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]
    if kind == "strided":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    return a


@st.composite
def pool_config(draw, dilation=True, strings=True, min_batch=0):
    """Kernel, stride, padding, dilation, ceil_mode and an input shape that gives ≥ 1 window."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    if strings and draw(st.integers(0, 4)) == 0:
        p = (draw(st.sampled_from(["same", "valid"])),) * 2
    else:
        p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    shape = [draw(st.integers(min_batch, 2)), draw(st.integers(1, 3))]
    for a in range(2):
        pa = 0 if isinstance(p[a], str) else p[a]
        span = d[a] * (k[a] - 1) + 1
        shape.append(draw(st.integers(max(1, span - 2 * pa), span + 6)))
    for a in range(2):
        assume(axis_geometry(shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode)[0] >= 1)
    return tuple(shape), k, s, (p[0] if isinstance(p[0], str) else p), d, ceil_mode


def untied(shape, rng, dtype=np.float64):
    """Distinct values 0.1 apart, in random order: finite differences see no ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.1 - 0.05 * n).astype(dtype)


def pad_pair(p):
    return (p, p) if isinstance(p, str) else p


# ---- max pooling ----------------------------------------------------------------------------

@pytest.mark.parametrize("path", [None, "direct", "taps", "3x3"])
@given(cfg=pool_config(), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]),
       kind=st.sampled_from(["c", "fortran", "reversed", "strided"]), ties=st.booleans())
def test_max_pool_matches_naive(path, cfg, seed, dtype, kind, ties):
    """Each forward kernel (the default choice, the table walk, the tap table) against the
    naive loops."""
    shape, k, s, p, d, ceil_mode = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if ties:
        x = np.round(x)                                  # many equal values: the first must win
    xt = mg.tensor(layout(x, kind), requires_grad=True)
    with kernels.use(path), kernels.trace() as calls:
        y, idx = F.max_pool2d(xt, k, s, p, d, ceil_mode, return_indices=True)
    if path == "taps":                                   # unless a window has no real input
        g = pool_geometry("max_pool2d", x, k, s, p, d, ceil_mode)
        assert calls[0].path == "taps" or g.window_taps == 0
    y_ref, idx_ref = naive_max_pool(x, k, s, pad_pair(p), d, ceil_mode)
    assert y.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(idx.data, idx_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(dy)
    np.testing.assert_allclose(xt.grad.data, naive_max_pool_backward(dy, idx_ref, shape),
                               rtol=1e-6, atol=1e-6)


@given(cfg=pool_config(min_batch=1), seed=st.integers(0, 2**32 - 1))
def test_max_pool_gradcheck(cfg, seed):
    shape, k, s, p, d, ceil_mode = cfg
    x = mg.tensor(untied(shape, np.random.default_rng(seed)), requires_grad=True)
    # a window of padding only (possible with dilation) outputs −inf: no finite difference
    assume((naive_max_pool(x.data, k, s, pad_pair(p), d, ceil_mode)[1] >= 0).all())
    assert mg.gradcheck(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode), [x])


# ---- average pooling ------------------------------------------------------------------------

@given(cfg=pool_config(dilation=False), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]), count_include_pad=st.booleans(),
       divisor_override=st.sampled_from([None, None, 1, 3, -2]),
       kind=st.sampled_from(["c", "fortran", "reversed", "strided"]))
def test_avg_pool_matches_naive(cfg, seed, dtype, count_include_pad, divisor_override, kind):
    shape, k, s, p, _, ceil_mode = cfg
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    xt = mg.tensor(layout(x, kind), requires_grad=True)
    y = F.avg_pool2d(xt, k, s, p, ceil_mode, count_include_pad, divisor_override)
    args = (k, s, pad_pair(p), ceil_mode, count_include_pad, divisor_override)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, naive_avg_pool(x, *args), rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(dy)
    np.testing.assert_allclose(xt.grad.data, naive_avg_pool_backward(dy, shape, *args),
                               rtol=tol, atol=tol)


@given(cfg=pool_config(dilation=False, min_batch=1), seed=st.integers(0, 2**32 - 1),
       count_include_pad=st.booleans(), divisor_override=st.sampled_from([None, None, 3]))
def test_avg_pool_gradcheck(cfg, seed, count_include_pad, divisor_override):
    shape, k, s, p, _, ceil_mode = cfg
    x = mg.tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)
    assert mg.gradcheck(lambda t: F.avg_pool2d(t, k, s, p, ceil_mode, count_include_pad,
                                               divisor_override), [x])


# ---- adaptive and global average pooling ----------------------------------------------------

@given(H=st.integers(1, 9), W=st.integers(1, 9), oh=st.integers(1, 10),
       ow=st.one_of(st.none(), st.integers(1, 10)), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_adaptive_avg_pool_matches_naive_and_gradcheck(H, W, oh, ow, seed, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, H, W)).astype(dtype)
    xt = mg.tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(xt, (oh, ow))
    out = (oh, W if ow is None else ow)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data, naive_adaptive_avg_pool(x, out), rtol=tol, atol=tol)
    x64 = mg.tensor(x.astype(np.float64)[:1, :2], requires_grad=True)
    assert mg.gradcheck(lambda t: F.adaptive_avg_pool2d(t, (oh, ow)), [x64])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw, out", [((1, 1), (7, 7)), ((1, 3), (5, 6)), ((2, 2), (4, 4)),
                                     ((2, 2), (7, 7)), ((3, 1), (7, 2))])
def test_adaptive_avg_pool_to_a_larger_plane(hw, out, dtype, rng):
    """VGG's 1×1 → 7×7 on small images: enough planes for the threads; where every window
    is one input (the first three) the loop without window sums gives (0 + x) / 1: x
    itself, a −0 turned +0 as the sums do; overlapping windows (2×2 → 7×7) the sums."""
    x = rng.standard_normal((32, 64) + hw).astype(dtype)
    x[0, 0] = -0.0
    xt = mg.tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(xt, out)
    expected = naive_adaptive_avg_pool(x, out)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol)
    if out[0] % hw[0] == 0 and out[1] % hw[1] == 0:           # one input per window
        np.testing.assert_array_equal(y.data, expected)
        assert not np.signbit(y.data[0, 0]).any()
    dy = rng.standard_normal(y.shape).astype(dtype)
    y.backward(dy)
    # each input gathers up to 49 terms: float32 rounding of such a sum, against float64
    terms = (out[0] + 1) * (out[1] + 1)
    bound = terms * np.finfo(dtype).eps * ref.adaptive_avg_pool2d_vjp(np.abs(dy), x.shape, out)
    assert np.all(np.abs(xt.grad.data - ref.adaptive_avg_pool2d_vjp(dy, x.shape, out)) <= bound + 1e-30)
    if out[0] % hw[0] == 0 and out[1] % hw[1] == 0:
        # the kernel sums each input's windows in a register: the same additions, in the
        # same order (rows, then columns), as the general loop's += in x's dtype
        dx = np.zeros_like(x)
        for i in range(out[0]):
            for j in range(out[1]):
                dx[:, :, i * hw[0] // out[0], j * hw[1] // out[1]] += dy[:, :, i, j] / dtype(1)
        np.testing.assert_array_equal(xt.grad.data, dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (3, 4, 1, 1), (2, 3, 3, 9), (4, 3, 4, 4)])
def test_global_avg_pool(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    xt = mg.tensor(x, requires_grad=True)
    y = F.global_avg_pool2d(xt)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(y.data, x.mean(axis=(2, 3), keepdims=True), rtol=tol, atol=tol)
    np.testing.assert_array_equal(F.adaptive_avg_pool2d(xt, 1).data, y.data)
    assert F.global_avg_pool2d(xt, keepdim=False).shape == shape[:2]
    y.backward(np.ones(y.shape, dtype))
    np.testing.assert_allclose(xt.grad.data, np.full(shape, 1 / (shape[2] * shape[3])), rtol=tol)
    assert mg.gradcheck(F.global_avg_pool2d, [mg.tensor(x[:2, :2].astype(np.float64),
                                                        requires_grad=True)])


# ---- worked examples and semantics ----------------------------------------------------------

NOTES_4x4 = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], np.float32)


def test_notes_example():
    """Seed 001/004's 4×4 example, 2×2 windows, stride 2."""
    x = mg.tensor(NOTES_4x4[None, None], requires_grad=True)
    np.testing.assert_array_equal(F.max_pool2d(x, 2).data[0, 0], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2).data[0, 0], [[3.25, 5.25], [2, 2]])
    # upsample(δ): each δ lands on its window's maximum
    F.max_pool2d(x, 2).backward(np.array([[[[10, 20], [30, 40]]]], np.float32))
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0, 0, 0, 0], [0, 10, 0, 20],
                                                      [30, 0, 0, 0], [0, 0, 0, 40]])
    # average: δ/(m·n) over each window
    x.grad = None
    F.avg_pool2d(x, 2).backward(np.array([[[[4, 8], [12, 16]]]], np.float32))
    np.testing.assert_array_equal(x.grad.data[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2],
                                                      [3, 3, 4, 4], [3, 3, 4, 4]])


@pytest.mark.parametrize("k, s, p, d, ceil_mode", [
    (3, 1, 1, 1, False),        # GoogLeNet's branch pool: whole windows between the edges
    (3, 2, 0, 1, True),         # its stage pool: the last window cut by the ceil mode
    ((2, 3), (1, 2), (1, 1), (1, 2), False),
    (5, 3, 2, 1, False),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["direct", "taps"])
@pytest.mark.parametrize("shape", [(2, 3, 9, 150), (3, 7, 4, 4), (5, 9, 2, 3), (2, 40, 6, 5)])
def test_max_pool_runs_of_whole_windows_match_naive(k, s, p, d, ceil_mode, dtype, path, shape):
    """Wide rows (150 columns) of whole windows and the cut windows at their ends, and small
    planes that the tap table takes in groups (P = N·C not a multiple of the group): the
    naive loops' values and indices, on both forward kernels, with ties, NaNs (the last
    NaN of a window wins) and −inf."""
    rng = np.random.default_rng(7)
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)
    x[rng.random(x.shape) < 0.03] = np.nan
    x[rng.random(x.shape) < 0.03] = -np.inf
    xt = mg.tensor(x, requires_grad=True)
    with kernels.use(path), kernels.trace() as calls:
        y, idx = F.max_pool2d(xt, k, s, p, d, ceil_mode, return_indices=True)
    assert calls[0].path == path
    kk, ss, pp, dd = (a if isinstance(a, tuple) else (a, a) for a in (k, s, p, d))
    y_ref, idx_ref = naive_max_pool(x, kk, ss, pp, dd, ceil_mode)
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(idx.data, idx_ref)


def test_ties_go_to_the_first_in_scan_order():
    x = mg.tensor(np.array([[[[1, 3, 3, 0], [3, 2, 0, 0], [5, 5, 0, 0], [5, 5, 0, 0]]]],
                           np.float32), requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx.data[0, 0], [[1, 2], [8, 10]])
    y.backward(np.ones(y.shape, np.float32))
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0, 1, 1, 0], [0, 0, 0, 0],
                                                      [1, 0, 1, 0], [0, 0, 0, 0]])


def test_nan_wins_its_window():
    a = np.array([[1, np.nan, 7, 2], [9, 3, 4, 5], [np.nan, 0, 1, 1], [2, np.nan, 1, 1]])
    x = mg.tensor(a[None, None], requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(y.data[0, 0, 0, 0]) and np.isnan(y.data[0, 0, 1, 0])
    np.testing.assert_array_equal(y.data[0, 0, :, 1], [7, 1])
    assert idx.data[0, 0, 0, 0] == 1
    assert idx.data[0, 0, 1, 0] == 13                 # two NaNs: the last one, as PyTorch
    y.backward(np.ones(y.shape))
    assert x.grad.data[0, 0, 0, 1] == 1 and x.grad.data[0, 0, 3, 1] == 1
    assert x.grad.data[0, 0, 1, 0] == 0 and x.grad.data[0, 0, 2, 0] == 0
    # average pooling propagates NaN as IEEE arithmetic says
    assert np.isnan(F.avg_pool2d(x, 2).data[0, 0, 0, 0])


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (3, 2, 1), (3, 1, 0)])
def test_minus_inf_inputs(kernel, stride, padding):
    a = np.full((1, 1, 5, 6), -np.inf)
    a[0, 0, 4, 5] = 2.0
    x = mg.tensor(a, requires_grad=True)
    y, idx = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
    y_ref, idx_ref = naive_max_pool(a, (kernel,) * 2, (stride,) * 2, (padding,) * 2, (1, 1), False)
    np.testing.assert_array_equal(y.data, y_ref)
    np.testing.assert_array_equal(idx.data, idx_ref)
    assert (idx.data >= 0).all()                       # an all −inf window still names an input
    y.backward(np.ones(y.shape))
    assert np.isfinite(x.grad.data).all() and x.grad.data.sum() == y.data.size


def test_window_with_no_real_element():
    """Dilation can place every tap of a window in the padding: −inf, index −1, no gradient."""
    x = mg.tensor(np.arange(2.0).reshape(1, 1, 1, 2), requires_grad=True)
    y, idx = F.max_pool2d(x, (1, 2), 1, (0, 1), (1, 3), return_indices=True)
    # one window; its column taps −1 and 2 both fall in the padding of a 2-wide input
    np.testing.assert_array_equal(y.data[0, 0, 0], [-np.inf])
    np.testing.assert_array_equal(idx.data[0, 0, 0], [-1])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros((1, 1, 1, 2)))


def test_overlapping_windows_accumulate():
    """3×3 windows at stride 2 share a row and a column: a shared winner gets every δ."""
    a = np.zeros((1, 1, 5, 5))
    a[0, 0, 2, 2] = 10.0                               # inside all four windows
    x = mg.tensor(a, requires_grad=True)
    y = F.max_pool2d(x, 3, 2)
    np.testing.assert_array_equal(y.data[0, 0], [[10, 10], [10, 10]])
    y.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert x.grad.data[0, 0, 2, 2] == 10.0 and x.grad.data.sum() == 10.0
    x.grad = None
    F.avg_pool2d(x, 3, 2).backward(np.full((1, 1, 2, 2), 9.0))   # 9/9 from each window
    np.testing.assert_array_equal(x.grad.data[0, 0], [[1, 1, 2, 1, 1], [1, 1, 2, 1, 1],
                                                      [2, 2, 4, 2, 2], [1, 1, 2, 1, 1],
                                                      [1, 1, 2, 1, 1]])


def test_backward_reads_the_mask_not_the_input():
    """The argmax is recorded in forward: changing x afterwards does not move the gradient."""
    a = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    x = mg.tensor(a, requires_grad=True)
    y = F.max_pool2d(x, 2)
    x.data[...] = [[[[9.0, 2.0], [3.0, 4.0]]]]          # a recomputed argmax would pick (0, 0)
    y.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(x.grad.data[0, 0], [[0, 0], [0, 1]])


@pytest.mark.parametrize("op", ["max", "avg", "adaptive"])
def test_inputs_and_delta_are_not_mutated(op, rng):
    x0 = rng.standard_normal((2, 3, 6, 5))
    x = mg.tensor(x0, requires_grad=True)
    y = {"max": lambda: F.max_pool2d(x, 2), "avg": lambda: F.avg_pool2d(x, 3, 2, 1),
         "adaptive": lambda: F.adaptive_avg_pool2d(x, (4, 3))}[op]()
    dy = rng.standard_normal(y.shape)
    dy0 = dy.copy()
    y.backward(dy)
    np.testing.assert_array_equal(x.data, x0)
    np.testing.assert_array_equal(dy, dy0)
    assert not np.shares_memory(x.grad.data, dy) and not np.shares_memory(x.grad.data, x.data)


def test_same_and_valid_follow_keras():
    """'same': out = ⌈in/S⌉, padding split with the odd pixel bottom/right; average pooling
    counts real elements only (TensorFlow), max pooling ignores the padding."""
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    y = F.avg_pool2d(mg.tensor(x), 2, 2, "same").data[0, 0]   # total padding 1, at the bottom/right
    np.testing.assert_array_equal(y, [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]])
    y = F.avg_pool2d(mg.tensor(x), 3, 2, "same").data[0, 0]   # 1 on each side
    np.testing.assert_allclose(y, [[3, 4.5, 6], [10.5, 12, 13.5], [18, 19.5, 21]])
    y = F.max_pool2d(mg.tensor(x), 3, 2, "same").data[0, 0]
    np.testing.assert_array_equal(y, [[6, 8, 9], [16, 18, 19], [21, 23, 24]])
    assert F.max_pool2d(mg.tensor(np.zeros((1, 3, 7, 8))), 3, 3, "same").shape == (1, 3, 3, 3)
    assert F.avg_pool2d(mg.tensor(np.zeros((1, 3, 7, 8))), (2, 3), 2, "valid").shape == (1, 3, 3, 3)
    # count_include_pad has no say with 'same': still real elements only
    np.testing.assert_array_equal(F.avg_pool2d(mg.tensor(x), 2, 2, "same", count_include_pad=True).data,
                                  F.avg_pool2d(mg.tensor(x), 2, 2, "same", count_include_pad=False).data)


def test_ceil_mode_as_pytorch():
    ones = mg.tensor(np.ones((1, 1, 6, 6)))
    # corner window: rows −1…1 → 3 counted (with padding), last window rows 5…7 clipped at
    # the padded input's end 7 → 2 counted; real elements 2 and 1
    y = F.avg_pool2d(ones, 3, 2, 1, ceil_mode=True).data[0, 0]
    np.testing.assert_allclose(y[0], [4 / 9, 6 / 9, 6 / 9, 3 / 9])
    np.testing.assert_allclose(y[3], [3 / 9, 0.5, 0.5, 0.25])
    np.testing.assert_array_equal(F.avg_pool2d(ones, 3, 2, 1, ceil_mode=True,
                                               count_include_pad=False).data, np.ones((1, 1, 4, 4)))
    np.testing.assert_array_equal(F.avg_pool2d(mg.tensor(np.ones((1, 1, 5, 5))), 2,
                                               ceil_mode=True).data, np.ones((1, 1, 3, 3)))
    # a window that would start in the right padding is dropped: 3 → 2 windows, not 3
    x = mg.tensor(np.arange(9.0).reshape(1, 1, 3, 3))
    np.testing.assert_array_equal(F.max_pool2d(x, 2, 2, 1, ceil_mode=True).data[0, 0],
                                  [[0, 2], [6, 8]])
    assert F.max_pool2d(mg.tensor(np.zeros((1, 1, 5, 5))), 2, ceil_mode=True).shape == (1, 1, 3, 3)
    assert F.max_pool2d(mg.tensor(np.zeros((1, 1, 5, 5))), 2).shape == (1, 1, 2, 2)


def test_return_indices():
    x = np.array([[[[0, 9, 1, 2, 3], [4, 5, 6, 7, 8], [8, 7, 6, 5, 4], [3, 2, 1, 0, 9.5]]]],
                 np.float32)
    y, idx = F.max_pool2d(mg.tensor(x), 2, return_indices=True)
    assert idx.dtype == np.int64 and idx.shape == y.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(idx.data[0, 0], [[1, 8], [10, 12]])
    np.testing.assert_array_equal(x.reshape(-1)[idx.data[0, 0]], y.data[0, 0])
    assert not idx.requires_grad
    y, idx = F.max_pool2d(mg.tensor(x[0]), 2, return_indices=True)   # unbatched
    assert idx.shape == y.shape == (1, 2, 2)


def test_unbatched_and_empty_batch(rng):
    x = rng.standard_normal((3, 6, 7))
    for f in (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 2, 1),
              lambda t: F.adaptive_avg_pool2d(t, 2)):
        y3 = f(mg.tensor(x))
        y4 = f(mg.tensor(x[None]))
        np.testing.assert_array_equal(y3.data, y4.data[0])
        xt = mg.tensor(x, requires_grad=True)
        f(xt).sum().backward()
        assert xt.grad.shape == x.shape
        e = mg.tensor(np.zeros((0, 3, 6, 7)), requires_grad=True)
        ye = f(e)
        assert ye.shape == (0,) + y3.shape
        ye.sum().backward()
        assert e.grad.shape == (0, 3, 6, 7)


def test_dtypes(rng):
    x = rng.standard_normal((1, 2, 4, 4))
    for dtype in (np.float32, np.float64):
        for f in (F.max_pool2d, F.avg_pool2d):
            xt = mg.tensor(x.astype(dtype), requires_grad=True)
            y = f(xt, 2)
            assert y.dtype == dtype
            y.sum().backward()
            assert xt.grad.dtype == dtype
    for bad in (np.int64, np.int32, np.bool_, np.float16):
        for f in (lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 2),
                  lambda t: F.adaptive_avg_pool2d(t, 1)):
            with pytest.raises(TypeError, match="float32 or float64"):
                f(mg.tensor(x.astype(bad)))


X = np.zeros((1, 2, 5, 5), np.float32)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: F.max_pool2d(mg.tensor(X), 0), ValueError, "kernel_size must be positive"),
    (lambda: F.max_pool2d(mg.tensor(X), (2, -1)), ValueError, "kernel_size must be positive"),
    (lambda: F.avg_pool2d(mg.tensor(X), 2, 0), ValueError, "stride must be positive"),
    (lambda: F.max_pool2d(mg.tensor(X), 2, -2), ValueError, "stride must be positive"),
    (lambda: F.max_pool2d(mg.tensor(X), 2, dilation=0), ValueError, "dilation must be positive"),
    (lambda: F.max_pool2d(mg.tensor(X), 6), ValueError, r"larger than the padded input"),
    (lambda: F.avg_pool2d(mg.tensor(X), (2, 8), padding=(0, 1)), ValueError, r"5 \+ 2·1 = 7"),
    (lambda: F.max_pool2d(mg.tensor(X), 3, dilation=3), ValueError, "larger than the padded input"),
    (lambda: F.max_pool2d(mg.tensor(X), 3, padding=2), ValueError, r"padding \(2, 2\) must be at most half"),
    (lambda: F.avg_pool2d(mg.tensor(X), 2, padding=-1), ValueError, "padding must be non-negative"),
    (lambda: F.avg_pool2d(mg.tensor(X), 2, padding="full"), ValueError, "padding must be"),
    (lambda: F.max_pool2d(mg.tensor(X), (2, 2, 2)), ValueError, "kernel_size must be an int or a pair"),
    (lambda: F.max_pool2d(mg.tensor(X), 2.5), TypeError, "kernel_size must be an int or a pair"),
    (lambda: F.max_pool2d(mg.tensor(X), True), TypeError, "kernel_size"),
    (lambda: F.max_pool2d(mg.tensor(X), 2, ceil_mode="yes"), TypeError, "ceil_mode must be a bool"),
    (lambda: F.max_pool2d(mg.tensor(X), 2**40), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(mg.tensor(X[0, 0]), 2), ValueError, r"3-d .* or 4-d .* got shape \(5, 5\)"),
    (lambda: F.avg_pool2d(mg.tensor(X[None]), 2), ValueError, r"got shape \(1, 1, 2, 5, 5\)"),
    (lambda: F.max_pool2d(mg.tensor(np.zeros((1, 0, 5, 5))), 2), ValueError, "only the batch may be empty"),
    (lambda: F.avg_pool2d(mg.tensor(np.zeros((1, 2, 0, 5))), 1), ValueError, "only the batch may be empty"),
    (lambda: F.avg_pool2d(mg.tensor(X), 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: F.avg_pool2d(mg.tensor(X), 2, divisor_override=1.5), TypeError, "divisor_override"),
    (lambda: F.adaptive_avg_pool2d(mg.tensor(X), 0), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(mg.tensor(X), (2, -1)), ValueError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(mg.tensor(X), (1, 2, 3)), TypeError, "output_size"),
    (lambda: F.adaptive_avg_pool2d(mg.tensor(X), "big"), TypeError, "output_size"),
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, "MaxPool2d.*padding"),
    (lambda: nn.AvgPool2d(0), ValueError, "AvgPool2d.*kernel_size"),
    (lambda: nn.AdaptiveAvgPool2d(0), ValueError, "AdaptiveAvgPool2d.*output_size"),
])
def test_validation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_layers(rng):
    x = mg.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    m = nn.MaxPool2d(2)
    assert repr(m) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    np.testing.assert_array_equal(m(x).data, F.max_pool2d(x, 2).data)
    y, idx = nn.MaxPool2d(3, 2, 1, return_indices=True)(x)
    assert idx.shape == y.shape == (2, 3, 4, 4)
    a = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
    assert repr(a) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    np.testing.assert_array_equal(a(x).data, F.avg_pool2d(x, 3, 2, 1, count_include_pad=False).data)
    g = nn.AdaptiveAvgPool2d((None, 1))
    assert repr(g) == "AdaptiveAvgPool2d(output_size=(None, 1))"
    assert g(x).shape == (2, 3, 8, 1)
    assert list(m.parameters()) == [] and list(a.parameters()) == []
    nn.Sequential(nn.MaxPool2d(2), nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1))(x).sum().backward()
    assert x.grad.shape == x.shape


def test_threads_agree_and_concurrent_use(rng):
    """One thread or several, serial or from four Python threads at once: the same numbers
    (pooling has no reductions across threads, so bitwise)."""
    x = rng.standard_normal((8, 16, 33, 31)).astype(np.float32)
    dy_max = rng.standard_normal((8, 16, 16, 15)).astype(np.float32)

    def run():
        out = []
        for f, dy in ((lambda t: F.max_pool2d(t, 3, 2), dy_max),
                      (lambda t: F.avg_pool2d(t, 3, 2), dy_max),
                      (lambda t: F.max_pool2d(t, 2), None)):
            xt = mg.tensor(x, requires_grad=True)
            y = f(xt)
            y.backward(dy if dy is not None else np.ones(y.shape, np.float32))
            out += [y.data, xt.grad.data]
        return out

    prev = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        serial = run()
        mg.set_num_threads(max(2, prev))
        parallel = run()
    finally:
        mg.set_num_threads(prev)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
    results = [None] * 4

    def worker(i):
        results[i] = run()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        for a, b in zip(serial, r):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape,stride", [((2, 3, 8, 8), 2), ((2, 3, 9, 7), 2), ((1, 1, 2, 2), 2),
                                          ((3, 2, 2, 5), 2),
                                          ((2, 3, 6, 4), (2, 3)),   # one window column, 2 spare
                                          ((2, 3, 5, 6), (4, 2))])  # one window row, 3 spare
def test_2x2_fast_path_matches_general(shape, stride, rng):
    """The specialised 2×2 kernels (chosen whenever window (i, j) is rows 2i…2i+1 × cols
    2j…2j+1; for max pooling on outputs of any width here, maxpool_2x2_min_ow = 1) give what
    the general kernels give, spare rows/columns included."""
    x = rng.standard_normal(shape)
    x[0, 0, 0, :2] = x[0, 0, 0, 0]                      # a tie
    for op, args in ((F.max_pool2d, (2, stride)), (F.avg_pool2d, (2, stride)),
                     (F.adaptive_avg_pool2d, None)):
        if args is None:
            if shape[2] % 2 or shape[3] % 2 or stride != 2:
                continue
            args = ((shape[2] // 2, shape[3] // 2),)
        xt = mg.tensor(x, requires_grad=True)
        with kernels.use(None, maxpool_2x2_min_ow=1), kernels.trace() as calls:
            y = op(xt, *args)
            dy = rng.standard_normal(y.shape)
            y.backward(dy)
        assert calls[0].path == "2x2" or (calls[0].path == "plane" and op is not F.max_pool2d)
        # rerun on the general loops: kernels.use("direct")
        xg = mg.tensor(x, requires_grad=True)
        with kernels.use("direct"), kernels.trace() as calls:
            yg = op(xg, *args)
            yg.backward(dy)
        assert [c.path for c in calls] == ["direct", "direct"]
        if op is F.max_pool2d:
            np.testing.assert_array_equal(y.data, yg.data)
        else:                                          # the plane path sums in another order
            np.testing.assert_allclose(y.data, yg.data, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(xt.grad.data, xg.grad.data, rtol=1e-15)


# ---- max pooling's tap table ('taps') -------------------------------------------------------

def test_taps_rule_and_its_limits():
    """'taps' takes max pooling's windows unless they tile 2×2 or are 3×3 at stride 1 with
    one pixel of padding ('3x3'), its table would exceed maxpool_taps_max_entries, or a
    window has no real input (then not even when forced)."""
    google = dict(op="max_pool2d", kernel_size=3, stride=1, padding=1)
    assert kernels.choose((16, 512, 4, 4), **google).forward == "3x3"
    with kernels.use("taps"):
        assert kernels.choose((16, 512, 4, 4), **google).forward == "taps"
    google = dict(op="max_pool2d", kernel_size=3, stride=1)        # 6×6 -> 4×4, no padding
    assert kernels.choose((16, 512, 6, 6), **google).forward == "taps"
    assert kernels.choose((16, 64, 32, 32), op="max_pool2d", kernel_size=3, stride=2,
                          ceil_mode=True).forward == "taps"
    assert kernels.choose((64, 6, 28, 28), op="max_pool2d", kernel_size=2).forward == "2x2"
    # a 2×2 tiling of outputs narrower than maxpool_2x2_min_ow (4): the table, not '2x2'
    assert kernels.choose((32, 512, 8, 8), op="max_pool2d", kernel_size=2).forward == "2x2"
    for plane in (6, 4, 2):
        assert kernels.choose((32, 512, plane, plane), op="max_pool2d",
                              kernel_size=2).forward == "taps", plane
    with kernels.use(None, maxpool_2x2_min_ow=2):
        assert kernels.choose((32, 512, 4, 4), op="max_pool2d", kernel_size=2).forward == "2x2"
        assert kernels.choose((32, 512, 2, 2), op="max_pool2d", kernel_size=2).forward == "taps"
    assert "rows too short for '2x2'" in str(kernels.explain((32, 512, 4, 4), op="max_pool2d",
                                                             kernel_size=2))
    # 9 inputs a window × 4·4 outputs (a group of two planes: 32) = 288 entries
    with kernels.use(None, maxpool_taps_max_entries=288):
        assert kernels.choose((16, 512, 6, 6), **google).forward == "taps"
    with kernels.use(None, maxpool_taps_max_entries=287):
        assert kernels.choose((16, 512, 6, 6), **google).forward == "direct"
    with kernels.use("taps", maxpool_taps_max_entries=1):
        assert kernels.choose((16, 512, 6, 6), **google).forward == "taps"
    with kernels.use("taps"):                          # avg pooling: chosen by shape
        assert kernels.choose((64, 6, 7, 7), op="avg_pool2d", kernel_size=7).forward == "plane"
    # dilation 3 puts both column taps of the one window in the padding of a 2-wide row
    nowhere = dict(op="max_pool2d", kernel_size=(1, 2), stride=1, padding=(0, 1), dilation=(1, 3))
    assert kernels.choose((1, 1, 1, 2), **nowhere).forward == "direct"
    with kernels.use("taps"):
        assert kernels.choose((1, 1, 1, 2), **nowhere).forward == "direct"
    why = str(kernels.explain((16, 512, 6, 6), **google))
    assert "taps takes it" in why and "a table of 288 entries" in why


# ---- max pooling, 3×3 at stride 1 with one pixel of padding ('3x3') ---------------------------

def test_3x3_rule():
    """'3x3' takes exactly the windows of a 3×3 kernel at stride 1 with one pixel of padding
    (any arguments that make them: padding 'same', ceil_mode, a 1×1 plane), max pooling
    only; forced elsewhere, the choice is by shape."""
    def fwd(shape, **kw):
        return kernels.choose(shape, op="max_pool2d", **kw).forward
    assert fwd((16, 512, 4, 4), kernel_size=3, stride=1, padding=1) == "3x3"
    assert fwd((2, 3, 5, 7), kernel_size=3, stride=1, padding="same") == "3x3"
    assert fwd((2, 3, 5, 7), kernel_size=3, stride=1, padding=1, ceil_mode=True) == "3x3"
    assert fwd((2, 3, 1, 1), kernel_size=3, stride=1, padding=1) == "3x3"
    for other in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=3, stride=1),
                  dict(kernel_size=(3, 5), stride=1, padding=(1, 2)),
                  dict(kernel_size=3, stride=1, padding=1, dilation=2),
                  dict(kernel_size=5, stride=1, padding=2)):
        assert fwd((2, 3, 8, 8), **other) != "3x3", other
        with kernels.use("3x3"):
            assert fwd((2, 3, 8, 8), **other) != "3x3", other
    assert kernels.choose((2, 3, 8, 8), op="avg_pool2d", kernel_size=3, stride=1,
                          padding=1).forward == "direct"
    with kernels.use("direct"):
        assert fwd((16, 512, 4, 4), kernel_size=3, stride=1, padding=1) == "direct"


@pytest.mark.parametrize("threads", [1, 2, 3])
@given(n=st.integers(1, 40), H=st.integers(1, 11), W=st.integers(1, 11),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       fill=st.sampled_from(["normal", "ties", "specials", "-inf", "nan"]))
def test_3x3_equals_the_naive_loops(threads, n, H, W, seed, dtype, fill):
    """The separable '3x3' kernel (a pass over each row's three columns, one over the rows'
    winners) against the naive loops, bit for bit: the first strict maximum in row-major
    order, the last NaN, a window of −∞ keeping its first real input; on any number of
    threads, planes (blocks of several planes, the last one short) and plane sizes, 1×1 to
    11×11; and the backward through its mask."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2, H, W)).astype(dtype)
    if fill == "ties":
        x = np.round(x)
    elif fill == "specials":
        flat = x.reshape(-1)
        for v in (np.nan, np.inf, -np.inf, np.nan, -np.inf):
            flat[rng.integers(flat.size)] = v
    elif fill == "-inf":
        x[...] = -np.inf
        x.reshape(-1)[rng.integers(x.size)] = 1.0
    elif fill == "nan":
        x[...] = np.nan
    prev = mg.get_num_threads()
    try:
        mg.set_num_threads(threads)
        xt = mg.tensor(x, requires_grad=True)
        with kernels.trace() as calls:
            y, idx = F.max_pool2d(xt, 3, 1, 1, return_indices=True)
        assert calls[0].path == "3x3"
        y_ref, idx_ref = naive_max_pool(x, (3, 3), (1, 1), (1, 1), (1, 1), False)
        np.testing.assert_array_equal(y.data, y_ref)
        np.testing.assert_array_equal(idx.data, idx_ref)
        dy = rng.standard_normal(y.shape).astype(dtype)
        y.backward(dy)
        np.testing.assert_array_equal(xt.grad.data, naive_max_pool_backward(dy, idx_ref, x.shape))
    finally:
        mg.set_num_threads(prev)


def test_3x3_kernel_checks_its_arguments():
    from minigrad._ext import pool as pk
    x = np.zeros((4, 3, 5), np.float32)
    with pytest.raises(ValueError, match="y and mask must have x's shape"):
        pk.max_pool2d_3x3_forward(x, np.zeros((4, 3, 4), np.float32),
                                  np.zeros((4, 3, 5), np.intc), 2)
    with pytest.raises(ValueError, match="y and mask must have x's shape"):
        pk.max_pool2d_3x3_forward(x, np.zeros((4, 3, 5), np.float32),
                                  np.zeros((3, 3, 5), np.intc), 2)


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_taps_groups_of_small_planes_equal_the_table_walk(threads, dtype):
    """Planes of 2×2 … 4×4 outputs go through the tap table in groups of several planes
    (the indices of a group's later planes offset by H·W, the mask brought back to each
    plane's own): bit for bit the table walk's values, indices and gradient, with the
    planes (21, 45) not a multiple of the group and any number of threads."""
    rng = np.random.default_rng(3)
    prev = mg.get_num_threads()
    try:
        mg.set_num_threads(threads)
        for shape, args in (((3, 7, 2, 2), (3, 1, 1)), ((3, 15, 4, 4), (3, 1, 1)),
                            ((5, 9, 5, 5), (3, 2, 0, 1, True)), ((3, 7, 3, 7), (2, 2, 1))):
            x = np.round(rng.standard_normal(shape) * 2).astype(dtype)
            x[rng.random(shape) < 0.05] = np.nan
            dy = rng.standard_normal((1,) + shape).astype(dtype)
            out = {}
            for path in ("direct", "taps"):
                xt = mg.tensor(x, requires_grad=True)
                with kernels.use(path), kernels.trace() as calls:
                    y, idx = F.max_pool2d(xt, *args, return_indices=True)
                y.backward(dy[0, :, :, :y.shape[2], :y.shape[3]])
                assert calls[0].path == path
                out[path] = (y.data, idx.data, xt.grad.data)
            for a, b in zip(out["direct"], out["taps"]):
                np.testing.assert_array_equal(a, b)
    finally:
        mg.set_num_threads(prev)


def test_taps_kernel_checks_its_table():
    """The kernel reads x[idx] unchecked, so it checks the table first: shape, and every
    index inside its own plane of the group."""
    from minigrad._ext import pool as _k
    x = np.zeros((4, 3, 3), np.float32)
    y, mask = np.empty((4, 2, 2), np.float32), np.empty((4, 2, 2), np.int32)
    good = np.tile(np.array([[0, 1, 3, 4]], np.int32), (1, 2))
    good[:, 4:] += 9                                    # the group's second plane
    _k.max_pool2d_taps_forward(x, good, 2, y, mask, 1)
    for bad, G, match in ((np.full((1, 8), 9, np.int32), 2, "outside its column's plane"),
                          (np.full((1, 8), -1, np.int32), 2, "outside its column's plane"),
                          (np.tile(np.array([[0, 1, 3, 4]], np.int32), (1, 2)), 2,
                           "outside its column's plane"),      # the second plane's read the first's
                          (good[:, :4], 2, "idx must be"),
                          (good, 1, "idx must be"),
                          (np.empty((0, 8), np.int32), 2, "idx must be")):
        with pytest.raises(ValueError, match=match):
            _k.max_pool2d_taps_forward(x, np.ascontiguousarray(bad), G, y, mask, 1)
