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
    return x * 0.5 * (1 + _erf(x * math.sqrt(0.5)))        # x·(1/√2), as PyTorch rounds it


def ref_gelu_grad(x):
    cdf = 0.5 * (1 + _erf(x * math.sqrt(0.5)))
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
    ("hardsigmoid", lambda x, **k: F.hardsigmoid(x, **k), lambda **k: nn.Hardsigmoid(**k),
     lambda x: np.minimum(np.maximum(x + 3, 0), 6) / 6, (-3, 3)),
    ("hardswish", lambda x, **k: F.hardswish(x, **k), lambda **k: nn.Hardswish(**k),
     lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6, (-3, 3)),
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
    """ReLU6/Hardtanh/Hardsigmoid pass δ only strictly inside (lo, hi); LeakyReLU uses the
    slope at 0; Hardswish takes the outer slopes at ±3."""
    x = t64([-1.0, 0.0, 3.0, 6.0, 7.0])
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 0])
    x = t64([-0.5, 0.0, 2.0])
    F.hardtanh(x, -0.5, 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0])
    x = t64([-1.0, 0.0, 1.0])
    F.leaky_relu(x, 0.1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.1, 0.1, 1.0])
    x = t64([-3.0, 0.0, 3.0])                       # Hardswish: 0 at −3, 1 at 3 (PyTorch's)
    F.hardswish(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5, 1.0])
    x = t64([-3.0, 0.0, 3.0])
    F.hardsigmoid(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1 / 6, 0.0])


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


# ---- local response normalisation -------------------------------------------------------------
def ref_lrn(a, n, alpha, beta, k):
    """Straight from the formula: d_c = k + α/n Σ_{c' = c − ⌊n/2⌋}^{c + ⌊(n−1)/2⌋} a_{c'}²."""
    C = a.shape[1]
    b = np.empty_like(a)
    for c in range(C):
        lo, hi = max(c - n // 2, 0), min(c + (n - 1) // 2, C - 1)
        d = k + alpha / n * np.sum(a[:, lo:hi + 1] ** 2, axis=1)
        b[:, c] = a[:, c] / d ** beta
    return b


lrn_cfg = st.tuples(st.integers(1, 2), st.integers(1, 7), st.lists(st.integers(1, 3), min_size=1, max_size=2),
                    st.integers(1, 8), st.sampled_from([1e-4, 0.5, 2.0]), st.sampled_from([0.75, 0.3, 1.5]),
                    st.sampled_from([1.0, 2.0, 0.5]))


@given(cfg=lrn_cfg, seed=seeds)
def test_lrn_gradcheck_and_forward(cfg, seed):
    N, C, spatial, n, alpha, beta, k = cfg
    x = np.random.default_rng(seed).standard_normal((N, C) + tuple(spatial)) * 2
    np.testing.assert_allclose(F.local_response_norm(t64(x, grad=False), n, alpha, beta, k).numpy(),
                               ref_lrn(x, n, alpha, beta, k), rtol=1e-13, atol=1e-15)
    assert mg.gradcheck(lambda a: F.local_response_norm(a, n, alpha, beta, k), [t64(x)], atol=1e-6, rtol=1e-5)
    assert mg.gradcheck(nn.LocalResponseNorm(n, alpha, beta, k), [t64(x)], atol=1e-6, rtol=1e-5)


def test_lrn_alexnet_setting_and_layer(rng):
    x = rng.standard_normal((2, 96, 5, 5)).astype(np.float32) * 10
    layer = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2)
    y = layer(mg.tensor(x))
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y.numpy(), ref_lrn(x.astype(np.float64), 5, 1e-4, 0.75, 2), rtol=1e-5)
    assert repr(layer) == "LocalResponseNorm(5, alpha=0.0001, beta=0.75, k=2)"
    # one channel with size 1: b = a / (k + α a²)^β
    a = np.array([[[3.0]]])
    assert F.local_response_norm(t64(a, grad=False), 1, 0.5, 1.0, 1.0).item() == 3.0 / (1 + 0.5 * 9)
    with pytest.raises(ValueError, match="local_response_norm.*3 dims"):
        F.local_response_norm(mg.randn(3, 4), 2)
    with pytest.raises(ValueError, match="LocalResponseNorm.*size"):
        nn.LocalResponseNorm(0)
    with pytest.raises(ValueError, match="local_response_norm.*k"):
        F.local_response_norm(mg.randn(1, 3, 4), 2, k=0.0)
    with pytest.raises(TypeError, match="local_response_norm.*size"):
        F.local_response_norm(mg.randn(1, 3, 4), 2.5)


