"""minigrad.models: torchvision's state_dict keys, shapes and parameter counts (from
tests/data/torchvision_models.json, written by tests/data/make_torchvision_models.py), output
shapes, a few SGD steps that lower the loss, and float64 gradient checks of every block."""
import json
import os

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad as mg
import minigrad.models as M
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.gradcheck import GradcheckError

with open(os.path.join(os.path.dirname(__file__), "data", "torchvision_models.json")) as f:
    TORCHVISION = json.load(f)["models"]

# name in the JSON -> how to build ours with torchvision's defaults (1000 classes, RGB)
BUILD = {
    "alexnet": M.alexnet, "vgg11": M.vgg11, "vgg16": M.vgg16, "vgg11_bn": M.vgg11_bn,
    "vgg16_bn": M.vgg16_bn, "googlenet": M.googlenet,
    "googlenet_noaux": lambda: M.googlenet(aux_logits=False),
    "resnet18": M.resnet18, "resnet34": M.resnet34, "resnet50": M.resnet50,
    "densenet121": M.densenet121, "mobilenet_v2": M.mobilenet_v2,
}
HUGE = {"vgg11", "vgg16", "vgg11_bn", "vgg16_bn", "alexnet"}     # > 60M parameters


def n_params(model):
    return sum(p.size for p in model.parameters())


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HUGE else n
                                  for n in sorted(BUILD)])
def test_state_dict_and_parameter_count_equal_torchvisions(name):
    model = BUILD[name]()
    expected = TORCHVISION[name]
    ours = [[k, list(np.shape(v))] for k, v in model.state_dict().items()]
    assert ours == expected["state_dict"]
    assert n_params(model) == expected["num_parameters"]


def test_every_torchvision_model_is_covered():
    assert set(TORCHVISION) == set(BUILD)


@pytest.mark.parametrize("name, head", [("resnet18", "fc"), ("densenet121", "classifier"),
                                        ("mobilenet_v2", "classifier.1"), ("googlenet", "fc")])
def test_num_classes_and_in_channels_change_only_the_ends(name, head):
    model = getattr(M, name)(num_classes=7, in_channels=1)
    sd = model.state_dict()
    expected = dict((k, s) for k, s in TORCHVISION[name]["state_dict"])
    assert list(sd) == list(expected)
    first = next(iter(sd))
    assert sd[first].shape[1] == 1
    assert sd[f"{head}.weight"].shape[0] == 7
    for k, v in sd.items():
        if k != first and not k.endswith(("fc.weight", "fc.bias", "fc2.weight", "fc2.bias",
                                          "classifier.weight", "classifier.bias",
                                          "classifier.1.weight", "classifier.1.bias")):
            assert list(v.shape) == expected[k], k


def test_models_without_torchvision_counterpart():
    # ResNet-20 of He et al. §4.2, option A shortcuts: the paper's "0.27M" parameters
    assert n_params(M.resnet20()) == 269_722
    assert n_params(M.resnet20(in_channels=1)) == 269_722 - 16 * 2 * 9
    # LeNet-5 of the notes: (6·25+6) + (16·6·25+16) + (400·120+120) + (120·84+84) + (84·10+10)
    assert n_params(M.lenet5()) == 156 + 2416 + 48120 + 10164 + 850
    assert n_params(M.nin()) == 1_992_166
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in M.resnet20().modules())


# ---- forward shapes on small inputs --------------------------------------------------------
SHAPES = [  # (constructor, kwargs, input shape)
    ("lenet5", {}, (2, 1, 28, 28)),
    ("resnet20", {"in_channels": 1}, (2, 1, 28, 28)),
    ("resnet20", {}, (2, 3, 32, 32)),
    ("resnet18", {"in_channels": 1}, (2, 1, 28, 28)),
    ("resnet34", {}, (2, 3, 32, 32)),
    ("resnet50", {}, (2, 3, 32, 32)),
    ("mobilenet_v2", {}, (2, 3, 32, 32)),
    ("googlenet", {"aux_logits": False}, (2, 3, 32, 32)),
    ("densenet121", {}, (2, 3, 32, 32)),
    ("nin", {}, (2, 1, 67, 67)),
    ("alexnet", {}, (2, 3, 63, 63)),
    ("vgg11", {}, (2, 3, 32, 32)),
    ("vgg11_bn", {}, (2, 3, 32, 32)),
]
SLOW_SHAPES = {"resnet34", "resnet50", "densenet121", "alexnet", "vgg11", "vgg11_bn"}


