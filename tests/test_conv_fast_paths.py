"""The fast convolution paths of MobileNet's pair, against the lecture's direct loops
(kernels.use('direct')) and finite differences; where the chooser takes them; the checks
before the unchecked loops:

  pointwise  ext/conv_pointwise.pyx  a 1×1 convolution (stride 1, no padding, one group) as
                                     one GEMM per sample, or on small planes one for the batch
  depthwise  ext/conv_depthwise.pyx  groups = C = K, one filter per channel, over strides,
                                     paddings, dilations and odd sizes
"""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import _blas, kernels
from minigrad.ops import conv_dispatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_spy import poison_workspaces  # noqa: E402

needs_blas = pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")


def _conv(x, w, b, path, **kw):
    """y, ∂L/∂x, ∂L/∂w, ∂L/∂b of L = Σ g · conv2d(x) with g fixed; and the paths traced."""
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    bt = None if b is None else mg.tensor(b, requires_grad=True)
    with kernels.use(path), kernels.trace() as calls:
        y = F.conv2d(xt, wt, bt, **kw)
        g = np.cos(np.arange(y.numpy().size, dtype=x.dtype)).reshape(y.shape)
        (y * mg.tensor(g)).sum().backward()
    out = [y.numpy(), xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy()]
    return out, {c.path for c in calls if c.op == "conv2d"}


def _transpose_agrees(x, w, **kw):
    """conv_transpose2d's output and gradients by the chosen paths and by 'direct'; the paths."""
    outs, chosen = {}, None
    for path in (None, "direct"):
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        with kernels.use(path), kernels.trace() as calls:
            y = F.conv_transpose2d(xt, wt, **kw)
            y.sum().backward()
        outs[path] = (y.numpy(), xt.grad.numpy(), wt.grad.numpy())
        chosen = chosen or {c.path for c in calls}
    for a, r in zip(outs[None], outs["direct"]):
        np.testing.assert_allclose(a, r, atol=1e-12)
    return chosen


# ---- pointwise ----------------------------------------------------------------------------

@needs_blas
@given(N=st.integers(1, 4), C=st.integers(1, 7), K=st.integers(1, 7), H=st.integers(1, 9),
       W=st.integers(1, 9), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       dilation=st.integers(1, 2), seed=st.integers(0, 2 ** 16), batched=st.booleans(),
       threads=st.integers(1, 3))
