"""The layers CNN model code needs (issue 11): containers, activations, channel dropout,
adaptive pooling, and later LRN, interpolate, nll_loss, lazy modules, init.

Forward values are checked against NumPy references written below from the formulas in
the ops' docstrings; gradients against central finite differences in float64
(mg.gradcheck) with hypothesis over shapes. Inputs of piecewise functions are drawn
away from their kinks (a kink has no derivative). Tests that compare with PyTorch live
in test_layers_zoo_torch.py and are skipped when torch is absent.
"""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

seeds = st.integers(0, 2**31 - 1)
shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4)


def t64(a, grad=True):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def away_from(r, shape, kinks, gap=0.05, scale=3.0):
    """Samples in (−scale, scale) at least `gap` from every kink."""
    x = r.uniform(-scale, scale, shape)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap) * 2
    return x


# ---- NumPy references, straight from the formulas -------------------------------------------
_erf = np.vectorize(math.erf)


def ref_leaky_relu(x, a=0.01):
    return np.where(x > 0, x, a * x)


def ref_hardtanh(x, lo=-1.0, hi=1.0):
    return np.minimum(np.maximum(x, lo), hi)


def ref_silu(x):
    return x / (1 + np.exp(-x))


def ref_gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return x * 0.5 * (1 + _erf(x / math.sqrt(2)))


def ref_gelu_grad(x):
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    return cdf + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


# every (name, F call, module, reference, kinks); the module and F forms must agree
ACTIVATIONS = [
    ("relu6", lambda x, **k: F.relu6(x, **k), lambda **k: nn.ReLU6(**k),
     lambda x: ref_hardtanh(x, 0, 6), (0, 6)),
    ("leaky_relu", lambda x, **k: F.leaky_relu(x, 0.2, **k), lambda **k: nn.LeakyReLU(0.2, **k),
     lambda x: ref_leaky_relu(x, 0.2), (0,)),
    ("leaky_relu_default", lambda x, **k: F.leaky_relu(x, **k), lambda **k: nn.LeakyReLU(**k),
     ref_leaky_relu, (0,)),
    ("hardtanh", lambda x, **k: F.hardtanh(x, -0.5, 2.0, **k), lambda **k: nn.Hardtanh(-0.5, 2.0, **k),
     lambda x: ref_hardtanh(x, -0.5, 2.0), (-0.5, 2.0)),
    ("silu", lambda x, **k: F.silu(x, **k), lambda **k: nn.SiLU(**k), ref_silu, ()),
    ("relu", lambda x, **k: F.relu(x, **k), lambda **k: nn.ReLU(**k), lambda x: np.maximum(x, 0), (0,)),
]


@pytest.mark.parametrize("name,fn,layer,ref,kinks", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
@given(seed=seeds, shape=shapes)
def test_activation_gradcheck_and_forward(name, fn, layer, ref, kinks, seed, shape):
    x = away_from(np.random.default_rng(seed), shape, kinks, scale=7.0)
    assert mg.gradcheck(fn, [t64(x)])
    assert mg.gradcheck(layer(), [t64(x)])
    np.testing.assert_allclose(fn(t64(x)).numpy(), ref(x), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("name,fn,layer,ref,kinks", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_inplace_gives_the_same_numbers(name, fn, layer, ref, kinks, rng):
    x = rng.standard_normal((2, 3, 5, 4)).astype(np.float32) * 4
    outs, grads = [], []
    calls = (lambda xt: fn(xt), lambda xt: fn(xt, inplace=True),
             lambda xt: layer()(xt), lambda xt: layer(inplace=True)(xt))
    for call in calls:
        xt = mg.tensor(x, requires_grad=True)
        y = call(xt)
        y.backward(np.arange(y.size, dtype=np.float32).reshape(y.shape))
        outs.append(y.numpy().copy())
        grads.append(xt.grad.numpy().copy())
        np.testing.assert_array_equal(xt.numpy(), x)         # computed out of place: x unchanged
    for o, g in zip(outs[1:], grads[1:]):
        np.testing.assert_array_equal(o, outs[0])
        np.testing.assert_array_equal(g, grads[0])
    assert outs[0].dtype == np.float32
    np.testing.assert_allclose(outs[0], ref(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    assert "inplace=True" in repr(layer(inplace=True))


def test_subgradients_at_the_kinks_follow_pytorch():
    """ReLU6/Hardtanh pass δ only strictly inside (lo, hi); LeakyReLU uses the slope at 0."""
    x = t64([-1.0, 0.0, 3.0, 6.0, 7.0])
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 0])
    x = t64([-0.5, 0.0, 2.0])
    F.hardtanh(x, -0.5, 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0])
    x = t64([-1.0, 0.0, 1.0])
    F.leaky_relu(x, 0.1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.1, 0.1, 1.0])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@given(seed=seeds, shape=shapes)
def test_gelu_gradcheck_and_forward(approximate, seed, shape):
    x = np.random.default_rng(seed).uniform(-5, 5, shape)
    assert mg.gradcheck(lambda a: F.gelu(a, approximate=approximate), [t64(x)])
    assert mg.gradcheck(nn.GELU(approximate), [t64(x)])
    np.testing.assert_allclose(F.gelu(t64(x), approximate).numpy(), ref_gelu(x, approximate),
                               rtol=1e-14, atol=1e-15)


def test_gelu_exact_values_and_derivative(rng):
    x = np.array([-30.0, -3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 40.0])
    # Φ(1) = 0.841344746068543 (normal table), so GELU(1) = 0.841344746068543
    y = F.gelu(t64(x, grad=False)).numpy()
    assert abs(y[5] - 0.8413447460685429) < 1e-15
    assert y[3] == 0.0 and y[0] == -0.0 and y[-1] == 40.0
    xt = t64(x)
    F.gelu(xt).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), ref_gelu_grad(x), rtol=1e-14, atol=1e-300)
    x32 = rng.standard_normal(1000).astype(np.float32) * 3          # float32 through erff
    y32 = F.gelu(mg.tensor(x32)).numpy()
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, ref_gelu(x32.astype(np.float64)), rtol=2e-6, atol=1e-7)
    big = rng.standard_normal(70_000)                                # the multithreaded loop
    np.testing.assert_allclose(F.gelu(t64(big, grad=False)).numpy(), ref_gelu(big), rtol=1e-14, atol=1e-16)