# ---- cat along channels --------------------------------------------------------------------------
def test_cat_backward_hands_out_views_of_delta(rng):
    from minigrad.ops.shape import Cat
    xs = [mg.tensor(rng.standard_normal((2, c, 3, 3)), requires_grad=True) for c in (1, 4, 2)]
    y = mg.cat(xs, 1)
    np.testing.assert_array_equal(y.numpy(), np.concatenate([x.numpy() for x in xs], axis=1))
    δ = rng.standard_normal(y.shape)
    grads = Cat.backward(y.grad_fn, δ)[1:]
    for g, x, lo in zip(grads, xs, (0, 1, 5)):
        assert np.shares_memory(g, δ)                               # a view: no copy
        np.testing.assert_array_equal(g, δ[:, lo:lo + x.shape[1]])
    y.backward(δ)
    for x, lo in zip(xs, (0, 1, 5)):                                 # a leaf's .grad is its own copy
        assert not np.shares_memory(x.grad.numpy(), δ)
        np.testing.assert_array_equal(x.grad.numpy(), δ[:, lo:lo + x.shape[1]])


def test_dense_block_style_concatenation_accumulates(rng):
    """DenseNet reuses every feature map in every later concatenation: gradients add up."""
    x = mg.tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True)
    a = x * 2.0
    b = mg.cat([x, a], 1)
    c = mg.cat([b, a * 3.0], 1)
    c.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(x.shape, 1 + 2 + 6.0))


# ---- interpolate -----------------------------------------------------------------------------------
def ref_interpolate(x, out, mode, align_corners=False, scale=(None, None)):
    """Loops from PyTorch's coordinate rules (the docstring of minigrad/ops/resize.py)."""
    N, C, H, W = x.shape
    y = np.zeros((N, C) + out)

    def nearest(n, m, s):
        if m == n:
            return lambda i: [(i, 1.0)]
        if m == 2 * n:
            return lambda i: [(i // 2, 1.0)]
        S = np.float32(1.0 / s) if s is not None else np.float32(n) / np.float32(m)
        return lambda i: [(min(int(np.floor(np.float32(i) * S)), n - 1), 1.0)]

    def linear(n, m, s):
        def taps(i):
            if align_corners:
                src = i * ((n - 1) / (m - 1) if m > 1 else 0.0)
            else:
                S = 1.0 / s if s is not None else n / m
                src = max(S * (i + 0.5) - 0.5, 0.0)
            r0 = min(int(math.floor(src)), n - 1)
            r1 = min(r0 + 1, n - 1)
            lam = src - r0
            return [(r0, 1 - lam), (r1, lam)]
        return taps

    rule = nearest if mode == "nearest" else linear
    rows, cols = rule(H, out[0], scale[0]), rule(W, out[1], scale[1])
    for i in range(out[0]):
        for j in range(out[1]):
            for h, a in rows(i):
                for w, b in cols(j):
                    y[:, :, i, j] += a * b * x[:, :, h, w]
    return y


interp_cfg = st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 7), st.integers(1, 7),
                       st.integers(1, 9), st.integers(1, 9))