def test_pointwise_matches_direct(N, C, K, H, W, bias, dtype, dilation, seed, batched, threads):
    """Both layouts (one product per sample; on small planes the whole batch in one
    product, channel-major copies in and out, over 1–3 threads' blocks of rows), the
    scratch memory poisoned: the direct loops' numbers."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C, 1, 1)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(threads)
        poison_workspaces()
        with kernels.use(None, pointwise_batch_max_pixels=10 ** 6 if batched else 0,
                         pointwise_batch_weight_ratio=0.0 if batched else float("inf")):
            got, paths = _conv(x, w, b, None, dilation=dilation)
    finally:
        mg.set_num_threads(before)
    want, ref_paths = _conv(x, w, b, "direct", dilation=dilation)
    assert paths == {"pointwise"} and ref_paths == {"direct"}
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name, a, r in zip(["y", "dx", "dw", "db"], got, want):
        if r is None:
            assert a is None
            continue
        assert a.shape == r.shape and a.dtype == r.dtype, name
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * (1 + np.abs(r).max()) * C * 4, err_msg=name)


def test_pointwise_takes_the_batch_at_once_on_tiny_planes():
    """The one-product layout on planes of ≤ pointwise_batch_max_pixels (4: GoogLeNet's and
    DenseNet's 2×2 planes), the per-sample products above; the field moves the limit."""
    assert kernels._pointwise_batched(4, 64, 64) and not kernels._pointwise_batched(5, 64, 64)
    with kernels.use(None, pointwise_batch_max_pixels=16):
        assert kernels._pointwise_batched(16, 64, 64) and not kernels._pointwise_batched(17, 64, 64)


def test_pointwise_takes_the_batch_at_once_for_a_large_weight():
    """Above 4 pixels, the one-product layout where K·C ≥ 8 · L·(C + K): DenseNet-121's
    last transition (1024 → 512 on 4×4 planes) and GoogLeNet's 832 → 384, not DenseNet's
    bottlenecks (960 → 128) nor MobileNetV2's 576 → 96 on the same planes, nor anything on
    16×16; the field moves the line (0: every plane, inf: none above the pixel limit)."""
    assert kernels._pointwise_batched(16, 1024, 512) and kernels._pointwise_batched(16, 832, 384)
    assert not kernels._pointwise_batched(16, 960, 128)
    assert not kernels._pointwise_batched(16, 576, 96)
    assert not kernels._pointwise_batched(256, 1024, 512)
    assert kernels._pointwise_batched(16, 256, 256)           # 65536 = 8 · 16 · 512, the line
    assert not kernels._pointwise_batched(16, 256, 255)
    with kernels.use(None, pointwise_batch_weight_ratio=0.0):
        assert kernels._pointwise_batched(10 ** 4, 1, 1)
    with kernels.use(None, pointwise_batch_weight_ratio=float("inf")):
        assert not kernels._pointwise_batched(16, 1024, 512)


@needs_blas
def test_pointwise_gradcheck(rng):
    x = mg.tensor(rng.standard_normal((3, 4, 5, 2)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((6, 4, 1, 1)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(6), requires_grad=True)
    with kernels.trace() as calls:
        assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b), [x, w, b])
    assert {c.path for c in calls if c.op == "conv2d"} == {"pointwise"}


@needs_blas
@pytest.mark.parametrize("kw, ws", [(dict(stride=2), (6, 4, 1, 1)), (dict(padding=1), (6, 4, 1, 1)),
                                    (dict(groups=2), (6, 2, 1, 1)), ({}, (6, 4, 3, 3))])
def test_pointwise_declines_other_layers(kw, ws):
    # (12×12: on planes ≤ hwnc_fallback_max_pixels a 3×3 layer takes 'hwnc', whose
    # explanation does not list the base path's reasons)
    with kernels.use("pointwise"):
        assert "pointwise" not in kernels.choose((2, 4, 12, 12), ws, **kw)
    why = str(kernels.explain((2, 4, 12, 12), ws, **kw))
    assert "pointwise" in why


@needs_blas
def test_pointwise_conv_transpose_1x1_agrees(rng):
    assert "pointwise" in _transpose_agrees(rng.standard_normal((2, 5, 6, 7)),
                                            rng.standard_normal((5, 3, 1, 1)))


def test_pointwise_checks_before_the_kernels():
    g = conv_dispatch.Geom((1, 1), (0, 0), (1, 1), 1)
    x = np.ones((2, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"conv2d\(\): the 'pointwise' path needs a 1×1 kernel"):
        conv_dispatch._forward_pointwise(x, np.ones((5, 4, 3, 3), np.float32), None, (3, 3), g)
    with pytest.raises(ValueError, match=r"the 'pointwise' path needs"):
        conv_dispatch._forward_pointwise(x, np.ones((5, 3, 1, 1), np.float32), None, (3, 3), g)
    with pytest.raises(ValueError, match=r"the 'pointwise' path needs"):
        conv_dispatch._backward_pointwise(x, x.shape, np.ones((2, 5, 2, 2), np.float32),
                                          np.ones((5, 4, 1, 1), np.float32), g, True, True, True)
    g2 = conv_dispatch.Geom((2, 2), (0, 0), (1, 1), 1)
    with pytest.raises(ValueError, match=r"stride \(2, 2\)"):
        conv_dispatch._forward_pointwise(x, np.ones((5, 4, 1, 1), np.float32), None, (3, 3), g2)


# ---- depthwise ----------------------------------------------------------------------------

@given(N=st.integers(1, 3), C=st.integers(1, 6), H=st.integers(1, 11), W=st.integers(1, 11),
       kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.sampled_from([1, 1, 2, 3, (1, 2)]),
       padding=st.integers(0, 2), dilation=st.sampled_from([1, 1, 2]), bias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 16))
def test_depthwise_matches_direct(N, C, H, W, kh, kw, stride, padding, dilation, bias, dtype, seed):
    if H + 2 * padding < dilation * (kh - 1) + 1 or W + 2 * padding < dilation * (kw - 1) + 1:
        return                                             # no output pixel
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((C, 1, kh, kw)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype) if bias else None
    kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=C)
    got, paths = _conv(x, w, b, None, **kw_)
    want, ref_paths = _conv(x, w, b, "direct", **kw_)
    if C > 1:
        assert paths == {"depthwise"}
    assert ref_paths == {"direct"}
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, a, r in zip(["y", "dx", "dw", "db"], got, want):
        if r is None:
            assert a is None
            continue
        assert a.shape == r.shape and a.dtype == r.dtype, name
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * (1 + np.abs(r).max()) * kh * kw * N,
                                   err_msg=f"{name} {kw_}")


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (3, 1), ((1, 2), 1), ((2, 1), 1),
                                              (1, 2), (1, (2, 1)), (1, (1, 2)), (2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["planes", "channels-last"])
