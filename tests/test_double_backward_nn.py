"""The gradient of a gradient through the normalisations, the losses and the activations
(issue 13): second derivatives against central finite differences of the first
(minigrad.gradgradcheck, float64) over random shapes and parameters; a gradient penalty
‖∂L/∂x‖² backpropagated into the weights of small networks with BatchNorm, against finite
differences; SyncBatchNorm on several ranks; checkpoint; and, where PyTorch is installed,
second derivatives of cross_entropy ∘ batch_norm against torch's.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.autograd import grad
from minigrad.compat import checkpoint
from minigrad.gradcheck import gradcheck, gradgradcheck

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = settings(max_examples=30, deadline=None)
FEW = settings(max_examples=10, deadline=None)


def check_both(fn, inputs):
    """First and second derivatives of fn against finite differences."""
    assert gradcheck(fn, inputs)
    assert gradgradcheck(fn, inputs)


def as_vector(fn):
    """fn with a 0-d result reshaped to (1,): gradgradcheck's grad_outputs for a 0-d output
    come back from gradcheck as (1,) (np.ascontiguousarray makes every 0-d array 1-d)."""
    def vector(*args):
        return fn(*args).reshape(-1)
    return vector


def leaf(a):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def spread_out(x, axes):
    """Whether every normalised group of x has a standard deviation ≥ 0.3 (a nearly constant
    group has derivatives ∝ 1/σ̂³ that finite differences cannot follow)."""
    return bool(np.all(x.std(axis=axes) >= 0.3))


# ---- batch norm ----------------------------------------------------------------------------
@EXAMPLES
@given(N=st.integers(2, 4), C=st.integers(1, 3), spatial=st.lists(st.integers(1, 3), max_size=2),
       training=st.booleans(), affine=st.booleans(), eps=st.sampled_from([1e-5, 0.1]),
       seed=st.integers(0, 2**31 - 1))
def test_batch_norm_second_derivatives(N, C, spatial, training, affine, eps, seed):
    rng = np.random.default_rng(seed)
    shape = (N, C, *spatial)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 2.0) + rng.uniform(-1, 1)
    axes = (0,) + tuple(range(2, len(shape)))
    assume(not training or spread_out(x, axes))
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2.0, C)
    inputs = [leaf(x)]
    if affine:
        inputs += [leaf(rng.uniform(0.5, 1.5, C)), leaf(rng.standard_normal(C))]

    def bn(x, w=None, b=None):
        return F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training, eps=eps)
    check_both(bn, inputs)


def test_batch_norm_third_derivative():
    """BatchNormBackward's own backward recomputes x̂ and σ̂ with ops, so the double backward
    is differentiated once more: gradgradcheck of x ↦ ∂⟨v, bn(x)⟩/∂x."""
    rng = np.random.default_rng(0)
    x, w = leaf(rng.standard_normal((4, 2, 3))), leaf(rng.uniform(0.5, 1.5, 2))
    v = mg.tensor(rng.standard_normal((4, 2, 3)))

    def first(x, w):
        y = F.batch_norm(x, None, None, w, None, training=True)
        gx, gw = grad((y * v).sum(), [x, w], create_graph=True)
        return gx * gx + gw.sum()
    assert gradgradcheck(first, (x, w))


def test_batch_norm_double_backward_formula_by_hand():
    """∂/∂x of ⟨ε, ∂L/∂x⟩ for training batch norm is the docstring's closed form (written
    here over NumPy), not just something finite differences agree with."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2))
    γ, δ, ε = rng.uniform(0.5, 1.5, 2), rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    xt, wt = leaf(x), leaf(γ)
    y = F.batch_norm(xt, None, None, wt, None, training=True, eps=1e-5)
    gx, = grad(y, xt, mg.tensor(δ), create_graph=True)
    hx, = grad(gx, xt, mg.tensor(ε))
    σ̂ = np.sqrt(x.var(axis=0) + 1e-5)
    x̂ = (x - x.mean(axis=0)) / σ̂
    g = δ * γ
    m = lambda a: a.mean(axis=0)                                      # noqa: E731
    expect = (3 * x̂ * m(g * x̂) * m(ε * x̂) - x̂ * (m(ε * g) - m(ε) * m(g))
              - (g - m(g)) * m(ε * x̂) - (ε - m(ε)) * m(g * x̂)) / σ̂ ** 2
    np.testing.assert_allclose(hx.numpy(), expect, rtol=1e-10, atol=1e-12)