@pytest.mark.parametrize("name, kwargs, shape", [
    pytest.param(*s, marks=pytest.mark.slow) if s[0] in SLOW_SHAPES else s for s in SHAPES])
def test_output_shape(name, kwargs, shape):
    mg.manual_seed(0)
    model = getattr(M, name)(num_classes=5, **kwargs)
    model.eval()
    with mg.no_grad():
        y = model(mg.randn(*shape))
    assert y.shape == (shape[0], 5)
    assert np.all(np.isfinite(y.numpy()))


def test_googlenet_aux_outputs_in_training_only():
    mg.manual_seed(0)
    model = M.googlenet(num_classes=4)
    x = mg.randn(2, 3, 32, 32)
    out = model(x)
    assert isinstance(out, M.GoogLeNetOutputs)
    assert [o.shape for o in out] == [(2, 4)] * 3
    model.eval()
    assert model(x).shape == (2, 4)
    assert M.googlenet(num_classes=4, aux_logits=False)(x).shape == (2, 4)


def test_resnet20_stage_shapes():
    model = M.resnet20(in_channels=1)
    x = mg.randn(2, 1, 28, 28)
    h = model.relu(model.bn1(model.conv1(x)))
    shapes = []
    for stage in (model.layer1, model.layer2, model.layer3):
        h = stage(h)
        shapes.append(h.shape)
    assert shapes == [(2, 16, 28, 28), (2, 32, 14, 14), (2, 64, 7, 7)]


# ---- a few SGD steps lower the loss ----------------------------------------------------------
TRAIN = [  # (constructor, kwargs, input shape, lr)
    ("lenet5", {}, (8, 1, 28, 28), 0.05),
    ("resnet20", {"in_channels": 1}, (8, 1, 28, 28), 0.05),
    ("nin", {}, (4, 1, 67, 67), 0.02),
    ("mobilenet_v2", {}, (8, 3, 32, 32), 0.01),
    ("resnet18", {}, (4, 3, 32, 32), 0.02),
    ("resnet50", {}, (4, 3, 32, 32), 0.005),   # BN over 4 values of a 1×1 map: a small step
    ("googlenet", {}, (4, 3, 32, 32), 0.02),
    ("densenet121", {}, (4, 3, 32, 32), 0.02),
    ("alexnet", {}, (4, 3, 63, 63), 0.01),
    ("vgg11_bn", {}, (4, 3, 32, 32), 0.01),
]
FAST_TRAIN = {"lenet5", "resnet20", "mobilenet_v2"}


def _loss(model, x, y, seed):
    mg.manual_seed(seed)                   # the same dropout masks at every evaluation
    out = model(x)
    if isinstance(out, tuple):             # GoogLeNet in training: the paper's weighted sum
        return F.cross_entropy(out[0], y) + 0.3 * (F.cross_entropy(out[1], y) + F.cross_entropy(out[2], y))
    return F.cross_entropy(out, y)


@pytest.mark.parametrize("name, kwargs, shape, lr", [
    t if t[0] in FAST_TRAIN else pytest.param(*t, marks=pytest.mark.slow) for t in TRAIN])
def test_a_few_sgd_steps_lower_the_loss(name, kwargs, shape, lr):
    mg.manual_seed(0)
    model = getattr(M, name)(num_classes=3, **kwargs)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal(shape).astype(np.float32))
    y = mg.tensor(np.arange(shape[0]) % 3)
    opt = mg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    first = _loss(model, x, y, 1).item()
    for _ in range(4):
        loss = _loss(model, x, y, 1)
        opt.zero_grad()
        loss.backward()
        for name_, p in model.named_parameters():
            assert p.grad is not None, f"{name}: {name_} got no gradient"
        opt.step()
    last = _loss(model, x, y, 1).item()
    assert np.isfinite(last) and last < first, (first, last)


# ---- float64 gradient checks of every block --------------------------------------------------
def _double(module):
    """Make every parameter and buffer of `module` float64 (in place)."""
    for m in module.modules():
        for n, p in m._parameters.items():
            if p is not None:
                p.data = p.data.astype(np.float64)
        for n, b in m._buffers.items():
            if b is not None and b.dtype.kind == "f":
                m._buffers[n] = b.astype(np.float64)
    return module


