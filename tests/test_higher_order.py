"""Higher-order gradients: backward(create_graph=True), autograd.grad, gradgradcheck, and
the double backward of the elementwise, reduction, shape, matmul, linear and softmax ops.

Every second derivative is checked against finite differences of the first derivative
(gradgradcheck, float64) over random shapes; the engine's semantics are PyTorch's."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd
from minigrad.gradcheck import GradcheckError, gradgradcheck


def leaf(a):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


# ---- the engine ---------------------------------------------------------------------------
def test_grad_of_grad_of_a_cubic():
    x = leaf([1.0, 2.0, -3.0])
    y = (x * x * x).sum()                       # y = Σ x³
    g, = autograd.grad(y, x, create_graph=True)  # 3x²
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    assert g.requires_grad and g.grad_fn is not None
    h, = autograd.grad(g.sum(), x)               # 6x
    np.testing.assert_allclose(h.data, 6 * x.data)
    assert x.grad is None                        # grad() never touches .grad


def test_backward_create_graph_makes_grad_differentiable():
    x = leaf([0.5, -1.5])
    (x.exp() * x).sum().backward(create_graph=True)   # ∂/∂x = eˣ(1 + x)
    g = x.grad
    np.testing.assert_allclose(g.data, np.exp(x.data) * (1 + x.data))
    assert g.requires_grad
    x.grad = None
    g.sum().backward()                                 # ∂²/∂x² = eˣ(2 + x)
    np.testing.assert_allclose(x.grad.data, np.exp(x.data) * (2 + x.data))


def test_first_order_grad_is_a_plain_tensor_and_graph_is_freed():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    assert not x.grad.requires_grad and x.grad.grad_fn is None
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    g, = autograd.grad((x * x).sum(), x)
    assert not g.requires_grad


def test_create_graph_retains_the_graph_by_default():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    autograd.grad(y, x, create_graph=True)
    g, = autograd.grad(y, x)                          # the graph is still there
    np.testing.assert_allclose(g.data, 2 * x.data)


def test_grad_with_grad_outputs_several_outputs_and_non_leaf_inputs():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 2                                         # a non-leaf input
    a, b = h * h, (h.sum() * x).sum()                 # L = ⟨v, h²⟩ + Σh·Σx
    v = np.array([1.0, -1.0, 0.5])
    gh, gx = autograd.grad([a, b], [h, x], grad_outputs=[v, None])
    np.testing.assert_allclose(gh.data, 2 * h.data * v + x.data.sum())
    # through h = 2x too: ∂L/∂x = 2·(2hv + Σx) + Σh
    np.testing.assert_allclose(gx.data, 2 * (2 * h.data * v + x.data.sum()) + h.data.sum())


def test_grad_allow_unused():
    x, z = leaf([1.0]), leaf([2.0])
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.data[0] == 3


def test_grad_refuses_inputs_that_do_not_require_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        autograd.grad((x * 2).sum(), mg.tensor([1.0]))
    with pytest.raises(RuntimeError, match="shape"):
        autograd.grad(x * 2, x, grad_outputs=np.ones(3))


def test_backward_inputs_accumulates_only_there():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_allclose(w.grad.data, x.data)


def test_hessian_vector_product_matches_finite_differences():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((4, 4))
    x, v = leaf(rng.standard_normal(4)), rng.standard_normal(4)

    def loss(t):
        return ((mg.tensor(A) @ t).tanh() ** 2).sum() + (t * t * t).sum()

    g, = autograd.grad(loss(x), x, create_graph=True)
    hv, = autograd.grad((g * mg.tensor(v)).sum(), x)

    def grad_at(p):
        t = leaf(p)
        return autograd.grad(loss(t), t)[0].data

    eps = 1e-6
    numeric = (grad_at(x.data + eps * v) - grad_at(x.data - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.data, numeric, rtol=1e-5, atol=1e-7)


class _ArrayExp(mg.autograd.Function):
    """A user op written the old way: backward over ndarrays."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @autograd.once_differentiable
    def backward(ctx, δ):
        y, = ctx.saved
        return δ * y


def test_once_differentiable_backward_works_once_and_refuses_twice():
    x = leaf([0.0, 1.0])
    _ArrayExp.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data))
    g, = autograd.grad(_ArrayExp.apply(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        g.sum().backward()


def test_hooks_see_tensors_and_may_replace_them_under_create_graph():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g) or g * 2)
    (x * x).sum().backward(create_graph=True)
    assert isinstance(seen[0], mg.Tensor)
    np.testing.assert_allclose(x.grad.data, 4 * x.data)      # 2 · 2x
    assert x.grad.requires_grad


def test_fresh_gradient_is_adopted_but_shared_ones_are_copied():
    x, y = leaf(np.ones((3, 3))), leaf(np.ones((3, 3)))
    (x + y).sum().backward()             # Add hands one δ to both: they must not share memory
    assert not np.shares_memory(x.grad.data, y.grad.data)
    x.grad.data[0, 0] = 5.0
    assert y.grad.data[0, 0] == 1.0
    δ = np.ones((3, 3))
    z = leaf(np.zeros((3, 3)))
    (z * 1.0).backward(δ)
    assert not np.shares_memory(z.grad.data, δ)


class _Square(mg.autograd.Function):
    """y = x², with a backward that is right (2xδ) or, with cut=True, right in value but
    with x detached from the graph: its second derivative is then 0, not 2δ."""
    cut = False

    @staticmethod
    def forward(ctx, x):
        return x * x

    @classmethod
    def backward(cls, ctx, δ):
        x, = ctx.inputs
        return δ * (x.detach() if cls.cut else x) * 2


class _CutSquare(_Square):
    cut = True