def test_activation_argument_errors():
    x = mg.randn(3)
    with pytest.raises(TypeError, match="relu6.*inplace"):
        F.relu6(x, inplace="yes")
    with pytest.raises(TypeError, match="ReLU.*inplace"):
        nn.ReLU(inplace=1)
    with pytest.raises(ValueError, match="hardtanh.*min_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="Hardtanh.*min_val"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(TypeError, match="leaky_relu.*negative_slope"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(ValueError, match="gelu.*approximate"):
        F.gelu(x, approximate="erf")
    with pytest.raises(ValueError, match="GELU.*approximate"):
        nn.GELU("sigmoid")
    with pytest.raises(TypeError, match="silu.*floating"):
        F.silu(mg.tensor([1, 2]))


def test_reprs_match_pytorch():
    assert repr(nn.ReLU6()) == "ReLU6()"
    assert repr(nn.ReLU6(inplace=True)) == "ReLU6(inplace=True)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(nn.Hardtanh()) == "Hardtanh(min_val=-1.0, max_val=1.0)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.SiLU()) == "SiLU()"
    assert repr(nn.Identity()) == "Identity()"
    assert repr(nn.Dropout2d(0.3)) == "Dropout2d(p=0.3)"


def test_identity_passes_its_input_through():
    x = mg.randn(2, 3, requires_grad=True)
    layer = nn.Identity(54, unused_argument1=0.1)
    y = layer(x)
    assert y is x
    assert list(layer.parameters()) == []


# ---- containers -------------------------------------------------------------------------------
class Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(4, 2), "box": nn.Linear(4, 1)})

    def forward(self, x):
        for b in self.blocks:
            x = b(x).relu()
        return self.heads["cls"](x), self.heads["box"](x)


def test_module_list_and_dict_register_their_modules():
    m = Blocks()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
                     "blocks.2.weight", "blocks.2.bias", "heads.cls.weight", "heads.cls.bias",
                     "heads.box.weight", "heads.box.bias"]
    assert list(m.state_dict()) == names
    m.eval()
    assert not m.blocks[1].training and not m.heads["box"].training
    x = mg.randn(5, 4)
    cls, box = m(x)
    (cls.sum() + box.sum()).backward()
    assert all(p.grad is not None for p in m.parameters())
    m2 = Blocks()
    m2.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(m2(x)[0].numpy(), cls.numpy())


