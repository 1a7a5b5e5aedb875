"""conv2d's direct loops of ext/direct16.h for float32 layers, vectorised over 16 output
channels ('k16'), over runs of 16 output pixels ('w16') or over tiles of 32 output
channels × 8 output pixels ('k32'): forward against the reference over random shapes,
strides, dilations and paddings; w16's ∂L/∂w and ∂L/∂b against the direct loops; the
dispatch rules; gradients through them."""
import contextlib
import os
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels
from minigrad.ops import conv_dispatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
from kernel_spy import forced, poison_workspaces, ran  # noqa: E402


def k16(force=True, **tuning):
    """Force (or not) the 'k16' path (the scratch memory poisoned first: see kernel_spy);
    yields the kernels.trace() log."""
    return forced("k16", force, **tuning)


def w16(force=True, **tuning):
    """The same for the 'w16' path."""
    return forced("w16", force, **tuning)


def k32(force=True, **tuning):
    """The same for the 'k32' path."""
    return forced("k32", force, **tuning)


@contextlib.contextmanager
def simd_level(level):
    """kernels' SIMD level set to `level` for the block: w16's ∂L/∂w takes blocks of 8
    output channels at level 2 (its AVX-512 build), of 4 below (every CPU's build), so
    both builds run here on an AVX-512 machine."""
    before = kernels._SIMD_LEVEL
    kernels._SIMD_LEVEL = level
    try:
        yield
    finally:
        kernels._SIMD_LEVEL = before


def geometry(draw, extra_w):
    """Kernel 1–5, dilation 1–2, padding 0–2 per axis, and the smallest input the dilated
    kernel fits in plus a few rows and up to `extra_w` columns (rows shorter than, equal
    to and longer than one run of the kernels): (kh, kw), (dh, dw), (ph, pw), H, W."""
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = max(1, (kh - 1) * dh + 1 - 2 * ph) + draw(st.integers(0, 12))
    W = max(1, (kw - 1) * dw + 1 - 2 * pw) + draw(st.integers(0, extra_w))
    return (kh, kw), (dh, dw), (ph, pw), H, W


@st.composite
def cases(draw):
    (kh, kw), (dh, dw), (ph, pw), H, W = geometry(draw, 25)     # runs of 10 and of 16
    kernel = draw(st.sampled_from(["k16", "w16"]))
    # k16: K a multiple of 16; w16: any K (its blocks of 8 or 16 channels padded), column
    # stride 1, rows shorter and longer than one run of 16
    K = draw(st.sampled_from([16, 32, 48]) if kernel == "k16" else st.integers(1, 40))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)) if kernel == "k16" else 1)
    if kernel == "w16" and draw(st.booleans()):  # one stride s on both axes: over x's phases
        S, (dh, dw) = (draw(st.integers(2, 3)),) * 2, (1, 1)
        # (an axis with one output has its stride set to 1: stride (1, s), not the phases')
        assume(min(H + 2 * ph - kh, W + 2 * pw - kw) >= S[0])
    # w16 at row stride 1 (or over the phases) runs over flat streams: both builds (8 × 48
    # and 4 × 32 positions), groups of 1 … N samples (the last one partial)
    return dict(kernel=kernel, N=draw(st.integers(1, 5)), C=draw(st.integers(1, 5)), K=K,
                H=H, W=W, k=(kh, kw), S=S, D=(dh, dw), P=(ph, pw), bias=draw(st.booleans()),
                level=draw(st.sampled_from([1, 2])), positions=draw(st.sampled_from([1, 300, 5000])),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=150)                     # cheap: small shapes, two kernels
@given(case=cases())
def test_forward_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((case["K"], case["C"]) + case["k"]).astype(np.float32)
    b = rng.standard_normal(case["K"]).astype(np.float32) if case["bias"] else None
    if kernels.simd_level() < 2 and case["level"] == 2:
        case["level"] = kernels.simd_level()    # (the AVX-512 build needs an AVX-512 CPU)
    with simd_level(case["level"]), (k16 if case["kernel"] == "k16" else w16)(
            w16_flat_min_positions=case["positions"]) as log:
        y = F.conv2d(x, w, b, stride=case["S"], padding=case["P"], dilation=case["D"])
    assert ran(log, case["kernel"]), f"the {case['kernel']} kernel did not run"
    assert_forward_matches(y, x, w, b, case)


def assert_forward_matches(y, x, w, b, case):
    """y (float32) is the reference forward of the case's geometry within the float32
    tolerances of tests/test_conv.py."""
    P4 = (case["P"][0], case["P"][0], case["P"][1], case["P"][1])
    want = ref.conv2d(x, w, b, case["S"], P4, case["D"], 1)
    assert y.shape == want.shape and y.dtype == np.float32
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(y.data, want, rtol=1e-4, atol=1e-5 * scale)