def gradcheck_block(block, x):
    """gradcheck the block's output with respect to its input and every parameter."""
    block = _double(block)
    slots = [(m, n) for m in block.modules() for n, p in m._parameters.items() if p is not None]
    params = [mg.tensor(m._parameters[n].data, requires_grad=True) for m, n in slots]

    def fn(x, *ps):
        for (m, n), p in zip(slots, ps):
            m._parameters[n] = p            # the gradcheck's float64 copies take the slots
        out = block(x)
        return out

    inputs = [mg.tensor(x, requires_grad=True)] + params
    try:
        return mg.gradcheck(fn, inputs, atol=1e-6, rtol=1e-4)
    except GradcheckError:
        # Finite differences measure a derivative only where the block is differentiable
        # within ±eps: a ReLU input or a max-pool tie that close to x (the batch statistics
        # move every normalised value when any input moves) is a kink, where the left and
        # right differences part. Such a draw is no test of the gradient: reject it. At a
        # differentiable point both agree, so a wrong gradient still fails.
        assume(smooth_within_eps(fn, inputs))
        raise


def smooth_within_eps(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4):
    """Whether L = Σ r · fn(inputs) (gradcheck's projection, seed 0) has matching left and
    right differences (L(x) − L(x − eps))/eps and (L(x + eps) − L(x))/eps at every element
    of every input, to gradcheck's tolerance."""
    leaves = [mg.tensor(np.array(t.numpy(), np.float64)) for t in inputs]
    r = np.random.default_rng(0).standard_normal(fn(*leaves).shape)

    def L():
        return float(np.sum(fn(*leaves).numpy() * r))
    base = L()
    for t in leaves:
        flat = t.data.reshape(-1)
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            right = (L() - base) / eps
            flat[k] = orig - eps
            left = (base - L()) / eps
            flat[k] = orig
            if abs(right - left) > atol + rtol * abs(right + left) / 2:
                return False
    return True


def _input(n, c, h, w, seed):
    return np.random.default_rng(seed).standard_normal((n, c, h, w))


small = settings(max_examples=6)


@small
@given(cin=st.integers(1, 3), cout=st.integers(1, 4), stride=st.sampled_from([1, 2]),
       shortcut=st.sampled_from(["B", "A"]), hw=st.integers(3, 5), seed=st.integers(0, 999))
def test_basic_block_gradcheck(cin, cout, stride, shortcut, hw, seed):
    mg.manual_seed(seed)
    downsample = None
    if stride != 1 or cin != cout:
        if shortcut == "A" and cout >= cin:
            downsample = M.ZeroPadShortcut(cin, cout, stride)
        else:
            downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(cout))
    block = M.BasicBlock(cin, cout, stride, downsample)
    assert gradcheck_block(block, _input(2, cin, hw, hw, seed))


@small
@given(cin=st.integers(1, 4), width=st.integers(1, 2), stride=st.sampled_from([1, 2]),
       hw=st.integers(3, 4), seed=st.integers(0, 999))
