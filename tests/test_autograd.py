"""The engine: graph recording, traversal, accumulation, freeing, grad modes, errors."""
import os

import numpy as np
import pytest

import minigrad as mg


def test_leaf_grad_accumulates_across_backward_calls():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 5.0, 5.0])


def test_tensor_used_twice_gets_both_contributions():
    x = mg.tensor([3.0], requires_grad=True)
    (x * x).sum().backward()                           # d(x²)/dx = 2x
    np.testing.assert_array_equal(x.grad.numpy(), [6.0])


def test_diamond_graph_sums_both_paths():
    # y = a·b where a = 2x and b = x + 1: dy/dx = 2(x+1) + 2x
    x = mg.tensor([1.5], requires_grad=True)
    a, b = x * 2, x + 1
    (a * b).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2 * 2.5 + 3.0])


def test_matmul_with_own_transpose_reaches_x_by_two_paths():
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x @ x.T).sum().backward()          # ∂/∂x_ab Σ_ij Σ_k x_ik x_jk = 2 Σ_j x_jb
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.tile(x.numpy().sum(0), (2, 1)))


def test_chain_of_100k_ops_backward_is_iterative():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1e-5
    y.backward()
    assert x.grad.item() == 1.0


def test_graph_is_freed_and_second_backward_raises():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 4 * x.numpy())


def test_backward_of_non_scalar_needs_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()


def test_backward_grad_of_wrong_shape_is_an_error():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_with_explicit_grad():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).backward(mg.tensor([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 30.0])


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()


def test_no_grad_records_nothing():
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_no_grad_as_decorator_and_restores_mode():
    @mg.no_grad()
    def f(t):
        return t * 2

    x = mg.tensor([1.0], requires_grad=True)
    assert not f(x).requires_grad
    assert mg.is_grad_enabled()
    assert (x * 2).requires_grad


def test_detach_cuts_the_graph_and_shares_data():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_grad_is_never_a_view_of_another_gradient():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    z = mg.tensor([1.0, 2.0], requires_grad=True)
    (x + z).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), z.grad.numpy())


@pytest.mark.parametrize("build", [
    lambda x, y, δ: (x + y).backward(δ),                       # δ handed to both leaves
    lambda x, y, δ: (x.reshape(2, 3) + y.reshape(2, 3)).backward(δ.reshape(2, 3)),
    lambda x, y, δ: x.backward(δ),                              # the root is the leaf
    lambda x, y, δ: (x * 1.0 + y).backward(δ, retain_graph=True),
])
def test_a_leaf_keeps_a_gradient_only_nobody_else_holds(build):
    """Leaves keep fresh gradients without a copy, but never the user's δ, an array of the
    graph, or one handed to another leaf too: changing any of those in place must not
    change a .grad, and no two .grads share memory."""
    x = mg.tensor(np.ones(6), requires_grad=True)
    y = mg.tensor(np.ones(6), requires_grad=True)
    δ = np.arange(6.0)
    build(x, y, δ)
    grads = [t.grad.numpy() for t in (x, y) if t.grad is not None]
    assert grads
    for g in grads:
        assert not np.shares_memory(g, δ)
        np.testing.assert_array_equal(g, np.arange(6.0))
    if len(grads) == 2:
        assert not np.shares_memory(*grads)
    δ[...] = -1
    for g in grads:
        np.testing.assert_array_equal(g, np.arange(6.0))


def test_summed_contributions_never_write_into_an_array_someone_holds():
    """A tensor used k times gets k gradients; from the third on they are added in place,
    into the sum the backward pass made itself — never into a contribution (here an array a
    backward keeps and returns as it is, and a δ an Add hands to both its inputs), nor into
    a gradient a hook has already seen."""
    kept = np.array([1.0, 2.0, 3.0])

    class ReturnsKept(mg.autograd.Function):            # y = x · 0 + sum(kept); ∂L/∂x := kept
        @staticmethod
        def forward(ctx, x):
            return x * 0 + kept.sum()

        @staticmethod
        def backward(ctx, δ):
            return mg.from_numpy(kept)                   # shares kept's memory

    x = mg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    t = x * 1.0                                          # one intermediate, used 4 times
    seen = []
    t.register_hook(lambda g: seen.append((g, g.numpy().copy())))
    s = t + t                                            # Add: the same δ for both inputs
    u = ReturnsKept.apply(t) + ReturnsKept.apply(t)      # two contributions that are `kept`
    w = s + u                                            # s gets δ, and so does u
    z = w * w + (w + w) + w                              # w: four contributions
    z.sum().backward()
    np.testing.assert_array_equal(kept, [1.0, 2.0, 3.0])
    wv = 2 * x.numpy() + 2 * kept.sum()
    dw = 2 * wv + 2 + 1                                  # ∂z/∂w
    expected_t = 2 * dw + 2 * kept                       # through s (twice) and u's kept
    (g, at_hook), = seen
    np.testing.assert_allclose(at_hook, expected_t)
    np.testing.assert_array_equal(g.numpy(), at_hook)    # not written after the hook saw it
    np.testing.assert_allclose(x.grad.numpy(), expected_t)
    assert not np.shares_memory(x.grad.numpy(), kept)