def test_default_takes_k16_and_w16_only_where_they_apply_and_pay():
    """On a CPU with AVX2/AVX-512, LeNet's second layer takes k16; its first layer,
    cifar-3x3, layers of ≤ 32 output channels at stride 1 (flat streams, any row width)
    and, where Winograd declines, of ≤ 64 take w16, as does a row stride of 2 on wide rows
    (the row kernel); float64, groups, 128 output channels, strided columns, 9 taps and
    the shapes Winograd takes do not. With AVX-512, ResNet-20's stride-2 layers and the
    7×7 stem take k32 instead (test_default_takes_k32_on_strided_layers), as do, with
    k32_before_w16 (off here), w16's stride-1 passes of a multiple of 32 channels."""
    rng = np.random.default_rng(1)
    simd = kernels.simd_level() > 0

    def runs(xs, ws, dtype=np.float32, groups=1, padding=0, stride=1):
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        with forced(None, force=False, k32_before_w16=False) as log:
            F.conv2d(x, w, padding=padding, groups=groups, stride=stride)
        return "".join(p for p in ("k16", "w16", "k32") if ran(log, p))
    W16 = "w16" if simd else ""
    K32 = "k32" if kernels.simd_level() >= 2 else W16      # (w16 where there is no AVX-512)
    assert runs((4, 6, 14, 14), (16, 6, 5, 5)) == ("k16" if simd else "")    # LeNet c2: k16
    assert runs((4, 1, 28, 28), (6, 1, 5, 5), padding=2) == W16               # LeNet c1
    assert runs((4, 3, 32, 32), (16, 3, 3, 3), padding=1) == W16               # cifar
    assert runs((4, 6, 14, 14), (12, 6, 5, 5)) == W16                         # any K ≤ 32
    assert runs((4, 6, 14, 14), (64, 6, 5, 5)) == W16                         # no Winograd
    assert runs((4, 6, 40, 40), (64, 6, 5, 5)) == W16
    with kernels.use(None, winograd4_vector_max_tw=0):     # (else F(4×4)'s vector transforms)
        assert runs((8, 32, 16, 16), (32, 32, 3, 3), padding=1) == W16        # before Winograd
    assert runs((4, 3, 32, 32), (16, 3, 3, 3), stride=(2, 1), padding=1) == W16   # rows
    assert runs((4, 6, 14, 14), (16, 6, 5, 5), dtype=np.float64) == ""
    assert runs((4, 6, 14, 14), (16, 3, 5, 5), groups=2) == ""
    assert runs((4, 6, 14, 14), (128, 6, 5, 5)) == ""                        # K = 128
    assert runs((4, 3, 64, 64), (16, 3, 3, 3), stride=2) == ""               # stride 2, 27 taps
    assert runs((4, 3, 64, 64), (64, 3, 7, 7), stride=2, padding=3) == K32   # stem: the phases
    assert runs((4, 3, 64, 64), (64, 3, 7, 7), stride=(2, 3), padding=3) == K32.replace("w16", "")
    assert runs((4, 16, 28, 28), (32, 16, 3, 3), stride=2, padding=1) == K32  # ResNet-20's
    assert runs((4, 32, 14, 14), (64, 32, 3, 3), stride=2, padding=1) == K32.replace("w16", "")
    assert runs((4, 3, 64, 64), (16, 3, 3, 3), stride=(2, 1)) == W16
    assert runs((4, 3, 16, 12), (16, 3, 3, 3), stride=(2, 1)) == ""          # rows of 10 < 14
    assert runs((4, 1, 28, 28), (16, 1, 3, 3), padding=1) == ""              # 9 taps
    assert runs((8, 64, 16, 16), (64, 64, 3, 3), padding=1) == ""            # Winograd's


