"""The Winograd F(2×2, 3×3) and F(4×4, 3×3) forwards (ext/winograd.pyx, paths 'winograd'
and 'winograd4'): values against the naive reference over random shapes, paddings, dtypes
and block sizes; that the default dispatch takes them for ResNet-like layers and only where
they apply; gradients through the whole op; F(2×2, 3×3)'s ∂L/∂w."""
import contextlib
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import _blas, kernels
from minigrad.ops import conv_dispatch

sys.path.insert(0, os.path.dirname(__file__))
import reference as ref  # noqa: E402
from kernel_spy import forced, ran  # noqa: E402

pytestmark = pytest.mark.skipif(not _blas.available(),
                                reason="no OpenBLAS next to NumPy: no 'winograd' path here")


@contextlib.contextmanager
def winograd(force=True, tiles=None, path="winograd", points=None):
    """Force `path` ('winograd' or 'winograd4'; force=False: the choice by shape),
    optionally with another block size, and ∂L/∂w's GEMMs split by point (points=True) or by
    block (False; None: by the rule); yields a function giving the list of the
    (x.shape, weights.shape) of every call that ran that Winograd kernel so far (either
    of them when not forced; the scratch memory poisoned first: see kernel_spy)."""
    field = "winograd_block_tiles" if path == "winograd" else "winograd4_block_tiles"
    # (with a block size given, F(4×4)'s ∂L/∂w keeps it too: no larger blocks for few channels)
    tuning = {} if tiles is None else {field: tiles, "winograd4_wgrad_channels": 1}
    if points is not None:
        tuning["winograd_wgrad_points_ratio"] = 0.0 if points else float("inf")
    with forced(path, force, **tuning) as log:
        yield lambda: (ran(log, path) if force else
                       ran(log, "winograd") + ran(log, "winograd4"))


@st.composite
def cases(draw):
    padding = draw(st.one_of(st.integers(0, 2), st.tuples(st.integers(0, 2), st.integers(0, 2)),
                             st.sampled_from(["same", "valid"])))
    if isinstance(padding, str):                  # 'same' pads a 3×3 kernel by 1 all round
        ph = pw = int(padding == "same")
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
    # input size: from the smallest the 3×3 kernel fits (1 with padding ≥ 1) to a few more,
    # any remainder mod 2 and mod 4 (tiles cut at the bottom/right), not square
    H = max(1, 3 - 2 * ph) + draw(st.integers(0, 11))
    W = max(1, 3 - 2 * pw) + draw(st.integers(0, 11))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 12)), K=draw(st.integers(1, 12)),
                H=H, W=W, padding=padding, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                tiles=draw(st.sampled_from([None, 1, 5, 1 << 20])), seed=draw(st.integers(0, 2**31)),
                path=draw(st.sampled_from(["winograd", "winograd4"])))


def check_forward(case):
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(dt)
    w = rng.standard_normal((case["K"], case["C"], 3, 3)).astype(dt)
    b = rng.standard_normal(case["K"]).astype(dt) if case["bias"] else None
    with winograd(tiles=case["tiles"], path=case.get("path", "winograd")) as calls:
        y = F.conv2d(mg.tensor(x), mg.tensor(w), None if b is None else mg.tensor(b),
                     padding=case["padding"])
    assert calls(), "the winograd kernel did not run"
    P4 = ref.conv_padding4(case["padding"], case["H"], case["W"], 3, 3, (1, 1), (1, 1))
    want = ref.conv2d(x, w, b, (1, 1), P4, (1, 1), 1)
    assert y.shape == want.shape and y.dtype == dt
    if dt == np.float64:                          # the tolerances of tests/test_conv.py
        np.testing.assert_allclose(y.data, want, rtol=1e-12, atol=1e-12)
    else:
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(y.data, want, rtol=1e-4, atol=1e-5 * scale)


@given(case=cases())
def test_forward_matches_reference(case):
    check_forward(case)


