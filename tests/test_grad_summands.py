"""A tensor made by an op ending in a ReLU (ReLU, AddReLU, BatchNormReLU, BatchNormAddReLU)
and used twice — a residual block's input, read by its first convolution and by the
identity path — gets its two gradient contributions as autograd.Summands, and the op's
backward adds them in ReLU's mask pass (ext/elementwise.pyx relu_backward_sum) instead of
the backward pass writing the sum first: the same numbers bit for bit. Hooks,
autograd.grad and create_graph=True see the sum; a third contribution adds the first two."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import autograd
from minigrad.ops import elementwise as E
from minigrad.ops import norm

ADDERS = (E.ReLUFunction, E.AddReLU, norm.BatchNormReLU)     # (BatchNormAddReLU inherits)


def _adding_first(monkeypatch):
    for cls in ADDERS:
        monkeypatch.setattr(cls, "adds_gradients", False)


def _specials(x, rng):
    flat = x.reshape(-1)
    for v in (np.nan, 0.0, -0.0, np.inf, -np.inf):
        flat[rng.integers(flat.size)] = v
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [7, 40000])                   # one thread, and the threads
def test_relu_backward_sum_is_add_then_mask_bit_for_bit(dtype, n):
    rng = np.random.default_rng(n)
    y = _specials(rng.standard_normal(n).astype(dtype), rng)
    a = _specials(rng.standard_normal(n).astype(dtype), rng)
    b = _specials(rng.standard_normal(n).astype(dtype), rng)
    b[:3] = -a[:3]                                         # exact cancellations
    with np.errstate(invalid="ignore"):
        s = a + b
    expected = np.empty_like(y)
    E._k.relu_backward(y, s, expected, 2)
    got = np.empty_like(y)
    E._k.relu_backward_sum(y, a, b, got, 2)
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
    E._k.relu_backward_sum(y, a, b, a, 2)                  # out may be a itself
    np.testing.assert_array_equal(a.view(np.uint8), expected.view(np.uint8))


def _leaves(op, rng, dtype):
    """(y = op(...) on fresh leaves, the leaves): the four ops that end in a ReLU."""
    shape = (4, 3, 5, 5)
    x = mg.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    z = mg.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    mg.manual_seed(0)
    bn = nn.BatchNorm2d(3).to(dtype)
    params = [x, z, bn.weight, bn.bias]
    if op == "relu":
        return F.relu(x * 1.5), params
    if op == "add_relu":
        return F.add_relu(x, z), params
    if op == "bn_relu":
        return nn.bn_relu(bn, None, x), params
    return nn.bn_add_relu(bn, None, x, z), params


def _grads(op, uses, dtype=np.float32, hook=None):
    rng = np.random.default_rng(5)
    y, params = _leaves(op, rng, dtype)
    if hook is not None:
        y.register_hook(hook)
    weights = [mg.tensor(rng.standard_normal(y.shape).astype(dtype)) for _ in range(uses)]
    loss = sum(((y * w) ** 2).sum() for w in weights)      # y used `uses` times
    loss.backward()
    return [None if p.grad is None else p.grad.numpy().copy() for p in params]


def _same(gs, hs):
    """Equal bit for bit (and None where the other is None)."""
    assert [g is None for g in gs] == [h is None for h in hs] and any(g is not None for g in gs)
    for g, h in zip(gs, hs):
        if g is not None:
            np.testing.assert_array_equal(g.view(np.uint8), h.view(np.uint8))


@pytest.mark.parametrize("op", ["relu", "add_relu", "bn_relu", "bn_add_relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_output_used_twice_is_masked_and_added_in_one_pass(op, dtype, monkeypatch):
    calls = []
    real = E._k.relu_backward_sum
    monkeypatch.setattr(E._k, "relu_backward_sum", lambda *a: (calls.append(a[0].size), real(*a)))
    fused = _grads(op, 2, dtype)
    assert calls == [4 * 3 * 5 * 5]
    _adding_first(monkeypatch)
    added = _grads(op, 2, dtype)
    assert calls == [4 * 3 * 5 * 5]                        # (not called again)
    _same(fused, added)


@pytest.mark.parametrize("op", ["relu", "bn_add_relu"])
def test_a_third_contribution_adds_the_first_two_then_it(op, monkeypatch):
    calls = []
    monkeypatch.setattr(E._k, "relu_backward_sum", lambda *a: calls.append(a))
    three = _grads(op, 3)
    assert calls == []
    monkeypatch.undo()
    _adding_first(monkeypatch)
    _same(three, _grads(op, 3))


def test_a_hook_and_autograd_grad_see_the_sum(monkeypatch):
    seen = []
    hooked = _grads("bn_add_relu", 2, hook=lambda g: seen.append(g.numpy().copy()))
    rng = np.random.default_rng(5)
    y, params = _leaves("bn_add_relu", rng, np.float32)
    w1, w2 = (mg.tensor(rng.standard_normal(y.shape).astype(np.float32)) for _ in range(2))
    a, b = 2 * (y * w1) * w1, 2 * (y * w2) * w2            # ∂/∂y of ((y·w)²).sum(), each use
    (gy,) = autograd.grad(((y * w1) ** 2).sum() + ((y * w2) ** 2).sum(), [y])
    assert isinstance(gy, mg.Tensor) and isinstance(seen[0], np.ndarray)
    expected = a.numpy() + b.numpy()
    np.testing.assert_allclose(seen[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(gy.numpy(), seen[0])
    _adding_first(monkeypatch)
    _same(hooked, _grads("bn_add_relu", 2))


def test_create_graph_adds_first_and_differentiates_again(monkeypatch):
    calls = []
    monkeypatch.setattr(E._k, "relu_backward_sum", lambda *a: calls.append(a))
    x = mg.tensor([[-1.0, 0.5, 2.0, 3.0]], requires_grad=True)
    y = F.relu(x * 2.0)
    loss = (y ** 3).sum() + (y * x).sum()                  # y used twice
    (gx,) = autograd.grad(loss, [x], create_graph=True)
    (ggx,) = autograd.grad(gx.sum(), [x])
    assert calls == []
    xv = x.numpy()
    on = (xv > 0).astype(float)                            # y = 2x where x > 0, else 0
    np.testing.assert_allclose(gx.numpy(), on * (24 * xv ** 2 + 4 * xv))   # 3y²·2 + 2x + y
    np.testing.assert_allclose(ggx.numpy(), on * (48 * xv + 4))


def test_resnet20_gradients_equal_adding_first(monkeypatch):
    """Every residual block's input is a BatchNorm + ReLU output used twice."""
    from minigrad import models

    def grads():
        mg.manual_seed(0)
        m = models.resnet20(num_classes=10, in_channels=1)
        x = mg.tensor(np.random.default_rng(0).standard_normal((2, 1, 12, 12)).astype(np.float32))
        F.cross_entropy(m(x), mg.tensor([3, 7])).backward()
        return [p.grad.numpy().copy() for p in m.parameters()]
    calls = []
    real = E._k.relu_backward_sum
    monkeypatch.setattr(E._k, "relu_backward_sum", lambda *a: (calls.append(a[0].size), real(*a)))
    fused = grads()
    assert len(calls) == 9                                 # the stem's and 8 blocks' outputs
    _adding_first(monkeypatch)
    _same(fused, grads())