def test_batch_norm_first_order_is_unchanged_and_frees_the_graph():
    """Without create_graph, backward gives the fused formula's numbers and frees the graph."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 3, 2, 2)).astype(np.float32)
    γ, δ = rng.uniform(0.5, 1.5, 3).astype(np.float32), rng.standard_normal(x.shape).astype(np.float32)
    xt, wt = mg.tensor(x, requires_grad=True), mg.tensor(γ, requires_grad=True)
    y = F.batch_norm(xt, None, None, wt, None, training=True)
    y.backward(δ)
    axes = (0, 2, 3)
    σ̂ = np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    x̂ = (x - x.mean(axis=axes, keepdims=True)) / σ̂
    g = δ * γ.reshape(1, -1, 1, 1)
    expect = (g - g.mean(axis=axes, keepdims=True) - x̂ * (g * x̂).mean(axis=axes, keepdims=True)) / σ̂
    np.testing.assert_allclose(xt.grad.numpy(), expect, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(wt.grad.numpy(), (δ * x̂).sum(axis=axes), rtol=1e-4, atol=1e-4)
    assert xt.grad.grad_fn is None and not xt.grad.requires_grad
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(δ)


# ---- group norm and local response norm -----------------------------------------------------
@EXAMPLES
@given(N=st.integers(1, 3), G=st.integers(1, 3), per_group=st.integers(1, 2),
       spatial=st.lists(st.integers(1, 3), min_size=1, max_size=2), affine=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_group_norm_second_derivatives(N, G, per_group, spatial, affine, seed):
    rng = np.random.default_rng(seed)
    C = G * per_group
    x = rng.standard_normal((N, C, *spatial)) * rng.uniform(0.5, 2.0)
    assume(per_group * int(np.prod(spatial)) >= 2 and spread_out(x.reshape(N, G, -1), 2))
    inputs = [leaf(x)]
    if affine:
        inputs += [leaf(rng.uniform(0.5, 1.5, C)), leaf(rng.standard_normal(C))]

    def gn(x, w=None, b=None):
        return F.group_norm(x, G, w, b, eps=1e-5)
    check_both(gn, inputs)


@EXAMPLES
@given(N=st.integers(1, 2), C=st.integers(1, 6), spatial=st.lists(st.integers(1, 3), min_size=1, max_size=2),
       size=st.integers(1, 6), alpha=st.floats(0.0, 2.0), beta=st.floats(0.0, 1.5),
       k=st.floats(0.5, 3.0), seed=st.integers(0, 2**31 - 1))
def test_local_response_norm_second_derivatives(N, C, spatial, size, alpha, beta, k, seed):
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal((N, C, *spatial)))
    check_both(lambda a: F.local_response_norm(a, size, alpha, beta, k), [x])


# ---- losses -----------------------------------------------------------------------------------
@EXAMPLES
@given(N=st.integers(1, 4), C=st.integers(1, 4), reduction=st.sampled_from(["mean", "sum", "none"]),
       weighted=st.booleans(), smoothing=st.sampled_from([0.0, 0.2, 1.0]), seed=st.integers(0, 2**31 - 1))
def test_cross_entropy_second_derivatives(N, C, reduction, weighted, smoothing, seed):
    rng = np.random.default_rng(seed)
    z = leaf(rng.standard_normal((N, C)) * 2)
    y = rng.integers(0, C, N)
    w = rng.uniform(0.5, 2.0, C) if weighted else None
    check_both(as_vector(lambda z: F.cross_entropy(z, y, weight=w, reduction=reduction,
                                                   label_smoothing=smoothing)), [z])


@EXAMPLES
@given(N=st.integers(1, 3), C=st.integers(1, 4), extra=st.lists(st.integers(1, 3), max_size=2),
       reduction=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(),
       ignore=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_nll_loss_second_derivatives(N, C, extra, reduction, weighted, ignore, seed):
    """nll_loss of log_softmax (curvature from log_softmax) and of raw inputs (linear: the
    second derivative is 0, and the gradient's derivative with respect to δ is the pattern)."""
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal((N, C, *extra)))
    y = rng.integers(0, C, (N, *extra))
    if ignore:
        y.reshape(-1)[0] = -100
        assume(reduction != "mean" or np.any(y != -100))
    w = rng.uniform(0.5, 2.0, C) if weighted else None
    check_both(as_vector(lambda x: F.nll_loss(F.log_softmax(x, 1), y, weight=w, reduction=reduction)), [x])
    check_both(as_vector(lambda x: F.nll_loss(x, y, weight=w, reduction=reduction)), [x])