@pytest.mark.parametrize("N, C, K, H, W, padding", [
    (2, 40, 3, 5, 6, 1),          # more channels than one chunk of the kernel transform (32)
    (1, 2, 3, 4, 70, 1),          # more tiles per row than one chunk of F(2×2)'s transforms
    (9, 3, 4, 4, 4, 1),           # 4×4 planes: a chunk of the transforms spans many tile rows
    (40, 2, 3, 2, 3, 1),          # ... and samples (one tile row each, the last tile cut)
    (35, 2, 2, 5, 1, 1),          # one tile a row: every tile of a chunk a piece of its own
    (2, 3, 2, 3, 131, "same"),    # ... and of F(4×4)'s; an odd width: the last chunk ends on
    (1, 2, 2, 6, 130, 1),         # a cut tile (130: three of its four columns)
    (3, 5, 4, 1, 1, 1),           # one output pixel: one tile, most of it unused
    (1, 2, 2, 2, 9, (2, 0)),      # every tile row reads padding rows
    (2, 3, 2, 13, 11, 0),         # F(4×4): the last tile row has three rows, the column one
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["winograd", "winograd4"])
def test_forward_edges(N, C, K, H, W, padding, dtype, path):
    for tiles in (None, 1):
        check_forward(dict(N=N, C=C, K=K, H=H, W=W, padding=padding, bias=True, dtype=dtype,
                           tiles=tiles, seed=N * 1000 + W, path=path))


def test_default_takes_winograd_where_it_pays_and_applies():
    """The dispatch rule (_winograd_ok), so that it cannot rot silently: ResNet's stride-1
    3×3 layers take the Winograd kernels; thin channels, short rows, too few tiles,
    strides, dilations, groups and other kernel sizes do not. (The rule of the scalar
    transforms: F(4×4)'s vector transforms off; their rule:
    test_winograd4_with_vector_transforms_takes_small_layers. k32's claim on 4×4 outputs
    off: test_direct16.py test_default_takes_k32_on_strided_layers.)"""
    with kernels.use(None, winograd4_vector_max_tw=0, k32_stride1_max_size=0):
        _winograd_rule_cases()


def _winograd_rule_cases():
    rng = np.random.default_rng(3)

    def runs(xs, ws, **kw):
        x = rng.standard_normal(xs).astype(np.float32)
        w = rng.standard_normal(ws).astype(np.float32)
        with winograd(force=False) as calls:
            F.conv2d(x, w, **kw)
            return bool(calls())

    assert runs((1, 64, 56, 56), (64, 64, 3, 3), padding=1)            # res-56-s1, one sample
    assert runs((8, 256, 14, 14), (256, 256, 3, 3), padding=1)         # res-14-s1
    assert runs((4, 48, 20, 17), (48, 48, 3, 3), padding="same")
    # K ≤ 32 (at stride 1, any rows): w16 is asked first (where the CPU has AVX2 or AVX-512)
    assert runs((4, 32, 20, 17), (32, 32, 3, 3), padding="same") == (kernels._SIMD_LEVEL == 0)
    assert runs((64, 32, 8, 8), (32, 32, 3, 3), padding=1) == (kernels._SIMD_LEVEL == 0)
    assert runs((64, 48, 8, 8), (48, 48, 3, 3), padding=1)             # short rows, C·K/(C+K) 24
    assert runs((4, 64, 16, 16), (64, 64, 3, 3), padding=1)            # 256 tiles
    # which of the two: F(4×4, 3×3) on outputs of ≥ winograd4_min_size rows and columns
    # where C·K/(C+K) ≥ winograd4_min_ck, with ≥ winograd4_min_tiles 4×4 tiles
    for xs, K, want in (((8, 96, 16, 16), 96, "winograd4"), ((8, 96, 7, 40), 96, "winograd4"),
                        ((2, 96, 16, 16), 96, "winograd4"),              # 32 4×4 tiles
                        ((16, 24, 16, 16), 48, "winograd"),              # C·K/(C+K) = 16
                        ((8, 128, 16, 16), 32, None),                    # 25.6: DenseNet's, w16
                        ((8, 96, 6, 40), 96, "winograd"),                # 6 rows: a small plane's
                        ((1, 96, 16, 16), 96, None)):                    # 16 4×4, 64 2×2 tiles
        x = rng.standard_normal(xs).astype(np.float32)
        with forced(None, False) as log:
            F.conv2d(x, rng.standard_normal((K, xs[1], 3, 3)).astype(np.float32), padding=1)
        got = {c.path for c in log} & {"winograd", "winograd4"}
        assert got == ({want} if want else set()), (xs, K, log)
    assert not runs((2, 3, 32, 32), (16, 3, 3, 3), padding=1)          # cifar-3x3: C = 3
    assert not runs((4, 8, 32, 32), (8, 8, 3, 3), padding=1)           # C·K/(C+K) = 4
    assert not runs((64, 16, 8, 8), (16, 16, 3, 3), padding=1)         # short rows, 8 < 12
    # 7×7: F(4×4) asked before 'hwnc' (which takes planes ≤ hwnc_max_pixels); F(2×2) only
    # where hwnc declines
    assert runs((32, 64, 7, 7), (64, 64, 3, 3), padding=1)
    with kernels.use(None, winograd4_min_size=8, hwnc_max_pixels=36):
        assert runs((32, 64, 7, 7), (64, 64, 3, 3), padding=1)
    with kernels.use(None, winograd4_min_size=8):
        assert not runs((32, 64, 7, 7), (64, 64, 3, 3), padding=1)
    # outputs of winograd_small_min_size (4) to 6 rows and columns: F(2×2) for the forward,
    # asked before hwnc, with ≥ winograd_small_min_tiles (32) tiles and C·K/(C+K) ≥ 12;
    # for ∂L/∂x with C·K/(C+K) ≥ winograd_small_dx_min_ck (64)
    assert runs((32, 64, 6, 6), (64, 64, 3, 3), padding=1)
    assert runs((8, 128, 4, 4), (32, 128, 3, 3), padding=1)            # 32 tiles, 25.6
    assert not runs((7, 128, 4, 4), (32, 128, 3, 3), padding=1)        # 28 tiles
    assert runs((16, 16, 4, 4), (48, 16, 3, 3), padding=1)             # C·K/(C+K) = 12
    assert not runs((16, 15, 4, 4), (48, 15, 3, 3), padding=1)         # 11.4
    assert not runs((32, 128, 3, 3), (128, 128, 3, 3), padding=1)      # 3 rows: hwnc
    with kernels.use(None, winograd_small_min_size=5):
        assert not runs((8, 128, 4, 4), (32, 128, 3, 3), padding=1)
    with kernels.use(None, winograd_small_min_tiles=33):
        assert not runs((8, 128, 4, 4), (32, 128, 3, 3), padding=1)
    # (∂L/∂w on these one-tile planes: test_weight_gradient_takes_winograd4_on_one_tile_planes)
    assert kernels.choose((16, 128, 4, 4), (128, 128, 3, 3), padding=1) == ("winograd", "winograd",
                                                                            "winograd4")
    assert kernels.choose((16, 126, 4, 4), (126, 126, 3, 3), padding=1) == ("winograd", "hwnc",
                                                                            "winograd4")
    assert kernels.choose((8, 128, 4, 4), (32, 128, 3, 3), padding=1) == ("winograd", "hwnc", "hwnc")
    with kernels.use(None, winograd_small_dx_min_ck=257):              # 512·512/1024 = 256
        assert kernels.choose((32, 512, 4, 4), (512, 512, 3, 3), padding=1).input_grad == "hwnc"
    assert kernels.choose((32, 512, 3, 3), (512, 512, 3, 3), padding=1) == ("hwnc", "hwnc", "hwnc")
    assert not runs((1, 64, 16, 16), (64, 64, 3, 3), padding=1)        # 16 4×4, 64 2×2 tiles
    assert not runs((4, 64, 16, 16), (64, 64, 3, 3), padding=1, stride=2)
    assert not runs((4, 64, 16, 16), (64, 64, 3, 3), padding=2, dilation=2)
    assert not runs((4, 64, 16, 16), (64, 32, 3, 3), padding=1, groups=2)
    assert not runs((4, 64, 16, 16), (64, 64, 5, 5), padding=2)
    assert not runs((4, 64, 16, 16), (64, 64, 3, 1), padding=1)
    with winograd(force=True) as calls:                                # forced where it does
        F.conv2d(rng.standard_normal((2, 8, 9, 9)), rng.standard_normal((8, 8, 3, 3)), stride=2)
        assert not calls()                                                  # not apply: falls back


@pytest.mark.parametrize("padding", [0, 1, (2, 1), "same"])
@pytest.mark.parametrize("path", ["winograd", "winograd4"])
def test_gradcheck_through_the_winograd_forward(padding, path):
    rng = np.random.default_rng(5)
    ts = [mg.tensor(rng.standard_normal(s), requires_grad=True)
          for s in ((2, 3, 6, 5), (4, 3, 3, 3), (4,))]
    with winograd(path=path) as calls:
        assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=padding), ts)
        assert calls()