def test_depthwise_3x3_specialisations_match_direct(stride, dilation, dtype, layout, rng):
    # ext/conv_depthwise.pyx writes 3×3 out by hand (the forward gather at column stride
    # 1 and 2, ∂L/∂x's gather at stride 1, ∂L/∂w's one-pass sums at stride 1 only); the
    # other geometries and the widths around the vector lengths take the general loops.
    # Both layouts, whatever the plane size: whole padded planes, and channels in the
    # vector lanes (small planes; 70 channels: a block of 64 and one of 6)
    C = 70 if layout == "channels-last" else 5
    cl_max = 10 ** 9 if layout == "channels-last" else 0
    for padding in (0, 1, 2):
        for W in (1, 3, 4, 7, 8, 9, 15, 16, 17, 33):
            x = rng.standard_normal((2, C, 6, W + 2)).astype(dtype)
            w = rng.standard_normal((C, 1, 3, 3)).astype(dtype)
            b = rng.standard_normal(C).astype(dtype)
            kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=C)
            try:
                want, _ = _conv(x, w, b, "direct", **kw_)
            except ValueError:                              # no output pixel
                continue
            with kernels.use(None, depthwise_cl_max_pixels=cl_max,
                             depthwise_cl_s1_max_pixels=cl_max):
                got, paths = _conv(x, w, b, None, **kw_)
            assert paths == {"depthwise"}
            tol = 1e-12 if dtype == np.float64 else 3e-5
            for name, a, r in zip(["y", "dx", "dw", "db"], got, want):
                np.testing.assert_allclose(a, r, rtol=0, atol=tol * (1 + np.abs(r).max()) * 9 * 2,
                                           err_msg=f"{name} W={W + 2} {kw_}")


