"""nn: functional ops (gradients, forward formulas, validation), layers, init, Module."""
import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.nn import init


def t64(a, grad=True):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


seeds = st.integers(0, 2**32 - 1)


# ---- reference formulas, written from the definitions ------------------------------------------
def ref_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_cross_entropy(z, y, weight=None, reduction="mean", eps=0.0):
    """PyTorch: (1 − ε)·nll(log_softmax) + ε/C · Σ_c −w_c log p_c; 'mean' divides by Σ w[y]."""
    N, C = z.shape
    w = np.ones(C) if weight is None else weight
    logp = ref_log_softmax(z, 1)
    nll = np.array([-w[y[n]] * logp[n, y[n]] for n in range(N)])
    smooth = np.array([-(w * logp[n]).sum() for n in range(N)])
    per = (1 - eps) * nll + eps / C * smooth
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / sum(w[y[n]] for n in range(N))


# ---- linear -----------------------------------------------------------------------------------
@given(seed=seeds, batch=st.lists(st.integers(1, 3), max_size=2), fin=st.integers(1, 4),
       fout=st.integers(1, 4), bias=st.booleans())
def test_linear_gradcheck(seed, batch, fin, fout, bias):
    r = np.random.default_rng(seed)
    x = t64(r.standard_normal(tuple(batch) + (fin,)))
    w = t64(r.standard_normal((fout, fin)))
    b = t64(r.standard_normal(fout)) if bias else None
    inputs = [x, w] + ([b] if bias else [])
    assert mg.gradcheck(lambda *a: F.linear(*a), inputs)


@pytest.mark.parametrize("xs, fout", [
    ((5, 3), 4),            # more rows than output features: X Wᵀ
    ((2, 3), 7),            # fewer: (W Xᵀ)ᵀ
    ((2, 2, 3), 7),         # leading dims flattened to 4 rows
    ((3,), 4),              # one row
    ((0, 3), 4),            # none
])
def test_linear_forward_formula(rng, xs, fout):
    x, w, b = rng.standard_normal(xs), rng.standard_normal((fout, 3)), rng.standard_normal(fout)
    y = F.linear(mg.tensor(x), mg.tensor(w), mg.tensor(b))
    X = x.reshape(-1, 3)
    expect = np.array([[sum(X[n, i] * w[o, i] for i in range(3)) + b[o] for o in range(fout)]
                       for n in range(X.shape[0])]).reshape(xs[:-1] + (fout,))
    assert y.shape == xs[:-1] + (fout,) and y.data.flags.c_contiguous
    np.testing.assert_allclose(y.numpy(), expect, rtol=1e-12)
    assert y.dtype == np.float64


def test_linear_validation():
    x = mg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"in_features=4.*\(5, 4\)"):
        F.linear(x, mg.zeros(5, 4))
    with pytest.raises(ValueError, match="bias"):
        F.linear(x, mg.zeros(5, 3), mg.zeros(4))
    with pytest.raises(ValueError, match="2-d"):
        F.linear(x, mg.zeros(3))
    with pytest.raises(TypeError, match="floating"):
        F.linear(mg.tensor([[1, 2, 3]]), mg.zeros(5, 3))
    with pytest.raises(TypeError, match="dtype"):
        F.linear(x, mg.zeros(5, 3, dtype=np.float64))


