"""Tensor hooks (register_hook, register_post_accumulate_grad_hook) and end-of-backward
callbacks (autograd.queue_callback): PyTorch's semantics, checked against gradients
computed by hand."""
import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad import autograd


def leaf(values, dtype=np.float64):
    return mg.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ---- register_hook on leaves -----------------------------------------------------------
def test_leaf_hook_sees_the_summed_gradient_once():
    x = leaf([1.0, 2.0, 3.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    (x * x + x).sum().backward()                 # ∂/∂x = 2x + 1, from two uses of x
    assert len(seen) == 1
    np.testing.assert_array_equal(seen[0], [3.0, 5.0, 7.0])
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 5.0, 7.0])


def test_leaf_hook_return_value_replaces_what_is_accumulated():
    x = leaf([1.0, -2.0])
    x.register_hook(lambda g: g * 10)
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])
    (x * x).sum().backward()                     # .grad accumulates the replaced 10 · 2x
    np.testing.assert_array_equal(x.grad.numpy(), [30.0 + 20.0, 30.0 - 40.0])


def test_leaf_hook_that_keeps_the_gradient_does_not_alias_grad():
    x = leaf(np.arange(6.0).reshape(2, 3))
    kept = []
    x.register_hook(kept.append)
    (x * 2).sum().backward()
    assert not np.shares_memory(kept[0].numpy(), x.grad.numpy())
    kept[0].numpy()[...] = -1
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_hook_may_edit_the_gradient_in_place():
    x = leaf([1.0, 2.0])

    def clip(g):
        np.clip(g.numpy(), -0.5, 0.5, out=g.numpy())
    x.register_hook(clip)
    (x * 4).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.5])


# ---- register_hook on non-leaves ---------------------------------------------------------
def test_non_leaf_hook_replacement_flows_to_the_inputs():
    x = leaf([1.0, 2.0])
    y = x * 3
    seen = []

    def hook(g):
        seen.append(g.numpy().copy())
        return g * 0.5
    y.register_hook(hook)
    (y * y).sum().backward()                     # ∂L/∂y = 2y
    np.testing.assert_array_equal(seen[0], [6.0, 12.0])
    np.testing.assert_array_equal(x.grad.numpy(), [9.0, 18.0])   # 0.5 · 2y · 3
    assert y.grad is None                        # a non-leaf keeps no .grad


def test_hook_on_the_root_sees_the_seed_gradient():
    x = leaf([1.0, 2.0])
    loss = (x * x).sum()
    seen = []
    loss.register_hook(lambda g: seen.append(float(g.item())))
    loss.backward()
    assert seen == [1.0]


def test_hooks_run_in_registration_order_each_seeing_the_previous_result():
    x = leaf([1.0])
    y = x * 1
    calls = []
    y.register_hook(lambda g: calls.append(("a", g.item())) or g + 1)
    y.register_hook(lambda g: calls.append(("b", g.item())) or g * 10)
    y.sum().backward()
    assert calls == [("a", 1.0), ("b", 2.0)]
    assert x.grad.item() == 20.0


def test_hook_on_an_intermediate_activation_of_a_cnn_scales_every_upstream_gradient():
    rng = np.random.default_rng(0)
    mg.manual_seed(0)
    conv, head = nn.Conv2d(2, 3, 3), nn.Linear(3 * 4 * 4, 2, dtype=np.float64)
    conv.weight.data, conv.bias.data = conv.weight.data.astype(np.float64), conv.bias.data.astype(np.float64)
    x = mg.tensor(rng.standard_normal((2, 2, 6, 6)))

    def run(scale):
        conv.zero_grad()
        head.zero_grad()
        h = conv(x).relu()
        if scale is not None:
            h.register_hook(lambda g: g * scale)
        F.cross_entropy(head(h.flatten(1)), mg.tensor([0, 1])).backward()
        return conv.weight.grad.numpy().copy(), head.weight.grad.numpy().copy()

    w_plain, head_plain = run(None)
    w_scaled, head_scaled = run(-3.0)
    np.testing.assert_allclose(w_scaled, -3.0 * w_plain, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(head_scaled, head_plain)      # downstream of the hook


def test_hooks_persist_across_backward_calls_and_retain_graph():
    x = leaf([2.0])
    y = x * x
    count = []
    y.register_hook(lambda g: count.append(1))
    y.backward(retain_graph=True)
    y.backward()
    assert len(count) == 2
    assert x.grad.item() == 8.0


def test_removed_hooks_are_not_called():
    x = leaf([1.0])
    calls = []
    h1 = x.register_hook(lambda g: calls.append(1))
    h2 = x.register_hook(lambda g: calls.append(2))
    h1.remove()
    h1.remove()                                  # removing twice is harmless
    (x * 1).sum().backward()
    assert calls == [2]
    with h2:
        pass                                     # leaving the block removes it
    (x * 1).sum().backward()
    assert calls == [2]


def test_the_same_function_registered_twice_runs_twice_and_is_removed_once():
    x = leaf([1.0])
    calls = []

    def hook(g):
        calls.append(1)
    handle = x.register_hook(hook)
    x.register_hook(hook)
    handle.remove()
    (x * 1).sum().backward()
    assert calls == [1]


def test_hooks_do_not_record_a_graph():
    x = leaf([1.0, 2.0])
    grads = []
    x.register_hook(lambda g: grads.append(g) or g * x)   # x requires grad, but no graph is built
    (x * 1).sum().backward()
    assert grads[0].grad_fn is None
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 2.0])