@pytest.mark.parametrize("grads", ["x", "w", "b", "xw", "wb", "xb", "xwb"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_whole_planes_any_subset_of_gradients(grads, dtype, rng):
    # The whole-plane kernels zero their scratch once per call and then write only each
    # plane's values into it (the padding, and a dilated δ's zeros, are the same for every
    # plane). Each geometry runs after the previous one left other values in the reused
    # scratch: "same" padding at stride 1 (δ's padded plane also serves ∂L/∂w), dilation 2,
    # stride 2, no padding, padding wider than the filter's reach (∂L/∂x by the row
    # helpers), several planes per thread, with only some of x, w, b requiring grad.
    for H, W, k, stride, padding, dilation in [
            (16, 16, 3, 1, 1, 1), (9, 13, 3, 1, 2, 2), (16, 16, 3, 2, 1, 1), (11, 10, 3, 1, 0, 1),
            (7, 9, 3, 2, 3, 1), (12, 12, 5, 1, 2, 1), (13, 8, 3, (2, 1), 1, 1)]:
        x = (rng.standard_normal((3, 5, H, W)) * 4).astype(dtype)
        w = rng.standard_normal((5, 1, k, k)).astype(dtype)
        b = rng.standard_normal(5).astype(dtype)
        got, want = {}, {}
        for path, out in ((None, got), ("direct", want)):
            ts = {n: mg.tensor(v, requires_grad=n in grads) for n, v in (("x", x), ("w", w), ("b", b))}
            with kernels.use(path, depthwise_cl_max_pixels=0, depthwise_cl_s1_max_pixels=0,
                             depthwise_lanes_max_pixels=0), kernels.trace() as calls:
                y = F.conv2d(ts["x"], ts["w"], ts["b"], stride=stride, padding=padding,
                             dilation=dilation, groups=5)
                δ = np.cos(np.arange(y.numpy().size)).reshape(y.shape).astype(dtype)
                (y * mg.tensor(δ)).sum().backward()
            assert {c.path for c in calls if c.op == "conv2d"} == {path or "depthwise"}
            out.update({n: (t.grad.numpy() if t.grad is not None else None) for n, t in ts.items()})
        tol = 1e-11 if dtype == np.float64 else 1e-4
        for n in "xwb":
            assert (got[n] is None) == (n not in grads) == (want[n] is None), n
            if got[n] is not None:
                np.testing.assert_allclose(got[n], want[n], rtol=tol, atol=tol * 10,
                                           err_msg=f"{n} {(H, W, k, stride, padding, dilation)}")


def test_depthwise_channels_last_rule():
    """Channels-last for output planes of ≤ 16 pixels at any stride and ≤ 64 at stride 1
    (MobileNetV2's 8×8 layers); whole planes beyond, and for stride 2 on 8×8 outputs."""
    cl = kernels._depthwise_channels_last
    assert cl((4, 4), 200, (2, 2)) == (True, 64) and cl((4, 4), 40) == (True, 40)
    assert cl((8, 8), 192) == (True, 64) and cl((7, 9), 32) == (True, 32)
    assert cl((8, 8), 144, (2, 2)) == (False, 0) and cl((9, 9), 96) == (False, 0)
    with kernels.use(None, depthwise_cl_s1_max_pixels=16):
        assert cl((8, 8), 192) == (False, 0)
    x, w = np.zeros((2, 192, 8, 8), np.float32), np.zeros((192, 1, 3, 3), np.float32)
    assert kernels.choose(x.shape, w.shape, padding=1, groups=192) == ("depthwise",) * 3


@given(N=st.integers(1, 3), C=st.integers(1, 40), H=st.integers(1, 16), W=st.integers(1, 16),
       kh=st.integers(1, 5), kw=st.integers(1, 5), stride=st.sampled_from([1, 1, 2, 3, (1, 2)]),
       padding=st.sampled_from([0, 1, 1, 2, (0, 2)]), dilation=st.sampled_from([1, 1, 2]),
       bias=st.booleans(), threads=st.integers(1, 3), seed=st.integers(0, 2 ** 16))
def test_depthwise_lanes_match_direct(N, C, H, W, kh, kw, stride, padding, dilation, bias,
                                      threads, seed):
    """One plane per 16-lane vector (float32 planes of ≤ 16 pixels in and out, ≤ 25 taps),
    run on any CPU (depthwise_lanes_min_simd=0: the baseline build where there is no
    AVX-512) and any plane size it takes, over 1–3 threads: the direct loops' numbers. Each tap is a shuffle of the
    plane with pick indices from conv_dispatch._lanes_picks, ∂L/∂x the shuffle by their
    inverse; 16 = a zero lane, which must never let another channel's values in."""
    if H * W > 16:
        H = max(1, 16 // W)
    _check_lanes(N, C, H, W, kh, kw, stride, padding, dilation, bias, threads, seed)


@pytest.mark.parametrize("H, W, k, stride, padding, dilation", [
    (4, 4, 3, 1, 1, 1), (4, 4, 3, 2, 1, 1), (2, 2, 3, 1, 1, 1), (4, 4, 3, 1, 2, 2),
    (4, 4, 5, 1, 2, 1), (1, 16, 3, 1, 1, 1), (16, 1, 3, 1, (1, 0), 1), (3, 5, 2, 1, 0, 1)])
def test_depthwise_lanes_mobilenet_geometries(H, W, k, stride, padding, dilation):
    """The same check on the planes MobileNetV2 gives the lanes kernels (4×4 and 2×2,
    'same' 3×3, stride 1 and 2) and a few edges, 70 channels (not a multiple of 16)."""
    _check_lanes(3, 70, H, W, k, k, stride, padding, dilation, True, 2, 0)


def _check_lanes(N, C, H, W, kh, kw, stride, padding, dilation, bias, threads, seed):
    pad = (padding, padding) if isinstance(padding, int) else padding
    st_ = (stride, stride) if isinstance(stride, int) else stride
    OH = (H + 2 * pad[0] - dilation * (kh - 1) - 1) // st_[0] + 1
    OW = (W + 2 * pad[1] - dilation * (kw - 1) - 1) // st_[1] + 1
    if OH < 1 or OW < 1 or OH * OW > 16:
        return                                  # no output, or a plane the kernel does not take
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    x[:, ::3] *= 1e3                            # neighbouring planes of very different size
    w = rng.standard_normal((C, 1, kh, kw)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32) if bias else None
    kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=C)
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(threads)
        with kernels.use(None, depthwise_lanes_min_simd=0, depthwise_lanes_min_pixels=1):
            assert kernels._depthwise_lanes((H, W), (OH, OW), (kh, kw), np.float32)
            got, paths = _conv(x, w, b, None, **kw_)
    finally:
        mg.set_num_threads(before)
    want, _ = _conv(x.astype(np.float64), w.astype(np.float64),
                    None if b is None else b.astype(np.float64), "direct", **kw_)
    if C > 1:
        assert paths == {"depthwise"}
    # float32 rounding of each channel's own sums (T taps, or M = N·OH·OW terms for ∂L/∂w
    # and ∂L/∂b; |g| ≤ 1): another channel's values (×1000 on every third) leaking into a
    # lane, or a tap read from the wrong pixel, is far outside these
    T, M, u = kh * kw, N * OH * OW, 1e-6
    xs = np.abs(x).max(axis=(0, 2, 3))                      # (C,)
    ws = np.abs(w).reshape(C, -1).max(axis=1)               # (C,)
    bs = np.zeros(C) if b is None else np.abs(b)
    bounds = {"y": (u * T * (T * xs * ws + bs) + 1e-30).reshape(1, C, 1, 1),
              "dx": (u * T * T * ws + 1e-30).reshape(1, C, 1, 1),
              "dw": (u * M * M * xs + 1e-30).reshape(C, 1, 1, 1),
              "db": np.full(C, u * M * M)}
    for name, a, r in zip(["y", "dx", "dw", "db"], got, want):
        if r is None:
            assert a is None
            continue
        assert a.shape == r.shape and a.dtype == np.float32, name
        err = np.abs(a - r)
        assert np.all(err <= bounds[name]), f"{name} {kw_}: worst error {err.max()}"


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (1, 0)])
def test_depthwise_gradcheck(stride, padding, rng):
    x = mg.tensor(rng.standard_normal((2, 3, 6, 5)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((3, 1, 3, 3)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(3), requires_grad=True)
    with kernels.trace() as calls:
        assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=padding,
                                                     groups=3), [x, w, b])
    assert {c.path for c in calls if c.op == "conv2d"} == {"depthwise"}


