"""conv2d's direct loops of ext/direct16.h for small float32 layers, vectorised over 16
output channels ('k16') or over runs of 16 output pixels ('w16'): forward against the
reference over random shapes, strides, dilations and paddings; the dispatch rules;
gradients through them."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
from kernel_spy import forced, ran  # noqa: E402


def k16(force=True):
    """Force (or not) the 'k16' path (the scratch memory poisoned first: see kernel_spy);
    yields the kernels.trace() log."""
    return forced("k16", force)


def w16(force=True):
    """The same for the 'w16' path."""
    return forced("w16", force)


@st.composite
def cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # the smallest input the dilated kernel fits in, plus a few (runs of 10 output pixels:
    # rows shorter than, equal to and longer than one run)
    H = max(1, (kh - 1) * dh + 1 - 2 * ph) + draw(st.integers(0, 12))
    W = max(1, (kw - 1) * dw + 1 - 2 * pw) + draw(st.integers(0, 25))
    kernel = draw(st.sampled_from(["k16", "w16"]))
    # k16: K a multiple of 16; w16: any K (its blocks of 8 or 16 channels padded), column
    # stride 1, rows shorter and longer than one run of 16
    K = draw(st.sampled_from([16, 32, 48]) if kernel == "k16" else st.integers(1, 40))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)) if kernel == "k16" else 1)
    return dict(kernel=kernel, N=draw(st.integers(1, 3)), C=draw(st.integers(1, 5)), K=K,
                H=H, W=W, k=(kh, kw), S=S, D=(dh, dw), P=(ph, pw), bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31)))


@settings(max_examples=150)                     # cheap: small shapes, two kernels
@given(case=cases())
def test_forward_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((case["K"], case["C"]) + case["k"]).astype(np.float32)
    b = rng.standard_normal(case["K"]).astype(np.float32) if case["bias"] else None
    with (k16 if case["kernel"] == "k16" else w16)() as log:
        y = F.conv2d(x, w, b, stride=case["S"], padding=case["P"], dilation=case["D"])
    assert ran(log, case["kernel"]), f"the {case['kernel']} kernel did not run"
    P4 = (case["P"][0], case["P"][0], case["P"][1], case["P"][1])
    want = ref.conv2d(x, w, b, case["S"], P4, case["D"], 1)
    assert y.shape == want.shape and y.dtype == np.float32
    scale = max(1.0, float(np.abs(want).max()))   # the float32 tolerances of tests/test_conv.py
    np.testing.assert_allclose(y.data, want, rtol=1e-4, atol=1e-5 * scale)


def test_default_takes_k16_and_w16_only_where_they_apply_and_pay():
    """On a CPU with AVX2/AVX-512, LeNet's second layer takes k16 and its first layer,
    cifar-3x3 and a 32-channel 3×3 layer on 16-wide rows take w16 by default; float64,
    groups, many output channels, strided columns and the shapes Winograd takes do not."""
    rng = np.random.default_rng(1)
    simd = kernels.simd_level() > 0

    def runs(xs, ws, dtype=np.float32, groups=1, padding=0, stride=1):
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        with forced(None, force=False) as log:
            F.conv2d(x, w, padding=padding, groups=groups, stride=stride)
        return ("k16" if ran(log, "k16") else "") + ("w16" if ran(log, "w16") else "")
    assert runs((4, 6, 14, 14), (16, 6, 5, 5)) == ("k16" if simd else "")          # LeNet c2
    assert runs((4, 1, 28, 28), (6, 1, 5, 5), padding=2) == ("w16" if simd else "")  # LeNet c1
    assert runs((4, 3, 32, 32), (16, 3, 3, 3), padding=1) == ("w16" if simd else "")  # cifar
    assert runs((4, 6, 14, 14), (16, 6, 5, 5), dtype=np.float64) == ""
    assert runs((4, 6, 14, 14), (12, 6, 5, 5)) == ""                         # K % 16, rows of 10
    assert runs((4, 6, 14, 14), (16, 3, 5, 5), groups=2) == ""
    assert runs((4, 6, 14, 14), (64, 6, 5, 5)) == ""                         # K = 64
    assert runs((4, 6, 40, 40), (64, 6, 5, 5)) == ""
    assert runs((4, 3, 64, 64), (16, 3, 3, 3), stride=2) == ""               # column stride 2
    assert runs((8, 64, 16, 16), (64, 64, 3, 3), padding=1) == ""            # Winograd's
    # K ≤ 32 on rows ≥ 14: w16 is asked before Winograd (RESULTS.md, w16_max_k)
    assert runs((8, 32, 16, 16), (32, 32, 3, 3), padding=1) == ("w16" if simd else "")


@pytest.mark.parametrize("spy", [k16, w16])
def test_gradients_through_the_direct16_forward(spy):
    """The backward is the usual one; the forward it follows is the direct kernel's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
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