def test_module_list_behaves_like_a_list():
    a, b, c, d = nn.ReLU(), nn.Tanh(), nn.Sigmoid(), nn.Identity()
    ml = nn.ModuleList([a, b])
    ml.append(c)
    ml.extend([d])
    assert len(ml) == 4 and list(ml) == [a, b, c, d] and ml[-1] is d and ml[1] is b
    assert c in ml and nn.ReLU() not in ml
    sub = ml[1:3]
    assert isinstance(sub, nn.ModuleList) and list(sub) == [b, c]
    assert list(sub._modules) == ["0", "1"]
    del ml[0]
    assert list(ml) == [b, c, d] and list(ml._modules) == ["0", "1", "2"]
    ml.insert(1, a)
    assert list(ml) == [b, a, c, d]
    ml[0] = c
    assert ml[0] is c
    assert list(ml + nn.ModuleList([b])) == [c, a, c, d, b]
    with pytest.raises(IndexError, match="out of range"):
        ml[4]
    with pytest.raises(TypeError, match="Module"):
        ml.append(3)
    with pytest.raises(TypeError, match="iterable"):
        nn.ModuleList(nn.Linear(2, 2))
    with pytest.raises(NotImplementedError, match="forward"):
        ml(mg.randn(2))
    assert repr(nn.ModuleList([nn.ReLU()])) == "ModuleList(\n  (0): ReLU()\n)"


def test_module_dict_behaves_like_a_dict():
    a, b = nn.ReLU(), nn.Tanh()
    md = nn.ModuleDict([("a", a), ("b", b)])
    assert list(md) == ["a", "b"] and list(md.keys()) == ["a", "b"]
    assert list(md.values()) == [a, b] and dict(md.items()) == {"a": a, "b": b}
    assert "a" in md and "z" not in md and len(md) == 2
    md["c"] = nn.Identity()
    md.update({"a": b})
    assert md["a"] is b and len(md) == 3
    assert md.pop("c").__class__ is nn.Identity
    del md["b"]
    assert list(md) == ["a"]
    with pytest.raises(TypeError, match="Module"):
        md["x"] = 3
    with pytest.raises(KeyError, match="'.'"):
        md["x.y"] = a
    with pytest.raises(TypeError, match="pair"):
        nn.ModuleDict([a])
    md.clear()
    assert len(md) == 0


# ---- channel dropout -------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels(rng):
    mg.manual_seed(7)
    x = mg.tensor(rng.uniform(1, 2, (64, 32, 3, 5)), requires_grad=True)
    p = 0.4
    y = F.dropout2d(x, p)
    yv = y.numpy()
    plane_zero = np.all(yv == 0, axis=(2, 3))
    plane_kept = np.all(yv != 0, axis=(2, 3))
    assert np.all(plane_zero | plane_kept)                       # each plane all or nothing
    np.testing.assert_allclose(yv[plane_kept], x.numpy()[plane_kept] / (1 - p), rtol=1e-12)
    assert abs(plane_zero.mean() - p) < 0.06                     # 2048 planes: ±5 σ
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(plane_kept[:, :, None, None] / (1 - p), x.shape))
    assert F.dropout2d(x, p, training=False) is x
    assert F.dropout2d(x, 0.0) is x
    mg.manual_seed(1)
    a = F.dropout2d(x, 0.5, inplace=True).numpy()
    mg.manual_seed(1)
    np.testing.assert_array_equal(F.dropout2d(x, 0.5).numpy(), a)
    z = F.dropout2d(mg.ones(2, 6, 7), 0.5).numpy()               # 3-d: (N, C, L) as PyTorch
    assert np.all(np.all(z == 0, axis=2) | np.all(z == 2, axis=2))
    with pytest.raises(ValueError, match="dropout2d.*4-d"):
        F.dropout2d(mg.ones(3, 4), 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nn.Dropout2d(1.5)


@given(seed=seeds, shape=st.lists(st.integers(1, 4), min_size=4, max_size=4),
       p=st.sampled_from([0.2, 0.5]))
def test_dropout2d_gradcheck_with_fixed_mask(seed, shape, p):
    x = t64(np.random.default_rng(seed).standard_normal(shape))

    def fn(a):
        mg.manual_seed(seed)
        return F.dropout2d(a, p)
    assert mg.gradcheck(fn, [x])


def test_dropout_layers_accept_inplace_and_eval(rng):
    x = mg.tensor(rng.standard_normal((2, 3, 4, 4)))
    for layer in (nn.Dropout(0.5, inplace=True), nn.Dropout2d(0.5, inplace=True)):
        mg.manual_seed(2)
        a = layer(x).numpy()
        mg.manual_seed(2)
        b = type(layer)(0.5)(x).numpy()
        np.testing.assert_array_equal(a, b)
        layer.eval()
        assert layer(x) is x
    mg.manual_seed(3)
    a = F.dropout(x, 0.3, True, True).numpy()
    mg.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, p=0.3, training=True, inplace=False).numpy(), a)


def test_softmax2d(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    y = nn.Softmax2d()(t64(x)).numpy()
    e = np.exp(x)
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-13)
    assert mg.gradcheck(nn.Softmax2d(), [t64(x[0])])
    with pytest.raises(ValueError, match="Softmax2d"):
        nn.Softmax2d()(mg.randn(3, 4))


