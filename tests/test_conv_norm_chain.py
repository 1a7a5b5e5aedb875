"""A run of Conv2d and BatchNorm2d(+ReLU/ReLU6) modules as one op (ops/chain.py
ConvNormChain, nn.conv_norm_chain, DenseNet's layer): the same outputs, running statistics
and gradients as the modules called one by one, bit for bit, first and second order; the
fusion only where nothing can tell the difference; the modules' own errors otherwise.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
import minigrad.nn as nn
from minigrad import kernels
from minigrad.autograd import grad
from minigrad.gradcheck import gradcheck
from minigrad.models.densenet import DenseLayer
from minigrad.ops.chain import ConvNormChain


def one_by_one(layers, x):
    """The layers called in turn, each its own op (no fusion of any kind)."""
    for m in layers:
        x = m(x)
    return x


def build(rng, spec, C, dtype):
    """Modules from spec: ('conv', K, k, stride, padding, groups, bias), ('bn', act, affine,
    track, momentum), act one of None, 'relu', 'relu6'."""
    layers = []
    for s in spec:
        if s[0] == "conv":
            _, K, k, stride, padding, groups, bias = s
            m = nn.Conv2d(C, K, k, stride=stride, padding=padding, groups=groups, bias=bias)
            m.weight.data = rng.standard_normal(m.weight.shape).astype(dtype) * 0.5
            if bias:
                m.bias.data = rng.standard_normal(K).astype(dtype)
            layers.append(m)
            C = K
        else:
            _, act, affine, track, momentum = s
            m = nn.BatchNorm2d(C, momentum=momentum, affine=affine, track_running_stats=track,
                               dtype=dtype)
            if affine:
                m.weight.data = rng.uniform(0.5, 3, C).astype(dtype)
                m.bias.data = rng.standard_normal(C).astype(dtype)
            if track:
                m.running_mean[...] = rng.standard_normal(C)
                m.running_var[...] = rng.uniform(0.5, 2, C)
            layers.append(m)
            if act == "relu":
                layers.append(nn.ReLU())
            elif act == "relu6":
                layers.append(nn.ReLU6())
    return layers


def state(layers):
    """Every parameter's value and gradient and every buffer, as arrays (copies)."""
    out = []
    for m in layers:
        for p in m.parameters():
            out += [p.data.copy(), None if p.grad is None else p.grad.data.copy()]
        out += [np.array(b, copy=True) for b in m.buffers()]
    return out


def run_twice(fn, layers, x, δ, training):
    """Two forward/backward rounds (the second sees the running statistics and momentum
    count the first left): [outputs…, ∂L/∂x, state]."""
    for m in layers:
        m.train(training)
    xt = mg.tensor(x, requires_grad=True)
    outs = []
    for _ in range(2):
        y = fn(layers, xt)
        y.backward(δ)
        outs.append(y.data.copy())
        kind = type(y.grad_fn)
    return outs + [xt.grad.data.copy()] + state(layers), kind


conv = st.tuples(st.just("conv"), st.integers(1, 6), st.sampled_from([1, 3]), st.integers(1, 2),
                 st.integers(0, 1), st.just(1), st.booleans())
bn = st.tuples(st.just("bn"), st.sampled_from([None, "relu", "relu6"]), st.booleans(),
               st.booleans(), st.sampled_from([0.1, None]))


@settings(max_examples=60, deadline=None)
@given(spec=st.lists(st.one_of(conv, bn), min_size=1, max_size=5),
       N=st.integers(2, 3), C=st.integers(1, 5), HW=st.sampled_from([(5, 5), (6, 9), (16, 16)]),
       dtype=st.sampled_from([np.float32, np.float64]), training=st.booleans(),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**31 - 1))