def test_conv_transpose_input_gradient_through_winograd():
    """conv_transpose2d's ∂L/∂x is conv2d's forward correlation of δ with w (stride 1:
    the Winograd kernels): against the reference vector-Jacobian product."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 3, 3, 3))                  # (C_in, C_out, kh, kw)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    with winograd() as calls:
        y = F.conv_transpose2d(xt, wt, padding=1)
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
        assert mg.gradcheck(lambda a, c: F.conv_transpose2d(a, c, padding=1), [xt, wt])
        assert calls()
    dx, dw, _ = ref.conv_transpose2d_vjp(x, w, gy, (1, 1), (1, 1), (0, 0), 1, (1, 1))
    np.testing.assert_allclose(xt.grad.data, dx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(wt.grad.data, dw, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("path", ["winograd", "winograd4"])
@pytest.mark.parametrize("N, C, HW", [(8, 64, 16), (2, 512, 12)])
def test_float32_agrees_with_im2col_on_a_resnet_layer(path, N, C, HW):
    """Float32 Winograd vs the float32 im2col path and the float64 reference on ResNet-like
    layers (F(4×4)'s transforms have entries up to 8 and 1/24: its rounding errors are a
    few times F(2×2)'s, and grow with the channels summed), at the tolerances of
    tests/test_conv.py."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, C, HW, HW)).astype(np.float32)
    w = (rng.standard_normal((C, C, 3, 3)) / np.sqrt(C * 9)).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    with winograd(path=path) as calls:
        y = F.conv2d(x, w, b, padding=1).data
        assert calls()
    with kernels.use("blas"):
        y_im2col = F.conv2d(x, w, b, padding=1).data
    want = ref.conv2d(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    scale = max(1.0, float(np.abs(want).max()))
    for got in (y, y_im2col):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize("padding", [1, 0, 2, (0, 1), "same"])
def test_input_gradient_at_stride_1_through_winograd(padding):
    """At stride 1 the backward takes ∂L/∂x as a Winograd forward correlation of δ with the
    flipped, channel-swapped kernel (padded by 2 − P) where that pays, by default: the
    same gradients as the fused im2col backward ('blas') and the reference."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 32, 16, 18))
    w = rng.standard_normal((24, 32, 3, 3)) / 24
    b = rng.standard_normal(24)
    δ = None
    grads = {}
    for force in ("default", "blas"):
        ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
        with winograd(force=False) as calls, kernels.use(None if force == "default" else force):
            y = F.conv2d(*ts, padding=padding)
            δ = rng.standard_normal(y.shape) if δ is None else δ
            y.backward(δ)
            # default: forward and ∂L/∂x both through Winograd (∂L/∂x's "input" is δ: K channels)
            assert [c[0][1] for c in calls()] == ([32, 24] if force == "default" else [])
        grads[force] = [t.grad.data for t in ts]
    for a, r in zip(grads["default"], grads["blas"]):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)
    P4 = ref.conv_padding4(padding, 16, 18, 3, 3, (1, 1), (1, 1))
    dx = ref.conv2d_vjp(x, w, δ, (1, 1), P4, (1, 1), 1)[0]
    np.testing.assert_allclose(grads["default"][0], dx, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("T2", [16, 36])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, C", [(3, 5), (40, 33), (1, 70)])
def test_flipped_kernel_transform_is_the_transform_of_the_flipped_copy(T2, dtype, K, C):
    """∂L/∂x's transformed kernels (winograd_weights(flip=True), read from w as it is) are
    those of rot180(w) with the channel axes swapped — seed 004's kernel — bit for bit;
    channel counts across the kernel transform's chunks of 32."""
    from minigrad._ext import winograd as _wino
    w = np.random.default_rng(K * C).standard_normal((K, C, 3, 3)).astype(dtype)
    want = np.empty((T2, C, K), dtype)
    _wino.winograd_weights(np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)), want, 2)
    got = np.full((T2, C, K), np.nan, dtype)
    _wino.winograd_weights(w, got, 2, True)
    np.testing.assert_array_equal(got, want)


_TURN = [4 * a + b for a in (3, 1, 2, 0) for b in (3, 1, 2, 0)]     # π: points 0 ↔ 3, both axes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K, C", [(3, 5), (40, 33), (1, 70)])
def test_turned_kernel_transform_is_the_transform_at_the_turned_points(dtype, K, C):
    """F(2×2): turning a kernel reverses its taps, and G·rev(g) = Π·G·g (Π swaps the
    points 0 and 3), so ∂L/∂x's transformed kernels are the forward's at π(ξ), transposed
    — what ∂L/∂x reads (`turned`) instead of a transform of its own. To a rounding (G's
    middle rows sum the taps in the other order); exactly on kernels of small integers."""
    from minigrad._ext import winograd as _wino
    from minigrad.ops import conv_dispatch
    rng = np.random.default_rng(K + C)
    for w in (rng.standard_normal((K, C, 3, 3)).astype(dtype),
              rng.integers(-8, 9, (K, C, 3, 3)).astype(dtype)):
        flipped = np.full((16, C, K), np.nan, dtype)
        _wino.winograd_weights(w, flipped, 2, True)
        turned = conv_dispatch.winograd_weights(w)[_TURN].transpose(0, 2, 1)
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(turned, flipped, rtol=4 * eps, atol=4 * eps)
    np.testing.assert_array_equal(turned, flipped)              # the integer kernels
    assert not np.array_equal(turned, conv_dispatch.winograd_weights(w).transpose(0, 2, 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_keeps_its_kernel_transform_for_the_input_gradient(dtype):
    """When the forward and ∂L/∂x both take F(2×2), the forward keeps U = G·w·Gᵀ (one
    transform a step instead of two) and ∂L/∂x reads it at the turned points: the same
    gradient, bit for bit, as ∂L/∂x transforming w again, and the reference's. Nothing is
    kept when x needs no gradient or nothing is recorded; backward() drops it with the
    graph."""
    from minigrad.ops import conv_dispatch
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 20, 7, 6)).astype(dtype)
    w = (rng.standard_normal((24, 20, 3, 3)) / 12).astype(dtype)
    δ = rng.standard_normal((3, 24, 7, 6)).astype(dtype)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    with winograd() as calls:
        y = F.conv2d(xt, wt, padding=1)
        node = y.grad_fn
        assert len(node.saved) == 3
        np.testing.assert_array_equal(node.saved[2], conv_dispatch.winograd_weights(w))
        y.backward(mg.tensor(δ))
        assert len(calls()) == 3                                 # forward, ∂L/∂x, ∂L/∂w
        assert node.saved == ()                                  # dropped with the graph
        paths = kernels._plan("conv2d", x.shape, w.shape, np.dtype(dtype),
                              conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 1), (7, 6))
        again = conv_dispatch.backward(x, x.shape, δ, w, conv_dispatch.Geom(
            (1, 1), (1, 1), (1, 1), 1), True, False, False, paths)[0]
        assert len(calls()) == 4
    np.testing.assert_array_equal(xt.grad.data, again)
    want = ref.conv2d_vjp(x.astype(np.float64), w.astype(np.float64), δ.astype(np.float64),
                          (1, 1), (1, 1, 1, 1), (1, 1), 1)[0]
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(xt.grad.data, want, rtol=tol, atol=tol)
    with winograd():
        assert len(F.conv2d(mg.tensor(x), wt, padding=1).grad_fn.saved) == 2   # x: no gradient
        with mg.no_grad():
            assert F.conv2d(xt, wt, padding=1).grad_fn is None
    with winograd(path="winograd4"):                             # F(4×4): no turned points
        assert len(F.conv2d(xt, wt, padding=1).grad_fn.saved) == 2