@pytest.mark.parametrize("mode,align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
@given(cfg=interp_cfg, seed=seeds)
def test_interpolate_to_a_size_gradcheck_and_forward(mode, align_corners, cfg, seed):
    N, C, H, W, OH, OW = cfg
    x = np.random.default_rng(seed).standard_normal((N, C, H, W))

    def fn(a):
        return F.interpolate(a, size=(OH, OW), mode=mode, align_corners=align_corners)
    np.testing.assert_allclose(fn(t64(x, grad=False)).numpy(),
                               ref_interpolate(x, (OH, OW), mode, bool(align_corners)), rtol=1e-13, atol=1e-14)
    assert mg.gradcheck(fn, [t64(x)])


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@given(cfg=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       scale=st.tuples(st.sampled_from([0.35, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 3.0]),
                       st.sampled_from([0.6, 1.0, 1.25, 2.0, 3.0])), seed=seeds)
def test_interpolate_by_a_scale_factor(mode, cfg, scale, seed):
    H, W = cfg
    out = (math.floor(H * scale[0]), math.floor(W * scale[1]))
    if min(out) < 1:
        with pytest.raises(ValueError, match="interpolate.*empty"):
            F.interpolate(mg.randn(1, 1, H, W), scale_factor=scale, mode=mode)
        return
    x = np.random.default_rng(seed).standard_normal((1, 2, H, W))

    def fn(a):
        return F.interpolate(a, scale_factor=scale, mode=mode)
    y = fn(t64(x, grad=False))
    assert y.shape == (1, 2) + out
    np.testing.assert_allclose(y.numpy(), ref_interpolate(x, out, mode, False, scale), rtol=1e-13, atol=1e-14)
    recomputed = F.interpolate(t64(x, grad=False), scale_factor=scale, mode=mode, recompute_scale_factor=True)
    np.testing.assert_allclose(recomputed.numpy(), ref_interpolate(x, out, mode, False), rtol=1e-13, atol=1e-14)
    assert mg.gradcheck(fn, [t64(x)])


def test_interpolate_known_values_and_layer():
    x = mg.tensor(np.arange(10.0).reshape(1, 1, 1, 10))
    # scale_factor 0.35: S = 1/0.35, so the nearest rows are ⌊i·2.857⌋ = 0, 2, 5 (PyTorch),
    # while recompute_scale_factor=True uses S = 10/3: 0, 3, 6
    np.testing.assert_array_equal(F.interpolate(x, scale_factor=(1, 0.35)).numpy().ravel(), [0, 2, 5])
    np.testing.assert_array_equal(
        F.interpolate(x, scale_factor=(1, 0.35), recompute_scale_factor=True).numpy().ravel(), [0, 3, 6])
    np.testing.assert_allclose(F.interpolate(x, size=(1, 3), mode="bilinear").numpy().ravel(),
                               [7 / 6, 4.5, 47 / 6], rtol=1e-6)
    np.testing.assert_allclose(F.interpolate(x, size=(1, 3), mode="bilinear", align_corners=True).numpy().ravel(),
                               [0, 4.5, 9])
    # ×2 nearest repeats each pixel into a 2×2 block; its gradient sums the block
    a = mg.tensor(np.arange(6.0).reshape(1, 1, 2, 3), requires_grad=True)
    up = nn.Upsample(scale_factor=2)(a)
    np.testing.assert_array_equal(up.numpy()[0, 0], np.arange(6.0).reshape(2, 3).repeat(2, 0).repeat(2, 1))
    up.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.full((1, 1, 2, 3), 4.0))
    assert up.dtype == np.float64 and nn.Upsample(size=5)(mg.randn(1, 2, 3, 3)).dtype == np.float32
    assert repr(nn.Upsample(scale_factor=2)) == "Upsample(scale_factor=2.0, mode='nearest')"
    b = mg.randn(1, 2, 3, 4)
    np.testing.assert_array_equal(nn.UpsamplingBilinear2d(size=(5, 7))(b).numpy(),
                                  F.interpolate(b, (5, 7), mode="bilinear", align_corners=True).numpy())
    np.testing.assert_array_equal(nn.UpsamplingNearest2d(scale_factor=3)(b).numpy(),
                                  b.numpy().repeat(3, 2).repeat(3, 3))
    for call, exc, msg in [
        (lambda: F.interpolate(x, size=2, scale_factor=2), ValueError, "exactly one"),
        (lambda: F.interpolate(x), ValueError, "exactly one"),
        (lambda: F.interpolate(x, size=2, mode="bicubic"), ValueError, "bicubic"),
        (lambda: F.interpolate(x, size=2, align_corners=True), ValueError, "align_corners"),
        (lambda: F.interpolate(mg.randn(1, 2, 3), size=2), ValueError, "4-d"),
        (lambda: F.interpolate(x, size=(0, 2)), ValueError, "positive"),
        (lambda: F.interpolate(x, size=2.5), TypeError, "size"),
        (lambda: F.interpolate(x, scale_factor=-1.0), ValueError, "scale_factor"),
    ]:
        with pytest.raises(exc, match="interpolate.*" + msg):
            call()


