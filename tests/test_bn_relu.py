"""BatchNorm followed by ReLU as one op (ops/norm.py BatchNormReLU, F.batch_norm_relu,
nn.bn_relu, and nn.Sequential, which fuses the pair): the same numbers as the two ops,
bit for bit — outputs, running statistics and every gradient, first and second order —,
and the fusion only where nothing can tell the difference (no hooks, no overridden forward).
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import kernels
from minigrad.autograd import grad
from minigrad.gradcheck import gradcheck, gradgradcheck


def data(rng, shape, dtype, specials=False):
    x = (rng.standard_normal(shape) * rng.uniform(0.5, 2) + rng.uniform(-1, 1)).astype(dtype)
    if specials and x.size > 4:
        x.flat[1] = np.nan                               # NaN stays NaN through both
    return x


def both(x, C, dtype, training, affine, rng, path, hi=None):
    """(outputs, running stats, gradients) of relu(batch_norm(x)) and of batch_norm_relu;
    with hi, of hardtanh(batch_norm(x), 0, hi) and batch_norm_relu(x, max_val=hi) (γ and β
    larger, so that outputs reach the clamp)."""
    wide = 1 if hi is None else 3
    w = mg.tensor(rng.uniform(0.5, 1.5 if hi is None else 3, C).astype(dtype),
                  requires_grad=True) if affine else None
    b = mg.tensor(rng.standard_normal(C).astype(dtype) * wide, requires_grad=True) if affine else None
    stats = (rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype))
    δ = rng.standard_normal(x.shape).astype(dtype)
    out = []
    for fused in (False, True):
        xt = mg.tensor(x, requires_grad=True)
        rm, rv = stats[0].copy(), stats[1].copy()
        for t in (w, b):
            if t is not None:
                t.grad = None
        with kernels.use(path):
            if fused:
                y = F.batch_norm_relu(xt, rm, rv, w, b, training=training, max_val=hi)
            elif hi is None:
                y = F.relu(F.batch_norm(xt, rm, rv, w, b, training=training))
            else:
                y = F.hardtanh(F.batch_norm(xt, rm, rv, w, b, training=training), 0.0, hi)
            y.backward(δ)
        out.append([y.data, rm, rv, xt.grad.data] + [t.grad.data for t in (w, b) if t is not None])
    return out


@settings(max_examples=40, deadline=None)
@given(N=st.integers(2, 4), C=st.integers(1, 5), spatial=st.sampled_from([(), (3,), (2, 3), (6, 7)]),
       dtype=st.sampled_from([np.float32, np.float64]), training=st.booleans(),
       affine=st.booleans(), path=st.sampled_from([None, "direct"]), seed=st.integers(0, 2**31 - 1))
def test_equals_relu_of_batch_norm_bit_for_bit(N, C, spatial, dtype, training, affine, path, seed):
    """Every shape BatchNorm takes, planes shorter and longer than the kernels' vector
    threshold (32 values), both dtypes, training and evaluation, with and without γ, β,
    on the fused kernels and the NumPy formulas ('direct')."""
    rng = np.random.default_rng(seed)
    x = data(rng, (N, C) + spatial, dtype)
    plain, fused = both(x, C, dtype, training, affine, rng, path)
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_zero_and_large_planes(dtype):
    """A NaN input, outputs exactly 0 (β = 0 on a constant channel), and 64×64 planes
    (several threads, the vector loops)."""
    rng = np.random.default_rng(1)
    x = data(rng, (3, 4, 64, 64), dtype, specials=True)
    x[:, 2] = 5.0                                        # a constant channel: x̂ = 0, y = β = 0
    plain, fused = both(x, 4, dtype, True, True, rng, None)
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a, b)
    assert np.isnan(fused[0]).any() and (fused[0] == 0).any()


def test_second_derivatives_equal_the_two_ops_and_finite_differences():
    """create_graph=True: the backward of the fused op is made of ops (ReLU's mask, then
    BatchNorm's recorded backward), so its second derivatives are relu∘batch_norm's; and
    they match finite differences where no output is near the kink."""
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((3, 2, 2, 2)) * 2
    w0, b0 = rng.uniform(0.5, 1.5, 2), rng.standard_normal(2)
    v = rng.standard_normal(x0.shape)

    def hess_vec(op):
        x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        y = op(x, w, b)
        gx, = grad((y * mg.tensor(v)).sum(), [x], create_graph=True)
        return [g.data for g in grad((gx * gx).sum(), [x, w])]   # (β drops out of ∂L/∂x)

    fused = hess_vec(lambda x, w, b: F.batch_norm_relu(x, None, None, w, b, training=True))
    plain = hess_vec(lambda x, w, b: F.relu(F.batch_norm(x, None, None, w, b, training=True)))
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a, b)
    y = F.batch_norm(mg.tensor(x0), None, None, mg.tensor(w0), mg.tensor(b0), training=True)
    assert np.abs(y.data).min() > 1e-3                  # away from the kink
    inputs = [mg.tensor(a, requires_grad=True) for a in (x0, w0, b0)]

    def fn(x, w, b):
        return F.batch_norm_relu(x, None, None, w, b, training=True)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


# ---- where the modules fuse --------------------------------------------------------------

def nodes(y):
    """The names of the ops on y's graph, nearest first."""
    out, seen, todo = [], set(), [y]
    while todo:
        t = todo.pop()
        if t.grad_fn is None or id(t.grad_fn) in seen:
            continue
        seen.add(id(t.grad_fn))
        out.append(t.grad_fn.name)
        todo += [i for i in t.grad_fn.inputs if isinstance(i, mg.Tensor)]
    return out


def run(model, x, δ):
    """(the ops of the graph, [output, every gradient, every buffer]) of one step."""
    xt = mg.tensor(x, requires_grad=True)
    y = model(xt)
    ops = nodes(y)
    y.backward(δ)
    return ops, [y.data, xt.grad.data] + [p.grad.data for p in model.parameters()] + [
        b.copy() for n, b in model.named_buffers()]


def twin(make):
    """Two copies of a model with the same parameters."""
    mg.manual_seed(0)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("act, name", [(nn.ReLU, "ReLU"), (nn.ReLU6, "Hardtanh")])
def test_sequential_fuses_batch_norm_then_relu_and_changes_no_number(act, name):
    """A BatchNorm followed by a ReLU, or a ReLU6 (whose clamp at 6 the max_val tests above
    reach). (After a convolution directly, the three are one ConvNormChain op:
    tests/test_conv_norm_chain.py; the Identity keeps the pair apart here.)"""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    δ = rng.standard_normal((4, 5, 6, 6)).astype(np.float32)

    def make():
        return nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.Identity(), nn.BatchNorm2d(5),
                             act())
    fused, plain = twin(make)
    ops, got = run(fused, x, δ)
    assert ops[0] == "BatchNormReLU" and name not in ops
    plain[3].register_forward_hook(lambda m, a, out: None)          # a hook: no fusion
    ops2, want = run(plain, x, δ)
    assert ops2[:2] == [name, "BatchNorm"]
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert int(fused[2].num_batches_tracked) == 1
    fused.eval()
    plain.eval()
    with mg.no_grad():
        np.testing.assert_array_equal(fused(mg.tensor(x)).data, plain(mg.tensor(x)).data)