@contextlib.contextmanager
def wgrad_splits():
    """Yields the list of how each Winograd ∂L/∂w in the block split its GEMMs: True by
    point (conv2d_weight_grad_winograd_points), False by block."""
    splits, real = [], conv_dispatch._wino

    class Spy:
        def __getattr__(self, name):
            if name.startswith("conv2d_weight_grad_winograd"):
                splits.append(name.endswith("_points"))
            return getattr(real, name)
    conv_dispatch._wino = Spy()
    try:
        yield splits
    finally:
        conv_dispatch._wino = real


@settings(deadline=None)
@given(case=cases(), threads=st.integers(1, 3), points=st.booleans())
def test_weight_gradient_by_winograd_matches_reference(case, threads, points):
    """∂L/∂w[k, c] = Gᵀ·(Σ_tiles (A·Δ·Aᵀ) ⊙ (Bᵀ·d·B))·G (ext/winograd.pyx, F(2×2) and F(4×4);
    chosen only when forced): the reference's ∂L/∂w and ∂L/∂b over paddings, odd sizes (cut
    tiles whose missing outputs get Δ = 0), block sizes from one tile row to all, 1–3
    threads, the GEMMs split by block or by point, both dtypes, the scratch memory
    poisoned."""
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(dt)
    w = rng.standard_normal((case["K"], case["C"], 3, 3)).astype(dt)
    xt, wt = mg.tensor(x), mg.tensor(w, requires_grad=True)
    bt = mg.tensor(rng.standard_normal(case["K"]).astype(dt), requires_grad=True)
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(threads)
        with winograd(tiles=case["tiles"], path=case["path"], points=points) as calls, \
                kernels.trace() as log, wgrad_splits() as splits:
            y = F.conv2d(xt, wt, bt, padding=case["padding"])
            δ = rng.standard_normal(y.shape).astype(dt)
            y.backward(mg.tensor(δ))
    finally:
        mg.set_num_threads(before)
    assert {c.path for c in log if c.which == "weight_grad"} == {case["path"]}, log
    assert splits == [points]
    P4 = ref.conv_padding4(case["padding"], case["H"], case["W"], 3, 3, (1, 1), (1, 1))
    _, want_dw, want_db = ref.conv2d_vjp(x, w, δ, (1, 1), P4, (1, 1), 1)
    for got, want in ((wt.grad.numpy(), want_dw), (bt.grad.numpy(), want_db)):
        assert got.dtype == dt
        if dt == np.float64:
            np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11 * max(1.0, np.abs(want).max()))
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize("path", ["winograd", "winograd4"])
def test_weight_gradient_by_winograd_when_forced(path):
    """Forced, ∂L/∂w takes the Winograd path where the kernel applies, and not at stride 2;
    F(2×2)'s ∂L/∂w is never chosen by default (measured no faster than the other paths:
    RESULTS.md)."""
    for xs, ws in (((32, 128, 16, 16), (128, 128, 3, 3)), ((32, 16, 28, 28), (16, 16, 3, 3)),
                   ((32, 256, 4, 4), (256, 256, 3, 3))):
        assert kernels.choose(xs, ws, padding=1).weight_grad != "winograd"
    with kernels.use(path):
        assert kernels.choose((2, 4, 9, 9), (5, 4, 3, 3), padding=1).weight_grad == path
        assert kernels.choose((2, 4, 9, 9), (5, 4, 3, 3), padding=1, stride=2).weight_grad != path


def test_weight_gradient_takes_winograd4_where_it_pays():
    """F(4×4)'s ∂L/∂w by default where the forward takes F(4×4) and also C·K/(C+K) ≥ 32,
    outputs ≥ 8×8, ≥ 64 4×4 tiles and K·C ≤ 256² (the scalar transforms; with the vector
    ones wherever the forward takes F(4×4), from 7×7 outputs): ResNet-18's 32×32 … 8×8
    layers, GoogLeNet's 8×8 and 16×16, ResNet-20's 7×7 stage with the vector transforms;
    not thin layers, small batches or 512-channel layers. Each threshold, moved past the
    layer, hands it back."""
    yes = ((32, 64, 32, 32), (64, 64, 3, 3))
    for xs, ws in (yes, ((32, 128, 16, 16), (128, 128, 3, 3)), ((32, 256, 8, 8), (256, 256, 3, 3)),
                   ((16, 64, 16, 16), (192, 64, 3, 3)), ((16, 96, 8, 8), (128, 96, 3, 3))):
        assert kernels.choose(xs, ws, padding=1).weight_grad == "winograd4", (xs, ws)
    r20 = ((128, 64, 7, 7), (64, 64, 3, 3))                    # 7×7
    assert (kernels.choose(*r20, padding=1).weight_grad == "winograd4") == _vector_transforms()
    assert kernels.choose(*r20, padding=1, dtype=np.float64).weight_grad != "winograd4"
    for tuning in (dict(winograd4_vector_max_tw=1), dict(winograd4_vector_wgrad_min_size=8)):
        with kernels.use(None, **tuning):
            assert kernels.choose(*r20, padding=1).weight_grad != "winograd4", tuning
    scalar = dict(winograd4_vector_max_tw=0)
    for xs, ws, tuning in (((8, 128, 16, 16), (32, 128, 3, 3), scalar),   # C·K/(C+K) = 25.6
                           ((8, 96, 8, 8), (128, 96, 3, 3), scalar),      # 32 4×4 tiles
                           ((32, 512, 8, 8), (512, 512, 3, 3), {})):      # K·C = 512²
        with kernels.use(None, **tuning):
            assert kernels.choose(xs, ws, padding=1).weight_grad != "winograd4", (xs, ws)
    for tuning in (dict(winograd4_wgrad_min_ck=33), dict(winograd4_wgrad_min_size=33),
                   dict(winograd4_wgrad_min_tiles=32 * 64 + 1), dict(winograd4_wgrad_max_kc=64 * 64 - 1),
                   dict(winograd4_min_ck=33)):
        with kernels.use(None, winograd4_vector_max_tw=0, **tuning):      # (yes: 8 tiles a row)
            assert kernels.choose(*yes, padding=1).weight_grad != "winograd4", tuning
    why = kernels.explain(*yes, padding=1).why["weight_grad"]
    assert any("winograd4 takes it" in r for r in why)