# ---- register_hook: bad use -----------------------------------------------------------------
def test_register_hook_rejects_tensors_without_grad_and_non_callables():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: None)
    with pytest.raises(TypeError, match="callable"):
        leaf([1.0]).register_hook(3)


@pytest.mark.parametrize("bad, err, msg", [
    (lambda g: mg.tensor(np.zeros(3)), RuntimeError, "shape"),
    (lambda g: mg.tensor(np.zeros(2, np.float32)), RuntimeError, "dtype"),
    (lambda g: 1.0, TypeError, "Tensor or None"),
])
def test_a_hook_changing_shape_dtype_or_returning_junk_is_named(bad, err, msg):
    x = leaf([1.0, 2.0])
    x.register_hook(bad)
    with pytest.raises(err, match=msg):
        (x * 2).sum().backward()


# ---- register_post_accumulate_grad_hook -----------------------------------------------------
def test_post_accumulate_hook_sees_the_accumulated_grad():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(seen[1], [3.0 + 2.0, 3.0 + 4.0])


def test_post_accumulate_hook_runs_after_the_grad_hooks_and_once_per_backward():
    x = leaf([1.0])
    order = []
    x.register_post_accumulate_grad_hook(lambda t: order.append(("post", t.grad.item())))
    x.register_hook(lambda g: order.append(("grad", g.item())) or g * 2)
    (x * x + x * 5).sum().backward()             # used twice: still one call
    assert order == [("grad", 7.0), ("post", 14.0)]


def test_post_accumulate_hooks_fire_output_layer_first():
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    names = {id(p): n for n, p in model.named_parameters()}
    fired = []
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(lambda t: fired.append(names[id(t)]))
    model(mg.randn(5, 3)).sum().backward()
    assert sorted(fired) == sorted(names.values())
    assert fired.index("2.weight") < fired.index("0.weight")


def test_post_accumulate_hook_bad_use():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)
    x.register_post_accumulate_grad_hook(lambda t: 1)
    with pytest.raises(RuntimeError, match="must return None"):
        (x * 2).sum().backward()


# ---- queue_callback ---------------------------------------------------------------------------
def test_queued_callbacks_run_after_the_traversal_in_order():
    a, b = leaf([1.0]), leaf([2.0])
    log = []

    def first(t):
        if not log:
            autograd.queue_callback(lambda: log.append(("cb1", a.grad.item(), b.grad.item())))
            autograd.queue_callback(lambda: log.append("cb2") or autograd.queue_callback(
                lambda: log.append("cb3")))
        log.append("hook")
    a.register_post_accumulate_grad_hook(first)
    b.register_post_accumulate_grad_hook(first)
    (a * 3 + b * b).sum().backward()
    assert log == ["hook", "hook", ("cb1", 3.0, 4.0), "cb2", "cb3"]
    log.clear()
    (a * 1).sum().backward()                     # a fresh queue for each backward
    assert log == ["hook", ("cb1", 4.0, 4.0), "cb2", "cb3"]


def test_queue_callback_outside_backward_raises_and_failed_backward_drops_the_queue():
    with pytest.raises(RuntimeError, match="during backward"):
        autograd.queue_callback(lambda: None)
    x = leaf([1.0, 2.0])
    ran = []

    def hook(g):
        autograd.queue_callback(lambda: ran.append(1))
        return mg.tensor(np.zeros(5))            # wrong shape: backward raises
    x.register_hook(hook)
    with pytest.raises(RuntimeError, match="shape"):
        (x * 2).sum().backward()
    assert ran == []
    with pytest.raises(RuntimeError, match="during backward"):
        autograd.queue_callback(lambda: None)
