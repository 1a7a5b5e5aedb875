"""minigrad.kernels: the one chooser (choose / explain agree with what runs), the switch
(use: forces, restores, nests, per thread), the trace; the lecture path ('direct') on
every configuration against the references, gradchecked; the by-hand example."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import _blas, kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
from kernel_spy import poison_workspaces  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def run_conv(x, w, **kw):
    """conv2d forward and backward; the kernels.trace() log as {pass: path}."""
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    with kernels.trace() as calls:
        y = F.conv2d(xt, wt, **kw)
        y.backward(np.ones(y.shape, y.dtype))
    return {c.which: c.path for c in calls}


# ---- the chooser tells what runs ----------------------------------------------------------

LAYERS = [  # (x shape, w shape, kwargs): LeNet, CIFAR, ResNet, depthwise, strided, float64
    ((8, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),
    ((8, 6, 14, 14), (16, 6, 5, 5), {}),
    ((4, 3, 32, 32), (16, 3, 3, 3), dict(padding=1)),
    ((2, 64, 32, 32), (64, 64, 3, 3), dict(padding=1)),
    ((4, 32, 16, 16), (32, 1, 3, 3), dict(padding=1, groups=32)),
    ((4, 16, 17, 15), (24, 16, 3, 3), dict(stride=2, padding=1)),
    ((2, 8, 12, 12), (8, 4, 3, 3), dict(groups=2, dilation=2)),
    ((4, 24, 9, 7), (40, 24, 1, 1), {}),
]


@pytest.mark.parametrize("xs, ws, kw", LAYERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("force", [None, "direct", "gemm", "blas", "winograd", "winograd4", "k16", "k32", "w16",
                                   "pointwise", "depthwise"])
def test_choose_is_what_runs(xs, ws, kw, dtype, force):
    """For every pass, the path choose() and explain() name is the one the trace records."""
    if force == "blas" and not _blas.available():
        pytest.skip("no OpenBLAS next to NumPy")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    with kernels.use(force):
        want = kernels.choose(xs, ws, dtype=dtype, **kw)
        told = kernels.explain(xs, ws, dtype=dtype, **kw)
        got = run_conv(x, w, **kw)
    assert (told.forward, told.input_grad, told.weight_grad) == tuple(want)
    assert got == {"forward": want.forward, "input_grad": want.input_grad,
                   "weight_grad": want.weight_grad}
    if force in ("direct", "gemm"):
        assert set(got.values()) == {force}
    assert want.forward in str(told) and "∂L/∂x" in str(told)


def test_default_paths_of_known_layers():
    """The choice on a few named layers, as README and DESIGN describe it."""
    if not _blas.available():
        pytest.skip("no OpenBLAS next to NumPy")
    simd = kernels.simd_level() > 0
    lenet_c1 = kernels.choose((64, 1, 28, 28), (6, 1, 5, 5), padding=2)
    assert lenet_c1 == ("w16", "blas", "w16") if simd else ("blas",) * 3
    assert kernels.choose((64, 6, 14, 14), (16, 6, 5, 5)).forward == ("k16" if simd else "blas")
    # F(4×4, 3×3) on outputs of ≥ 7×7 with C·K/(C+K) ≥ 28, F(2×2, 3×3) with fewer channels;
    # ∂L/∂w by F(4×4) too where there are more channels (C·K/(C+K) ≥ 32), else by w16
    # (stride 1, K ≤ 64, planes ≥ 7×7)
    wg = "w16" if simd else "blas"
    assert kernels.choose((32, 64, 56, 56), (64, 64, 3, 3), padding=1) == ("winograd4",) * 3
    assert kernels.choose((32, 60, 56, 56), (60, 60, 3, 3), padding=1) == ("winograd4", "winograd4", wg)
    assert kernels.choose((32, 128, 56, 56), (128, 128, 3, 3), padding=1) == ("winograd4",) * 3
    assert kernels.choose((32, 256, 8, 8), (256, 256, 3, 3), padding=1)[:2] == ("winograd4",) * 2
    with kernels.use(None, winograd4_vector_max_tw=0):        # (the scalar transforms' rule)
        assert kernels.choose((32, 24, 16, 16), (48, 24, 3, 3), padding=1).forward == "winograd"
    # ResNet-20's 7×7 stage: the forward and ∂L/∂x by F(4×4, 3×3) (asked before hwnc's claim on
    # ≤ 49 pixels), ∂L/∂w by F(4×4) too where its vector transforms run (AVX-512), else on
    # w16's flat streams (hwnc's claim yields: 49 of their 64 grid positions are outputs)
    wg7 = "winograd4" if kernels.simd_level() >= 2 and kernels._WINO4_BUILD else wg
    assert kernels.choose((128, 64, 7, 7), (64, 64, 3, 3), padding=1) == ("winograd4",) * 2 + (
        (wg7,) if simd else ("hwnc",))
    assert kernels.choose((128, 1, 28, 28), (16, 1, 3, 3), padding=1).weight_grad == "blas"  # 9 taps
    assert kernels.choose((8, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32) == ("depthwise",) * 3
    assert kernels.choose((8, 32, 28, 28), (64, 1, 3, 3), padding=1, groups=32) == ("direct",) * 3
    # stride 2: with AVX-512 the forward and ∂L/∂w of a window larger than 1×1 with ≥ 64
    # taps and K a multiple of 32 by k32; else ∂L/∂w over x's phases (144 taps, 14×14
    # outputs, 64 phase streams); ∂L/∂x by col2im; with 9 taps, 7×7 outputs or 128 phase
    # streams, im2col
    k32 = "k32" if kernels.simd_level() >= 2 else None
    assert kernels.choose((8, 16, 28, 28), (32, 16, 3, 3), stride=2, padding=1) == (
        (k32 or "w16", "blas", k32 or "w16") if simd else ("blas",) * 3)
    assert kernels.choose((8, 1, 28, 28), (64, 1, 3, 3), stride=2) == ("blas",) * 3
    assert kernels.choose((8, 32, 14, 14), (64, 32, 3, 3), stride=2, padding=1) == (
        k32 or "blas", "blas", k32 or "blas")
    assert kernels.choose((8, 32, 28, 28), (64, 32, 3, 3), stride=2) == (k32 or "blas", "blas",
                                                                        k32 or "blas")
    assert kernels.choose((8, 64, 28, 28), (128, 64, 3, 3), stride=2)[::2] == (k32 or "blas",
                                                                              "blas")
    assert kernels.choose((32, 144, 16, 16), (24, 144, 1, 1)) == ("pointwise",) * 3
    assert kernels.choose((32, 144, 16, 16), (24, 144, 1, 1), stride=2) == ("blas",) * 3
    # conv_transpose2d is conv2d's ∂L/∂x: its forward is the adjoint conv's input gradient
    assert kernels.choose((8, 60, 28, 28), (60, 60, 3, 3), op="conv_transpose2d", padding=1) \
        == ("winograd4", "winograd4", wg)
    assert kernels.choose((64, 6, 28, 28), op="max_pool2d", kernel_size=2) == ("2x2", "direct", None)
    assert kernels.choose((64, 6, 28, 28), op="max_pool2d", kernel_size=3, stride=2) == ("taps", "direct", None)
    assert kernels.choose((64, 6, 7, 7), op="avg_pool2d", kernel_size=7) == ("plane", "plane", None)
    with kernels.use("direct"):
        assert kernels.choose((64, 6, 28, 28), op="avg_pool2d", kernel_size=2) == ("direct", "direct", None)
    with kernels.use("2x2"):                   # a pooling path: convolutions choose by shape
        assert kernels.choose((32, 64, 56, 56), (64, 64, 3, 3), padding=1).forward == "winograd4"
    with kernels.use("winograd"):              # a convolution path: poolings choose by shape
        assert kernels.choose((64, 6, 28, 28), op="max_pool2d", kernel_size=2).forward == "2x2"


def test_explain_gives_the_reasons():
    text = str(kernels.explain((64, 6, 14, 14), (16, 6, 5, 5)))
    assert text.startswith("conv2d: input (64, 6, 14, 14), weight (16, 6, 5, 5)")
    assert "winograd: needs a 3×3 kernel" in text and "∂L/∂w" in text
    e = kernels.explain((32, 64, 56, 56), (64, 64, 3, 3), padding=1)
    assert e.forward == "winograd4" and any("winograd4 takes it" in r for r in e.why["forward"])
    # each of F(4×4)'s thresholds hands the layer to F(2×2) ...
    for tuning in (dict(winograd4_min_size=57), dict(winograd4_min_ck=33),
                   dict(winograd4_min_tiles=32 * 14 * 14 + 1)):
        with kernels.use(None, **tuning):
            e = kernels.explain((32, 64, 56, 56), (64, 64, 3, 3), padding=1)
        assert e.forward == "winograd", tuning
        assert any("winograd4 declines" in r for r in e.why["forward"])
        assert any("winograd takes it" in r for r in e.why["forward"])
    # ... and F(2×2)'s to the next path
    with kernels.use(None, winograd4_min_tiles=10**9, winograd_min_tiles=10**9):
        e = kernels.explain((32, 64, 56, 56), (64, 64, 3, 3), padding=1)
    assert e.forward not in ("winograd", "winograd4") and any("winograd declines" in r for r in e.why["forward"])


@pytest.mark.parametrize("path", kernels.CONV_PATHS)
def test_explain_names_every_path_forced(path):
    """Every convolution path, forced where it applies, is reported with its source file."""
    xs, ws = (2, 8, 16, 16), (16, 8, 3, 3)          # (k16: K a multiple of 16)
    if path == "depthwise":
        ws = (8, 1, 3, 3)
    kw = dict(padding=0 if path == "pointwise" else 1, groups=8 if path == "depthwise" else 1)
    if path == "pointwise":
        ws = (16, 8, 1, 1)
    if path == "k32":                               # (k32: K a multiple of 32)
        ws = (32, 8, 3, 3)
    if path in ("blas", "winograd", "winograd4", "pointwise", "hwnc") and not _blas.available():
        pytest.skip("no OpenBLAS next to NumPy")
    if path in ("k16", "w16") and kernels.simd_level() == 0:
        pytest.skip("no AVX2/AVX-512")
    with kernels.use(path):
        e = kernels.explain(xs, ws, **kw)
    assert e.forward == path and f"{path} " in str(e) and "ext/" in str(e)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: kernels.choose((1, 3, 5, 5), (4, 2, 3, 3)), ValueError, r"conv2d\(\).*channels"),
    (lambda: kernels.choose((1, 3, 5, 5), (4, 3, 3, 3), stride=0), ValueError, "stride"),
    (lambda: kernels.choose((1, 3, 5, 5)), ValueError, "w_shape"),
    (lambda: kernels.choose((1, 3, 5, 5), (4, 3, 3, 3), op="conv3d"), ValueError, "op"),
    (lambda: kernels.choose((1, 3, 5, 5), op="max_pool2d", kernel_size=0), ValueError, "kernel_size"),
    (lambda: kernels.use("fast").__enter__(), ValueError, "path"),
    (lambda: kernels.use(None, k16_max=3).__enter__(), TypeError, "k16_max"),
])
def test_bad_arguments(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


# ---- the switch ---------------------------------------------------------------------------

def test_use_restores_nests_and_is_per_thread():
    xs, ws = (2, 3, 20, 20), (4, 3, 3, 3)
    default = kernels.choose(xs, ws)
    with kernels.use("direct"):
        assert kernels.choose(xs, ws) == ("direct",) * 3
        with kernels.use("gemm", workspace_bytes=1):
            assert kernels.choose(xs, ws) == ("gemm",) * 3
            assert kernels.tuning().workspace_bytes == 1
        assert kernels.choose(xs, ws) == ("direct",) * 3
        assert kernels.tuning().workspace_bytes == kernels.Tuning().workspace_bytes
        seen = []
        t = threading.Thread(target=lambda: seen.append(kernels.choose(xs, ws)))
        t.start()
        t.join()
        assert seen == [default]                   # a new thread starts with the defaults
    assert kernels.choose(xs, ws) == default
    with pytest.raises(RuntimeError):
        with kernels.use("direct"):
            raise RuntimeError("leaves the block")
    assert kernels.choose(xs, ws) == default


def test_plans_are_remembered_per_layer_and_settings(monkeypatch):
    """_plan remembers _decide's answer per layer, and every setting the answer depends on
    is part of what it remembers by: a `use` block's path or threshold, the SIMD level,
    OpenBLAS being there. The memo stays bounded."""
    xs, ws = (8, 64, 7, 7), (64, 64, 3, 3)
    kernels._PLANS.clear()
    first = kernels.choose(xs, ws, padding=1)
    assert len(kernels._PLANS) == 1
    assert kernels.choose(xs, ws, padding=1) is first and len(kernels._PLANS) == 1
    why = {}
    assert kernels._choose(xs, ws, "conv2d", 1, 1, 1, 1, np.float32, 0, None, False, True, None,
                           why) == first                  # (asking for reasons: not remembered)
    with kernels.use(None, w16_flat_max_k=0, w16_wgrad_max_k=0, hwnc_max_pixels=0,
                     hwnc_fallback_max_pixels=0):
        assert not {"w16", "hwnc"} & set(kernels.choose(xs, ws, padding=1))
    with kernels.use("direct"):
        assert kernels.choose(xs, ws, padding=1) == ("direct",) * 3
    before = kernels._SIMD_LEVEL
    try:
        kernels._SIMD_LEVEL = 0
        assert "w16" not in kernels.choose(xs, ws, padding=1)
    finally:
        kernels._SIMD_LEVEL = before
    big = (8, 256, 7, 7), (256, 256, 3, 3)             # (on OpenBLAS's GEMMs by default)
    with_blas = kernels.choose(*big, padding=1)
    monkeypatch.setattr(_blas, "_lib", None)
    assert set(kernels.choose(*big, padding=1)) == {"gemm"}
    monkeypatch.undo()
    assert kernels.choose(*big, padding=1) == with_blas
    assert kernels.choose(xs, ws, padding=1) == first
    for n in range(kernels._PLANS_MAX + 5):
        kernels.choose((1 + n % 50, 3, 8 + n // 50, 8), (4, 3, 3, 3))
    assert 0 < len(kernels._PLANS) <= kernels._PLANS_MAX


def test_trace_records_pooling_too():
    x = mg.tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)), requires_grad=True)
    with kernels.trace() as calls:
        F.avg_pool2d(F.max_pool2d(x, 2), 4).sum().backward()
    assert [(c.op, c.which, c.path) for c in calls] == [
        ("max_pool2d", "forward", "2x2"), ("avg_pool2d", "forward", "plane"),
        ("avg_pool2d", "input_grad", "plane"), ("max_pool2d", "input_grad", "direct")]


# ---- the lecture path on every configuration -------------------------------------------------

@st.composite
def configurations(draw):
    G = draw(st.sampled_from([1, 1, 2, 3]))
    Cg, Kg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    S = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))       # also strides > the kernel
    D = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(st.tuples(st.integers(0, 3), st.integers(0, 3)),
                             st.sampled_from(["same", "valid"])))   # 'same': asymmetric
    pads = (0, 0) if isinstance(padding, str) else padding
    H = max(1, D[0] * (kh - 1) + 1 - 2 * pads[0]) + draw(st.integers(0, 7))
    W = max(1, D[1] * (kw - 1) + 1 - 2 * pads[1]) + draw(st.integers(0, 7))
    return dict(N=draw(st.integers(1, 2)), G=G, Cg=Cg, Kg=Kg, k=(kh, kw), S=S, D=D,
                padding=padding, H=H, W=W, seed=draw(st.integers(0, 2**31)))


@settings(max_examples=60)
@given(case=configurations())
def test_direct_path_on_every_configuration(case):
    """kernels.use('direct'): forward, ∂L/∂x (stride phases) and ∂L/∂w all run on
    ext/conv_direct.pyx and match the references written from the formulas (∂L/∂x also
    the literal four steps of seed 004), and gradcheck passes."""
    rng = np.random.default_rng(case["seed"])
    G = case["G"]
    x = rng.standard_normal((case["N"], G * case["Cg"], case["H"], case["W"]))
    w = rng.standard_normal((G * case["Kg"], case["Cg"]) + case["k"])
    kw = dict(stride=case["S"], padding=case["padding"], dilation=case["D"], groups=G)
    P4 = ref.conv_padding4(case["padding"], case["H"], case["W"], *case["k"], case["S"], case["D"])
    want = ref.conv2d(x, w, None, case["S"], P4, case["D"], G)
    δ = rng.standard_normal(want.shape)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    poison_workspaces()
    with kernels.use("direct"), kernels.trace() as calls:
        y = F.conv2d(xt, wt, **kw)
        y.backward(δ)
        assert mg.gradcheck(lambda a, b: F.conv2d(a, b, **kw), [mg.tensor(x, requires_grad=True),
                                                               mg.tensor(w, requires_grad=True)])
    assert {c.path for c in calls} == {"direct"}
    np.testing.assert_allclose(y.data, want, rtol=1e-12, atol=1e-12)
    dx, dw, _ = ref.conv2d_vjp(x, w, δ, case["S"], P4, case["D"], G)
    np.testing.assert_allclose(xt.grad.data, dx, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(wt.grad.data, dw, rtol=1e-11, atol=1e-11)


def test_conv_backward_by_hand_example():
    """examples/conv_backward_by_hand.py: the four steps, the phases in NumPy and the
    kernels agree on every layer it shows (float64: to rounding)."""
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import conv_backward_by_hand as example
    finally:
        sys.path.pop(0)
    diffs = example.main(verbose=False)
    assert len(diffs) >= 7
    for name, d in diffs.items():
        assert d < 1e-12, (name, d)


def test_conv_backward_by_hand_runs_as_a_script():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "conv_backward_by_hand.py")],
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0, out.stderr
    assert "four steps" in out.stdout and "kernel 'direct' (forced)" in out.stdout


def test_tuning_hash_is_kept_and_agrees_with_equality():
    """Tuning caches its hash (kernels._plan's key holds it): equal tunings hash alike, a
    changed field gives another key, and a pickled copy still agrees."""
    import dataclasses
    import pickle
    t = kernels.Tuning()
    assert hash(t) == hash(t) == hash(kernels.Tuning())
    u = dataclasses.replace(t, k16_max_k=t.k16_max_k + 1)
    assert u != t and hash(u) == hash(dataclasses.replace(u))
    assert hash(u) != hash(t)           # (a different tuple of fields: a collision is 2⁻⁶⁴)
    v = pickle.loads(pickle.dumps(u))
    assert v == u and hash(v) == hash(u)
    assert {t: 1}[kernels.Tuning()] == 1