def test_weight_gradient_takes_winograd4_on_one_tile_planes():
    """On 4×4 outputs (one 4×4 tile a sample, the 6×6 patch exactly the padded plane) F(4×4)'s
    ∂L/∂w by default where C·K/(C+K) ≥ winograd4_wgrad_min_ck and the call has at least
    winograd4_wgrad_tile_min_tiles tiles, though the forward declines F(4×4) there:
    ResNet-18's 512 × 4² (batch 32), GoogLeNet's 4×4 layers (batch 16); not on 8 samples,
    thin layers, 2×2 or 3×3 outputs, or a strided layer. Each threshold, moved past the
    layer, hands it back; a backward takes it and gives the reference's ∂L/∂w."""
    yes = ((16, 64, 4, 4), (64, 64, 3, 3))                       # C·K/(C+K) = 32, 16 tiles
    for xs, ws in (yes, ((32, 512, 4, 4), (512, 512, 3, 3)), ((16, 160, 4, 4), (320, 160, 3, 3))):
        paths = kernels.choose(xs, ws, padding=1)
        assert paths.weight_grad == "winograd4" and paths.forward != "winograd4", (xs, ws)
    for xs, ws, kw in ((((8, 512, 4, 4), (512, 512, 3, 3), {})),      # 8 tiles
                       (((16, 64, 4, 4), (48, 64, 3, 3), {})),        # C·K/(C+K) = 27.4
                       (((16, 160, 2, 2), (320, 160, 3, 3), {})),     # 2×2
                       (((16, 160, 3, 3), (320, 160, 3, 3), {})),     # 3×3
                       (((16, 160, 8, 8), (320, 160, 3, 3), dict(stride=2)))):   # 4×4, stride 2
        assert kernels.choose(xs, ws, padding=1, **kw).weight_grad != "winograd4", (xs, ws, kw)
    for tuning in (dict(winograd4_wgrad_min_ck=33), dict(winograd4_wgrad_tile_min_tiles=17)):
        with kernels.use(None, **tuning):
            assert kernels.choose(*yes, padding=1).weight_grad != "winograd4", tuning
    assert any("one 4×4 tile" in r for r in kernels.explain(*yes, padding=1).why["weight_grad"])
    rng = np.random.default_rng(5)
    x = rng.standard_normal(yes[0]).astype(np.float32)
    w = rng.standard_normal(yes[1]).astype(np.float32)
    wt = mg.tensor(w, requires_grad=True)
    with kernels.trace() as log:
        y = F.conv2d(mg.tensor(x), wt, padding=1)
        δ = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(mg.tensor(δ))
    assert [c.path for c in log if c.which == "weight_grad"] == ["winograd4"], log
    _, want, _ = ref.conv2d_vjp(x, w, δ, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(wt.grad.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_weight_gradient_splits_by_point_where_the_partials_outweigh_the_tiles():
    """∂L/∂w's GEMMs are split by point where the threads' (T², K, C) partial sums would be
    at least winograd_wgrad_points_ratio times the transformed tiles (and those fit in
    workspace_bytes): ResNet-18's 256 × 8² layers (128 4×4 tiles, 36 points), not its
    128 × 16² ones (512 tiles); each threshold, moved past the layer, hands it back. A
    backward of that layer takes the split the rule gives."""
    assert kernels._winograd_wgrad_points(256, 256, 128, 36, 4, 2)
    assert not kernels._winograd_wgrad_points(128, 128, 512, 36, 4, 2)
    with kernels.use(None, winograd_wgrad_points_ratio=2.01):
        assert not kernels._winograd_wgrad_points(256, 256, 128, 36, 4, 2)
    with kernels.use(None, workspace_bytes=36 * 512 * 128 * 4 - 1):
        assert not kernels._winograd_wgrad_points(256, 256, 128, 36, 4, 2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 40, 16, 16)).astype(np.float32)   # 16 4×4 tiles, C + K = 64
    w = rng.standard_normal((24, 40, 3, 3)).astype(np.float32)
    δ = rng.standard_normal((1, 24, 16, 16)).astype(np.float32)
    before = mg.get_num_threads()
    try:
        for threads, points in ((2, True), (1, False)):          # nt·960 against 64·16 = 1024
            assert kernels._winograd_wgrad_points(40, 24, 16, 36, 4, threads) == points
            mg.set_num_threads(threads)
            with winograd(path="winograd4"), wgrad_splits() as splits:
                F.conv2d(mg.tensor(x), mg.tensor(w, requires_grad=True), padding=1).backward(
                    mg.tensor(δ))
            assert splits == [points]
    finally:
        mg.set_num_threads(before)


def test_weight_gradient_of_integers_is_exact():
    """Integer images, kernels and δ: F(4×4)'s ∂L/∂w, every constant of its transforms an
    integer until one division by 576 (ext/winograd.pyx), gives the exact integer sums in
    float32 — as the other paths do."""
    rng = np.random.default_rng(11)
    x = rng.integers(-3, 4, (2, 5, 9, 11)).astype(np.float32)
    w = rng.integers(-2, 3, (4, 5, 3, 3)).astype(np.float32)
    δ = rng.integers(-2, 3, (2, 4, 9, 11)).astype(np.float32)
    want = ref.conv2d_vjp(x.astype(np.float64), w.astype(np.float64), δ.astype(np.float64),
                          (1, 1), (1, 1, 1, 1), (1, 1), 1)[1]
    for path in ("winograd", "winograd4"):
        wt = mg.tensor(w, requires_grad=True)
        with winograd(path=path):
            F.conv2d(mg.tensor(x), wt, padding=1).backward(mg.tensor(δ))
        np.testing.assert_array_equal(wt.grad.numpy(), want)


# ---- F(4×4)'s vectorised tile transforms (ext/winograd4.h) ------------------------------------

def _vector_transforms():
    return kernels._WINO4_BUILD and kernels.simd_level() >= 2


@st.composite
def vector_cases(draw):
    """float32 F(4×4) layers from one tile to chunks of 16 tiles across tile rows and
    samples, rows of 1 to 10 tiles (the vector transforms forced onto any width), every
    padding up to 2 on each side (tiles whose patches read padding on any edge)."""
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = max(1, 3 - 2 * ph) + draw(st.integers(0, 14))
    W = max(1, 3 - 2 * pw) + draw(st.integers(0, 38))
    return dict(N=draw(st.integers(1, 5)), C=draw(st.integers(1, 20)), K=draw(st.integers(1, 20)),
                H=H, W=W, padding=(ph, pw), bias=draw(st.booleans()),
                tiles=draw(st.sampled_from([None, 1, 5, 1 << 20])),
                threads=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**31)))