def test_hooks_and_subclasses_keep_the_two_calls():
    """A forward hook or pre-hook on either module, or a subclass with a forward of its
    own: the modules are called as written (their hooks fire, their forward runs)."""
    x = mg.tensor(np.random.default_rng(3).standard_normal((2, 3, 4, 4)).astype(np.float32))
    seen = []
    bn, relu = nn.BatchNorm2d(3), nn.ReLU()
    bn.register_forward_pre_hook(lambda m, a: seen.append("bn pre"))
    relu.register_forward_hook(lambda m, a, out: seen.append("relu post"))
    y = nn.Sequential(bn, relu)(x)
    assert seen == ["bn pre", "relu post"] and y.grad_fn.name == "ReLU"

    class Leaky(nn.ReLU):
        def forward(self, x):
            return F.leaky_relu(x, 0.5)
    y = nn.bn_relu(nn.BatchNorm2d(3), Leaky(), x)
    assert y.grad_fn.name != "BatchNormReLU" and (y.data < 0).any()
    assert nn.bn_relu(nn.BatchNorm2d(3), nn.ReLU(), x).grad_fn.name == "BatchNormReLU"
    assert nn.bn_relu(nn.BatchNorm2d(3), None, x).grad_fn.name == "BatchNormReLU"
    from minigrad.nn.parallel.sync_batchnorm import SyncBatchNorm
    assert nn.Sequential(SyncBatchNorm(3), nn.ReLU())(x).grad_fn.name == "ReLU"


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "densenet121"])
def test_models_fuse_and_train_as_before(name):
    """The models that call nn.bn_relu: a training step's loss, gradients and running
    statistics equal those of the same model with the fusion switched off (a hook on every
    BatchNorm, which keeps the two calls), bit for bit."""
    import minigrad.models as models
    kwargs = {"aux_logits": False, "dropout": 0.0} if name == "googlenet" else {}
    fused, plain = twin(lambda: getattr(models, name)(num_classes=10, **kwargs))
    for m in plain.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_pre_hook(lambda m, a: None)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 40, 40)).astype(np.float32)
    δ = rng.standard_normal((2, 10)).astype(np.float32)
    ops, got = run(fused, x, δ)
    ops2, want = run(plain, x, δ)
    assert ({"BatchNormReLU", "ConvNormChain"} & set(ops)
            and not {"BatchNormReLU", "ConvNormChain"} & set(ops2))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