# ---- nll_loss and one_hot ------------------------------------------------------------------------
def ref_nll(x, y, w, ignore_index, reduction):
    """Loops over the formula ℓ_n = −w[y_n] x[n, y_n] (ignored: 0 and not counted)."""
    xm = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    yf = y.reshape(-1)
    losses, denom = np.zeros(len(yf)), 0.0
    for n, c in enumerate(yf):
        if c == ignore_index:
            continue
        losses[n] = -w[c] * xm[n, c]
        denom += w[c]
    if reduction == "none":
        return losses.reshape(y.shape)
    return losses.sum() if reduction == "sum" else losses.sum() / denom


@given(seed=seeds, N=st.integers(1, 4), C=st.integers(1, 5), extra=st.lists(st.integers(1, 3), max_size=2),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(), ignore=st.booleans())
def test_nll_loss_gradcheck_and_forward(seed, N, C, extra, reduction, weighted, ignore):
    r = np.random.default_rng(seed)
    shape = (N, C) + tuple(extra)
    x = r.standard_normal(shape)
    y = r.integers(0, C, (N,) + tuple(extra))
    ignore_index = -100
    if ignore and y.size > 1:
        ignore_index = int(y.reshape(-1)[0])                  # a real class, ignored wherever it appears
        y.reshape(-1)[-1] = (ignore_index + 1) % C if C > 1 else ignore_index
    w = r.uniform(0.5, 2, C) if weighted else np.ones(C)
    kwargs = dict(weight=w if weighted else None, ignore_index=ignore_index, reduction=reduction)
    got = F.nll_loss(t64(x, grad=False), y, **kwargs).numpy()
    if reduction == "mean" and np.all(y == ignore_index):
        assert np.isnan(got)                                   # 0/0, as PyTorch
        return
    expect = ref_nll(x, y, w, ignore_index, reduction)
    np.testing.assert_allclose(got, expect, rtol=1e-13, atol=1e-15)
    assert mg.gradcheck(lambda a: F.nll_loss(a, y, **kwargs), [t64(x)])


def test_nll_of_log_softmax_is_cross_entropy_and_layer(rng):
    z = rng.standard_normal((6, 4)).astype(np.float32)
    y = rng.integers(0, 4, 6)
    a = F.nll_loss(F.log_softmax(mg.tensor(z), 1), y).item()
    b = F.cross_entropy(mg.tensor(z), y).item()
    assert abs(a - b) < 1e-6
    assert abs(nn.NLLLoss()(F.log_softmax(mg.tensor(z), 1), y).item() - b) < 1e-6
    # unbatched: (C,) input, 0-d target
    assert F.nll_loss(mg.tensor(z[0]), np.int64(y[0])).item() == -z[0, y[0]]
    with pytest.raises(ValueError, match=r"nll_loss.*target\[1\] = 7"):
        F.nll_loss(mg.tensor(z), np.array([0, 7, 0, 0, 0, 0]))
    with pytest.raises(TypeError, match="nll_loss.*integer"):
        F.nll_loss(mg.tensor(z), y.astype(np.float32))
    with pytest.raises(ValueError, match=r"nll_loss.*target must have shape \(6,\)"):
        F.nll_loss(mg.tensor(z), y[:3])
    with pytest.raises(ValueError, match="nll_loss.*weight"):
        F.nll_loss(mg.tensor(z), y, weight=np.ones(3))


def test_one_hot(rng):
    y = rng.integers(0, 5, (3, 4))
    h = F.one_hot(mg.tensor(y), 7)
    assert h.shape == (3, 4, 7) and h.dtype == np.int64 and not h.requires_grad
    np.testing.assert_array_equal(h.numpy().argmax(-1), y)
    np.testing.assert_array_equal(h.numpy().sum(-1), np.ones((3, 4)))
    assert F.one_hot(mg.tensor([0, 3])).shape == (2, 4)                  # num_classes=-1: max + 1
    np.testing.assert_array_equal(F.one_hot(mg.tensor([2, 0])).numpy(), [[0, 0, 1], [1, 0, 0]])
    assert F.one_hot(mg.tensor(np.zeros(0, np.int64)), 3).shape == (0, 3)
    for call, exc, msg in [(lambda: F.one_hot(mg.tensor([1, 5]), 3), ValueError, "too large"),
                           (lambda: F.one_hot(mg.tensor([-1, 0])), ValueError, "non-negative"),
                           (lambda: F.one_hot(mg.tensor([0.5])), TypeError, "integers"),
                           (lambda: F.one_hot(mg.tensor(np.zeros(0, np.int64))), ValueError, "empty")]:
        with pytest.raises(exc, match="one_hot.*" + msg):
            call()