def test_linear_layer_init_and_repr():
    mg.manual_seed(0)
    lin = nn.Linear(400, 84)
    assert repr(lin) == "Linear(in_features=400, out_features=84, bias=True)"
    assert repr(nn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert w.shape == (84, 400) and b.shape == (84,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    # U(−a, a) has std a/√3; 33,600 draws pin it to about 0.5%
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert np.abs(w).max() > 0.99 * bound
    mg.manual_seed(0)
    np.testing.assert_array_equal(nn.Linear(400, 84).weight.numpy(), w)   # seeded


def test_linear_layer_forward_backward():
    lin = nn.Linear(3, 2)
    x = mg.randn(4, 3)
    lin(x).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.numpy(), [4, 4])
    np.testing.assert_allclose(lin.weight.grad.numpy(), np.tile(x.numpy().sum(0), (2, 1)), rtol=1e-6)


# ---- softmax / log_softmax --------------------------------------------------------------------
@given(seed=seeds, shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_softmax_log_softmax_gradcheck(seed, shape, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = t64(np.random.default_rng(seed).standard_normal(shape) * 3)
    assert mg.gradcheck(lambda a: F.softmax(a, dim), [x])
    assert mg.gradcheck(lambda a: F.log_softmax(a, dim), [x])


def test_softmax_forward_and_stability(rng):
    x = rng.standard_normal((3, 5))
    e = np.exp(x)
    np.testing.assert_allclose(F.softmax(mg.tensor(x), 1).numpy(), e / e.sum(1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(mg.tensor(x), 0).numpy(), e / e.sum(0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(mg.tensor(x), -1).numpy(),
                               np.log(e / e.sum(1, keepdims=True)), rtol=1e-12, atol=1e-14)
    big = mg.tensor([[1000.0, 0.0, -1000.0]])           # float32: naive exp overflows
    ls = F.log_softmax(big, 1).numpy()
    assert np.all(np.isfinite(ls)) and ls[0, 0] == 0 and ls[0, 1] == -1000
    assert np.all(np.isfinite(F.softmax(big, 1).numpy()))
    with pytest.raises(TypeError, match="dim"):
        F.softmax(big, None)
    with pytest.raises(ValueError, match="out of range"):
        F.log_softmax(big, 2)


# ---- cross-entropy ------------------------------------------------------------------------------
@given(seed=seeds, N=st.integers(1, 5), C=st.integers(1, 5),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.1, 0.7]))
def test_cross_entropy_gradcheck_and_forward(seed, N, C, reduction, weighted, smoothing):
    r = np.random.default_rng(seed)
    z = r.standard_normal((N, C)) * 2
    y = r.integers(0, C, N)
    w = r.uniform(0.2, 2.0, C) if weighted else None
    fn = lambda a: F.cross_entropy(a, y, weight=w, reduction=reduction, label_smoothing=smoothing)
    assert mg.gradcheck(fn, [t64(z)])
    np.testing.assert_allclose(fn(t64(z, False)).numpy(), ref_cross_entropy(z, y, w, reduction, smoothing),
                               rtol=1e-10, atol=1e-12)


def test_cross_entropy_known_values():
    # uniform logits: loss = log C for every label
    z = mg.zeros(4, 10)
    assert F.cross_entropy(z, np.array([0, 3, 9, 5])).item() == pytest.approx(math.log(10), rel=1e-6)
    # the gradient of the mean loss is (softmax − onehot) / N
    x = mg.tensor([[2.0, 0.0], [0.0, 0.0]], dtype=np.float64, requires_grad=True)
    F.cross_entropy(x, mg.tensor([0, 1])).backward()
    p = 1 / (1 + math.exp(-2))
    np.testing.assert_allclose(x.grad.numpy(), [[(p - 1) / 2, (1 - p) / 2], [0.25, -0.25]], rtol=1e-12)
    # huge logits stay finite in float32
    big = mg.tensor([[1e4, -1e4], [-1e4, 1e4]])
    assert F.cross_entropy(big, np.array([0, 1])).item() == 0
    assert F.cross_entropy(big, np.array([1, 1])).item() == pytest.approx(1e4, rel=1e-6)
    # the layer matches the function, float32 in, float32 out
    loss = nn.CrossEntropyLoss(reduction="sum")(big, np.array([1, 0]))
    assert loss.dtype == np.float32 and loss.item() == pytest.approx(4e4, rel=1e-6)


def test_cross_entropy_validation():
    z = mg.zeros(3, 4)
    with pytest.raises(ValueError, match=r"target\[1\] = 4 .*\[0, 4\)"):
        F.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target\[2\] = -1"):
        F.cross_entropy(z, np.array([0, 1, -1]))
    with pytest.raises(TypeError, match="integer class labels"):
        F.cross_entropy(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        F.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.cross_entropy(mg.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(z, np.array([0, 1, 2]), weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(z, np.array([0, 1, 2]), label_smoothing=1.5)


# ---- mse ----------------------------------------------------------------------------------------
@given(seed=seeds, shape=st.lists(st.integers(1, 4), max_size=3),
       reduction=st.sampled_from(["mean", "sum", "none"]))
def test_mse_loss_gradcheck_and_forward(seed, shape, reduction):
    r = np.random.default_rng(seed)
    a, b = r.standard_normal(shape), r.standard_normal(shape)
    fn = lambda x, y: F.mse_loss(x, y, reduction=reduction)
    assert mg.gradcheck(fn, [t64(a), t64(b)])
    sq = (a - b) ** 2
    expect = {"none": sq, "sum": sq.sum(), "mean": sq.mean()}[reduction]
    np.testing.assert_allclose(fn(t64(a), t64(b)).numpy(), expect, rtol=1e-12)


def test_mse_validation_and_layer():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        F.mse_loss(mg.zeros(2, 3), mg.zeros(3, 2))
    out = nn.MSELoss()(mg.ones(2, 2), np.zeros((2, 2)))         # a constant float64 target follows
    assert out.dtype == np.float32 and out.item() == 1.0
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction=sum)"


# ---- dropout ------------------------------------------------------------------------------------
@given(seed=seeds, shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       p=st.sampled_from([0.0, 0.2, 0.5, 0.9]))
def test_dropout_gradcheck_with_fixed_mask(seed, shape, p):
    x = t64(np.random.default_rng(seed).standard_normal(shape))

    def fn(a):
        mg.manual_seed(seed)                  # the same mask on every call
        return F.dropout(a, p)
    assert mg.gradcheck(fn, [x])


def test_dropout_mask_relation_and_modes():
    mg.manual_seed(3)
    x = mg.tensor(np.random.default_rng(0).uniform(1, 2, 100_000), requires_grad=True)
    p = 0.3
    y = F.dropout(x, p)
    kept = y.numpy() != 0
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / (1 - p), rtol=1e-6)
    assert abs((~kept).mean() - p) < 0.01                      # ±4.4 σ
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), kept / (1 - p), rtol=1e-6)
    assert F.dropout(x, p, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)
    mg.manual_seed(5)
    a = F.dropout(x, 0.5).numpy()
    mg.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        F.dropout(x, 1.5)
    layer = nn.Dropout(0.25)
    assert repr(layer) == "Dropout(p=0.25)"
    layer.eval()
    assert layer(x) is x


# ---- batch norm ---------------------------------------------------------------------------------
bn_shapes = st.sampled_from([(4, 3), (3, 2, 4), (2, 3, 2, 3), (5, 1), (2, 2, 1, 1)])


@given(seed=seeds, shape=bn_shapes, affine=st.booleans())
def test_batch_norm_training_gradcheck(seed, shape, affine):
    r = np.random.default_rng(seed)
    C = shape[1]
    x = t64(r.standard_normal(shape) * 2 + 1)
    inputs = [x] + ([t64(r.uniform(0.5, 2, C)), t64(r.standard_normal(C))] if affine else [])
    fn = lambda a, w=None, b=None: F.batch_norm(a, None, None, w, b, training=True)
    assert mg.gradcheck(fn, inputs)


@given(seed=seeds, shape=bn_shapes)
def test_batch_norm_eval_gradcheck(seed, shape):
    r = np.random.default_rng(seed)
    C = shape[1]
    rm, rv = r.standard_normal(C), r.uniform(0.5, 2, C)
    fn = lambda a, w, b: F.batch_norm(a, rm, rv, w, b, training=False)
    assert mg.gradcheck(fn, [t64(r.standard_normal(shape)), t64(r.standard_normal(C)),
                             t64(r.standard_normal(C))])


def test_batch_norm_forward_formula(rng):
    x = rng.standard_normal((4, 3, 2, 5)) * 3 + 2
    w, b = rng.standard_normal(3), rng.standard_normal(3)
    y = F.batch_norm(mg.tensor(x), None, None, mg.tensor(w), mg.tensor(b), training=True, eps=1e-5).numpy()
    for c in range(3):
        v = x[:, c]
        expect = (v - v.mean()) / np.sqrt(v.var() + 1e-5) * w[c] + b[c]     # biased variance
        np.testing.assert_allclose(y[:, c], expect, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls,shape", [(nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, (4, 3, 5)),
                                       (nn.BatchNorm2d, (4, 3, 2, 3))])
def test_batchnorm_running_stats_replay(cls, shape, rng):
    """Several training steps, then eval, against a NumPy replay of PyTorch's rule."""
    bn = cls(3, momentum=0.2)
    axes = (0,) + tuple(range(2, len(shape)))
    n = int(np.prod([shape[a] for a in axes]))
    mean, var = np.zeros(3), np.ones(3)
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        y = bn(mg.tensor(x)).numpy()
        xd = x.astype(np.float64)
        mu, v = xd.mean(axis=axes), xd.var(axis=axes)
        mean = 0.8 * mean + 0.2 * mu
        var = 0.8 * var + 0.2 * v * n / (n - 1)
        bshape = (1, 3) + (1,) * (len(shape) - 2)
        np.testing.assert_allclose(y, (xd - mu.reshape(bshape)) / np.sqrt(v.reshape(bshape) + 1e-5),
                                   rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-5)
    assert bn.running_mean.dtype == np.float32 and int(bn.num_batches_tracked) == 4
    bn.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    y = bn(mg.tensor(x)).numpy()
    bshape = (1, 3) + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(y, (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + 1e-5),
                               rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked) == 4                    # eval does not count


def test_batchnorm_momentum_none_is_cumulative_average(rng):
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [rng.standard_normal((5, 2)) for _ in range(3)]
    for x in xs:
        bn(mg.tensor(x.astype(np.float32)))
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-5)