@FEW
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3),
       reduction=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 2**31 - 1))
def test_mse_loss_second_derivatives(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x, t = leaf(rng.standard_normal(shape)), leaf(rng.standard_normal(shape))
    check_both(as_vector(lambda x, t: F.mse_loss(x, t, reduction=reduction)), [x, t])


# ---- activations --------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu6": (F.relu6, (0.0, 6.0)),
    "hardtanh": (lambda x: F.hardtanh(x, -0.5, 2.0), (-0.5, 2.0)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), (0.0,)),
    "silu": (F.silu, ()),
    "gelu": (F.gelu, ()),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), ()),
    "hardsigmoid": (F.hardsigmoid, (-3.0, 3.0)),
    "hardswish": (F.hardswish, (-3.0, 3.0)),
    "relu": (F.relu, (0.0,)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@FEW
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), scale=st.floats(0.5, 5.0),
       seed=st.integers(0, 2**31 - 1))
def test_activation_second_derivatives(name, shape, scale, seed):
    """Inputs are drawn away from the kinks (within 0.05 of one, finite differences cross it)."""
    fn, kinks = ACTIVATIONS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    for kink in kinks:
        near = np.abs(x - kink) < 0.05
        x[near] = kink + 0.1
    check_both(fn, [leaf(x)])


@pytest.mark.parametrize("name", ["silu", "gelu", "gelu_tanh"])
def test_smooth_activation_second_derivative_by_hand(name):
    """The curvature formulas of SiLUBackward and GELUBackward in closed form."""
    from math import pi, sqrt
    x = np.linspace(-3, 3, 13)
    xt = leaf(x)
    gx, = grad(ACTIVATIONS[name][0](xt).sum(), xt, create_graph=True)
    hx, = grad(gx.sum(), xt)
    σ = 1 / (1 + np.exp(-x))
    φ = np.exp(-x * x / 2) / sqrt(2 * pi)
    if name == "silu":
        expect = σ * (1 - σ) * (2 + x * (1 - 2 * σ))
    elif name == "gelu":
        expect = φ * (2 - x * x)
    else:                       # d²/dx² of ½ x (1 + tanh u), by central differences of the closed-form slope
        def slope(v):
            t = np.tanh(sqrt(2 / pi) * (v + 0.044715 * v ** 3))
            return 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * sqrt(2 / pi) * (1 + 3 * 0.044715 * v * v)
        expect = (slope(x + 1e-6) - slope(x - 1e-6)) / 2e-6
    np.testing.assert_allclose(hx.numpy(), expect, rtol=1e-6, atol=1e-8)


# ---- gradient penalties in small networks --------------------------------------------------------
def mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.GELU(), nn.Linear(5, 4),
                         nn.BatchNorm1d(4), nn.SiLU(), nn.Linear(4, 3)).to(np.float64)


class NormNet(nn.Module):
    """A small CNN-shaped network without convolutions (whose double backward is another
    change): BatchNorm2d → LeakyReLU → GroupNorm → LocalResponseNorm → Hardswish → linear."""

    def __init__(self):
        super().__init__()
        mg.manual_seed(1)
        self.bn = nn.BatchNorm2d(4)
        self.gn = nn.GroupNorm(2, 4)
        self.lrn = nn.LocalResponseNorm(3, alpha=0.5, beta=0.75, k=1.0)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        h = F.leaky_relu(self.bn(x), 0.1)
        h = F.hardswish(self.lrn(self.gn(h)) * 2)
        return self.fc(F.flatten(h, 1))