# ---- lazy modules --------------------------------------------------------------------------------
def test_lazy_modules_infer_sizes_and_become_their_layers():
    net = nn.Sequential(nn.LazyConv2d(6, 5, padding=2), nn.LazyBatchNorm2d(), nn.Sigmoid(),
                        nn.AvgPool2d(2), nn.Flatten(), nn.LazyLinear(10))
    params = list(net.parameters())
    assert [type(p) for p in params] == [nn.UninitializedParameter] * 6
    assert net[0].in_channels == 0 and net[5].in_features == 0 and net[1].num_features == 0
    assert net[0].has_uninitialized_params()
    assert isinstance(net[0], nn.Conv2d) and isinstance(net[5], nn.Linear)   # subclasses, as PyTorch's
    with pytest.raises(RuntimeError, match="uninitialized parameter"):
        params[0].shape
    assert repr(params[0]) == "<UninitializedParameter>"
    assert net(mg.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert [type(m) for m in net] == [nn.Conv2d, nn.BatchNorm2d, nn.Sigmoid, nn.AvgPool2d, nn.Flatten, nn.Linear]
    assert [p.shape for p in net.parameters()] == [(6, 1, 5, 5), (6,), (6,), (6,), (10, 1176), (10,)]
    assert all(a is b for a, b in zip(params, net.parameters()))         # the same objects, filled in
    assert all(type(p) is nn.Parameter for p in params)
    assert (net[0].in_channels, net[1].num_features, net[5].in_features) == (1, 6, 1176)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                      "1.running_var", "1.num_batches_tracked", "5.weight", "5.bias"]
    assert repr(net[0]) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"


@pytest.mark.parametrize("lazy,eager,x_shape", [
    (lambda: nn.LazyConv2d(8, 3, stride=2, padding=1, groups=2, bias=True),
     lambda: nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2), (2, 4, 9, 9)),
    (lambda: nn.LazyConv2d(5, (3, 1), bias=False), lambda: nn.Conv2d(3, 5, (3, 1), bias=False), (3, 6, 6)),
    (lambda: nn.LazyLinear(7), lambda: nn.Linear(12, 7), (4, 12)),
    (lambda: nn.LazyLinear(3, bias=False, dtype=np.float64),
     lambda: nn.Linear(5, 3, bias=False, dtype=np.float64), (2, 6, 5)),
    (lambda: nn.LazyBatchNorm2d(eps=1e-3, momentum=0.2), lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=0.2),
     (4, 3, 2, 2)),
    (lambda: nn.LazyBatchNorm1d(affine=False), lambda: nn.BatchNorm1d(5, affine=False), (4, 5)),
    (lambda: nn.LazyBatchNorm1d(momentum=None), lambda: nn.BatchNorm1d(2, momentum=None), (4, 2, 3)),
])
def test_lazy_modules_initialise_as_the_eager_ones(lazy, eager, x_shape):
    """Seeded, a lazy module's first call draws the same initial values as building the
    eager module at that moment, and the outputs, buffers and gradients agree."""
    mg.manual_seed(11)
    m_eager = eager()
    dtype = next(iter(list(m_eager.parameters()) + [mg.zeros(1)])).dtype
    x = np.random.default_rng(0).standard_normal(x_shape).astype(dtype)
    xe, xl = mg.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    ye = m_eager(xe)
    mg.manual_seed(11)
    m_lazy = lazy()
    yl = m_lazy(xl)
    assert type(m_lazy) is type(m_eager)
    np.testing.assert_array_equal(yl.numpy(), ye.numpy())
    for (n1, a), (n2, b) in zip(m_lazy.state_dict().items(), m_eager.state_dict().items()):
        assert n1 == n2
        np.testing.assert_array_equal(a, b)
    yl.sum().backward()
    ye.sum().backward()
    np.testing.assert_array_equal(xl.grad.numpy(), xe.grad.numpy())
    for p, q in zip(m_lazy.parameters(), m_eager.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert repr(m_lazy) == repr(m_eager)


def test_lazy_model_trains_with_an_optimizer_built_before_the_dry_run(rng):
    mg.manual_seed(0)
    net = nn.Sequential(nn.LazyConv2d(4, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(3))
    opt = mg.optim.SGD(net.parameters(), lr=0.2, momentum=0.9)
    x = mg.tensor(rng.standard_normal((12, 2, 6, 6)).astype(np.float32))
    y = np.arange(12) % 3
    x.data[np.arange(12), y % 2] += 2.0 * (y[:, None, None] - 1)          # learnable signal
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_lazy_modules_gradcheck():
    conv = nn.LazyConv2d(3, 2, stride=2, padding=1)
    conv(mg.zeros(1, 2, 5, 4))
    conv.weight.data = conv.weight.data.astype(np.float64)
    conv.bias.data = conv.bias.data.astype(np.float64)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 4))
    assert mg.gradcheck(conv, [t64(x)])
    lin = nn.LazyLinear(3, dtype=np.float64)
    assert mg.gradcheck(lambda a: lin(a), [t64(x.reshape(4, 20))])
    bn = nn.LazyBatchNorm2d(dtype=np.float64)
    assert mg.gradcheck(lambda a: bn(a), [t64(x)])
    assert type(bn) is nn.BatchNorm2d and bn.num_features == 2