def test_gradgradcheck_catches_a_wrong_second_derivative():
    x = leaf([0.5, -1.0])
    assert gradgradcheck(_Square.apply, (x,))
    with pytest.raises(GradcheckError, match=r"gradgradcheck\(_CutSquare\.apply\).*input 0.*element"):
        gradgradcheck(_CutSquare.apply, (x,))


# ---- every basic op, second derivatives against finite differences -----------------------
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


def arrays(shape, lo=-2.0, hi=2.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi))


KINKS = (0.0, -0.7, 0.9)        # where relu, abs, clip(-0.7, 0.9) have no second derivative


def smooth_here(x):
    """Finite differences (step 1e-6) measure a derivative only away from kinks and ties:
    no element within 1e-3 of a kink, and the squares (amax's argument) all distinct."""
    far = all(np.all(np.abs(x - k) > 1e-3) for k in KINKS)
    sq = np.sort((x * x).ravel())
    return far and (sq.size < 2 or np.min(np.diff(sq)) > 1e-3)


UNARY = {
    "exp": lambda a: a.exp(),
    "log": lambda a: (a * a + 0.5).log(),
    "sqrt": lambda a: (a * a + 0.5).sqrt(),
    "sigmoid": lambda a: a.sigmoid(),
    "tanh": lambda a: a.tanh(),
    "relu": lambda a: a.relu() * a,
    "abs": lambda a: a.abs() * a,
    "clip": lambda a: a.clip(-0.7, 0.9) * a,
    "pow": lambda a: (a * a + 0.5) ** 1.5,
    "rpow": lambda a: 2.0 ** a,
    "neg_div": lambda a: -(1.0 / (a * a + 1.0)),
    "sum": lambda a: (a * a).sum(-1),
    "mean": lambda a: (a * a).mean(0, keepdim=True),
    "amax": lambda a: (a * a).amax(-1) * a.sum(),
    "var": lambda a: a.var(-1) if a.shape[-1] > 1 else a * a,
    "softmax": lambda a: F.softmax(a, -1) * a,
    "log_softmax": lambda a: F.log_softmax(a, 0) * a,
    "reshape_T": lambda a: (a * a).reshape(-1)[::-1].reshape(a.shape) * a,
    "getitem": lambda a: (a * a)[..., [0, -1, 0]] * a[..., :1],
    "cat": lambda a: mg.cat([a * a, a.exp()], -1) * mg.cat([a, a], -1),
    "stack": lambda a: mg.stack([a * a, a], 0).sum(0) * a,
    "pad": lambda a: F.pad(a * a, (1, 2)) * F.pad(a, (1, 2)),
    "where": lambda a: mg.where(a.data > 0, a * a, a.exp()),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
@settings(max_examples=10)
def test_double_backward_of_basic_ops(name, data):
    x = data.draw(shapes.flatmap(arrays).filter(smooth_here))
    gradgradcheck(UNARY[name], (leaf(x),), atol=1e-5, rtol=1e-3)


@given(data=st.data())
@settings(max_examples=15)
def test_double_backward_of_broadcast_arithmetic(data):
    shape = data.draw(shapes)
    a = data.draw(arrays(shape))
    b = data.draw(arrays(shape[-1:], 0.5, 2.0))                     # broadcast against a
    gradgradcheck(lambda p, q: p * q + p / q - q ** 2 * p, (leaf(a), leaf(b)))


@given(m=st.integers(1, 4), k=st.integers(1, 4), n=st.integers(1, 4), batch=st.integers(0, 2),
       data=st.data())
@settings(max_examples=15)
def test_double_backward_of_matmul_and_linear(m, k, n, batch, data):
    lead = (2,) * batch
    a = data.draw(arrays(lead + (m, k)))
    b = data.draw(arrays((k, n)))
    v = data.draw(arrays((k,)))
    gradgradcheck(lambda p, q: (p @ q) * (p @ q), (leaf(a), leaf(b)))
    gradgradcheck(lambda p, u: (p @ u) ** 2, (leaf(a), leaf(v)))
    gradgradcheck(lambda p, w: F.linear(p, w, None).tanh(), (leaf(a), leaf(b.T.copy())))


def test_grad_with_respect_to_a_non_leaf_leaves_its_op_alone():
    x = leaf([1.0, 2.0])
    h = x * 2
    g, = autograd.grad((h * h).sum(), h)              # stops at h: h's own op does not run
    np.testing.assert_allclose(g.data, 2 * h.data)
    (h * 3).sum().backward()                          # so h's graph is still there
    np.testing.assert_allclose(x.grad.data, [6.0, 6.0])


def _example():
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / "higher_order.py"
    spec = importlib.util.spec_from_file_location("higher_order_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_hessian_vector_product_of_a_cnn_matches_finite_differences():
    hv, numeric = _example().check_hessian_vector_product(seed=3)
    assert np.max(np.abs(numeric)) > 1e-3                      # a real curvature, not zeros
    np.testing.assert_allclose(hv, numeric, rtol=1e-5, atol=1e-6 * np.max(np.abs(numeric)))


def test_example_gradient_penalty_step_descends_the_penalised_loss():
    ex = _example()
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    model = ex.small_cnn()
    x = mg.tensor(rng.standard_normal((8, 1, 8, 8)))
    y = rng.integers(0, 3, 8)

    def objective():
        xx = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xx), y)
        gx, = autograd.grad(loss, xx)
        return loss.item() + 10.0 * (np.sqrt(np.sum(gx.numpy() ** 2)) - 1.0) ** 2

    before = objective()
    opt = mg.optim.SGD(model.parameters(), lr=0.01)
    loss, penalty = ex.gradient_penalty_step(model, opt, x, y)
    assert abs(loss + penalty - before) < 1e-9 * max(1.0, before)   # it reports the objective
    assert objective() < before                                     # and a small step lowers it
