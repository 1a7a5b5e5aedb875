"""conv2d's direct loops vectorised over 16 output channels (ext/direct16.h, the 'k16'
path for small float32 layers): forward against the reference over random shapes,
strides, dilations and paddings; the dispatch rule; gradients through it."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad.ops import conv as C

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402
from kernel_spy import forced  # noqa: E402


def k16(force=True):
    """Force (or not) the 'k16' path; yields the list of the (x.shape, wt.shape) of every
    call that reached its kernel (the scratch memory poisoned first: see kernel_spy)."""
    return forced("k16", C._k, "conv2d_forward_k16", force)


@st.composite
def cases(draw):
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # the smallest input the dilated kernel fits in, plus a few (runs of 10 output pixels:
    # rows shorter than, equal to and longer than one run)
    H = max(1, (kh - 1) * dh + 1 - 2 * ph) + draw(st.integers(0, 12))
    W = max(1, (kw - 1) * dw + 1 - 2 * pw) + draw(st.integers(0, 25))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 5)), K=draw(st.sampled_from([16, 32, 48])),
                H=H, W=W, k=(kh, kw), S=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                D=(dh, dw), P=(ph, pw), bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31)))


@given(case=cases())
def test_forward_matches_reference(case):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["N"], case["C"], case["H"], case["W"])).astype(np.float32)
    w = rng.standard_normal((case["K"], case["C"]) + case["k"]).astype(np.float32)
    b = rng.standard_normal(case["K"]).astype(np.float32) if case["bias"] else None
    with k16() as calls:
        y = F.conv2d(x, w, b, stride=case["S"], padding=case["P"], dilation=case["D"])
    assert calls, "the k16 kernel did not run"
    P4 = (case["P"][0], case["P"][0], case["P"][1], case["P"][1])
    want = ref.conv2d(x, w, b, case["S"], P4, case["D"], 1)
    assert y.shape == want.shape and y.dtype == np.float32
    scale = max(1.0, float(np.abs(want).max()))   # the float32 tolerances of tests/test_conv.py
    np.testing.assert_allclose(y.data, want, rtol=1e-4, atol=1e-5 * scale)


def test_default_takes_k16_only_where_it_applies_and_pays():
    """LeNet's second layer takes it by default on a CPU with AVX2/AVX-512; float64, K not
    a multiple of 16, groups, few taps, wide rows and many output channels do not."""
    rng = np.random.default_rng(1)

    def runs(xs, ws, dtype=np.float32, groups=1, padding=0):
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        with k16(force=False) as calls:
            F.conv2d(x, w, padding=padding, groups=groups)
        return bool(calls)
    assert runs((4, 6, 14, 14), (16, 6, 5, 5)) == (C._SIMD_LEVEL > 0)      # LeNet c2
    assert not runs((4, 6, 14, 14), (16, 6, 5, 5), dtype=np.float64)
    assert not runs((4, 6, 14, 14), (12, 6, 5, 5))                         # K % 16
    assert not runs((4, 6, 14, 14), (16, 3, 5, 5), groups=2)
    assert not runs((4, 1, 28, 28), (16, 1, 5, 5), padding=2)              # 25 taps
    assert not runs((4, 6, 40, 40), (16, 6, 5, 5))                         # rows of 36
    assert not runs((4, 6, 14, 14), (64, 6, 5, 5))                         # K = 64


def test_gradients_through_the_k16_forward():
    """The backward is the usual one; the forward it follows is the k16 kernel's."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    w = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    δ = rng.standard_normal((2, 16, 5, 7)).astype(np.float32)
    grads = []
    for force in (True, False):
        ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
        with k16(force=force) as calls:
            C._FORCE_PATH = "k16" if force else "blas"
            y = F.conv2d(*ts, stride=2, padding=(1, 2))
            y.backward(δ)
        assert bool(calls) == force
        grads.append([y.data] + [t.grad.data for t in ts])
    for a, r in zip(*grads):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)