class _VecSpy:
    """conv_dispatch's winograd module, recording the `vec` argument of each kernel call."""

    def __init__(self, module):
        self.module, self.vec = module, []

    def __getattr__(self, name):
        fn = getattr(self.module, name)
        if not name.startswith("conv2d_"):
            return fn

        def call(*args, **kwargs):
            self.vec.append(args[-1])
            return fn(*args, **kwargs)
        return call


def _winograd4_pass(case, vector, rows=None):
    """y, ∂L/∂x, ∂L/∂w, ∂L/∂b of the case's layer, every pass forced to 'winograd4', with
    the vector transforms (winograd4.h) on every width or off (and checked to be so: every
    kernel call got vec=`vector`); rows (with vector False): the tile-row input transform
    on every width (True), never (False; None too)."""
    from minigrad.ops import conv_dispatch
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((case["K"], case["C"], 3, 3)).astype(np.float32)
    b = rng.standard_normal(case["K"]).astype(np.float32) if case["bias"] else None
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    before, spy = mg.get_num_threads(), _VecSpy(conv_dispatch._wino)
    try:
        mg.set_num_threads(case["threads"])
        conv_dispatch._wino = spy
        with winograd(tiles=case["tiles"], path="winograd4") as calls, \
                kernels.use("winograd4", winograd4_vector_max_tw=1 << 20 if vector else 0,
                            winograd4_rows_min_tw=1 if rows else 1 << 30):
            y = F.conv2d(xt, wt, None if b is None else mg.tensor(b), padding=case["padding"])
            δ = np.random.default_rng(case["seed"] + 1).standard_normal(y.shape).astype(np.float32)
            y.backward(mg.tensor(δ))
    finally:
        mg.set_num_threads(before)
        conv_dispatch._wino = spy.module
    assert calls(), "the winograd4 kernel did not run"
    assert spy.vec and set(spy.vec) == {vector}, spy.vec      # forward, ∂L/∂x, ∂L/∂w
    return x, w, b, δ, (y.numpy(), xt.grad.numpy(), wt.grad.numpy())


def _agrees_with_the_scalar_loops_and_the_reference(case, x, w, b, δ, got):
    """got (y, ∂L/∂x, ∂L/∂w of _winograd4_pass) equals the scalar loops' to a float32
    rounding and the reference's to F(4×4)'s tolerance."""
    _, _, _, _, scalar = _winograd4_pass(case, vector=False)
    P4 = ref.conv_padding4(case["padding"], case["H"], case["W"], 3, 3, (1, 1), (1, 1))
    want_y = ref.conv2d(x, w, b, (1, 1), P4, (1, 1), 1)
    want_dx, want_dw, _ = ref.conv2d_vjp(x, w, δ, (1, 1), P4, (1, 1), 1)
    for g, s, want in zip(got, scalar, (want_y, want_dx, want_dw)):
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(g, s, rtol=1e-6, atol=1e-6 * scale)
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.skipif(not _vector_transforms(), reason="winograd4.h's transforms need AVX-512")
@settings(deadline=None)
@given(case=vector_cases())
def test_vector_transforms_match_the_scalar_loops_and_the_reference(case):
    """winograd4.h's gathers (Bᵀ·d·B of 16 tiles' patches, A·Δ·Aᵀ of their δ) and scatters
    (Aᵀ·M·A into y) compute what winograd.pyx's loops do, the same formulas in the same
    order: the forward, ∂L/∂x (the forward of δ with the turned kernel) and ∂L/∂w agree
    with the scalar loops' to a float32 rounding and with the reference to F(4×4)'s
    tolerance, over cut tiles, padding on every edge, chunks across tile rows and samples,
    1–3 threads, the scratch memory poisoned."""
    _agrees_with_the_scalar_loops_and_the_reference(case, *_winograd4_pass(case, vector=True))


@pytest.mark.skipif(not _vector_transforms(), reason="winograd4.h's transforms need AVX-512")
@settings(deadline=None)
@given(case=vector_cases())
def test_row_transforms_match_the_scalar_loops_and_the_reference(case):
    """winograd4.h's tile-row input transform (mg_wino4_input_rows: a tile row's patches a
    vector, their rows read by masked loads and split by permutes) computes what
    _input_block4 does, the same formulas in the same order: the forward, ∂L/∂x and ∂L/∂w
    agree with the scalar loops' to a float32 rounding and with the reference to F(4×4)'s
    tolerance, over rows of 1 to 10 tiles, cut tiles, padding on every edge, 1–3 threads."""
    _agrees_with_the_scalar_loops_and_the_reference(
        case, *_winograd4_pass(case, vector=False, rows=True))


@pytest.mark.skipif(not _vector_transforms(), reason="winograd4.h's transforms need AVX-512")
@pytest.mark.parametrize("padding", [(0, 2), (2, 1), (1, 0)])
def test_row_transforms_on_rows_of_more_than_16_tiles(padding):
    """A tile row longer than a vector (70 columns: 17–18 tiles, in pieces of 16 and the
    rest) through the tile-row input transform equals the scalar loops' to a float32
    rounding, in all three passes."""
    case = dict(N=2, C=3, K=4, H=9, W=70, padding=padding, bias=True, tiles=None,
                threads=2, seed=sum(padding))
    _, _, _, _, got = _winograd4_pass(case, vector=False, rows=True)
    _, _, _, _, scalar = _winograd4_pass(case, vector=False)
    for g, s in zip(got, scalar):
        np.testing.assert_allclose(g, s, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(s).max())))


