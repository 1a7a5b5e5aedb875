"""The 'depthwise' path (ext/conv_depthwise.pyx: groups = C = K, one filter per channel)
against the lecture's direct loops (kernels.use('direct')) and finite differences, over
strides, paddings, dilations and odd sizes; where the chooser takes it; its checks."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels
from minigrad.ops import conv_dispatch


def _conv(x, w, b, path, **kw):
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    bt = None if b is None else mg.tensor(b, requires_grad=True)
    with kernels.use(path), kernels.trace() as calls:
        y = F.conv2d(xt, wt, bt, **kw)
        g = np.cos(np.arange(y.numpy().size, dtype=x.dtype)).reshape(y.shape)
        (y * mg.tensor(g)).sum().backward()
    out = [y.numpy(), xt.grad.numpy(), wt.grad.numpy(), None if b is None else bt.grad.numpy()]
    return out, {c.path for c in calls if c.op == "conv2d"}


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
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 1, 3, 3))
    outs = {}
    for path in (None, "direct"):
        xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
        with kernels.use(path):
            y = F.conv_transpose2d(xt, wt, stride=2, padding=1, output_padding=1, groups=4)
            y.sum().backward()
        outs[path] = (y.numpy(), xt.grad.numpy(), wt.grad.numpy())
    for a, r in zip(outs[None], outs["direct"]):
        np.testing.assert_allclose(a, r, atol=1e-12)


def test_chooser_takes_depthwise_only_for_one_filter_per_channel():
    assert kernels.choose((8, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32) == ("depthwise",) * 3
    assert "depthwise" not in kernels.choose((8, 32, 28, 28), (64, 1, 3, 3), padding=1, groups=32)
    assert "depthwise" not in kernels.choose((8, 32, 28, 28), (16, 2, 3, 3), padding=1, groups=16)
    with kernels.use("direct"):
        assert kernels.choose((8, 32, 28, 28), (32, 1, 3, 3), padding=1, groups=32) == ("direct",) * 3


def test_python_side_checks_before_the_kernels():
    g = conv_dispatch.Geom((1, 1), (1, 1), (1, 1), 4)
    x = np.ones((2, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match=r"conv2d\(\): the 'depthwise' path needs groups"):
        conv_dispatch._forward_depthwise(x, np.ones((8, 1, 3, 3), np.float32), None, (5, 5), g)
    with pytest.raises(ValueError, match=r"the 'depthwise' path got δ of shape"):
        conv_dispatch._backward_depthwise(x, x.shape, np.ones((2, 3, 5, 5), np.float32),
                                          np.ones((4, 1, 3, 3), np.float32), g, True, True, True)
