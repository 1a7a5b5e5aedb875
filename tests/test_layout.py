"""data_format="channels_last" (TensorFlow's NHWC activations, (kh, kw, in, out) weights) on
conv2d, max_pool2d, avg_pool2d and their layers: the same numbers as channels-first, the
gradients too, and seed 000's Keras / tf.nn.conv2d cells give the notes' shapes."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

NHWC, NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


@st.composite
def conv_cases(draw):
    G = draw(st.sampled_from([1, 1, 2]))
    Cg, Kg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    D = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.one_of(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                             st.sampled_from(["same", "valid"])))
    H = D[0] * (kh - 1) + 1 + draw(st.integers(0, 5))
    W = D[1] * (kw - 1) + 1 + draw(st.integers(0, 5))
    return dict(N=draw(st.integers(1, 2)), G=G, Cg=Cg, Kg=Kg, kh=kh, kw=kw, S=S, D=D,
                padding=padding, H=H, W=W, bias=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31)))


def _nchw_arrays(c):
    rng = np.random.default_rng(c["seed"])
    x = rng.standard_normal((c["N"], c["G"] * c["Cg"], c["H"], c["W"]))
    w = rng.standard_normal((c["G"] * c["Kg"], c["Cg"], c["kh"], c["kw"]))
    b = rng.standard_normal(c["G"] * c["Kg"]) if c["bias"] else None
    return x, w, b


def _conv(c, x, w, b, data_format):
    return F.conv2d(x, w, b, stride=c["S"], padding=c["padding"], dilation=c["D"],
                    groups=c["G"], data_format=data_format)


@given(c=conv_cases())
def test_conv2d_channels_last_gives_the_channels_first_numbers_and_gradients(c):
    x, w, b = _nchw_arrays(c)
    xs, ws = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = _conv(c, xs, ws, b, "channels_first")
    xl = mg.tensor(x.transpose(NHWC), requires_grad=True)              # (N, H, W, C)
    wl = mg.tensor(w.transpose(2, 3, 1, 0), requires_grad=True)        # (kh, kw, C/G, K)
    yl = _conv(c, xl, wl, b, "channels_last")
    assert yl.shape == tuple(np.transpose(y.data, NHWC).shape)
    np.testing.assert_array_equal(yl.data, y.data.transpose(NHWC))
    δ = np.random.default_rng(c["seed"] + 1).standard_normal(y.shape)
    y.backward(δ)
    yl.backward(δ.transpose(NHWC))
    np.testing.assert_allclose(xl.grad.data, xs.grad.data.transpose(NHWC), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(wl.grad.data, ws.grad.data.transpose(2, 3, 1, 0), rtol=1e-12, atol=1e-12)


@given(c=conv_cases())
def test_conv2d_channels_last_gradcheck(c):
    x, w, b = _nchw_arrays(c)
    inputs = [mg.tensor(x.transpose(NHWC), requires_grad=True),
              mg.tensor(w.transpose(2, 3, 1, 0), requires_grad=True)]
    if b is not None:
        inputs.append(mg.tensor(b, requires_grad=True))
    assert mg.gradcheck(lambda x, w, b=None: _conv(c, x, w, b, "channels_last"), inputs)


@pytest.mark.parametrize("pool, kwargs", [
    (F.max_pool2d, dict(kernel_size=2)),
    (F.max_pool2d, dict(kernel_size=3, stride=2, padding=1)),
    (F.max_pool2d, dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1), ceil_mode=True)),
    (F.avg_pool2d, dict(kernel_size=2)),
    (F.avg_pool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (F.avg_pool2d, dict(kernel_size=(3, 2), stride=2, padding="same")),
])
def test_pooling_channels_last_gives_the_channels_first_numbers_and_gradients(pool, kwargs):
    rng = np.random.default_rng(7)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0     # no ties for max
    xs = mg.tensor(x, requires_grad=True)
    xl = mg.tensor(x.transpose(NHWC), requires_grad=True)
    y, yl = pool(xs, **kwargs), pool(xl, data_format="channels_last", **kwargs)
    np.testing.assert_array_equal(yl.data, y.data.transpose(NHWC))
    δ = rng.standard_normal(y.shape)
    y.backward(δ)
    yl.backward(δ.transpose(NHWC))
    np.testing.assert_array_equal(xl.grad.data, xs.grad.data.transpose(NHWC))
    assert mg.gradcheck(lambda t: pool(t, data_format="channels_last", **kwargs),
                        [mg.tensor(x.transpose(NHWC), requires_grad=True)])


def test_max_pool_indices_channels_last():
    x = np.random.default_rng(1).permutation(96).reshape(1, 6, 4, 4).astype(np.float64)
    y, i = F.max_pool2d(x, 2, return_indices=True)
    yl, il = F.max_pool2d(x.transpose(NHWC), 2, return_indices=True, data_format="NHWC")
    np.testing.assert_array_equal(yl.data, y.data.transpose(NHWC))
    np.testing.assert_array_equal(il.data, i.data.transpose(NHWC))


def test_unbatched_hwc():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((3, 9, 8)), rng.standard_normal((4, 3, 3, 3))
    y = F.conv2d(x, w, padding=1)                                           # (K, H, W)
    yl = F.conv2d(x.transpose(1, 2, 0), w.transpose(2, 3, 1, 0), padding=1,
                  data_format="channels_last")                              # (H, W, K)
    np.testing.assert_array_equal(yl.data, y.data.transpose(1, 2, 0))
    p = F.max_pool2d(x.transpose(1, 2, 0), 2, data_format="channels_last")
    np.testing.assert_array_equal(p.data, F.max_pool2d(x, 2).data.transpose(1, 2, 0))


# ---- seed 000's cells: layers.Conv2D and tf.nn.conv2d on x = [1, 32, 32, 3] ---------------

@pytest.mark.parametrize("stride, padding, shape", [
    (1, "valid", (1, 28, 28, 4)),        # In [6]:  Conv2D(4, kernel_size=5, strides=1, padding='valid')
    (1, "same", (1, 32, 32, 4)),         # In [10]: ... strides=1, padding='same'
    (2, "same", (1, 16, 16, 4)),         # In [13]: ... strides=2, padding='same'
])
def test_seed000_keras_conv2d_cells(stride, padding, shape):
    x = mg.randn(1, 32, 32, 3)
    layer = nn.Conv2d(3, 4, kernel_size=5, stride=stride, padding=padding, data_format="channels_last")
    assert layer(x).shape == shape
    assert layer.weight.shape == (5, 5, 3, 4)          # In [17]: layer.kernel  shape=(5, 5, 3, 4)
    assert layer.bias.shape == (4,)                    # In [18]: layer.bias    shape=(4,)
    # the same numbers as the channels-first layer holding the same weights
    first = nn.Conv2d(3, 4, kernel_size=5, stride=stride, padding=padding)
    first.weight.data = layer.weight.data.transpose(3, 2, 0, 1).copy()
    first.bias.data = layer.bias.data.copy()
    np.testing.assert_allclose(layer(x).data, first(x.permute(0, 3, 1, 2)).data.transpose(NHWC),
                               rtol=1e-5, atol=1e-5)


def test_seed000_tf_nn_conv2d_cells():
    x = mg.randn(1, 32, 32, 3)
    w = mg.randn(5, 5, 3, 4)                            # In [21]: w = tf.random.normal([5,5,3,4])
    b = mg.zeros(4)
    out = F.conv2d(x, w, stride=1, padding="valid", data_format="channels_last")
    assert out.shape == (1, 28, 28, 4)                  # Out[30]
    assert (out + b).shape == (1, 28, 28, 4)            # Out[32]: out = out + b broadcasts
    assert F.conv2d(x, w, stride=2, padding="valid", data_format="NHWC").shape == (1, 14, 14, 4)


def test_pool_layers_channels_last():
    x = mg.randn(2, 8, 8, 3)
    assert nn.MaxPool2d(2, data_format="channels_last")(x).shape == (2, 4, 4, 3)
    assert nn.AvgPool2d(2, data_format="channels_last")(x).shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(nn.MaxPool2d(2, data_format="channels_last")(x).data,
                                  F.max_pool2d(x.permute(0, 3, 1, 2), 2).data.transpose(NHWC))


def test_against_tensorflow_when_installed():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 9, 9, 3)).astype(np.float32), rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    for s, p in ((1, "VALID"), (2, "SAME"), (2, "VALID")):
        ref = tf.nn.conv2d(x, w, strides=s, padding=p).numpy()
        ours = F.conv2d(x, w, stride=s, padding=p.lower(), data_format="channels_last").data
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


# ---- bad input ----------------------------------------------------------------------

def test_bad_data_format_is_a_value_error_naming_the_function():
    x = np.zeros((1, 4, 4, 3), np.float32)
    for call, name in ((lambda: F.conv2d(x, np.zeros((3, 3, 3, 2), np.float32), data_format="nhwc"), "conv2d"),
                       (lambda: F.max_pool2d(x, 2, data_format="NWHC"), "max_pool2d"),
                       (lambda: F.avg_pool2d(x, 2, data_format=None), "avg_pool2d"),
                       (lambda: nn.Conv2d(3, 2, 3, data_format="last"), "Conv2d"),
                       (lambda: nn.MaxPool2d(2, data_format="last"), "MaxPool2d")):
        with pytest.raises(ValueError, match=rf"{name}\(\).*data_format"):
            call()


def test_channels_last_shape_errors_speak_nhwc():
    with pytest.raises(ValueError, match=r"input has 28 channels in its last axis.*\(1, 3, 28, 28\)"):
        F.conv2d(np.zeros((1, 3, 28, 28), np.float32), np.zeros((5, 5, 3, 4), np.float32),
                 data_format="channels_last")
    with pytest.raises(ValueError, match=r"weight must be 4-d \(F_h, F_w, C/groups, K\)"):
        F.conv2d(np.zeros((1, 8, 8, 3), np.float32), np.zeros((5, 5, 3), np.float32),
                 data_format="channels_last")
    with pytest.raises(ValueError, match=r"max_pool2d\(data_format='channels_last'\): input must be 4-d"):
        F.max_pool2d(np.zeros((8, 8), np.float32), 2, data_format="channels_last")


def test_gradcheck_perturbs_a_transposed_input():
    """A channels-last tensor made by transposing is not C-contiguous; gradcheck used to
    perturb a copy of such an input and report a numerical gradient of 0 everywhere."""
    class Wrong(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, δ):
            return δ * 3.0                               # should be 2·δ

    x = mg.tensor(np.arange(6.0).reshape(2, 3).T, requires_grad=True)   # F-ordered
    assert not x.data.flags.c_contiguous
    assert mg.gradcheck(lambda t: t * 2.0, [x])
    with pytest.raises(mg.GradcheckError) as e:
        mg.gradcheck(lambda t: Wrong.apply(t), [x])
    import re
    num, ana = (float(v) for v in re.search(r"numerical (\S+), analytical (\S+) ", str(e.value)).groups())
    assert num == pytest.approx(2 / 3 * ana, rel=1e-6)          # 2r numerically, 3r claimed