def test_large_gradient_sums_run_on_the_threads_with_numpys_numbers(monkeypatch):
    """Contributions of ≥ 32768 elements are summed by ext/elementwise.pyx's threaded add
    (NumPy's add runs on one core, and a residual block's input gets two activations'
    worth): the first sum into a new array, the next ones in place, each element rounded
    as NumPy rounds it."""
    from minigrad.ops import elementwise
    sizes = []
    real = elementwise._k.add
    rng = np.random.default_rng(3)
    a, b, c = (rng.standard_normal((3, 200, 64)).astype(np.float32) for _ in range(3))
    x = mg.tensor(rng.standard_normal((3, 200, 64)).astype(np.float32), requires_grad=True)
    t = x * 1.0
    loss = (t * mg.tensor(a) + t * mg.tensor(b)).sum()             # t: two contributions
    monkeypatch.setattr(elementwise._k, "add", lambda *a: (sizes.append(a[0].size), real(*a))[1])
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), a + b)
    assert sizes == [a.size]
    monkeypatch.undo()
    x.grad = None
    t = x * 1.0
    loss = (t * mg.tensor(a) + t * mg.tensor(b) + t * mg.tensor(c)).sum()
    monkeypatch.setattr(elementwise._k, "add", lambda *a: (sizes.append(a[0].size), real(*a))[1])
    loss.backward()
    assert sizes == [a.size] * 3                                   # a new sum, then in place
    got = x.grad.numpy()
    assert any(np.array_equal(got, (p + q) + r) for p, q, r in
               ((a, b, c), (a, c, b), (b, c, a)))                  # in the order they arrive


def test_a_fresh_input_gradient_is_kept_not_copied(monkeypatch):
    """The gradient a kernel returns for a leaf input is stored as it is (the copy of a
    large input gradient cost as much as the pooling backward that made it)."""
    made = []
    real = np.array

    def counting_array(*a, **k):
        made.append(a[0].shape if a and hasattr(a[0], "shape") else None)
        return real(*a, **k)
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)), requires_grad=True)
    y = mg.nn.functional.avg_pool2d(x, 2)
    δ = np.ones(y.shape)
    from minigrad import autograd
    monkeypatch.setattr(autograd.np, "array", counting_array)
    y.backward(δ)
    monkeypatch.undo()
    assert (2, 3, 8, 8) not in made
    np.testing.assert_allclose(x.grad.numpy(), 0.25)


def test_only_leaves_get_grad_and_intermediates_do_not():
    x = mg.tensor([1.0], requires_grad=True)
    y = x * 2
    (y * 3).sum().backward()
    assert y.grad is None and x.grad is not None
    assert not y.is_leaf and x.is_leaf


def test_detect_anomaly_names_the_op():
    x = mg.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt().sum()                                  # d√x/dx = inf at 0
    with mg.detect_anomaly():
        with pytest.raises(RuntimeError, match="Sqrt"):
            y.backward()


def test_requires_grad_only_for_floats():
    with pytest.raises(TypeError, match="floating"):
        mg.tensor([1, 2], requires_grad=True)
    t = mg.tensor([1.0])
    assert t.requires_grad_() is t and t.requires_grad


def test_grad_mode_is_per_thread():
    import threading
    seen = []
    with mg.no_grad():
        th = threading.Thread(target=lambda: seen.append(mg.is_grad_enabled()))
        th.start()
        th.join()
    assert seen == [True]


def test_gradcheck_reports_input_element_and_values():
    class Wrong(mg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * x

        @staticmethod
        def backward(ctx, δ):
            return δ                                    # should be 2x·δ

    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    with pytest.raises(mg.GradcheckError) as e:
        mg.gradcheck(lambda t: Wrong.apply(t), [x])
    msg = str(e.value)
    assert "input 0" in msg and "element (0,)" in msg
    assert "atol" in msg and "rtol" in msg and "eps" in msg
    import re
    num, ana = (float(v) for v in re.search(r"numerical (\S+), analytical (\S+) ", msg).groups())
    assert num == pytest.approx(2 * ana, rel=1e-5)             # x = 1: true 2x·r vs the wrong r


def test_gradcheck_passes_a_correct_op_and_checks_all_inputs():
    a = mg.tensor(np.array([[1.0, -2.0]]), requires_grad=True)
    b = mg.tensor(np.array([[0.5], [3.0]]), requires_grad=True)
    assert mg.gradcheck(lambda p, q: (p @ q).tanh(), [a, b])


def test_bounds_checked_build_when_ci_asks_for_it():
    """CI's sanitizer pass builds with MINIGRAD_BOUNDSCHECK=1 too: prove the kernels check."""
    from minigrad._ext import elementwise as k
    x = np.arange(3.0)
    assert k._probe(x, 2) == 2.0 and k._probe_unchecked(x, 2) == 2.0
    if os.environ.get("MINIGRAD_EXPECT_BOUNDSCHECK") == "1":
        assert k.boundscheck_enabled()
        for i in (3, -1):                  # past the end, and before the start (never wrapped)
            with pytest.raises(IndexError):
                k._probe(x, i)
    else:
        assert not k.boundscheck_enabled()