# ---- BatchNorm followed by ReLU6 (max_val) -------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(N=st.integers(2, 40), C=st.integers(1, 5), spatial=st.sampled_from([(), (3,), (2, 3), (6, 7)]),
       dtype=st.sampled_from([np.float32, np.float64]), training=st.booleans(),
       affine=st.booleans(), path=st.sampled_from([None, "direct"]),
       hi=st.sampled_from([6.0, 0.5, 2.0]), seed=st.integers(0, 2**31 - 1))
def test_relu6_equals_hardtanh_of_batch_norm_bit_for_bit(N, C, spatial, dtype, training, affine,
                                                         path, hi, seed):
    """max_val: min(max(y, 0), max_val) — outputs, running statistics and gradients equal
    hardtanh(batch_norm(x), 0, max_val)'s bit for bit, on the kernels and the NumPy
    formulas, with outputs on both sides of the clamp (max_val 0.5 clamps about a third of
    x̂; large γ and β), −0 and NaN."""
    rng = np.random.default_rng(seed)
    x = data(rng, (N, C) + spatial, dtype, specials=True) * 3
    plain, fused = both(x, C, dtype, training, affine, rng, path, hi)
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a, b)
        assert np.array_equal(np.signbit(a), np.signbit(b))     # −0 where the two ops have it


def test_relu6_second_derivatives_and_gradcheck():
    """create_graph=True: the backward is HardtanhBackward then BatchNorm's recorded one, so
    second derivatives equal hardtanh∘batch_norm's; and both match finite differences
    away from the kinks at 0 and max_val."""
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((3, 2, 2, 2)) * 2
    w0, b0 = rng.uniform(1, 2, 2), np.array([0.5, 1.5])
    v = rng.standard_normal(x0.shape)

    def hess_vec(op):
        x, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, w0, b0))
        gx, = grad((op(x, w, b) * mg.tensor(v)).sum(), [x], create_graph=True)
        return [g.data for g in grad((gx * gx).sum(), [x, w])]

    fused = hess_vec(lambda x, w, b: F.batch_norm_relu(x, None, None, w, b, training=True,
                                                       max_val=2.0))
    plain = hess_vec(lambda x, w, b: F.hardtanh(F.batch_norm(x, None, None, w, b, training=True),
                                                0.0, 2.0))
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a, b)
    y = F.batch_norm(mg.tensor(x0), None, None, mg.tensor(w0), mg.tensor(b0), training=True).data
    assert np.abs(y).min() > 1e-3 and np.abs(y - 2.0).min() > 1e-3 and (y > 2).any()
    inputs = [mg.tensor(a, requires_grad=True) for a in (x0, w0, b0)]

    def fn(x, w, b):
        return F.batch_norm_relu(x, None, None, w, b, training=True, max_val=2.0)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_a_hardtanh_fuses_from_zero_only():
    x = mg.tensor(np.random.default_rng(9).standard_normal((4, 1, 6, 6)).astype(np.float32),
                  requires_grad=True)
    assert nn.Sequential(nn.BatchNorm2d(1), nn.Hardtanh(0.0, 3.0))(x).grad_fn.name == \
        "BatchNormReLU"
    assert nn.Sequential(nn.BatchNorm2d(1), nn.Hardtanh(-1.0, 1.0))(x).grad_fn.name == "Hardtanh"
    assert nn.bn_relu(nn.BatchNorm2d(1), nn.ReLU6(), x).grad_fn.name == "BatchNormReLU"
    y = nn.Sequential(nn.BatchNorm2d(1), nn.Hardtanh(0.0, 0.5))(x)
    assert y.data.max() == np.float32(0.5) and y.data.min() == 0


def test_relu6_max_val_is_checked():
    x = mg.tensor(np.ones((2, 3, 2, 2), np.float32))
    for bad, err in ((0.0, ValueError), (-1, ValueError), (float("inf"), ValueError),
                     (float("nan"), ValueError), ("6", TypeError), (True, TypeError)):
        with pytest.raises(err, match=r"batch_norm_relu\(\): max_val"):
            F.batch_norm_relu(x, None, None, training=True, max_val=bad)
