"""conv2d's 'hwnc' path (ext/conv_hwnc.pyx: stride 1, one group, small planes): x copied
into (H, OW, N, C·kw) rows, one GEMM per kernel row. Every pass against the plain loops
of tests/reference.py over random shapes, kernels, paddings (asymmetric too), dilations,
dtypes and thread counts, with the scratch memory poisoned; the dispatch rules; clear
errors where the path cannot run."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import _blas, kernels
from minigrad.ops import conv_dispatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
from kernel_spy import forced, poison_workspaces, ran  # noqa: E402

pytestmark = pytest.mark.skipif(not _blas.available(), reason="'hwnc' needs NumPy's OpenBLAS")


@st.composite
def cases(draw):
    """Kernel 1–4 per axis, stride 1–3, dilation 1–2, padding 0–3 on each of the four sides (so the
    first kernel row to cover every output row is not always the middle one, and some
    kernel rows reach no row of the plane), planes of 1–7 pixels per axis."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(4))          # top, bottom, left, right
    H = max(1, (kh - 1) * dh + 1 - pad[0] - pad[1]) + draw(st.integers(0, 6))
    W = max(1, (kw - 1) * dw + 1 - pad[2] - pad[3]) + draw(st.integers(0, 6))
    return dict(N=draw(st.integers(1, 5)), C=draw(st.integers(1, 9)), K=draw(st.integers(1, 9)),
                H=H, W=W, k=(kh, kw), S=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                D=(dh, dw), pad=pad, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                threads=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_hwnc_matches_reference(case):
    """y = b + x ⋆ w, ∂L/∂x (at stride 1: the flipped correlation, any dilation), ∂L/∂w and
    ∂L/∂b by 'hwnc' with padding (pt, pb, pl, pr): the numbers of the reference loops, on
    1–3 threads, the scratch memory poisoned."""
    rng = np.random.default_rng(case["seed"])
    dt = case["dtype"]
    N, C, K, (kh, kw), S, (dh, dw) = (case[k] for k in "N C K k S D".split())
    pt, pb, pl, pr = case["pad"]
    x = rng.standard_normal((N, C, case["H"], case["W"])).astype(dt)
    w = rng.standard_normal((K, C, kh, kw)).astype(dt)
    b = rng.standard_normal(K).astype(dt) if case["bias"] else None
    want_y = ref.conv2d(x, w, b, S, case["pad"], (dh, dw), 1)
    gy = rng.standard_normal(want_y.shape).astype(dt)
    want = ref.conv2d_vjp(x, w, gy, S, case["pad"], (dh, dw), 1)
    g = conv_dispatch.Geom(S, (pt, pl), (dh, dw), 1)
    dx_path = "hwnc" if S == (1, 1) else "direct"
    paths = kernels.Paths("hwnc", dx_path, "hwnc")
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(case["threads"])
        poison_workspaces()
        with kernels.trace() as log:
            y = conv_dispatch.correlate(x, w, b, want_y.shape[2:], g, "hwnc")
            got = conv_dispatch.backward(x, x.shape, gy, w, g, True, True, True, paths)
            # ∂L/∂b alone (no x), as the bias-gradient op of a double backward calls it
            db_alone = conv_dispatch.bias_grad(gy, x.shape, w, g, paths)
    finally:
        mg.set_num_threads(before)
    assert [c.path for c in log] == ["hwnc", dx_path, "hwnc", "hwnc", "hwnc"], log
    tol = 1e-4 if dt == np.float32 else 1e-10
    for name, a, r in zip(["y", "∂L/∂x", "∂L/∂w", "∂L/∂b", "∂L/∂b alone"],
                          [y, *got, db_alone], [want_y, *want, want[2]]):
        assert a.dtype == dt and a.shape == r.shape, name
        np.testing.assert_allclose(a, r, rtol=tol, atol=tol * max(1.0, np.abs(r).max()),
                                   err_msg=name)


@pytest.mark.parametrize("xs, ws, padding", [
    ((6, 24, 4, 4), (40, 24, 3, 3), 1),          # a GoogLeNet 4×4 layer, smaller
    ((5, 20, 2, 2), (12, 20, 3, 3), 1),          # DenseNet's 2×2 planes: most taps in padding
    ((4, 96, 7, 7), (96, 96, 3, 3), 1),          # 7×7, more channels than w16 takes
    ((3, 8, 5, 6), (6, 8, 2, 2), "same"),        # even kernel: one row more below
])
def test_default_takes_hwnc_on_small_planes(xs, ws, padding):
    """By default these stride-1 layers run on 'hwnc' — every pass on planes of ≤ 16
    pixels; the forward and ∂L/∂x on 7×7 where w16's flat streams decline them or are
    less than hwnc_vs_w16_fill outputs, and ∂L/∂w there too where w16's streams
    decline —, with the reference's gradients."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    got = {}
    for path in (None, "direct"):
        ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
        with forced(path, path is not None) as log:
            y = F.conv2d(*ts, padding=padding)
            (y * mg.tensor(np.sin(np.arange(y.numpy().size)).reshape(y.shape))).sum().backward()
        got[path] = [y.numpy()] + [t.grad.numpy() for t in ts]
        if path is None:
            paths = {c.which: c.path for c in log if c.op == "conv2d"}
            assert paths["forward"] == paths["input_grad"] == paths["weight_grad"] == "hwnc", paths
    for a, r in zip(got[None], got["direct"]):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


def test_rules_where_hwnc_declines():
    """On 8×8 planes only where every other specialised path declines, not at stride 2 (it runs
    those when forced, slower than 'blas'), not with groups, not for a 1×1 layer (the
    pointwise GEMM needs no copy at all); the tuning fields move the limit."""
    g1 = conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 1)
    with kernels.use(None, hwnc_fallback_max_pixels=0):
        plan = kernels._plan("conv2d", (8, 64, 8, 8), (64, 64, 3, 3), np.dtype(np.float32), g1, (8, 8))
        assert "hwnc" not in plan
    # up to hwnc_fallback_max_pixels where every other specialised path declines: ∂L/∂x of
    # 128 → 16 channels on 8×8 (C = 128 is too many for w16; C·K/(C+K) = 14 too few for
    # F(4×4), 128 2×2 tiles too few for F(2×2))
    # (with F(4×4)'s vector transforms, F(4×4) takes the layer: 14 ≥ winograd4_vector_min_ck)
    with kernels.use(None, winograd4_vector_max_tw=0):
        plan = kernels._plan("conv2d", (8, 128, 8, 8), (16, 128, 3, 3), np.dtype(np.float32), g1,
                             (8, 8))
    assert plan.input_grad == "hwnc" and plan.forward != "hwnc", plan
    assert "hwnc" not in kernels.choose((8, 128, 9, 9), (32, 128, 3, 3), padding=1)
    assert kernels.choose((8, 64, 8, 8), (64, 64, 3, 3), padding=1, stride=2).forward != "hwnc"
    assert "hwnc" not in kernels.choose((8, 64, 4, 4), (64, 32, 3, 3), padding=1, groups=2)
    assert "hwnc" not in kernels.choose((8, 64, 4, 4), (64, 64, 1, 1))
    with kernels.use(None, hwnc_max_pixels=64, hwnc_wgrad_max_pixels=64, hwnc_vs_w16_fill=1.0,
                     winograd4_min_ck=10**9, winograd4_vector_min_ck=10**9):
        assert set(kernels.choose((8, 64, 8, 8), (64, 64, 3, 3), padding=1)) == {"hwnc"}
    why = kernels.explain((8, 64, 4, 4), (64, 64, 3, 3), padding=1)
    assert "hwnc takes it" in str(why)


def test_hwnc_refuses_what_it_cannot_run():
    """Called with a geometry its loops do not cover, the path raises a ValueError naming
    the shapes instead of computing something else."""
    x = np.ones((2, 4, 4, 4), np.float32)
    w = np.ones((3, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"'hwnc' path needs one group.*\(2, 4, 4, 4\)"):
        conv_dispatch.correlate(x, w, None, (4, 4), conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 2),
                                "hwnc")
    with pytest.raises(ValueError, match="'hwnc' path"):
        conv_dispatch.correlate(x, np.ones((3, 2, 3, 3), np.float32), None, (4, 4),
                                conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 1), "hwnc")
    δ = np.ones((2, 3, 2, 2), np.float32)                  # ∂L/∂x at stride 2: not this path
    with pytest.raises(ValueError, match=r"'hwnc' path needs stride 1 and one group"):
        conv_dispatch.backward(x, x.shape, δ, w, conv_dispatch.Geom((2, 2), (1, 1), (1, 1), 1),
                               True, False, False, kernels.Paths("hwnc", "hwnc", "hwnc"))


def test_hwnc_scratch_is_fully_written():
    """Two calls of different sizes through the same (poisoned) scratch buffers: every
    value read was written by this call (the zeroed rows the first kernel row does not
    cover included)."""
    rng = np.random.default_rng(7)
    g = conv_dispatch.Geom((1, 1), (2, 0), (1, 1), 1)      # 2 rows of padding on top only
    for xs, ws in (((3, 5, 4, 6), (4, 5, 3, 2)), ((2, 3, 3, 3), (6, 3, 3, 1))):
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        out_hw = (xs[2] + 2 - ws[2] + 1, xs[3] - ws[3] + 1)
        poison_workspaces()
        with kernels.trace() as log:
            y = conv_dispatch.correlate(x, w, None, out_hw, g, "hwnc")
        assert ran(log, "hwnc")
        want = ref.conv2d(np.pad(x, ((0, 0), (0, 0), (2, 0), (0, 0))), w, None, (1, 1),
                          (0, 0, 0, 0), (1, 1), 1)
        np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)


def test_hwnc_yields_small_planes_to_w16_where_its_grid_is_full():
    """hwnc's claim on planes of ≤ hwnc_max_pixels gives way to w16's flat streams where at
    least hwnc_vs_w16_fill of their grid positions are outputs: ResNet-20's 7×7 stage
    ('same' 3×3: 49 of 64) runs ∂L/∂w on w16 where F(4×4) does not take it (the forward and
    ∂L/∂x take Winograd F(4×4), asked first; without it, w16 too); a 'same' 5×5 on the same
    planes (49 of 121) keeps hwnc for the forward and ∂L/∂x, unless the threshold is
    lowered."""
    if not _blas.available() or kernels.simd_level() == 0:
        pytest.skip("needs OpenBLAS and AVX2/AVX-512")
    # (k32 held to strided layers, as on the Xeon: on AMD CPUs it takes such a ∂L/∂w first,
    # and, in w16's place, the forward and ∂L/∂x)
    with kernels.use(None, winograd4_vector_wgrad_min_size=8,     # (F(4×4)'s ∂L/∂w declines)
                     k32_wgrad_stride1=False):
        assert kernels.choose((128, 64, 7, 7), (64, 64, 3, 3), padding=1) == ("winograd4",) * 2 + ("w16",)
    with kernels.use(None, winograd4_min_ck=10**9, winograd4_vector_min_ck=10**9,
                     k32_wgrad_stride1=False, k32_before_w16=False):
        assert kernels.choose((128, 64, 7, 7), (64, 64, 3, 3), padding=1) == ("w16",) * 3
    five = kernels.choose((16, 16, 7, 7), (16, 16, 5, 5), padding=2)
    assert (five.forward, five.input_grad) == ("hwnc", "hwnc"), five
    with kernels.use(None, hwnc_vs_w16_fill=0.4):
        five = kernels.choose((16, 16, 7, 7), (16, 16, 5, 5), padding=2)
        assert (five.forward, five.input_grad) == ("w16", "w16"), five
    # more output channels than w16's flat streams take (w16_flat_max_k): hwnc stays
    with kernels.use(None, winograd4_min_ck=10**9, winograd4_vector_min_ck=10**9):
        assert kernels.choose((128, 96, 7, 7), (96, 96, 3, 3), padding=1)[:2] == ("hwnc", "hwnc")
