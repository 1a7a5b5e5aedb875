"""A sum followed by ReLU as one op (ops/elementwise.py AddReLU, F.add_relu, nn.add_relu)
and BatchNorm, a residual sum and ReLU as one op (ops/norm.py BatchNormAddReLU,
F.batch_norm_add_relu, nn.bn_add_relu: the ResNet blocks' y = relu(bn(·) + x)): the same
numbers as the separate calls, bit for bit — output, running statistics and every gradient,
first and second order —, the separate calls wherever one op would not be the same (other
dtypes or shapes, a hooked or subclassed module)."""
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.autograd import grad
from minigrad.gradcheck import gradcheck, gradgradcheck

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_bn_relu import nodes  # noqa: E402  (the names of the ops on a graph)


def specials(x, rng):
    """x with a NaN, ±0, ±inf and exact cancellations sprinkled in (where it has room)."""
    flat = x.reshape(-1)
    for v in (np.nan, 0.0, -0.0, np.inf, -np.inf):
        if flat.size > 8:
            flat[rng.integers(flat.size)] = v
    return x


def both(a, b, δ):
    """[output, ∂L/∂a, ∂L/∂b] of relu(a + b) and of add_relu(a, b)."""
    out = []
    for fused in (False, True):
        at, bt = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
        with np.errstate(invalid="ignore"):                      # inf − inf: NumPy would warn
            y = F.add_relu(at, bt) if fused else F.relu(at + bt)
        assert y.grad_fn.name == ("AddReLU" if fused else "ReLU")
        y.backward(mg.tensor(δ))
        out.append([y.data, at.grad.data, bt.grad.data])
    return out


SHAPES = st.sampled_from([((5,), (5,)), ((3, 4), (3, 4)), ((2, 3, 4, 5), (2, 3, 4, 5)),
                          ((2, 3, 4, 5), (3, 1, 1)), ((4, 1), (1, 6)), ((2, 3), ()),
                          ((64, 40, 30), (64, 40, 30))])       # 76,800 values: the threads


@settings(max_examples=40, deadline=None)
@given(shapes=SHAPES, dtype=st.sampled_from([np.float32, np.float64]), swap=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_equals_relu_of_the_sum_bit_for_bit(shapes, dtype, swap, seed):
    """Same shapes (the kernel) and broadcasting (NumPy; each gradient summed back to its
    input's shape), both dtypes, NaN, ±0, ±inf and sums that cancel to exactly 0."""
    rng = np.random.default_rng(seed)
    sa, sb = shapes[::-1] if swap else shapes
    a = specials(rng.standard_normal(sa).astype(dtype), rng)
    b = rng.standard_normal(sb).astype(dtype)
    if a.shape == b.shape and a.size > 4:
        b.flat[:3] = -a.flat[:3]                                  # a + b = +0 exactly
        a.flat[3] = b.flat[3] = -0.0                              # a + b = −0: relu gives +0
    δ = rng.standard_normal(np.broadcast_shapes(sa, sb)).astype(dtype)
    plain, fused = both(a, b, δ)
    for x, y in zip(plain, fused):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x.view(f"u{x.itemsize}"), y.view(f"u{y.itemsize}"))  # bits


def test_mixed_and_integer_operands_are_add_then_relu():
    """Where the operands differ in dtype after add's promotion (float32 + float64, a Python
    number, two int tensors), add_relu is the two ops; an int tensor meeting a float32 one
    is cast first (as add does), and then the one op. The numbers are add's and relu's."""
    a32 = mg.tensor(np.array([-1.5, 2.0, 3.0], np.float32), requires_grad=True)
    a64 = mg.tensor(np.array([1.0, -4.0, 0.5]))
    i = mg.tensor(np.array([1, -5, 2]))
    for a, b, op in ((a32, a64, "ReLU"), (i, a32, "AddReLU"), (a32, 1.0, "ReLU"),
                     (2, a32, "ReLU"), (i, i, None)):
        y = F.add_relu(a, b)
        assert (y.grad_fn.name if y.grad_fn is not None else None) == op
        want = F.relu((a if isinstance(a, mg.Tensor) else mg.tensor(a)) + b)
        assert y.dtype == want.dtype
        np.testing.assert_array_equal(y.data, want.data)