def test_depthwise_conv_transpose_agrees(rng):
    assert "depthwise" in _transpose_agrees(rng.standard_normal((2, 4, 5, 6)),
                                            rng.standard_normal((4, 1, 3, 3)), stride=2,
                                            padding=1, output_padding=1, groups=4)


def test_chooser_takes_depthwise_only_for_one_filter_per_channel():
    assert kernels.choose((8, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32) == ("depthwise",) * 3
    assert "depthwise" not in kernels.choose((8, 32, 28, 28), (64, 1, 3, 3), padding=1, groups=32)
    assert "depthwise" not in kernels.choose((8, 32, 28, 28), (16, 2, 3, 3), padding=1, groups=16)
    with kernels.use("direct"):
        assert kernels.choose((8, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32) == ("direct",) * 3


@pytest.mark.parametrize("grads", ["x", "w", "b", "xw", "wb", "xb"])
@pytest.mark.parametrize("H", [4, 2])
def test_depthwise_small_planes_any_subset_of_gradients(grads, H, rng):
    # each small-plane layout (lanes on 4×4, channels-last on 2×2) with only some of x, w, b
    # requiring grad: the kernels get dummies for the rest (and none at all for ∂L/∂b alone)
    x = rng.standard_normal((3, 20, H, H)).astype(np.float32)
    w = rng.standard_normal((20, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    got, want = {}, {}
    for path, out in ((None, got), ("direct", want)):
        ts = {k: mg.tensor(v, requires_grad=k in grads) for k, v in (("x", x), ("w", w), ("b", b))}
        with kernels.use(path, depthwise_lanes_min_simd=0):
            y = F.conv2d(ts["x"], ts["w"], ts["b"], padding=1, groups=20)
            (y * mg.tensor(np.cos(np.arange(y.numpy().size, dtype=np.float32)).reshape(y.shape))).sum().backward()
        out.update({k: (t.grad.numpy() if t.grad is not None else None) for k, t in ts.items()})
    for k in "xwb":
        assert (got[k] is None) == (k not in grads) == (want[k] is None), k
        if got[k] is not None:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-4, err_msg=k)


def test_depthwise_lanes_rule():
    lanes = kernels._depthwise_lanes
    with kernels.use(None, depthwise_lanes_min_simd=0):
        assert lanes((4, 4), (4, 4), (3, 3), np.float32)
        assert lanes((4, 4), (2, 2), (3, 3), np.float32)          # stride 2 from a 4×4 plane
        assert lanes((3, 3), (3, 3), (5, 5), np.float32)          # 25 taps
        assert not lanes((4, 4), (4, 4), (3, 3), np.float64)      # float32 only
        assert not lanes((4, 5), (4, 5), (3, 3), np.float32)      # 20 pixels: not one vector
        assert not lanes((4, 4), (6, 6), (1, 1), np.float32)      # nor the output
        assert not lanes((2, 2), (2, 2), (3, 3), np.float32)      # a quarter vector: channels-last
        assert not lanes((4, 4), (4, 4), (1, 26), np.float32)     # 26 taps
        with kernels.use(None, depthwise_lanes_min_simd=0, depthwise_lanes_min_pixels=4):
            assert lanes((2, 2), (2, 2), (3, 3), np.float32)
        with kernels.use(None, depthwise_lanes_min_simd=0, depthwise_lanes_max_pixels=8):
            assert not lanes((3, 3), (3, 3), (3, 3), np.float32)
    with kernels.use(None, depthwise_lanes_min_simd=kernels.simd_level() + 1):
        assert not lanes((4, 4), (4, 4), (3, 3), np.float32)
    assert lanes((4, 4), (4, 4), (3, 3), np.float32) == (kernels.simd_level() >= 2)


def test_depthwise_lanes_kernels_check_their_planes():
    # the vector loops hold a plane in 16 lanes: a 5×5 plane or 26 taps must not reach them
    from minigrad._ext import conv_depthwise as dwk
    x = np.ones((2, 3, 5, 5), np.float32)
    idx = np.full((9, 16), 16, np.int32)
    with pytest.raises(ValueError, match=r"conv2d_forward_depthwise_lanes\(\): input planes \(2, 3, 5, 5\)"):
        dwk.conv2d_forward_depthwise_lanes(x, np.ones((3, 9), np.float32), np.zeros(3, np.float32),
                                           idx, np.empty((2, 3, 5, 5), np.float32), 1)
    x = np.ones((2, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"≤ 25 taps"):
        dwk.conv2d_backward_depthwise_lanes(x, x, np.ones((3, 26), np.float32),
                                            np.full((26, 16), 16, np.int32),
                                            np.full((26, 16), 16, np.int32), x.copy(),
                                            np.empty((3, 26), np.float32), np.empty(3, np.float32),
                                            True, True, True, 1)


def test_depthwise_whole_plane_kernels_check_their_scratch():
    # the whole-plane kernels write their padded planes, a set per thread, into scratch:
    # too short a scratch row, too few rows for the threads, or a padding wider than the
    # filter's reach (no gather form of ∂L/∂x) must not reach the unchecked loops
    from minigrad._ext import conv_depthwise as dwk
    x, δ = np.ones((2, 3, 8, 8), np.float32), np.ones((2, 3, 4, 4), np.float32)
    wf, dx, gw = np.ones((3, 9), np.float32), np.empty((2, 3, 8, 8), np.float32), np.empty((3, 9))
    need = dwk.backward_scratch(8, 8, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1, True, True)
    assert need == (9 + 10) * 10                    # Hp = 9, Hd = 10, rows of max(Wp, Wd) = 10
    dwk.conv2d_backward_depthwise(x, δ, wf, dx, gw, np.empty((2, need), np.float32),
                                  3, 3, 2, 2, 1, 1, 1, 1, True, True, 2)
    for rows, cols in ((2, need - 1), (1, need)):
        with pytest.raises(ValueError, match=r"conv2d_backward_depthwise\(\): scratch .* too small"):
            dwk.conv2d_backward_depthwise(x, δ, wf, dx, gw, np.empty((rows, cols), np.float32),
                                          3, 3, 2, 2, 1, 1, 1, 1, True, True, 2)
    y = np.empty((2, 3, 4, 4), np.float32)                  # the forward: 9×9 padded planes
    for rows, cols in ((2, 80), (1, 81)):
        with pytest.raises(ValueError, match=r"conv2d_forward_depthwise\(\): scratch .* 9×9"):
            dwk.conv2d_forward_depthwise(x, wf, np.zeros(3, np.float32), y,
                                         np.empty((rows, cols), np.float32), 3, 3, 2, 2, 1, 1,
                                         1, 1, 2)
    with pytest.raises(ValueError, match=r"padding \(3, 3\), kernel \(3, 3\)"):
        dwk.conv2d_backward_depthwise(x, np.ones((2, 3, 6, 6), np.float32), wf, dx, gw,
                                      np.empty((2, 10 ** 4), np.float32), 3, 3, 2, 2, 3, 3, 1, 1,
                                      True, True, 2)


def test_depthwise_checks_before_the_kernels():
    g = conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 4)
    x = np.ones((2, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"conv2d\(\): the 'depthwise' path needs groups"):
        conv_dispatch._forward_depthwise(x, np.ones((8, 1, 3, 3), np.float32), None, (5, 5), g)
    with pytest.raises(ValueError, match=r"the 'depthwise' path got δ of shape"):
        conv_dispatch._backward_depthwise(x, x.shape, np.ones((2, 3, 5, 5), np.float32),
                                          np.ones((4, 1, 3, 3), np.float32), g, True, True, True)