def test_row_transforms_taken_on_wide_tile_rows_where_the_gathers_are_not():
    """The rule: float32, SIMD level 2, at least winograd4_rows_min_tw 4×4 tiles a row (a
    32×32 plane, 8 a row; not 16×16, where the gathers are taken), F(4×4) only; and a
    ResNet-18 layer on a 32×32 plane runs it in all three passes."""
    from minigrad.ops import conv_dispatch
    on = _vector_transforms()
    assert conv_dispatch._wino4_rows(4, 8, False, np.float32) == on
    assert not conv_dispatch._wino4_rows(4, 8, True, np.float32)       # the gathers' width
    assert not conv_dispatch._wino4_rows(4, 8, False, np.float64)
    assert not conv_dispatch._wino4_rows(2, 8, False, np.float32)
    assert not conv_dispatch._wino4_rows(4, 4, False, np.float32)       # 16×16: 4 a row
    with kernels.use(None, winograd4_rows_min_tw=9):
        assert not conv_dispatch._wino4_rows(4, 8, False, np.float32)
    calls, real = [], conv_dispatch._wino

    class Spy:
        def __getattr__(self, name):
            fn = getattr(real, name)
            if not name.startswith("conv2d_"):
                return fn

            def call(*args, **kwargs):
                calls.append((name, kwargs.get("rows_vec")))
                return fn(*args, **kwargs)
            return call
    rng = np.random.default_rng(2)
    x = mg.tensor(rng.standard_normal((2, 64, 32, 32)).astype(np.float32), requires_grad=True)
    w = mg.tensor(rng.standard_normal((64, 64, 3, 3)).astype(np.float32), requires_grad=True)
    conv_dispatch._wino = Spy()
    try:
        with kernels.use("winograd4"):
            F.conv2d(x, w, padding=1).backward(mg.tensor(np.ones((2, 64, 32, 32), np.float32)))
    finally:
        conv_dispatch._wino = real
    assert len(calls) == 3 and all(r == on for _, r in calls), calls


def test_vector_transforms_taken_on_short_tile_rows_only():
    """The rule: float32, SIMD level 2, at most winograd4_vector_max_tw 4×4 tiles a row
    (ResNet-20's 14×14 and 7×7, ResNet-18's 16×16 and below; not a 32×32 plane)."""
    from minigrad.ops import conv_dispatch as D
    x32, x64 = np.zeros((2, 3, 4, 4), np.float32), np.zeros((2, 3, 4, 4))
    on = _vector_transforms()
    assert D._wino4_vector(4, 4, x32, x32) == on
    assert not D._wino4_vector(4, 5, x32, x32)                  # 5 tiles a row: the loops
    assert not D._wino4_vector(4, 4, x32, x64)                  # float64: the loops
    assert not D._wino4_vector(2, 4, x32, x32)                  # F(2×2): its own loops
    with kernels.use(None, winograd4_vector_max_tw=8):
        assert D._wino4_vector(4, 8, x32, x32) == on
    with kernels.use(None, winograd4_vector_max_tw=0):
        assert not D._wino4_vector(4, 1, x32, x32)


def test_winograd4_with_vector_transforms_takes_small_layers():
    """Where its vector transforms run (float32, AVX-512, rows of ≤ 4 tiles), F(4×4) takes
    every pass of layers with C·K/(C+K) ≥ winograd4_vector_min_ck on at most
    winograd4_vector_max_tiles 4×4 tiles (outputs ≥ winograd4_min_size): DenseNet's 128 → 32
    on 16×16 and 8×8, GoogLeNet's 16 → 32, ResNet-20's 32 → 32 on 128 × 14² (2048 tiles) but on AMD
    CPUs (there the cap is 1024: w16); not 16 → 16 (C·K/(C+K) = 8), 4×4 outputs, rows of
    5 tiles, float64. Each
    threshold, moved past a layer, hands it back."""
    if not _vector_transforms() or not _blas.available():
        pytest.skip("winograd4.h's transforms need AVX-512")
    four = ("winograd4",) * 3
    for xs, K in (((8, 128, 16, 16), 32), ((8, 128, 8, 8), 32), ((16, 16, 8, 8), 32),
                  ((64, 32, 8, 8), 32)):
        assert tuple(kernels.choose(xs, (K, xs[1], 3, 3), padding=1)) == four, xs
    for xs, K in (((32, 16, 16, 16), 16), ((8, 128, 4, 4), 32), ((8, 128, 20, 20), 32)):
        assert kernels.choose(xs, (K, xs[1], 3, 3), padding=1).forward != "winograd4", xs
    # ResNet-20's 32 → 32 on 128 × 14² (2048 tiles): F(4×4), but on AMD CPUs (the cap)
    resnet = ((128, 32, 14, 14), (32, 32, 3, 3))
    amd = kernels._CPU_VENDOR == "AuthenticAMD"
    assert (kernels.choose(*resnet, padding=1).forward == "winograd4") == (not amd)
    with kernels.use(None, winograd4_vector_max_tiles=1024):
        assert kernels.choose(*resnet, padding=1).forward != "winograd4"
    dense = ((8, 128, 16, 16), (32, 128, 3, 3))
    assert "winograd4" not in kernels.choose(*dense, padding=1, dtype=np.float64)
    # arrays of 2³¹ elements or more: the loops' rule (32-bit offsets in the vector code)
    assert kernels._winograd4_vector(4, np.float32, 2 ** 31 - 1)
    assert not kernels._winograd4_vector(4, np.float32, 2 ** 31)
    for tuning in (dict(winograd4_vector_min_ck=26), dict(winograd4_vector_max_tiles=127),
                   dict(winograd4_vector_max_tw=3), dict(winograd4_min_size=17)):
        with kernels.use(None, **tuning):
            assert "winograd4" not in kernels.choose(*dense, padding=1), tuning
    with kernels.use(None, winograd4_vector_wgrad_min_size=17):
        assert kernels.choose(*dense, padding=1).weight_grad != "winograd4"
    why = str(kernels.explain(*dense, padding=1))
    assert "winograd4 takes it with its vector transforms" in why


_GUARDED = r"""
import ctypes, mmap, sys
import numpy as np
from minigrad import _blas
from minigrad._ext import winograd as W

libc = ctypes.CDLL(None)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
keep = []

def guarded(shape, fill):
    # a float32 array whose last byte is followed by a page that cannot be read or written
    n = int(np.prod(shape)) * 4
    pages = n // mmap.PAGESIZE + 2
    mm = mmap.mmap(-1, pages * mmap.PAGESIZE)
    buf = np.frombuffer(mm, np.uint8)
    end = (pages - 1) * mmap.PAGESIZE
    assert libc.mprotect(buf.ctypes.data + end, mmap.PAGESIZE, 0) == 0
    a = buf[end - n:end].view(np.float32).reshape(shape)
    a[...] = fill
    keep.append((mm, buf))
    return a

N, C, K, H, Wd, p = 1, 3, 2, 12, 12, 1          # one block of 3 tile rows: 9 tiles (< 16)
TH = TW = 3
P, rows = 36, 3
rng = np.random.default_rng(0)
x = guarded((N, C, H, Wd), rng.standard_normal((N, C, H, Wd)))
w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
u = np.empty((P, K, C), np.float32)
W.winograd_weights(w, u, 1)
fn, ilp64 = _blas.gemm(np.float32)
scratch = guarded((1, P * (C + K) * rows * TW), 0)
y = guarded((N, K, H, Wd), 0)
W.conv2d_forward_winograd(x, u, guarded((K,), 1), y, scratch, p, p, rows, fn, ilp64, 1, True)
dy = guarded((N, K, H, Wd), rng.standard_normal((N, K, H, Wd)))
acc = guarded((1, P * K * C), 0)
W.conv2d_weight_grad_winograd(x, dy, acc, scratch, np.zeros(1, np.uint8), p, p, rows, 4, fn, ilp64, 1,
                              True)
print("ok")
"""