def test_second_derivatives_equal_the_two_ops_and_finite_differences():
    """create_graph=True: the backward is ReLU's mask, an op, so the second derivatives are
    relu∘add's; and they match finite differences away from the kink."""
    rng = np.random.default_rng(1)
    a0, b0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    v = rng.standard_normal((3, 4))

    def second(op):
        a, b = mg.tensor(a0, requires_grad=True), mg.tensor(b0, requires_grad=True)
        y = op(a, b)
        ga, gb = grad((y * y * mg.tensor(v)).sum(), [a, b], create_graph=True)
        return [g.data for g in grad((ga * gb).sum(), [a, b])]

    for x, y in zip(second(lambda a, b: F.relu(a + b)), second(F.add_relu)):
        np.testing.assert_array_equal(x, y)
    assert np.abs(a0 + b0).min() > 1e-3
    inputs = [mg.tensor(a0, requires_grad=True), mg.tensor(b0, requires_grad=True)]
    assert gradcheck(F.add_relu, inputs)
    assert gradgradcheck(lambda a, b: F.add_relu(a, b) * F.add_relu(a, b), inputs)


def test_nn_add_relu_fuses_only_where_nothing_can_tell():
    """A plain ReLU module or None: one op. A forward hook or pre-hook, or a subclass with
    a forward of its own: the module is called as written (its hooks fire)."""
    rng = np.random.default_rng(2)
    a = mg.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    b = mg.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32))
    assert nn.add_relu(nn.ReLU(), a, b).grad_fn.name == "AddReLU"
    assert nn.add_relu(None, a, b).grad_fn.name == "AddReLU"
    seen = []
    hooked = nn.ReLU()
    hooked.register_forward_hook(lambda m, args, out: seen.append(args[0].grad_fn.name))
    y = nn.add_relu(hooked, a, b)
    assert y.grad_fn.name == "ReLU" and seen == ["Add"]

    class Leaky(nn.ReLU):
        def forward(self, x):
            return F.leaky_relu(x, 0.5)
    y = nn.add_relu(Leaky(), a, b)
    np.testing.assert_array_equal(y.data, F.leaky_relu(a + b, 0.5).data)


@pytest.mark.parametrize("name,shape", [("resnet18", (2, 3, 40, 40)), ("resnet50", (2, 3, 40, 40)),
                                        ("resnet20", (4, 1, 28, 28))])
def test_resnets_fuse_and_train_as_before(name, shape):
    """The blocks' relu(bn(·) + x) as one op (BatchNormAddReLU): a training step's output,
    input gradient, parameter gradients and buffers equal those of the same model whose ReLU
    modules carry a hook (which keeps every BatchNorm, sum and ReLU a call of its own), bit
    for bit."""
    import minigrad.models as models
    mg.manual_seed(0)
    kwargs = {"in_channels": 1} if name == "resnet20" else {}
    fused = getattr(models, name)(num_classes=10, **kwargs)
    plain = getattr(models, name)(num_classes=10, **kwargs)
    plain.load_state_dict(fused.state_dict())
    for m in plain.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(lambda m, a, out: None)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    δ = rng.standard_normal((shape[0], 10)).astype(np.float32)
    results = []
    for model in (fused, plain):
        xt = mg.tensor(x, requires_grad=True)
        y = model(xt)
        ops = nodes(y)
        y.backward(mg.tensor(δ))
        results.append((ops, [y.data, xt.grad.data] + [p.grad.data for p in model.parameters()]
                        + [b.copy() for _, b in model.named_buffers()]))
    (ops, got), (ops2, want) = results
    assert "BatchNormAddReLU" in ops and not {"BatchNormAddReLU", "AddReLU"} & set(ops2)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


# ---- BatchNorm, the residual sum and ReLU ----------------------------------------------------

def bn_both(x, z, C, dtype, training, affine, rng, path):
    """[output, running stats, ∂L/∂x, ∂L/∂z, ∂L/∂γ, ∂L/∂β] of relu(batch_norm(x) + z) and of
    batch_norm_add_relu(x, z)."""
    from minigrad import kernels
    w = rng.uniform(0.5, 1.5, C).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    stats = (rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype))
    δ = rng.standard_normal(x.shape).astype(dtype)
    out = []
    for fused in (False, True):
        xt, zt = mg.tensor(x, requires_grad=True), mg.tensor(z, requires_grad=True)
        wt, bt = (None, None) if not affine else (mg.tensor(w, requires_grad=True),
                                                  mg.tensor(b, requires_grad=True))
        rm, rv = stats[0].copy(), stats[1].copy()
        with kernels.use(path):
            if fused:
                y = F.batch_norm_add_relu(xt, zt, rm, rv, wt, bt, training=training)
                assert y.grad_fn.name == "BatchNormAddReLU"
            else:
                y = F.relu(F.batch_norm(xt, rm, rv, wt, bt, training=training) + zt)
            y.backward(mg.tensor(δ))
        out.append([y.data, rm, rv, xt.grad.data, zt.grad.data]
                   + ([wt.grad.data, bt.grad.data] if affine else []))
    return out