class ConvNet(nn.Module):
    """conv → BatchNorm2d → SiLU → conv → BatchNorm2d → GELU → average pool → linear."""

    def __init__(self):
        super().__init__()
        mg.manual_seed(2)
        self.c1, self.b1 = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.c2, self.b2 = nn.Conv2d(3, 4, 3, stride=2), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = F.gelu(self.b2(self.c2(F.silu(self.b1(self.c1(x))))))
        return self.fc(h.mean((2, 3)))


def conv_is_twice_differentiable():
    from minigrad.ops.conv import Conv2dFunction
    return not getattr(Conv2dFunction.backward, "once_differentiable", False)


def penalty(model, x, y):
    """P = ‖∂L/∂x‖², L the cross-entropy of model(x): the gradient penalty (WGAN-GP style)."""
    xt = mg.tensor(x, requires_grad=True)
    loss = F.cross_entropy(model(xt), y)
    gx, = grad(loss, xt, create_graph=True)
    return (gx * gx).sum()


@pytest.mark.parametrize("make, shape", [(mlp, (8, 3)), (NormNet, (5, 4, 2, 2)), (ConvNet, (4, 2, 5, 5))])
def test_gradient_penalty_reaches_the_weights(make, shape):
    """∂P/∂θ by the double backward equals central differences of P in every weight.
    (ConvNet runs once conv2d's backward is twice differentiable, another part of issue 13.)"""
    if make is ConvNet and not conv_is_twice_differentiable():
        pytest.skip("conv2d's backward is still once_differentiable")
    model = make().to(np.float64)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 1.5
    y = rng.integers(0, 3, shape[0])
    P = penalty(model, x, y)
    P.backward()
    params = list(model.parameters())
    assert all(p.grad is not None for p in params)
    eps = 1e-6
    for p in params:
        numeric = np.zeros(p.shape)
        for i in np.ndindex(p.shape):
            old = p.data[i]
            p.data[i] = old + eps
            plus = penalty(model, x, y).item()
            p.data[i] = old - eps
            minus = penalty(model, x, y).item()
            p.data[i] = old
            numeric[i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(p.grad.numpy(), numeric, rtol=1e-4, atol=1e-7)


def test_gradient_penalty_training_step_lowers_the_penalty():
    """A few SGD steps on L + λ‖∂L/∂x‖² (backward(create_graph=True) style): the penalty falls."""
    model = mlp()
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((16, 3)), rng.integers(0, 3, 16)
    opt = mg.optim.SGD(model.parameters(), lr=0.05)
    first = None
    for _ in range(20):
        P = penalty(model, x, y)
        opt.zero_grad()
        (10 * P).backward()
        opt.step()
        first = P.item() if first is None else first
    assert penalty(model, x, y).item() < 0.5 * first


# ---- checkpoint --------------------------------------------------------------------------------
def test_checkpoint_second_derivatives():
    rng = np.random.default_rng(5)
    x, w = leaf(rng.standard_normal((3, 4))), leaf(rng.standard_normal((4, 2)))
    check_both(lambda x, w: checkpoint(lambda a, b: F.silu(a @ b) * a.sum(), x, w), [x, w])


def test_checkpoint_gradient_penalty_matches_the_plain_model():
    """Parameters inside a checkpointed block get the same second-order gradients as
    without checkpoint (after the reentrant inner backward's first-order .grad is cleared:
    as in PyTorch's reentrant checkpoint, the recomputation's backward accumulates it)."""
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((6, 3)), rng.integers(0, 3, 6)
    results = []
    for use_checkpoint in (False, True):
        model = mlp()
        xt = mg.tensor(x, requires_grad=True)
        out = checkpoint(model, xt) if use_checkpoint else model(xt)
        gx, = grad(F.cross_entropy(out, y), xt, create_graph=True)
        model.zero_grad()
        (gx * gx).sum().backward()
        results.append([xt.grad.numpy()] + [p.grad.numpy() for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


# ---- SyncBatchNorm on several ranks -------------------------------------------------------------
@pytest.mark.skipif(shutil.which("mpiexec") is None or not mg.distributed.is_available(),
                    reason="needs mpi4py and mpiexec")
@pytest.mark.parametrize("ranks", [2, 3])
def test_sync_batchnorm_double_backward_matches_the_global_batch(ranks):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(HERE)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    env.setdefault("MINIGRAD_NUM_THREADS", "1")
    p = subprocess.run(["mpiexec", "-n", str(ranks), sys.executable,
                        os.path.join(HERE, "mpi_worker_double_backward.py")],
                       env=env, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok sync_batchnorm_double_backward" in p.stdout, p.stdout + p.stderr


# ---- against PyTorch -----------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("options", [{}, {"label_smoothing": 0.1, "weight": [0.5, 1.0, 2.0]},
                                     {"reduction": "sum"}])
def test_second_derivatives_of_cross_entropy_of_batch_norm_match_torch(training, options):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    rng = np.random.default_rng(7)
    x, γ, β = rng.standard_normal((6, 3, 2)), rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2.0, 3)
    y = rng.integers(0, 3, 12)
    v = rng.standard_normal(x.shape)

    def ours():
        xt, wt, bt = leaf(x), leaf(γ), leaf(β)
        h = F.batch_norm(xt, rm.copy(), rv.copy(), wt, bt, training=training)
        z = h.permute(0, 2, 1).reshape(-1, 3)
        loss = F.cross_entropy(z, y, **{k: (np.array(a) if k == "weight" else a) for k, a in options.items()})
        gx, gw = grad(loss, [xt, wt], create_graph=True)
        ((gx * mg.tensor(v)).sum() + (gw * gw).sum()).backward()
        return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()

    def theirs():
        xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, γ, β))
        h = TF.batch_norm(xt, torch.tensor(rm), torch.tensor(rv), wt, bt, training=training)
        z = h.permute(0, 2, 1).reshape(-1, 3)
        kw = {k: (torch.tensor(np.array(a, np.float64)) if k == "weight" else a) for k, a in options.items()}
        loss = TF.cross_entropy(z, torch.tensor(y), **kw)
        gx, gw = torch.autograd.grad(loss, [xt, wt], create_graph=True)
        ((gx * torch.tensor(v)).sum() + (gw * gw).sum()).backward()
        return [t.grad.numpy() if t.grad is not None else np.zeros(t.shape) for t in (xt, wt, bt)]

    for name, a, b in zip(("x", "weight", "bias"), ours(), theirs()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)