@pytest.mark.skipif(not _vector_transforms() or not _blas.available() or sys.platform != "linux",
                    reason="winograd4.h's transforms need AVX-512 (and mprotect: Linux)")
def test_vector_transforms_touch_nothing_past_their_arrays():
    """With a block of 9 tiles (a chunk of fewer than 16 lanes) and x, y, δ, the scratch
    memory and the bias each ending right before a page that cannot be read or written,
    the vector forward and ∂L/∂w run to the end: no unmasked lane loads or stores past an
    array (a child process, so that a fault fails this test and not the run)."""
    import subprocess
    r = subprocess.run([sys.executable, "-c", _GUARDED], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


def test_winograd4_weight_grad_blocks_grow_on_few_channels():
    """F(4×4)'s ∂L/∂w takes blocks winograd4_wgrad_channels // min(C, K) times larger on
    layers of fewer channels (its 36 GEMMs per block are (K, tiles) @ (tiles, C)); the
    forward, ∂L/∂x, F(2×2) and layers of more channels keep winograd4_block_tiles."""
    N, TH, TW, nt = 128, 4, 4, 2                       # ResNet-20's 32×14² stage
    with kernels.use(None, winograd4_block_tiles=32, winograd4_wgrad_channels=64):
        plain = kernels._winograd_rows(N, TH, TW, nt, 4)
        assert plain == 8                              # 8 tile rows × 4 = 32 tiles a block
        assert kernels._winograd_rows(N, TH, TW, nt, 4, 32) == 16       # 64 tiles
        assert kernels._winograd_rows(N, TH, TW, nt, 4, 16) == 32       # 128 tiles
        assert kernels._winograd_rows(N, TH, TW, nt, 4, 64) == plain
        assert kernels._winograd_rows(N, TH, TW, nt, 2, 32) == kernels._winograd_rows(
            N, TH, TW, nt, 2)
    with kernels.use(None, winograd4_block_tiles=32, winograd4_wgrad_channels=1):
        assert kernels._winograd_rows(N, TH, TW, nt, 4, 32) == plain


def test_winograd4_weight_grad_on_larger_blocks_matches_the_reference():
    """∂L/∂w by F(4×4) on few channels, with the larger blocks the rule gives (the default
    tuning), equals the reference correlation."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 8, 13, 11))
    w = rng.standard_normal((5, 8, 3, 3))
    δ = rng.standard_normal((6, 5, 13, 11))
    with winograd(path="winograd4") as calls:
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        F.conv2d(xt, wt, padding=1).backward(mg.tensor(δ))
    assert calls()
    want_x, want_w, _ = ref.conv2d_vjp(x, w, δ, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(wt.grad.numpy(), want_w, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(xt.grad.numpy(), want_x, rtol=1e-9, atol=1e-9)


# ---- the kernel transforms, 16 kernels a vector (ext/wino_kernels.h) -------------------------

def _vector_kernel_transforms():
    return kernels._WINOK_BUILD and kernels.simd_level() >= 2


@pytest.mark.skipif(not _vector_kernel_transforms(), reason="wino_kernels.h needs AVX-512")
@settings(max_examples=60, deadline=None)
@given(K=st.integers(1, 70), C=st.integers(1, 70), T2=st.sampled_from([16, 36]),
       flip=st.booleans(), partials=st.integers(1, 3), threads=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1))
def test_vector_kernel_transforms_equal_the_loops_bit_for_bit(K, C, T2, flip, partials, threads,
                                                              seed):
    """G·w·Gᵀ (F(2×2) and F(4×4), and flip: ∂L/∂x's turned, channel-swapped kernel) and its
    adjoint Gᵀ·M·G of ∂L/∂w (M the sum of 1–3 threads' partials, in order), 16 kernels a
    vector, give the plain loops' values bit for bit: channel counts across and within the
    vectors' 16 lanes, 1–3 threads, the outputs poisoned first."""
    from minigrad._ext import winograd as _wino
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    shape = (T2, C, K) if flip else (T2, K, C)
    want, got = np.full(shape, np.nan, np.float32), np.full(shape, np.nan, np.float32)
    _wino.winograd_weights(w, want, threads, flip, False)
    _wino.winograd_weights(w, got, threads, flip, True)
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))     # the bits
    m = (rng.standard_normal((partials, T2, K, C)) * 10).astype(np.float32)
    want, got = np.full(w.shape, np.nan, np.float32), np.full(w.shape, np.nan, np.float32)
    _wino.winograd_weight_grad(m, want, threads, False)
    _wino.winograd_weight_grad(m, got, threads, True)
    np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32))


@pytest.mark.skipif(not _vector_kernel_transforms(), reason="wino_kernels.h needs AVX-512")
@pytest.mark.parametrize("path", ["winograd", "winograd4"])
def test_layers_take_the_vector_kernel_transforms_with_the_same_numbers(path, monkeypatch):
    """A float32 layer's forward, ∂L/∂x and ∂L/∂w through F(2×2) and F(4×4) take the vector
    kernel transforms (float64 and too many weights do not) and equal, bit for bit, the same
    passes with the loops."""
    assert kernels._winograd_kernels_vector(np.float32, 64 * 48 * 9)
    assert not kernels._winograd_kernels_vector(np.float64, 64 * 48 * 9)
    assert not kernels._winograd_kernels_vector(np.float32, 2 ** 27)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 48, 9, 10)).astype(np.float32)
    w = (rng.standard_normal((64, 48, 3, 3)) * 0.1).astype(np.float32)
    δ = rng.standard_normal((3, 64, 9, 10)).astype(np.float32)
    calls = []
    vector = kernels._winograd_kernels_vector

    def spy(dtype, weights):
        calls.append(vector(dtype, weights))
        return calls[-1]
    out = []
    for fn in (spy, lambda dtype, weights: False):
        monkeypatch.setattr(kernels, "_winograd_kernels_vector", fn)
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        with forced(path) as log:
            y = F.conv2d(xt, wt, padding=1)
            y.backward(mg.tensor(δ))
        assert {c.which for c in log if c.path == path} >= {"forward", "input_grad", "weight_grad"}
        out.append([y.numpy(), xt.grad.numpy(), wt.grad.numpy()])
    assert calls and all(calls)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
