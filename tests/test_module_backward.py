"""Module.backward(input, grad_output): Torch7's module-wise backward (seed 001). Pushing δ
through a LeNet-5 layer by layer, by hand, gives autograd's ∂L/∂x and parameter gradients."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def _double(model):
    """float64 parameters (gradients compared to 1e-10)."""
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    return model


def _copy(model):
    twin = _double(lenet5())
    twin.load_state_dict(model.state_dict())
    return twin


def test_pushing_delta_through_lenet_by_hand_equals_autograd():
    mg.manual_seed(0)
    model = _double(lenet5())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 1, 28, 28))
    labels = np.array([3, 1, 4, 1])

    # autograd on a twin
    twin = _copy(model)
    xt = mg.tensor(x, requires_grad=True)
    F.cross_entropy(twin(xt), mg.tensor(labels)).backward()

    # by hand: forward layer by layer keeping each layer's input ...
    inputs, h = [], mg.tensor(x)
    with mg.no_grad():
        for layer in model:
            inputs.append(h)
            h = layer(h)
    # ... δ of the mean cross-entropy at the logits: (softmax(z) − onehot(y)) / N ...
    z = h.numpy()
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    δ = (p - np.eye(10)[labels]) / len(labels)
    # ... then each module's backward, last layer first
    for layer, inp in zip(reversed(list(model)), reversed(inputs)):
        δ = layer.backward(inp, δ)
        assert δ.shape == inp.shape

    np.testing.assert_allclose(δ.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    for (name, p_hand), (_, p_auto) in zip(model.named_parameters(), twin.named_parameters()):
        np.testing.assert_allclose(p_hand.grad.numpy(), p_auto.grad.numpy(), rtol=1e-10,
                                   atol=1e-13, err_msg=name)


def test_backward_of_a_whole_sequential_and_accumulation():
    mg.manual_seed(1)
    model = _double(lenet5())
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28))
    δ = np.random.default_rng(2).standard_normal((2, 10))
    dx = model.backward(x, δ)
    twin = _copy(model)
    xt = mg.tensor(x, requires_grad=True)
    twin(xt).backward(δ)
    np.testing.assert_allclose(dx.numpy(), xt.grad.numpy(), rtol=1e-12)
    first = model[0].weight.grad.numpy().copy()
    model.backward(x, δ)                                   # Torch7 accumulates until zero_grad
    np.testing.assert_allclose(model[0].weight.grad.numpy(), 2 * first, rtol=1e-12)
    assert not dx.requires_grad


def test_conv_backward_is_seed_004s_rule():
    """For one conv layer: ∂L/∂b = Σ δ, ∂L/∂w = x ⋆ δ, and ∂L/∂x from backward."""
    conv = _double(nn.Conv2d(1, 1, 2, bias=True))
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    δ = np.array([[[[1.0, -2.0], [0.5, 3.0]]]])
    dx = conv.backward(x, δ)
    np.testing.assert_allclose(conv.bias.grad.numpy(), [δ.sum()])
    dw = np.array([[np.sum(δ[0, 0] * x[0, 0, p:p + 2, q:q + 2]) for q in range(2)] for p in range(2)])
    np.testing.assert_allclose(conv.weight.grad.numpy()[0, 0], dw)
    w = conv.weight.numpy()[0, 0]
    full = np.zeros((3, 3))
    for i in range(2):
        for j in range(2):
            full[i:i + 2, j:j + 2] += δ[0, 0, i, j] * w
    np.testing.assert_allclose(dx.numpy()[0, 0], full)


def test_batchnorm_running_stats_unchanged_and_errors():
    bn = nn.BatchNorm2d(3)
    x = mg.randn(4, 3, 5, 5)
    before = bn.running_mean.copy()
    bn.backward(x, np.ones((4, 3, 5, 5), np.float32))
    np.testing.assert_array_equal(bn.running_mean, before)
    with pytest.raises(ValueError, match=r"Linear.backward\(\): grad_output has shape \(2, 5\).*\(2, 4\)"):
        nn.Linear(3, 4).backward(mg.randn(2, 3), np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match=r"ReLU.backward\(\): input must be a floating-point"):
        nn.ReLU().backward(np.arange(3), np.ones(3))