def test_equals_the_layers_one_by_one_bit_for_bit(spec, N, C, HW, dtype, training, threads, seed):
    """Any run of convolutions (1×1, 3×3, strides, padding, bias or not) and BatchNorms
    (ReLU, ReLU6 or nothing after, with or without γ/β and running statistics, momentum
    None), both dtypes, training and evaluation, 1 and 2 threads: outputs of two rounds,
    ∂L/∂x, every parameter's gradient, the running statistics and num_batches_tracked."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C) + HW) * 2 + 0.5).astype(dtype)
    layers = build(rng, spec, C, dtype)
    try:
        y = one_by_one(layers, mg.tensor(x))
    except ValueError:                    # a kernel larger than the input, 1 value a channel
        return
    δ = rng.standard_normal(y.shape).astype(dtype)
    twin = build(np.random.default_rng(seed), spec, C, dtype)
    for a, b in zip(layers, twin):
        b.load_state_dict(a.state_dict())
    mg.set_num_threads(threads)
    try:
        fused, kind = run_twice(nn.conv_norm_chain, layers, x, δ, training)
        plain, _ = run_twice(one_by_one, twin, x, δ, training)
    finally:
        mg.set_num_threads(2)
    assert kind is ConvNormChain
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain):
        if a is None or b is None:
            assert a is b
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("frozen", [[0], [2], [3, 4], [0, 2, 3, 4]])
@pytest.mark.parametrize("x_grad", [True, False])
def test_frozen_layers_and_inputs_get_the_same_gradients(frozen, x_grad):
    """Parameters that need no gradient (a frozen BatchNorm or convolution) and an input
    that needs none: the chain computes only the gradients asked for, and they are the
    layers' own, bit for bit (the backward stops where nothing before needs one)."""
    rng = np.random.default_rng(len(frozen))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = []
    for fused in (True, False):
        mg.manual_seed(0)
        layers = [nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                  nn.Conv2d(4, 2, 1)]
        for i in frozen:
            for p in layers[i].parameters():
                p.requires_grad = False
        xt = mg.tensor(x, requires_grad=x_grad)
        y = nn.conv_norm_chain(layers, xt) if fused else one_by_one(layers, xt)
        if y.grad_fn is None:                        # nothing needs a gradient
            assert not x_grad and len(frozen) == 4
            out.append([y.data])
            continue
        assert (type(y.grad_fn) is ConvNormChain) == fused
        y.backward(mg.tensor(np.cos(np.arange(y.data.size, dtype=np.float32)).reshape(y.shape)))
        out.append([y.data, None if xt.grad is None else xt.grad.data]
                   + [None if p.grad is None else p.grad.data for m in layers
                      for p in m.parameters()])
    for a, b in zip(*out):
        assert (a is None and b is None) or np.array_equal(a, b)


def dense_layer(seed, dtype=np.float32):
    mg.manual_seed(seed)
    layer = DenseLayer(12, 4, 2)
    rng = np.random.default_rng(seed)
    for m in (layer.norm1, layer.norm2):
        m.weight.data = rng.uniform(0.5, 2, m.num_features).astype(np.float32)
        m.bias.data = rng.standard_normal(m.num_features).astype(np.float32)
    return layer.to(dtype) if dtype != np.float32 else layer