def test_batchnorm_state_dict_keys_and_options():
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    assert list(m.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                    "1.running_var", "1.num_batches_tracked"]
    assert m.state_dict()["1.num_batches_tracked"].dtype == np.int64
    assert [n for n, _ in m.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert repr(m[1]) == "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    plain = nn.BatchNorm2d(2, affine=False, track_running_stats=False)
    assert list(plain.state_dict()) == [] and list(plain.parameters()) == []
    plain.eval()                               # no running stats: batch statistics even in eval
    y = plain(mg.randn(3, 2, 2, 2)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_batchnorm_validation():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"3 channels|num_features=3"):
        bn(mg.zeros(2, 4, 2, 2))
    with pytest.raises(ValueError, match="4-d"):
        bn(mg.zeros(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(mg.zeros(1, 3, 1, 1))
    assert int(bn.num_batches_tracked) == 0
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(mg.zeros(2, 3), None, None, training=False)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        F.batch_norm(mg.zeros(2, 3), np.zeros(3), np.ones(2), training=True)
    with pytest.raises(ValueError, match="num_features"):
        nn.BatchNorm1d(0)


# ---- activations and flatten through their layers -------------------------------------------
@given(seed=seeds, shape=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_activation_layers_gradcheck(seed, shape):
    r = np.random.default_rng(seed)
    away = r.uniform(0.1, 2, shape) * r.choice([-1, 1], shape)      # ReLU: no input near 0
    for layer in (nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.Flatten(0), nn.Softmax(-1), nn.LogSoftmax(0)):
        assert mg.gradcheck(layer, [t64(away)])


def test_activation_layers_forward(rng):
    x = rng.standard_normal((2, 3, 4))
    np.testing.assert_allclose(nn.ReLU()(mg.tensor(x)).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(nn.Sigmoid()(mg.tensor(x)).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(nn.Tanh()(mg.tensor(x)).numpy(), np.tanh(x), rtol=1e-12)
    assert nn.Flatten()(mg.tensor(x)).shape == (2, 12)
    assert nn.Flatten(0, 1)(mg.tensor(x)).shape == (6, 4)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.ReLU()) == "ReLU()"


# ---- init ---------------------------------------------------------------------------------------
def test_fans_and_gains():
    fan = init._calculate_fan_in_and_fan_out
    assert fan(mg.zeros(84, 400)) == (400, 84)
    assert fan(mg.zeros(16, 6, 5, 5)) == (150, 400)
    with pytest.raises(ValueError, match="fewer than 2"):
        fan(mg.zeros(3))
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("conv2d") == 1 == init.calculate_gain("sigmoid")
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == math.sqrt(1 / 3)
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("fn,kwargs,kind,scale", [
    (init.kaiming_uniform_, {}, "uniform", math.sqrt(2) * math.sqrt(3 / 1500)),
    (init.kaiming_uniform_, {"a": math.sqrt(5)}, "uniform", 1 / math.sqrt(1500)),
    (init.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "relu"}, "uniform", math.sqrt(6 / 4000)),
    (init.kaiming_normal_, {"nonlinearity": "relu"}, "normal", math.sqrt(2 / 1500)),
    (init.xavier_uniform_, {}, "uniform", math.sqrt(6 / 5500)),
    (init.xavier_normal_, {"gain": 2.0}, "normal", 2 * math.sqrt(2 / 5500)),
])
def test_init_distributions(fn, kwargs, kind, scale):
    """scale: the uniform bound or the normal std from PyTorch's formulas, for a conv
    weight (160, 60, 5, 5): fan_in = 60·25 = 1500, fan_out = 160·25 = 4000."""
    mg.manual_seed(1)
    w = mg.zeros(160, 60, 5, 5)
    assert fn(w, **kwargs) is w
    a = w.numpy()
    assert a.dtype == np.float32
    if kind == "uniform":
        assert np.abs(a).max() <= scale * (1 + 1e-6) and np.abs(a).max() > 0.99 * scale
        assert abs(a.std() - scale / math.sqrt(3)) < 0.01 * scale
    else:
        assert abs(a.std() - scale) < 0.01 * scale and abs(a.mean()) < 0.01 * scale


def test_init_simple_fills():
    w = mg.zeros(3, 4, dtype=np.float64)
    assert init.ones_(w) is w and np.all(w.numpy() == 1) and w.dtype == np.float64
    init.zeros_(w)
    assert np.all(w.numpy() == 0)
    init.constant_(w, 2.5)
    assert np.all(w.numpy() == 2.5)
    mg.manual_seed(0)
    init.uniform_(w, -1, 3)
    assert w.numpy().min() >= -1 and w.numpy().max() < 3
    init.normal_(w, 5, 0)
    assert np.all(w.numpy() == 5)
    with pytest.raises(TypeError, match="Tensor"):
        init.zeros_(np.zeros(3))


# ---- Module ------------------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.head = nn.Linear(3, 2)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.head(self.drop(self.features(x))) * self.scale


def test_module_registration_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "head.weight", "head.bias"]
    assert list(net.state_dict()) == names
    assert [n for n, _ in net.named_children()] == ["features", "head", "drop"]
    assert len(list(net.modules())) == 6
    assert net.features[0] is list(net.features)[0] and len(net.features) == 2
    assert isinstance(net.features[-1], nn.ReLU)
    assert [type(m) for m in net.features[0:1]] == [nn.Linear]
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.raises(TypeError, match="parameter 'weight'"):
        net.head.weight = np.zeros((2, 3))
    net.head.bias = None
    assert [n for n, _ in net.head.named_parameters()] == ["weight"]


def test_module_shared_parameter_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_state_dict_round_trip_and_errors():
    a, b = Net(), Net()
    sd = a.state_dict()
    sd["features.0.weight"] = sd["features.0.weight"].astype(np.float64)   # dtype follows the model
    assert b.load_state_dict(sd) == ([], [])
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, a.state_dict()[k])
        assert v.dtype == np.float32
    snapshot = {k: v.clone() for k, v in a.state_dict().items()}   # PyTorch's idiom for a copy
    shared = a.state_dict()
    shared["head.weight"].fill_(7)                           # values share the model's memory
    assert np.all(a.head.weight.numpy() == 7)
    assert not np.any(snapshot["head.weight"].numpy() == 7)

    before = b.state_dict()
    bad = dict(a.state_dict())
    del bad["head.bias"]
    bad["extra.weight"] = np.zeros(2)
    with pytest.raises(KeyError, match=r"missing keys \['head.bias'\].*unexpected keys \['extra.weight'\]"):
        b.load_state_dict(bad)
    missing, unexpected = b.load_state_dict(bad, strict=False)
    assert missing == ["head.bias"] and unexpected == ["extra.weight"]
    wrong = a.state_dict()
    wrong["head.weight"] = np.zeros((3, 3))
    wrong["features.0.bias"] = np.full(3, 9.0)
    with pytest.raises(ValueError, match=r"'head.weight' has shape \(3, 3\).*\(2, 3\)"):
        b.load_state_dict(wrong)
    assert not np.any(b.features[0].bias.numpy() == 9)       # nothing was copied
    with pytest.raises(TypeError, match="'head.bias' has unsupported dtype"):
        b.load_state_dict({**a.state_dict(), "head.bias": np.array(["x", "y"])})
    del before


def test_buffers_load_and_assign():
    bn = nn.BatchNorm1d(2)
    sd = bn.state_dict()
    sd["running_mean"] = np.array([1.0, 2.0])
    sd["num_batches_tracked"] = np.array(7)
    bn.load_state_dict(sd)
    assert bn.running_mean.dtype == np.float32 and list(bn.running_mean) == [1, 2]
    assert int(bn.num_batches_tracked) == 7
    bn.running_var = np.array([3.0, 4.0], np.float32)          # assignment keeps it a buffer
    assert "running_var" in dict(bn.named_buffers())
    bn.num_batches_tracked = 3
    assert bn.state_dict()["num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(bn.state_dict()["running_var"], [3, 4])


def test_train_eval_propagation_and_zero_grad():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net and not any(m.training for m in net.modules())
    net.train()
    assert net.drop.training and net.features[0].training
    x = mg.randn(5, 4)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.eval()
    np.testing.assert_array_equal(net(x).numpy(), net(x).numpy())    # dropout is off


def test_module_repr():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (features): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (head): Linear(in_features=3, out_features=2, bias=True)\n"
        "  (drop): Dropout(p=0.5)\n"
        ")")


# ---- no op mutates its inputs or the incoming gradient ---------------------------------------
def test_ops_never_mutate_inputs_or_the_incoming_gradient(rng):
    x = rng.standard_normal((4, 3))
    w, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    c, rm, rv = rng.standard_normal(3), rng.standard_normal(3), rng.uniform(1, 2, 3)
    y = np.array([0, 2, 1, 1])
    rm0, rv0 = rm.copy(), rv.copy()
    cases = [
        (lambda a, p, q: F.linear(a, p, q), (x, w, b)),
        (lambda a: F.softmax(a, 1), (x,)),
        (lambda a: F.log_softmax(a, 0), (x,)),
        (lambda a: F.cross_entropy(a, y, reduction="none", label_smoothing=0.1), (x,)),
        (lambda a, t: F.mse_loss(a, t, reduction="none"), (x, x[::-1].copy())),
        (lambda a: F.dropout(a, 0.5), (x,)),
        (lambda a, p, q: F.batch_norm(a, None, None, p, q, training=True), (x, c, c + 1)),
        (lambda a, p, q: F.batch_norm(a, rm, rv, p, q, training=False), (x, c, c + 1)),
    ]
    for fn, arrays in cases:
        before = [a.copy() for a in arrays]
        inputs = [t64(a) for a in arrays]
        out = fn(*inputs)
        δ = rng.standard_normal(out.shape)
        δ_before = δ.copy()
        out.backward(δ)
        for a, t, orig in zip(arrays, inputs, before):
            np.testing.assert_array_equal(a, orig)
            np.testing.assert_array_equal(t.numpy(), orig)
            assert not np.shares_memory(t.grad.numpy(), out.numpy())
        np.testing.assert_array_equal(δ, δ_before)
    np.testing.assert_array_equal(rm, rm0)     # eval mode never touches the running stats
    np.testing.assert_array_equal(rv, rv0)


def test_member_reads_what_attribute_access_reads():
    """Module._member (the layers' fast read of their parameters and buffers) answers as
    `module.name` does: the registered value, a plain attribute that replaced it, or a
    class attribute that shadows the registered one."""
    bn = nn.BatchNorm2d(3)
    for store, name in (("_parameters", "weight"), ("_parameters", "bias"),
                        ("_buffers", "running_mean"), ("_buffers", "num_batches_tracked")):
        assert bn._member(store, name) is getattr(bn, name)
    del bn.weight                                  # a reparametrisation's pattern
    bn.weight = mg.tensor(np.full(3, 2.0, np.float32))
    assert bn._member("_parameters", "weight") is bn.weight
    y = bn(mg.tensor(np.random.default_rng(0).standard_normal((4, 3, 2, 2)).astype(np.float32)))
    assert np.allclose(y.numpy().std(axis=(0, 2, 3)), 2.0, rtol=1e-3)

    class Shadowed(nn.BatchNorm2d):
        @property
        def bias(self):
            return mg.tensor(np.full(3, 5.0, np.float32))

    sb = Shadowed(3)
    assert float(sb._member("_parameters", "bias").numpy()[0]) == 5.0
    y = sb(mg.tensor(np.random.default_rng(1).standard_normal((4, 3, 2, 2)).astype(np.float32)))
    assert np.allclose(y.numpy().mean(axis=(0, 2, 3)), 5.0, atol=1e-5)