TORCH_OPS = {
    # name: op(F, x, labels), F being minigrad's or torch's functional module; x (4, 6, 3, 2)
    "group_norm": lambda F, x, y: F.group_norm(x, 3),
    "local_response_norm": lambda F, x, y: F.local_response_norm(x, 3, 0.5, 0.75, 1.5),
    "silu": lambda F, x, y: F.silu(x),
    "gelu": lambda F, x, y: F.gelu(x),
    "gelu_tanh": lambda F, x, y: F.gelu(x, approximate="tanh"),
    "hardswish": lambda F, x, y: F.hardswish(x),
    "log_softmax_nll": lambda F, x, y: F.nll_loss(F.log_softmax(x, 1), y),
    "cross_entropy_smoothed": lambda F, x, y: F.cross_entropy(x.reshape(4, -1)[:, :5], y[:, 0, 0],
                                                              label_smoothing=0.2),
}


@pytest.mark.parametrize("name", sorted(TORCH_OPS))
def test_hessian_vector_products_match_torch(name):
    """H·v with H the Hessian of Σ c · op(x): ∂⟨∂(Σ c·op(x))/∂x, v⟩/∂x, minigrad against torch."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF
    op = TORCH_OPS[name]
    rng = np.random.default_rng(9)
    x, v = rng.standard_normal((4, 6, 3, 2)) * 1.5, rng.standard_normal((4, 6, 3, 2))
    labels = rng.integers(0, 5, (4, 3, 2))
    c = rng.standard_normal(op(F, mg.tensor(x), labels).shape)

    xt = leaf(x)
    g, = grad((op(F, xt, labels) * mg.tensor(c)).sum(), xt, create_graph=True)
    ours, = grad((g * mg.tensor(v)).sum(), xt)

    xT = torch.tensor(x, requires_grad=True)
    gT, = torch.autograd.grad((op(TF, xT, torch.tensor(labels)) * torch.tensor(c)).sum(), xT,
                              create_graph=True)
    theirs, = torch.autograd.grad((gT * torch.tensor(v)).sum(), xT)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-9, atol=1e-11)