def test_dense_layer_is_one_op_with_the_same_numbers():
    """DenseNet's layer runs as one ConvNormChain node, and gives what its six modules give
    called one by one."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 12, 8, 8)).astype(np.float32)
    δ = rng.standard_normal((4, 4, 8, 8)).astype(np.float32)
    a, b = dense_layer(0), dense_layer(0)
    fused, kind = run_twice(lambda _, t: a(t), list(a._chain), x, δ, True)
    plain, _ = run_twice(one_by_one, list(b._chain), x, δ, True)
    assert kind is ConvNormChain
    for u, v in zip(fused, plain):
        np.testing.assert_array_equal(u, v)


def hook_on_relu(layer):
    layer.relu2.register_forward_hook(lambda m, i, o: None)


def subclass_conv(layer):
    class MyConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x)
    conv = MyConv(layer.conv1.in_channels, layer.conv1.out_channels, 1, bias=False)
    conv.weight.data = layer.conv1.weight.data.copy()
    layer.conv1 = conv


@pytest.mark.parametrize("change", [
    hook_on_relu,
    subclass_conv,
    lambda layer: layer.norm1.register_forward_pre_hook(lambda m, i: None),
    lambda layer: setattr(layer.conv2, "weight", nn.Parameter(
        np.asfortranarray(layer.conv2.weight.data))),                    # not C-contiguous
], ids=["forward hook", "subclass forward", "pre-hook", "non-contiguous weight"])
def test_anything_observable_keeps_the_layers_as_written(change):
    """A hook, an overridden forward, a parameter or buffer the kernels would have to copy
    or convert: the layer runs as its modules (no ConvNormChain node), with their numbers."""
    rng = np.random.default_rng(5)
    x = mg.tensor(rng.standard_normal((2, 12, 6, 6)).astype(np.float32), requires_grad=True)
    layer = dense_layer(1)
    change(layer)
    y = layer(x)
    assert type(y.grad_fn) is not ConvNormChain
    y.sum().backward()
    assert x.grad is not None and np.isfinite(x.grad.data).all()


def test_non_contiguous_input_and_the_direct_path_run_as_written():
    """An input the kernels would have to copy, and `kernels.use('direct')` (the lecture's
    loops and NumPy formulas for every pass): the modules one by one, the same values."""
    rng = np.random.default_rng(6)
    layer = dense_layer(2)
    x = rng.standard_normal((2, 12, 6, 6)).astype(np.float32)
    y = layer(mg.tensor(np.asfortranarray(x), requires_grad=True))
    assert type(y.grad_fn) is not ConvNormChain
    np.testing.assert_array_equal(y.data, layer(mg.tensor(x)).data)
    xt = mg.tensor(x, requires_grad=True)
    with kernels.use("direct"):
        y = layer(xt)
    assert type(y.grad_fn) is not ConvNormChain
    z = layer(mg.tensor(x, requires_grad=True))
    assert type(z.grad_fn) is ConvNormChain
    np.testing.assert_allclose(y.data, z.data, rtol=1e-4, atol=1e-5)


def test_wrong_channels_raise_the_batch_norms_own_error():
    """A BatchNorm whose num_features is not the convolution's output channels: the layers
    run as written, and BatchNorm2d names the channels."""
    layers = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU()]
    x = mg.tensor(np.ones((2, 3, 5, 5), np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d: input has 8 channels"):
        nn.conv_norm_chain(layers, x)
    assert int(layers[1].num_batches_tracked) == 0          # not counted: it did not run
    layer = dense_layer(3)
    layer.norm2.running_mean = layer.norm2.running_mean.astype(np.float64)
    with pytest.raises(TypeError, match="running_mean has dtype float64 but input has dtype "
                                        "float32"):
        layer(mg.tensor(np.ones((2, 12, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="conv2d"):                  # the kernel's own check
        nn.conv_norm_chain([nn.BatchNorm2d(3), nn.Conv2d(3, 4, 7)], x)


@pytest.mark.parametrize("training", [True, False])
def test_second_derivatives_equal_the_layers_one_by_one(training):
    """create_graph=True: the chain replays its stages as the unfused ops, so ∂L/∂x is
    the modules' own, bit for bit, and a gradient penalty ‖∂L/∂x‖² differentiated again
    gives their second derivatives. Those agree to rounding, not bit for bit: the engine
    adds the contributions to x and to conv1's and norm1's parameters (from the gradient
    ops that read them and from the first-order pass through the layer) in the order of its
    graph, and one node in place of six changes that order."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 12, 5, 5))
    out = []
    for fused in (True, False):
        layer = dense_layer(4, np.float64).train(training)
        xt = mg.tensor(x, requires_grad=True)
        y = layer(xt) if fused else one_by_one(list(layer._chain), xt)
        assert (type(y.grad_fn) is ConvNormChain) == fused
        loss = (y * y).sum()
        gx, = grad([loss], [xt], create_graph=True)
        (gx * gx).sum().backward()
        out.append([gx.data, layer.norm1.running_mean.copy(), layer.norm2.running_var.copy(),
                    xt.grad.data] + [p.grad.data for p in layer.parameters()])
    for a, b in zip(out[0][:3], out[1][:3]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(out[0][3:], out[1][3:]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_create_graph_through_frozen_evaluation_stages():
    """A frozen BatchNorm in evaluation mode before a trainable convolution, an input
    without gradient: the first stage's backward never runs, but a create_graph replay
    still runs its forward, with the statistics the forward used (they move in between
    here) — the convolution weight's first and second derivatives are the layers' own."""
    rng = np.random.default_rng(13)
    x0, mean0 = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal(3)
    out = []
    for fused in (True, False):
        mg.manual_seed(0)
        layers = [nn.BatchNorm2d(3).double().eval(), nn.ReLU(),
                  nn.Conv2d(3, 4, 3, padding=1).double()]
        layers[0].running_mean[...] = mean0
        for p in layers[0].parameters():
            p.requires_grad = False
        y = (nn.conv_norm_chain if fused else one_by_one)(layers, mg.tensor(x0))
        assert (type(y.grad_fn) is ConvNormChain) == fused
        layers[0].running_mean += 1.0            # after the forward: not to be read again
        g, = grad([(y * y).sum()], [layers[2].weight], create_graph=True)
        (g * g).sum().backward()
        out.append((g.data, layers[2].weight.grad.data))
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)


def test_gradcheck_through_the_chain():
    """Finite differences of the op's gradients, float64, for the input and every
    parameter (the op applied to gradcheck's copies of them, with the stages the modules
    give)."""
    rng = np.random.default_rng(8)
    layers = build(rng, [("bn", "relu", True, True, 0.1), ("conv", 3, 3, 2, 1, 1, True),
                         ("bn", None, True, False, 0.1), ("conv", 2, 1, 1, 0, 1, False)], 2,
                   np.float64)
    x = mg.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    params, stages = nn.chain._spec(layers, x)
    present = [i for i, p in enumerate(params) if p is not None]

    def f(x, *ps):
        full = [None] * len(params)
        for i, p in zip(present, ps):
            full[i] = p
        return ConvNormChain.apply(x, *full, stages=stages)
    assert type(f(x, *[params[i] for i in present]).grad_fn) is ConvNormChain
    assert gradcheck(f, (x, *[params[i] for i in present]), eps=1e-6, atol=1e-5, rtol=1e-4)


# ---- a ReLU followed by max pooling, pooled first (nn.Sequential) --------------------------

def same_bits(a, b):
    """Equal arrays, NaN where NaN, and the same sign of zero."""
    return (a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a), np.signbit(b)))