def test_lazy_parameters_keep_a_dtype_given_before_the_first_call():
    bn = nn.LazyBatchNorm2d()
    for p in bn.parameters():                    # what Module.double() does to each parameter
        p.data = p.data.astype(np.float64)
    bn(mg.zeros(2, 3, 2, 2, dtype=np.float64))
    assert bn.weight.dtype == np.float64 and bn.running_mean.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64


def test_lazy_module_errors_name_the_layer():
    with pytest.raises(ValueError, match="groups"):
        nn.LazyConv2d(5, 3, groups=2)                     # out_channels not divisible, found at once
    with pytest.raises(ValueError, match=r"LazyConv2d: the input of shape \(1, 3, 5, 5\) gives in_channels=3"):
        nn.LazyConv2d(4, 3, groups=2)(mg.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="LazyConv2d.*3 or 4-d"):
        nn.LazyConv2d(4, 3)(mg.zeros(3, 5))
    with pytest.raises(ValueError, match="LazyBatchNorm2d.*4-d"):
        nn.LazyBatchNorm2d()(mg.zeros(3, 5))
    with pytest.raises(ValueError, match="LazyBatchNorm1d.*2 or 3-d"):
        nn.LazyBatchNorm1d()(mg.zeros(3, 5, 2, 2))
    with pytest.raises(TypeError, match="LazyLinear.*Tensor"):
        nn.LazyLinear(3)([1.0, 2.0])
    with pytest.raises(ValueError, match="momentum"):
        nn.LazyBatchNorm2d(momentum=2.0)
    rng_state = mg.random.generator().bit_generator.state
    nn.LazyLinear(4)
    nn.LazyConv2d(4, 3)
    assert mg.random.generator().bit_generator.state == rng_state     # construction draws nothing
    m = nn.LazyLinear(2)
    m.reset_parameters()                                             # a no-op before the first call
    assert m.has_uninitialized_params()


# ---- nn.init -------------------------------------------------------------------------------------
def test_init_eye_and_dirac():
    w = mg.zeros(3, 5)
    assert nn.init.eye_(w) is w
    np.testing.assert_array_equal(w.numpy(), np.eye(3, 5))
    # dirac_: the convolution with the filled kernel is the identity on the shared channels
    k = mg.zeros(4, 3, 3, 3, dtype=np.float64)
    nn.init.dirac_(k)
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 5)))
    y = F.conv2d(x, k, padding=1).numpy()
    np.testing.assert_allclose(y[:, :3], x.numpy(), atol=1e-15)
    assert not np.any(y[:, 3])
    g = mg.zeros(4, 2, 3, 3, dtype=np.float64)                  # groups=2: each group's identity
    nn.init.dirac_(g, groups=2)
    np.testing.assert_allclose(F.conv2d(mg.tensor(x.numpy()[:, :2].repeat(2, 1)), g, padding=1, groups=2).numpy(),
                               x.numpy()[:, :2].repeat(2, 1), atol=1e-15)
    with pytest.raises(ValueError, match="eye_.*2-d"):
        nn.init.eye_(mg.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="dirac_.*divisible"):
        nn.init.dirac_(mg.zeros(3, 2, 3, 3), groups=2)