def test_bottleneck_gradcheck(cin, width, stride, hw, seed):
    mg.manual_seed(seed)
    downsample = None
    if stride != 1 or cin != 4 * width:
        downsample = nn.Sequential(nn.Conv2d(cin, 4 * width, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(4 * width))
    assert gradcheck_block(M.Bottleneck(cin, width, stride, downsample), _input(2, cin, hw, hw, seed))


@small
@given(cin=st.integers(1, 3), chans=st.lists(st.integers(1, 2), min_size=6, max_size=6),
       hw=st.integers(2, 4), seed=st.integers(0, 999))
def test_inception_module_gradcheck(cin, chans, hw, seed):
    mg.manual_seed(seed)
    block = M.Inception(cin, *chans)
    x = _input(2, cin, hw, hw, seed)
    assert block(mg.tensor(x.astype(np.float32))).shape == (2, chans[0] + chans[2] + chans[4] + chans[5], hw, hw)
    assert gradcheck_block(block, x)


@small
@given(cin=st.integers(1, 3), layers=st.integers(1, 3), growth=st.integers(1, 2),
       hw=st.integers(2, 4), seed=st.integers(0, 999))
def test_dense_block_gradcheck(cin, layers, growth, hw, seed):
    mg.manual_seed(seed)
    block = M.DenseBlock(layers, cin, bn_size=2, growth_rate=growth)
    x = _input(2, cin, hw, hw, seed)
    y = block(mg.tensor(x.astype(np.float32)))
    assert y.shape == (2, cin + layers * growth, hw, hw)
    np.testing.assert_array_equal(y.numpy()[:, :cin], x.astype(np.float32))   # x_0 passes through
    assert gradcheck_block(block, x)


@settings(max_examples=10, deadline=None)
@given(cin=st.integers(1, 8), layers=st.integers(1, 5), growth=st.integers(1, 4),
       n=st.integers(1, 3), hw=st.integers(1, 5), seed=st.integers(0, 999))
def test_dense_block_chained_cat_is_torchvisions_bit_for_bit(cin, layers, growth, n, hw, seed):
    """DenseBlock concatenates one layer at a time, [[x_0 … x_{ℓ−1}] | x_ℓ]; torchvision
    concatenates the list of all features, cat([x_0 … x_ℓ]), for every layer. The output
    and every gradient (the layers' parameters and the block input) must be the same bits."""
    assume(n * hw * hw > 1)                                  # (BatchNorm in training)
    mg.manual_seed(seed)
    block = M.DenseBlock(layers, cin, bn_size=2, growth_rate=growth)
    x0 = (_input(n, cin, hw, hw, seed) * 3).astype(np.float32)
    δ = _input(n, cin + layers * growth, hw, hw, seed + 1).astype(np.float32)

    def run(forward):
        x = mg.tensor(x0, requires_grad=True)
        block.zero_grad()
        y = forward(x)
        y.backward(mg.tensor(δ))
        return [y.numpy(), x.grad.numpy()] + [p.grad.numpy().copy() for p in block.parameters()]

    def torchvision_form(x):
        features = [x]
        for layer in block.children():
            features.append(layer(features))                 # layer(list): cat(features) inside
        return M.densenet.cat(features, dim=1)

    ours, theirs = run(block), run(torchvision_form)
    assert len(ours) == len(theirs) == 2 + 6 * layers
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@small
@given(cin=st.integers(1, 3), cout=st.integers(1, 3), stride=st.sampled_from([1, 2]),
       t=st.sampled_from([1, 2, 3]), hw=st.integers(3, 5), seed=st.integers(0, 999))
def test_inverted_residual_gradcheck(cin, cout, stride, t, hw, seed):
    mg.manual_seed(seed)
    block = M.InvertedResidual(cin, cout, stride, t)
    assert block.use_res_connect == (stride == 1 and cin == cout)
    # scale the input so that some activations pass 6 and ReLU6 clips
    assert gradcheck_block(block, 4 * _input(2, cin, hw, hw, seed))


def test_residual_adds_the_input():
    """With F(x) = 0 (last BN's γ = β = 0) a block is relu(x): the identity path alone."""
    block = M.BasicBlock(3, 3)
    nn.init.zeros_(block.bn2.weight)
    x = mg.randn(2, 3, 5, 5)
    np.testing.assert_allclose(block(x).numpy(), np.maximum(x.numpy(), 0), rtol=1e-6)
    assert M.InvertedResidual(4, 4, 1, 6).use_res_connect
    assert not M.InvertedResidual(4, 4, 2, 6).use_res_connect


def test_zero_pad_shortcut_matches_numpy():
    x = mg.randn(2, 3, 5, 5)
    y = M.ZeroPadShortcut(3, 7, 2)(x).numpy()
    ref = np.zeros((2, 7, 3, 3), np.float32)
    ref[:, 2:5] = x.numpy()[:, :, ::2, ::2]
    np.testing.assert_array_equal(y, ref)
    with pytest.raises(ValueError, match="ZeroPadShortcut"):
        M.ZeroPadShortcut(4, 2, 1)


@pytest.mark.parametrize("fn", [M.resnet20, M.lenet5, M.nin, M.mobilenet_v2])
def test_bad_constructor_arguments(fn):
    with pytest.raises(ValueError, match="num_classes"):
        fn(num_classes=0)
    with pytest.raises(TypeError, match="in_channels"):
        fn(in_channels=1.5)


def test_zero_init_residual_starts_every_block_as_the_identity():
    for model, last in ((M.resnet18(zero_init_residual=True), "bn2"),
                        (M.resnet50(zero_init_residual=True), "bn3")):
        blocks = [m for m in model.modules() if isinstance(m, (M.BasicBlock, M.Bottleneck))]
        assert blocks and all(np.all(getattr(b, last).weight.numpy() == 0) for b in blocks)
        assert np.all(model.bn1.weight.numpy() == 1)


def test_alexnet_with_the_papers_lrn_keeps_torchvisions_keys():
    plain, with_lrn = M.alexnet(num_classes=3), M.alexnet(num_classes=3, lrn=True)
    assert list(plain.state_dict()) == list(with_lrn.state_dict())
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in with_lrn.modules()) == 2
    with_lrn.load_state_dict(plain.state_dict())
    plain.eval()
    with_lrn.eval()
    x = mg.randn(1, 3, 63, 63)
    a, b = plain(x).numpy(), with_lrn(x).numpy()
    assert a.shape == b.shape == (1, 3) and not np.allclose(a, b)