# ---- adaptive pooling -------------------------------------------------------------------------
def adaptive_windows(n, out):
    """PyTorch's rule: window i covers ⌊i·n/out⌋ … ⌈(i+1)·n/out⌉ − 1."""
    return [(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def naive_adaptive(x, out, reduce):
    N, C, H, W = x.shape
    y = np.empty((N, C) + out, x.dtype)
    idx = np.empty((N, C) + out, np.int64)
    for i, (h0, h1) in enumerate(adaptive_windows(H, out[0])):
        for j, (w0, w1) in enumerate(adaptive_windows(W, out[1])):
            win = x[:, :, h0:h1, w0:w1]
            y[:, :, i, j] = reduce(win, axis=(2, 3))
            flat = win.reshape(N, C, -1).argmax(axis=2)
            idx[:, :, i, j] = (h0 + flat // (w1 - w0)) * W + w0 + flat % (w1 - w0)
    return y, idx


def untied(shape, rng):
    n = int(np.prod(shape))
    return rng.permutation(n).reshape(shape) * 0.1 - 0.05 * n


adaptive_cfg = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
                         st.integers(1, 6), st.integers(1, 6))


@given(cfg=adaptive_cfg, seed=seeds)
def test_adaptive_pools_match_naive_for_any_sizes(cfg, seed):
    N, C, H, W, OH, OW = cfg
    r = np.random.default_rng(seed)
    x = untied((N, C, H, W), r)
    y, idx = F.adaptive_max_pool2d(t64(x, grad=False), (OH, OW), return_indices=True)
    ry, ridx = naive_adaptive(x, (OH, OW), np.max)
    np.testing.assert_array_equal(y.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ridx)
    assert idx.dtype == np.int64
    np.testing.assert_allclose(F.adaptive_avg_pool2d(t64(x, grad=False), (OH, OW)).numpy(),
                               naive_adaptive(x, (OH, OW), np.mean)[0], rtol=1e-13, atol=1e-12)


@given(cfg=adaptive_cfg, seed=seeds)
def test_adaptive_max_pool_gradcheck_and_routing(cfg, seed):
    N, C, H, W, OH, OW = cfg
    r = np.random.default_rng(seed)
    x = untied((N, C, H, W), r)
    assert mg.gradcheck(lambda a: F.adaptive_max_pool2d(a, (OH, OW)), [t64(x)])
    assert mg.gradcheck(lambda a: F.adaptive_avg_pool2d(a, (OH, OW)), [t64(x)])
    # backward: δ goes to the recorded winner, overlapping windows accumulate
    xt = t64(x)
    y, idx = F.adaptive_max_pool2d(xt, (OH, OW), return_indices=True)
    δ = r.standard_normal(y.shape)
    y.backward(δ)
    expect = np.zeros((N * C, H * W))
    np.add.at(expect, (np.repeat(np.arange(N * C), OH * OW), idx.numpy().reshape(-1)), δ.reshape(-1))
    np.testing.assert_allclose(xt.grad.numpy(), expect.reshape(x.shape), rtol=1e-15)


def test_adaptive_max_pool_layer_and_arguments(rng):
    x = mg.tensor(rng.standard_normal((2, 3, 10, 7)).astype(np.float32))
    layer = nn.AdaptiveMaxPool2d((3, None))
    assert layer(x).shape == (2, 3, 3, 7) and layer(x).dtype == np.float32
    assert nn.AdaptiveMaxPool2d(1)(x).shape == (2, 3, 1, 1)
    np.testing.assert_array_equal(nn.AdaptiveMaxPool2d(1)(x).numpy()[..., 0, 0], x.numpy().max(axis=(2, 3)))
    assert nn.AdaptiveMaxPool2d((4, 3))(x[0]).shape == (3, 4, 3)            # unbatched (C, H, W)
    y, i = nn.AdaptiveMaxPool2d(2, return_indices=True)(x)
    assert y.shape == i.shape == (2, 3, 2, 2)
    assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (2, 3, 10, 2)
    # more outputs than inputs: windows of one element, repeated
    up = F.adaptive_max_pool2d(x, (20, 14)).numpy()
    np.testing.assert_array_equal(up, x.numpy().repeat(2, axis=2).repeat(2, axis=3))
    assert repr(layer) == "AdaptiveMaxPool2d(output_size=(3, None))"
    with pytest.raises(ValueError, match="adaptive_max_pool2d.*positive"):
        F.adaptive_max_pool2d(x, 0)
    with pytest.raises(TypeError, match="AdaptiveMaxPool2d.*output_size"):
        nn.AdaptiveMaxPool2d("7")
    with pytest.raises(ValueError, match="adaptive_max_pool2d.*3-d"):
        F.adaptive_max_pool2d(mg.randn(3, 4), 2)