def test_init_trunc_normal():
    mg.manual_seed(0)
    w = mg.zeros(200, 500)
    nn.init.trunc_normal_(w, mean=0.5, std=2.0, a=-1.0, b=3.0)
    a = w.numpy().astype(np.float64)
    assert a.min() >= -1.0 and a.max() <= 3.0
    # moments of N(0.5, 4) truncated to [−1, 3]: α = −0.75, β = 1.25 in standard units
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)       # noqa: E731
    Phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))            # noqa: E731
    al, be = -0.75, 1.25
    Z = Phi(be) - Phi(al)
    mean = 0.5 + 2.0 * (phi(al) - phi(be)) / Z
    var = 4.0 * (1 + (al * phi(al) - be * phi(be)) / Z - ((phi(al) - phi(be)) / Z) ** 2)
    assert abs(a.mean() - mean) < 5 * math.sqrt(var / a.size)
    assert abs(a.var() - var) < 0.01 * var
    with pytest.raises(ValueError, match="trunc_normal_.*mass|holds only"):
        nn.init.trunc_normal_(w, 0.0, 1.0, 8.0, 9.0)


@pytest.mark.parametrize("shape", [(4, 9), (9, 4), (6, 2, 3, 3), (5, 5)])
def test_init_orthogonal(shape):
    mg.manual_seed(3)
    w = mg.zeros(*shape, dtype=np.float64)
    nn.init.orthogonal_(w, gain=2.0)
    m = w.numpy().reshape(shape[0], -1) / 2.0
    if m.shape[0] <= m.shape[1]:
        np.testing.assert_allclose(m @ m.T, np.eye(m.shape[0]), atol=1e-12)
    else:
        np.testing.assert_allclose(m.T @ m, np.eye(m.shape[1]), atol=1e-12)


def test_init_sparse():
    mg.manual_seed(4)
    w = mg.zeros(10, 300, dtype=np.float64)
    nn.init.sparse_(w, 0.25, std=0.5)
    zeros_per_column = (w.numpy() == 0).sum(axis=0)
    np.testing.assert_array_equal(zeros_per_column, np.full(300, 3))     # ⌈0.25 · 10⌉
    kept = w.numpy()[w.numpy() != 0]
    assert abs(kept.std() - 0.5) < 0.03
    with pytest.raises(ValueError, match="sparse_.*2-d"):
        nn.init.sparse_(mg.zeros(2, 2, 2), 0.1)


def test_init_has_pytorchs_names():
    for name in ("uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_", "xavier_uniform_",
                 "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_",
                 "sparse_", "calculate_gain"):
        assert callable(getattr(nn.init, name)), name
        assert getattr(nn.init, name).__doc__, name


# ---- nn.utils ------------------------------------------------------------------------------------
def _with_grads(arrays):
    ps = []
    for a in arrays:
        p = nn.Parameter(np.zeros_like(a))
        p.grad = mg.tensor(a.copy())
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm(norm_type, rng):
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    flat = np.concatenate([a.ravel() for a in arrays])
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    ps = _with_grads(arrays) + [nn.Parameter(np.zeros(2))]             # a parameter without .grad is skipped
    got = nn.utils.clip_grad_norm_(ps, 0.5, norm_type)
    assert abs(got.item() - total) < 1e-12 * total
    coef = 0.5 / (total + 1e-6)
    for p, a in zip(ps, arrays):
        np.testing.assert_allclose(p.grad.numpy(), a * coef, rtol=1e-14)
    # under the limit: untouched
    ps = _with_grads(arrays)
    nn.utils.clip_grad_norm_(ps, total * 2, norm_type)
    for p, a in zip(ps, arrays):
        np.testing.assert_array_equal(p.grad.numpy(), a)


def test_clip_grad_value_and_errors(rng):
    a = rng.standard_normal((4, 4)) * 3
    ps = _with_grads([a])
    assert nn.utils.clip_grad_value_(ps, 1.0) is None
    np.testing.assert_array_equal(ps[0].grad.numpy(), np.clip(a, -1, 1))
    bad = _with_grads([np.array([1.0, np.inf])])
    with pytest.raises(RuntimeError, match="clip_grad_norm_.*inf"):
        nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)
    with pytest.raises(TypeError, match="clip_grad_norm_.*max_norm"):
        nn.utils.clip_grad_norm_(ps, "1")
    assert nn.utils.clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0).item() == 0.0
    # a model: the norm of every gradient together
    lin = nn.Linear(3, 2)
    lin(mg.randn(4, 3)).sum().backward()
    g = np.concatenate([p.grad.numpy().ravel() for p in lin.parameters()])
    n = nn.utils.clip_grad_norm_(lin.parameters(), 0.1)
    assert abs(n.item() - np.linalg.norm(g)) < 1e-5 * np.linalg.norm(g)
    assert abs(np.linalg.norm(np.concatenate([p.grad.numpy().ravel() for p in lin.parameters()])) - 0.1) < 1e-5