@settings(max_examples=40, deadline=None)
@given(N=st.integers(2, 4), C=st.integers(1, 5), spatial=st.sampled_from([(), (3,), (2, 3), (6, 7)]),
       dtype=st.sampled_from([np.float32, np.float64]), training=st.booleans(),
       affine=st.booleans(), path=st.sampled_from([None, "direct"]), seed=st.integers(0, 2**31 - 1))
def test_batch_norm_add_relu_equals_the_three_calls_bit_for_bit(N, C, spatial, dtype, training,
                                                                 affine, path, seed):
    """Every shape BatchNorm takes, planes shorter and longer than the kernels' vector
    threshold (32 values), both dtypes, training and evaluation, with and without γ, β, on
    the fused kernels and the NumPy formulas ('direct'); NaN, ±0 and sums that cancel."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C) + spatial).astype(dtype)
    z = specials(rng.standard_normal(x.shape).astype(dtype), rng)
    plain, fused = bn_both(x, z, C, dtype, training, affine, rng, path)
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


def test_batch_norm_add_relu_large_planes_and_second_derivatives():
    """64×64 planes (the threads, the vector loops) bit for bit; create_graph=True: the
    second derivatives are the three ops' and match finite differences."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 64, 64)).astype(np.float32)
    z = rng.standard_normal(x.shape).astype(np.float32)
    for a, b in zip(*bn_both(x, z, 4, np.float32, True, True, rng, None)):
        np.testing.assert_array_equal(a, b)
    x0, z0 = rng.standard_normal((3, 2, 2, 2)) * 2, rng.standard_normal((3, 2, 2, 2))
    w0, b0, v = rng.uniform(0.5, 1.5, 2), rng.standard_normal(2), rng.standard_normal(x0.shape)

    def second(op):
        x, z, w, b = (mg.tensor(a, requires_grad=True) for a in (x0, z0, w0, b0))
        y = op(x, z, w, b)
        gx, gz = grad((y * y * mg.tensor(v)).sum(), [x, z], create_graph=True)
        return [g.data for g in grad((gx * gz).sum(), [x, z, w])]

    fused = second(lambda x, z, w, b: F.batch_norm_add_relu(x, z, None, None, w, b, training=True))
    plain = second(lambda x, z, w, b: F.relu(F.batch_norm(x, None, None, w, b, training=True) + z))
    for a, b in zip(plain, fused):
        np.testing.assert_array_equal(a, b)
    y = F.batch_norm(mg.tensor(x0), None, None, mg.tensor(w0), mg.tensor(b0), training=True)
    assert np.abs(y.data + z0).min() > 1e-3                     # away from the kink
    inputs = [mg.tensor(a, requires_grad=True) for a in (x0, z0, w0, b0)]

    def fn(x, z, w, b):
        return F.batch_norm_add_relu(x, z, None, None, w, b, training=True)
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def test_nn_bn_add_relu_fuses_only_where_nothing_can_tell():
    """Plain modules and a residual of the output's shape and dtype: one op. A hook on either
    module, a subclass with its own forward, or a residual that broadcasts: the calls as
    written (bn, then add_relu), with the same numbers as those calls."""
    rng = np.random.default_rng(7)
    x = mg.tensor(rng.standard_normal((2, 3, 4, 4)).astype(np.float32), requires_grad=True)
    z = mg.tensor(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))
    assert nn.bn_add_relu(nn.BatchNorm2d(3), nn.ReLU(), x, z).grad_fn.name == "BatchNormAddReLU"
    assert nn.bn_add_relu(nn.BatchNorm2d(3), None, x, z).grad_fn.name == "BatchNormAddReLU"
    seen = []
    bn = nn.BatchNorm2d(3)
    bn.register_forward_hook(lambda m, a, out: seen.append("bn"))
    assert nn.bn_add_relu(bn, nn.ReLU(), x, z).grad_fn.name == "AddReLU" and seen == ["bn"]
    z1 = mg.tensor(rng.standard_normal((3, 1, 1)).astype(np.float32))
    y = nn.bn_add_relu(nn.BatchNorm2d(3), nn.ReLU(), x, z1)
    want = F.relu(nn.BatchNorm2d(3)(x) + z1)
    assert y.grad_fn.name == "AddReLU"
    np.testing.assert_array_equal(y.data, want.data)
