"""The 'pointwise' path (ext/conv_pointwise.pyx): a 1×1 convolution as one GEMM per sample,
against the lecture's direct loops (kernels.use('direct')) and finite differences; where
the chooser takes it, and the checks before the unchecked loops."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import _blas, kernels
from minigrad.ops import conv_dispatch

pytestmark = pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")


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


@given(N=st.integers(1, 4), C=st.integers(1, 7), K=st.integers(1, 7), H=st.integers(1, 9),
       W=st.integers(1, 9), bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       dilation=st.integers(1, 2), seed=st.integers(0, 2 ** 16))
def test_pointwise_matches_direct(N, C, K, H, W, bias, dtype, dilation, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C, 1, 1)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    got, paths = _conv(x, w, b, None, dilation=dilation)
    want, ref_paths = _conv(x, w, b, "direct", dilation=dilation)
    assert paths == {"pointwise"} and ref_paths == {"direct"}
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for name, a, r in zip(["y", "dx", "dw", "db"], got, want):
        if r is None:
            assert a is None
            continue
        assert a.shape == r.shape and a.dtype == r.dtype, name
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * (1 + np.abs(r).max()) * C * 4, err_msg=name)


def test_pointwise_gradcheck(rng):
    x = mg.tensor(rng.standard_normal((3, 4, 5, 2)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((6, 4, 1, 1)), requires_grad=True)
    b = mg.tensor(rng.standard_normal(6), requires_grad=True)
    with kernels.trace() as calls:
        assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b), [x, w, b])
    assert {c.path for c in calls if c.op == "conv2d"} == {"pointwise"}


@pytest.mark.parametrize("kw, ws", [(dict(stride=2), (6, 4, 1, 1)), (dict(padding=1), (6, 4, 1, 1)),
                                    (dict(groups=2), (6, 2, 1, 1)), ({}, (6, 4, 3, 3))])
def test_pointwise_declines_other_layers(kw, ws):
    with kernels.use("pointwise"):
        assert "pointwise" not in kernels.choose((2, 4, 8, 8), ws, **kw)
    why = str(kernels.explain((2, 4, 8, 8), ws, **kw))
    assert "pointwise" in why


def test_conv_transpose_1x1_takes_it_and_agrees(rng):
    x = rng.standard_normal((2, 5, 6, 7))
    w = rng.standard_normal((5, 3, 1, 1))
    outs = {}
    for path in (None, "direct"):
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        with kernels.use(path), kernels.trace() as calls:
            y = F.conv_transpose2d(xt, wt)
            y.sum().backward()
        outs[path] = (y.numpy(), xt.grad.numpy(), wt.grad.numpy())
        if path is None:
            assert "pointwise" in {c.path for c in calls}
    for a, r in zip(outs[None], outs["direct"]):
        np.testing.assert_allclose(a, r, atol=1e-12)


def test_python_side_checks_before_the_kernels():
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