@settings(max_examples=80, deadline=None)
@given(H=st.integers(1, 9), W=st.integers(1, 9), k=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 1), dilation=st.integers(1, 3), ceil=st.booleans(),
       negative=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_relu_then_max_pool_pooled_first_bit_for_bit(H, W, k, stride, pad, dilation, ceil,
                                                     negative, dtype, seed):
    """Sequential(ReLU, MaxPool2d) runs the pool first (one ReLU pass over the pooled
    activation), with the values and gradients of the two modules in their order: windows
    with NaN, ±0, ties of equal values, all-negative windows, padding, ceil_mode, 1-pixel
    planes. Dilated pooling keeps the order (a dilated window can hold padding only: −inf,
    which a ReLU after it would turn into 0), with the same numbers of course."""
    pad = min(pad, k // 2)
    if H + 2 * pad < dilation * (k - 1) + 1 or W + 2 * pad < dilation * (k - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, H, W)).astype(dtype)
    r = rng.random(x.shape)
    x[r < 0.05] = np.nan
    x[(r >= 0.05) & (r < 0.1)] = -0.0
    x[(r >= 0.1) & (r < 0.15)] = 0.0
    x[(r >= 0.15) & (r < 0.25)] = 1.0                     # ties of equal positive values
    if negative:
        x = -np.abs(x)
    relu, pool = nn.ReLU(), nn.MaxPool2d(k, stride=stride, padding=pad, dilation=dilation,
                                         ceil_mode=ceil)
    seq = nn.Sequential(relu, pool)
    out = []
    for fn in (seq, lambda t: pool(relu(t))):
        xt = mg.tensor(x, requires_grad=True)
        y = fn(xt)
        out.append(y)
        δ = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
        y.backward(mg.tensor(δ))
        out.append(xt.grad.data)
    assert (out[0].grad_fn.name == "ReLU") == (dilation == 1)      # pooled first
    assert out[2].grad_fn.name != "ReLU"
    assert same_bits(out[0].data, out[2].data) and same_bits(out[1], out[3])