@pytest.mark.parametrize("spy", [k16, w16, k32])
def test_gradients_through_the_direct16_forward(spy):
    """The backward is the usual one; the forward it follows is the direct kernel's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    w = rng.standard_normal((32, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    δ = None
    grads = []
    for force in (True, False):
        ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
        with forced(spy.__name__ if force else "blas") as log:
            y = F.conv2d(*ts, stride=(2, 1 if spy is w16 else 2), padding=(1, 2))
            δ = rng.standard_normal(y.shape).astype(np.float32) if δ is None else δ
            y.backward(δ)
        assert bool(ran(log, spy.__name__)) == force
        grads.append([y.data] + [t.grad.data for t in ts])
    for a, r in zip(*grads):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)


def wgrad_arrays(case):
    """(x, w, δ, geometry) of a ∂L/∂w case: random x and δ of the case's shapes, w zero
    (the kernels read only its shape)."""
    rng = np.random.default_rng(case["seed"])
    N, C, K, (kh, kw), (sh, sw), (dh, dw), (ph, pw) = (case[k] for k in "N C K k S D P".split())
    x = rng.standard_normal((N, C, case["H"], case["W"])).astype(np.float32)
    OH = (case["H"] + 2 * ph - (kh - 1) * dh - 1) // sh + 1
    OW = (case["W"] + 2 * pw - (kw - 1) * dw - 1) // sw + 1
    δ = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
    return (x, np.zeros((K, C, kh, kw), np.float32), δ,
            conv_dispatch.Geom((sh, sw), (ph, pw), (dh, dw), 1))


@st.composite
def k32_cases(draw):
    """k32 over random geometries (any stride, dilation, padding: the window and tap
    tables), K = 32, 64 or 96, output planes of 1 … ~100 pixels (tiles of 8 crossing rows,
    a last partial tile), groups of samples from one to all (the last one partial: budgets
    from one sample up), taps in chunks from 1 to all (the partial sums kept between
    chunks), 1 … 3 threads."""
    (kh, kw), (dh, dw), (ph, pw), H, W = geometry(draw, 9)
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return dict(N=draw(st.integers(1, 5)), C=draw(st.integers(1, 6)),
                K=draw(st.sampled_from([32, 64, 96])), H=H, W=W, k=(kh, kw), S=S, D=(dh, dw),
                P=(ph, pw), bias=draw(st.booleans()),
                group=draw(st.sampled_from([1, 2000, 1 << 20])),
                chunk=draw(st.sampled_from([1, 5, 16, 128])),
                threads=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=120)
@given(case=k32_cases())
def test_k32_forward_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((case["K"], case["C"]) + case["k"]).astype(np.float32)
    b = rng.standard_normal(case["K"]).astype(np.float32) if case["bias"] else None
    before = mg.get_num_threads()
    mg.set_num_threads(case["threads"])
    try:
        with k32(k32_group_bytes=case["group"], k32_chunk_taps=case["chunk"]) as log:
            y = F.conv2d(x, w, b, stride=case["S"], padding=case["P"], dilation=case["D"])
    finally:
        mg.set_num_threads(before)
    assert ran(log, "k32"), "the k32 kernel did not run"
    assert_forward_matches(y, x, w, b, case)


def test_k32_gives_the_same_bits_however_it_blocks():
    """Every output is one in-order chain over the taps: groups of samples, chunks of taps
    (the partial sums stored and reloaded between them) and threads change the blocking,
    never a bit of the result. 3 samples × 72 taps × 2 blocks of 32 channels, a 5×5 output
    (three full tiles of 8 and a partial one)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 8, 10, 9)).astype(np.float32)
    w = rng.standard_normal((64, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    before = mg.get_num_threads()
    outs = []
    try:
        for threads, group, chunk in [(1, 1 << 20, 1000), (1, 1, 1000), (1, 1 << 20, 1),
                                      (2, 1, 7), (3, 1500, 72), (2, 1 << 20, 71)]:
            mg.set_num_threads(threads)
            with k32(k32_group_bytes=group, k32_chunk_taps=chunk) as log:
                outs.append(F.conv2d(x, w, b, stride=2, padding=1).data)
            assert ran(log, "k32")
    finally:
        mg.set_num_threads(before)
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])
    want = ref.conv2d(x, w, b, (2, 2), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(outs[0], want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()))


@settings(max_examples=100, deadline=None)
@given(case=k32_cases())
def test_k32_weight_grad_matches_direct(case):
    """∂L/∂w[k, c, p, q] = Σ_n Σ_i' Σ_j' δ[n, k, i', j'] · x_pad[n, c, i'·sh + p·dh, j'·sw + q·dw]
    by k32's tiles of 8 taps × 32 channels (the last one partial) over groups of 1 … N
    samples and 1–3 threads, with the scratch memory poisoned; ∂L/∂b = Σ δ beside it: the
    direct loops' numbers in float64."""
    x, w, δ, g = wgrad_arrays(case)
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(case["threads"])
        poison_workspaces()
        with kernels.use(None, k32_group_bytes=case["group"]), kernels.trace() as log:
            _, dw_, db = conv_dispatch.backward(x, x.shape, δ, w, g, False, True, True,
                                                kernels.Paths("k32", "direct", "k32"))
    finally:
        mg.set_num_threads(before)
    assert ran(log, "k32")
    _, want_dw, want_db = conv_dispatch.backward(
        x.astype(np.float64), x.shape, δ.astype(np.float64), w.astype(np.float64), g, False,
        True, True, kernels.Paths("direct", "direct", "direct"))
    assert dw_.shape == w.shape and dw_.dtype == np.float32
    np.testing.assert_allclose(dw_, want_dw, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want_dw).max()))
    np.testing.assert_allclose(db, want_db, rtol=1e-5, atol=1e-5)