def test_parameters_to_vector_and_back():
    lin = nn.Linear(3, 2)
    v = nn.utils.parameters_to_vector(lin.parameters())
    assert v.shape == (8,)
    np.testing.assert_array_equal(v.numpy()[:6], lin.weight.numpy().ravel())
    nn.utils.vector_to_parameters(mg.tensor(np.arange(8.0)), lin.parameters())
    np.testing.assert_array_equal(lin.bias.numpy(), [6, 7])
    with pytest.raises(ValueError, match="vector_to_parameters.*7 values"):
        nn.utils.vector_to_parameters(mg.zeros(7), lin.parameters())


# ---- group norm ------------------------------------------------------------------------------------
def ref_group_norm(x, G, w, b, eps):
    N, C = x.shape[:2]
    y = np.empty_like(x)
    for n in range(N):
        for g in range(G):
            sl = slice(g * C // G, (g + 1) * C // G)
            v = x[n, sl]
            y[n, sl] = (v - v.mean()) / np.sqrt(v.var() + eps)
    shape = (1, C) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)


@given(seed=seeds, N=st.integers(1, 3), G=st.integers(1, 3), per=st.integers(1, 3),
       spatial=st.lists(st.integers(1, 3), max_size=2), affine=st.booleans())
def test_group_norm_gradcheck_and_forward(seed, N, G, per, spatial, affine):
    r = np.random.default_rng(seed)
    C = G * per
    if per * int(np.prod(spatial)) < 2:
        spatial = [2]                                   # a group of one value has no spread
    x = r.standard_normal((N, C) + tuple(spatial))
    w, b = r.standard_normal(C), r.standard_normal(C)
    got = F.group_norm(t64(x, grad=False), G, t64(w, grad=False), t64(b, grad=False), 1e-5).numpy()
    np.testing.assert_allclose(got, ref_group_norm(x, G, w, b, 1e-5), rtol=1e-11, atol=1e-12)
    if affine:
        assert mg.gradcheck(lambda a, ww, bb: F.group_norm(a, G, ww, bb), [t64(x), t64(w), t64(b)],
                            atol=1e-5, rtol=1e-4)
    else:
        assert mg.gradcheck(lambda a: F.group_norm(a, G), [t64(x)], atol=1e-5, rtol=1e-4)


def test_group_norm_layer(rng):
    layer = nn.GroupNorm(2, 6)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    x = rng.standard_normal((3, 6, 4, 4)).astype(np.float32)
    y = layer(mg.tensor(x)).numpy()
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref_group_norm(x.astype(np.float64), 2, np.ones(6), np.zeros(6), 1e-5),
                               rtol=1e-4, atol=1e-5)
    assert repr(layer) == "GroupNorm(2, 6, eps=1e-05, affine=True, bias=True)"
    assert list(nn.GroupNorm(3, 6, affine=False).parameters()) == []
    assert [n for n, _ in nn.GroupNorm(3, 6, bias=False).named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="GroupNorm.*divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"GroupNorm.*\(N, 6"):
        layer(mg.zeros(2, 4, 3, 3))


def test_activations_keep_float16(rng):
    """float16 runs through the float32 kernels and comes back as float16, gradients too."""
    x = rng.standard_normal((3, 5)).astype(np.float16) * 4
    for fn, ref in ((F.relu6, lambda v: ref_hardtanh(v, 0, 6)), (F.silu, ref_silu), (F.gelu, ref_gelu),
                    (lambda v: F.leaky_relu(v, 0.2), lambda v: ref_leaky_relu(v, 0.2))):
        xt = mg.tensor(x, requires_grad=True)
        y = fn(xt)
        assert y.dtype == np.float16
        np.testing.assert_allclose(y.numpy().astype(np.float64), ref(x.astype(np.float64)), rtol=2e-3, atol=2e-3)
        y.sum().backward()
        assert xt.grad.dtype == np.float16