def test_relu_then_max_pool_keeps_its_order_when_observable():
    """A hook on either module, a ReLU subclass, return_indices: the modules run in their
    order (the hooks see what they would see)."""
    x = mg.tensor(np.random.default_rng(9).standard_normal((1, 2, 4, 4)).astype(np.float32),
                  requires_grad=True)
    seen = []
    relu = nn.ReLU()
    relu.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    y = nn.Sequential(relu, nn.MaxPool2d(2))(x)
    assert seen == [(1, 2, 4, 4)] and y.grad_fn.name != "ReLU"

    class Leaky(nn.ReLU):
        pass
    assert nn.Sequential(Leaky(), nn.MaxPool2d(2))(x).grad_fn.name != "ReLU"
    y, idx = nn.Sequential(nn.ReLU(), nn.MaxPool2d(2, return_indices=True))(x)
    assert idx.shape == (1, 2, 2, 2)
    # a window of padding only (dilation 3 on a 2×2 plane): −inf, as the modules in order give
    pool = nn.MaxPool2d(2, stride=1, padding=1, dilation=3)
    x1 = mg.tensor(np.ones((1, 1, 2, 2), np.float32))
    np.testing.assert_array_equal(nn.Sequential(nn.ReLU(), pool)(x1).data,
                                  pool(nn.ReLU()(x1)).data)
    # an integer input: the ReLU (which makes it float32) stays first
    xi = mg.tensor(np.arange(16).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2))(xi).data,
                                  [[[[5, 7], [13, 15]]]])


def test_hooks_on_the_inputs_run_once_under_create_graph():
    """create_graph=True through the chain: gradient hooks on x and on a weight run once,
    as through the layers one by one (the replay does not hand the inputs' gradients to
    the engine), and the results agree bit for bit."""
    rng = np.random.default_rng(12)
    x0 = rng.standard_normal((2, 3, 6, 6))
    out = []
    for fused in (True, False):
        mg.manual_seed(0)
        layers = [nn.BatchNorm2d(3).double(), nn.ReLU(), nn.Conv2d(3, 4, 3, padding=1).double()]
        calls = []
        x = mg.tensor(x0, requires_grad=True)
        layers[2].weight.register_hook(lambda g: calls.append("w") or g * 2)
        x.register_hook(lambda g: calls.append("x") or g * 3)
        y = nn.conv_norm_chain(layers, x) if fused else one_by_one(layers, x)
        assert (type(y.grad_fn) is ConvNormChain) == fused
        gx, = grad([(y * y).sum()], [x], create_graph=True)
        (gx * gx).sum().backward()
        out.append((sorted(calls), gx.data, x.grad.data, layers[2].weight.grad.data))
    assert out[0][0] == out[1][0]
    for a, b in zip(out[0][1:], out[1][1:]):
        np.testing.assert_array_equal(a, b)