@st.composite
def k32_dx_cases(draw):
    """∂L/∂x by k32 (stride 1, dilation 1, padding ≤ F − 1: the forward correlation of δ):
    C (the correlation's output channels) 32 or 64, K 1 … 9, kernels 1–4 a side, planes of
    1 … ~100 pixels, groups of samples and chunks of taps as k32_cases, 1–3 threads."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    H = max(1, kh - 2 * ph) + draw(st.integers(0, 8))
    W = max(1, kw - 2 * pw) + draw(st.integers(0, 8))
    return dict(N=draw(st.integers(1, 4)), C=draw(st.sampled_from([32, 64])),
                K=draw(st.integers(1, 9)), H=H, W=W, k=(kh, kw), P=(ph, pw),
                group=draw(st.sampled_from([1, 2000, 1 << 20])),
                chunk=draw(st.sampled_from([1, 5, 128])),
                threads=draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=80, deadline=None)
@given(case=k32_dx_cases())
def test_k32_input_grad_matches_direct(case):
    """∂L/∂x = pad(δ, F−1−P) ⋆ rot180(w)ᵀ at stride 1 by k32 (the forward kernel run on δ
    with the flipped, channel-swapped weights), with the scratch memory poisoned: the direct
    loops' numbers in float64."""
    rng = np.random.default_rng(case["seed"])
    N, C, K, (kh, kw), (ph, pw) = (case[k] for k in "N C K k P".split())
    OH, OW = case["H"] + 2 * ph - kh + 1, case["W"] + 2 * pw - kw + 1
    w = rng.standard_normal((K, C, kh, kw)).astype(np.float32)
    δ = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
    g = conv_dispatch.Geom((1, 1), (ph, pw), (1, 1), 1)
    x_shape = (N, C, case["H"], case["W"])
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(case["threads"])
        poison_workspaces()
        with kernels.use(None, k32_group_bytes=case["group"], k32_chunk_taps=case["chunk"]), \
                kernels.trace() as log:
            dx = conv_dispatch.input_grad(δ, w, x_shape, g, kernels.Paths("direct", "k32", "direct"))
    finally:
        mg.set_num_threads(before)
    assert ran(log, "k32"), "the k32 kernel did not run"
    want = conv_dispatch.input_grad(δ.astype(np.float64), w.astype(np.float64), x_shape, g,
                                    kernels.Paths("direct", "direct", "direct"))
    assert dx.shape == x_shape and dx.dtype == np.float32
    np.testing.assert_allclose(dx, want, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_gradients_through_k32_at_stride_1():
    """conv2d with k32 forced at stride 1 runs the forward and ∂L/∂x on k32 (∂L/∂w too):
    all three agree with the im2col path's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 32, 9, 7)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    δ = rng.standard_normal((3, 32, 9, 7)).astype(np.float32)
    grads = []
    for path in ("k32", "blas"):
        ts = [mg.tensor(a, requires_grad=True) for a in (x, w)]
        with forced(path) as log:
            y = F.conv2d(*ts, padding=1)
            y.backward(δ)
        assert {c.which for c in log if c.path == "k32"} == (
            {"forward", "input_grad", "weight_grad"} if path == "k32" else set())
        grads.append([y.data] + [t.grad.data for t in ts])
    for a, r in zip(*grads):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-3)


def test_k32_weight_grad_same_bits_for_any_group():
    """Within a thread each ∂L/∂w element is one chain over its samples in order: on one
    thread, groups of 1, 2 or all 5 samples give the same bits. (Over threads the partials
    are added in thread order, and which samples a thread gets follows the groups.)"""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 6, 11, 9)).astype(np.float32)
    w = np.empty((64, 6, 3, 3), np.float32)
    δ = rng.standard_normal((5, 64, 5, 4)).astype(np.float32)
    g = conv_dispatch.Geom((2, 2), (0, 0), (1, 1), 1)
    before = mg.get_num_threads()
    outs = []
    try:
        for threads, group in [(1, 1), (1, 4 * (6 * 11 * 9 + 64 * 20) * 2), (1, 1 << 20),
                               (2, 1), (3, 1 << 20)]:
            mg.set_num_threads(threads)
            with kernels.use(None, k32_group_bytes=group):
                outs.append(conv_dispatch.weight_grad(x, δ, w.shape, g,
                                                      kernels.Paths("k32", "direct", "k32")))
    finally:
        mg.set_num_threads(before)
    for dw_ in outs[1:3]:
        np.testing.assert_array_equal(dw_, outs[0])
    for dw_ in outs[3:]:
        np.testing.assert_allclose(dw_, outs[0], rtol=1e-5, atol=1e-5)


def test_k32_blocks_even_out_the_groups():
    """Every thread gets whole groups of one size that fit the budget (or one sample), and
    the chunks of taps are equal and within k32_chunk_taps."""
    with kernels.use(None, k32_group_bytes=10 * 4000, k32_chunk_taps=128):
        assert kernels._k32_blocks(32, 1000, 2304, 2) == (8, 128)     # 16 a thread: 2 × 8
        assert kernels._k32_blocks(32, 1000, 2305, 2)[1] == 122       # 19 chunks of ≤ 128
        assert kernels._k32_blocks(5, 1000, 100, 2) == (3, 100)        # 3 a thread, 1 group
        assert kernels._k32_blocks(5, 20000, 100, 2)[0] == 1           # a sample over budget
        assert kernels._k32_blocks(1, 1000, 100, 3)[0] == 1
    for chunk in (0, -5):                     # (settings below 1: one tap a chunk, no endless loop)
        with kernels.use(None, k32_chunk_taps=chunk, k32_group_bytes=-1):
            assert kernels._k32_blocks(5, 1000, 100, 2) == (1, 1)


def test_default_takes_k32_on_strided_layers():
    """With AVX-512, ResNet's stride-2 3×3 layers and GoogLeNet's 7×7 stem take k32 for the
    forward, the smaller of them for ∂L/∂w (and MobileNetV2's stem, 27 taps, the forward),
    and where Winograd F(2×2) would take a 4×4 output at stride 1, k32 takes the forward; a
    1×1 at stride 2, stride 1 elsewhere, a
    K that is not a multiple of 32, float64, groups, too few taps, or a CPU without
    AVX-512 do not."""
    if kernels.simd_level() < 2:
        pytest.skip("k32 is chosen only with AVX-512")

    def forward(xs, ws, dtype=np.float32, **kw):
        return kernels.choose(xs, ws, dtype=dtype, **kw).forward
    assert kernels.choose((128, 32, 14, 14), (64, 32, 3, 3), stride=2, padding=1) == (
        "k32", "blas", "k32")                                                      # ResNet-20's
    assert kernels.choose((32, 64, 32, 32), (128, 64, 3, 3), stride=2, padding=1) == (
        "k32", "blas", "blas")                           # ∂L/∂w: 73728 weights, the fused im2col
    with kernels.use(None, k32_wgrad_max_weights=128 * 576):
        assert kernels.choose((32, 64, 32, 32), (128, 64, 3, 3), stride=2, padding=1)[2] == "k32"
    assert forward((32, 256, 8, 8), (512, 256, 3, 3), stride=2, padding=1) == "k32"
    assert forward((128, 16, 28, 28), (32, 16, 3, 3), stride=(2, 1), padding=1) == "k32"
    assert kernels.choose((16, 3, 64, 64), (64, 3, 7, 7), stride=2, padding=3)[::2] == (
        "k32", "w16")                                    # the stem; ∂L/∂w: 1024 output pixels
    assert forward((32, 64, 32, 32), (128, 64, 1, 1), stride=2) != "k32"            # 1×1
    assert forward((32, 64, 33, 33), (128, 64, 3, 3), padding=1) != "k32"            # stride 1
    # stride 1: where F(2×2) would take a 4×4 output (DenseNet's, GoogLeNet's), not 8×8 or 2×2
    assert kernels.choose((8, 128, 4, 4), (32, 128, 3, 3), padding=1).forward == "k32"
    assert kernels.choose((16, 128, 4, 4), (256, 128, 3, 3), padding=1).forward == "k32"
    assert forward((32, 512, 4, 4), (512, 512, 3, 3), padding=1) == "winograd"      # 2.4 M weights
    assert forward((8, 128, 8, 8), (32, 128, 3, 3), padding=1) == "winograd4"
    assert forward((8, 128, 2, 2), (32, 128, 3, 3), padding=1) == "hwnc"
    with kernels.use(None, k32_stride1_max_size=3):
        assert forward((8, 128, 4, 4), (32, 128, 3, 3), padding=1) == "winograd"
    assert forward((32, 64, 32, 32), (96 + 16, 64, 3, 3), stride=2) != "k32"         # K % 32
    assert forward((32, 64, 32, 32), (128, 64, 3, 3), np.float64, stride=2) != "k32"
    assert forward((32, 64, 32, 32), (128, 32, 3, 3), stride=2, groups=2) != "k32"
    assert forward((32, 3, 64, 64), (32, 3, 3, 3), stride=2, padding=1) == "k32"     # 27 taps
    with kernels.use(None, k32_min_taps=28):
        assert forward((32, 3, 64, 64), (32, 3, 3, 3), stride=2, padding=1) != "k32"
    # ∂L/∂w at stride 1 too where k32_wgrad_stride1 is set (the default on AMD CPUs):
    # ResNet-20's 32 → 32 on 14×14; not past k32_wgrad_max_pixels (17×17 = 289)
    with kernels.use(None, k32_wgrad_stride1=True, k32_before_w16=False):
        assert kernels.choose((128, 32, 14, 14), (32, 32, 3, 3), padding=1) == ("w16", "w16", "k32")
        assert kernels.choose((8, 32, 17, 17), (32, 32, 3, 3), padding=1).weight_grad == "w16"
    with kernels.use(None, k32_wgrad_stride1=False):
        assert kernels.choose((128, 32, 14, 14), (32, 32, 3, 3), padding=1).weight_grad == "w16"
    assert kernels.Tuning().k32_wgrad_stride1 == (kernels._CPU_VENDOR == "AuthenticAMD")
    # the forward and ∂L/∂x at stride 1 where w16 would take them, with k32_before_w16 (the
    # default on AMD CPUs): ResNet-20's 32 → 32 on 14×14 (both passes: 32 channels either
    # way), a 3 → 32 on 48×48 (the forward only: ∂L/∂x has 3 output channels); not on outputs
    # of a multiple of 4 KiB (32×32, 64×64), not K = 16, not where w16 is forced
    with kernels.use(None, k32_before_w16=True, k32_wgrad_stride1=False):
        assert kernels.choose((128, 32, 14, 14), (32, 32, 3, 3), padding=1) == ("k32", "k32", "w16")
        assert kernels.choose((16, 3, 48, 48), (32, 3, 3, 3), padding=1)[:2] == ("k32", "blas")
        assert forward((32, 3, 32, 32), (64, 3, 3, 3), padding=1) == "w16"
        assert forward((8, 3, 64, 64), (32, 3, 3, 3), padding=1) == "w16"
        assert kernels.choose((128, 16, 28, 28), (16, 16, 3, 3), padding=1)[:2] == ("w16", "w16")
    with kernels.use("w16", k32_before_w16=True):
        assert kernels.choose((128, 32, 14, 14), (32, 32, 3, 3), padding=1)[:2] == ("w16", "w16")
    with kernels.use(None, k32_before_w16=False):
        assert kernels.choose((128, 32, 14, 14), (32, 32, 3, 3), padding=1)[:2] == ("w16", "w16")
    assert kernels.Tuning().k32_before_w16 == (kernels._CPU_VENDOR == "AuthenticAMD")
    with simd_level(1):
        assert forward((32, 64, 32, 32), (128, 64, 3, 3), stride=2, padding=1) != "k32"


@st.composite
def wgrad_cases(draw):
    (kh, kw), (dh, dw), (ph, pw), H, W = geometry(draw, 20)
    S = (1, 1)
    if draw(st.booleans()):                      # one stride s on both axes: over x's phases
        S, (dh, dw) = (draw(st.integers(2, 3)),) * 2, (1, 1)
    # K: blocks of 8 (or 4) channels full and partial; C·kh·kw taps: groups of 3 full and
    # partial; N and the group size: samples per group 1 … N, the last group partial
    return dict(N=draw(st.integers(1, 6)), C=draw(st.integers(1, 5)), K=draw(st.integers(1, 20)),
                H=H, W=W, k=(kh, kw), S=S, D=(dh, dw), P=(ph, pw),
                block=draw(st.sampled_from([1, 2 << 10, 32 << 10, 1 << 20])),
                level=draw(st.sampled_from([1, 2])), threads=draw(st.integers(1, 3)),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=150, deadline=None)
@given(case=wgrad_cases())
def test_w16_weight_grad_matches_direct(case):
    """∂L/∂w[k, c, p, q] = Σ_n Σ_i' Σ_j' δ[n, k, i', j'] · x_pad[n, c, i'·s + p·dh, j'·s + q·dw]
    (stride 1 with any dilation, or a stride s on both axes over x's phases) by w16's
    streams, and ∂L/∂b = Σ δ from the same copy of δ: the direct loops' numbers, for both
    builds of the kernel (blocks of 8 and of 4 output channels), any number of samples per
    group and 1–3 threads, with the scratch memory poisoned."""
    if kernels.simd_level() < 2 and case["level"] == 2:
        pytest.skip("the AVX-512 build needs an AVX-512 CPU")
    x, w, δ, g = wgrad_arrays(case)
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(case["threads"])
        poison_workspaces()
        with simd_level(case["level"]), kernels.use(None, w16_wgrad_block_bytes=case["block"]):
            _, dw_, db = conv_dispatch.backward(x, x.shape, δ, w, g, False, True, True,
                                                kernels.Paths("w16", "direct", "w16"))
            # ∂L/∂b alone (the bias-gradient op of a double backward): no x at all
            db_alone = conv_dispatch.bias_grad(δ, x.shape, w, g, kernels.Paths("w16", "direct", "w16"))
    finally:
        mg.set_num_threads(before)
    _, want_dw, want_db = conv_dispatch.backward(x, x.shape, δ, w, g, False, True, True,
                                                 kernels.Paths("direct", "direct", "direct"))
    np.testing.assert_allclose(dw_, want_dw, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want_dw).max()))
    for got_db in (db, db_alone):
        np.testing.assert_allclose(got_db, want_db, rtol=1e-4,
                                   atol=1e-4 * max(1.0, np.abs(want_db).max()))


@pytest.mark.parametrize("xs, ws, padding", [
    ((5, 16, 28, 28), (16, 16, 3, 3), 1),       # ResNet-20's first stage
    ((3, 12, 15, 17), (20, 12, 3, 3), 0),
    ((2, 8, 16, 18), (24, 8, 5, 5), 2),
    ((2, 8, 16, 18), (40, 8, 5, 5), 2),         # ∂L/∂x by 'blas', alone
    ((2, 10, 14, 16), (9, 10, 2, 2), "same"),   # even kernel: one row more below
    ((3, 64, 7, 7), (64, 64, 3, 3), 1),         # ResNet-20's 7×7 stage: shared pad columns
])
def test_conv2d_backward_takes_w16_weight_grad(xs, ws, padding):
    """By default (a CPU with AVX2 or AVX-512; k32 held to strided layers, as on the Xeon),
    ∂L/∂w and ∂L/∂b of these stride-1 layers run on w16's streams, next to a w16, Winograd or 'blas' ∂L/∂x: the gradients of the
    direct loops."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    got = {}
    for path in (None, "direct"):
        ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
        with forced(path, path is not None, w16_min_pixels=1, k32_wgrad_stride1=False) as log:
            y = F.conv2d(*ts, padding=padding)
            g = np.cos(np.arange(y.numpy().size, dtype=np.float32)).reshape(y.shape)
            (y * mg.tensor(g)).sum().backward()
        got[path] = [t.grad.numpy() for t in ts]
        paths = {c.which: c.path for c in log if c.op == "conv2d"}
        if path is None and kernels.simd_level() > 0:
            assert paths["weight_grad"] == paths["bias_grad"] == "w16", paths
    for a, r in zip(got[None], got["direct"]):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


@st.composite
def grid_cases(draw):
    """A stride-1 layer with any top/left padding 0–3 and any output size that fits: the
    implied bottom/right padding from −(crop) to 3, so the rows and planes of w16's flat
    streams share the padding on one side, the other, both or neither."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    Eh, Ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    H = max(1, Eh - ph) + draw(st.integers(0, 8))
    W = max(1, Ew - pw) + draw(st.integers(0, 20))
    OH = draw(st.integers(1, H + ph + 3 - Eh + 1))
    OW = draw(st.integers(1, W + pw + 3 - Ew + 1))
    return dict(N=draw(st.integers(1, 4)), C=draw(st.integers(1, 4)), K=draw(st.integers(1, 12)),
                H=H, W=W, k=(kh, kw), D=(dh, dw), P=(ph, pw), out=(OH, OW),
                level=draw(st.sampled_from([1, 2])), positions=draw(st.sampled_from([1, 300, 5000])),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=150, deadline=None)
@given(case=grid_cases())
def test_w16_flat_grid_shares_padding_exactly(case):
    """The flat streams' rows and sample planes are only as long as kernels._flat_grid
    says (a row's trailing pad zeros are the next row's leading ones where they suffice):
    forward and ∂L/∂w at stride 1 by w16 equal the reference for every top/left padding
    and every output size (bottom/right padding cropping to 3), both builds of the kernels,
    the scratch memory poisoned."""
    if kernels.simd_level() < 2 and case["level"] == 2:
        case["level"] = kernels.simd_level()
    rng = np.random.default_rng(case["seed"])
    N, C, K, (kh, kw), (ph, pw), (OH, OW) = (case[k] for k in "N C K k P out".split())
    x = rng.standard_normal((N, C, case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((K, C, kh, kw)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32)
    δ = rng.standard_normal((N, K, OH, OW)).astype(np.float32)
    g = conv_dispatch.Geom((1, 1), (ph, pw), case["D"], 1)
    poison_workspaces()
    with simd_level(case["level"]), kernels.use(None, w16_flat_min_positions=case["positions"]):
        y = conv_dispatch.correlate(x, w, b, (OH, OW), g, "w16")
        _, dw_, db = conv_dispatch.backward(x, x.shape, δ, w, g, False, True, True,
                                            kernels.Paths("w16", "direct", "w16"))
    # the reference pads the bottom/right by what the output size implies (≥ 0) and keeps
    # the first OH × OW outputs (a negative implied padding crops rows no output reads)
    Eh, Ew = (kh - 1) * case["D"][0] + 1, (kw - 1) * case["D"][1] + 1
    P4 = (ph, max(0, OH + Eh - 1 - ph - case["H"]), pw, max(0, OW + Ew - 1 - pw - case["W"]))
    want = ref.conv2d(x, w, b, (1, 1), P4, case["D"], 1)[:, :, :OH, :OW]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(want).max()))
    _, want_dw, want_db = ref.conv2d_vjp(x, w, δ, (1, 1), P4, case["D"], 1)
    np.testing.assert_allclose(dw_, want_dw, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want_dw).max()))
    np.testing.assert_allclose(db, want_db, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(want_db).max()))


@pytest.mark.parametrize("in_hw, k, pad, out_hw, want", [
    ((7, 7), 3, 1, (7, 7), (8, 8)),             # 'same' 3×3: one shared zero column and row
    ((28, 28), 5, 2, (28, 28), (30, 30)),       # 'same' 5×5: two
    ((7, 7), 3, 0, (5, 5), (7, 7)),             # no padding: nothing to share
    ((5, 5), 3, 2, (7, 7), (7, 7)),             # ∂L/∂x's full correlation of a 'valid' layer
])
def test_w16_flat_grid_length(in_hw, k, pad, out_hw, want):
    """_flat_grid: a 'same' layer's rows hold W + P positions, not W + 2P."""
    g = conv_dispatch.Geom((1, 1), (pad, pad), (1, 1), 1)
    assert kernels._flat_grid(in_hw, out_hw, (k, k), g) == want


def test_k32_kernels_check_what_they_trust():
    """The k32 loops run without bounds checks; their entry points check the shapes, tables
    and scratch they are given (a ValueError naming the function), so that a caller's
    mistake (here: a correlation of 3 output channels sent to k32) cannot write past an
    array. A consistent call still runs and is right."""
    from minigrad._ext import conv_direct16 as d16
    rng = np.random.default_rng(11)
    N, C, H, W, K = 3, 4, 6, 5, 32
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    g = conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 1)
    Hp, Wp, pix, tap = conv_dispatch._k32_tables(x.shape, w.shape, (H, W), g, True, False)
    T, S, CT = C * 9, N, C * 9
    wp = np.empty((1, T, 32), np.float32)
    d16.pack_k32(w.reshape(K, T), wp, 1)
    b = np.empty(0, np.float32)

    def fwd(wp=wp, b=b, pix=pix, tap=tap, y=None, scratch=None, part=np.empty((1, 1), np.float32),
            S=S, CT=CT, Hp=Hp, Wp=Wp):
        y = np.empty((N, K, H, W), np.float32) if y is None else y
        scratch = np.empty((1, S * C * Hp * Wp), np.float32) if scratch is None else scratch
        d16.conv2d_forward_k32(x, wp, b, pix, tap, y, scratch, part, 1, 1, Hp, Wp, S, CT, 1)
        return y
    want = ref.conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(fwd(), want, rtol=1e-4, atol=1e-4)
    bad_tap = tap.copy()
    bad_tap[-1] = C * Hp * Wp
    for kwargs, match in [
            (dict(y=np.empty((N, 3, H, W), np.float32)), "multiple of 32"),     # K = 3
            (dict(wp=np.empty((2, T, 32), np.float32)), "inconsistent"),         # 64 packed
            (dict(tap=bad_tap), "windows reach"),                                # past a sample
            (dict(pix=pix[:-8]), "pixel table"),                                 # too short
            (dict(scratch=np.empty((1, 10), np.float32)), "scratch"),
            (dict(CT=0), "inconsistent"),                                        # would not end
            (dict(CT=5), "inconsistent"),                                        # part too small
            (dict(b=np.zeros(3, np.float32)), "inconsistent"),
            (dict(Wp=Wp - 1), "(windows reach|inconsistent)")]:                # rows too short
        with pytest.raises(ValueError, match=f"conv2d_forward_k32.*{match}"):
            fwd(**kwargs)
    with pytest.raises(ValueError, match="pack_k32"):
        d16.pack_k32(np.zeros((3, T), np.float32), np.empty((0, T, 32), np.float32), 1)
    # ∂L/∂w
    Hp, Wp, pix, tap = conv_dispatch._k32_tables(x.shape, w.shape, (H, W), g, False, True)
    δ = rng.standard_normal((N, K, H, W)).astype(np.float32)
    Tr = tap.shape[0]

    def wgrad(δ=δ, tap=tap, acc=None, dscr=None):
        acc = np.zeros((1, K * Tr), np.float32) if acc is None else acc
        dscr = np.empty((1, S * K * H * W), np.float32) if dscr is None else dscr
        d16.conv2d_weight_grad_k32(x, δ, pix, tap, acc, np.empty((1, S * C * Hp * Wp), np.float32),
                                   dscr, 1, 1, Hp, Wp, S, 1)
        dw = np.empty((K, T), np.float32)
        d16.unpack_k32_sum(acc, dw, 1)
        return dw
    want_dw = conv_dispatch.weight_grad(x.astype(np.float64), δ.astype(np.float64), w.shape, g,
                                        kernels.Paths("direct", "direct", "direct"))
    np.testing.assert_allclose(wgrad().reshape(w.shape), want_dw, rtol=1e-4, atol=1e-4)
    for kwargs, match in [
            (dict(δ=δ[:2]), "inconsistent"),                                     # N = 2 ≠ 3
            (dict(δ=np.zeros((N, 3, H, W), np.float32)), "multiple of 32"),
            (dict(tap=tap[:-1]), "inconsistent"),                                # not 8 a tile
            (dict(acc=np.zeros((1, K * Tr - 1), np.float32)), "inconsistent"),
            (dict(dscr=np.empty((1, 7), np.float32)), "inconsistent")]:
        with pytest.raises(ValueError, match=f"conv2d_weight_grad_k32.*{match}"):
            wgrad(**kwargs)
    with pytest.raises(ValueError, match="unpack_k32_sum"):
        d16.unpack_k32_sum(np.zeros((1, 3 * T), np.float32), np.empty((3, T), np.float32), 1)
