"""Double backward of the convolutions, the poolings and interpolate (issue 13).

Second derivatives are checked against finite differences of the first ones
(gradgradcheck, float64) over random shapes, strides, paddings, dilations, groups and
output_padding; the weight-gradient op's own backward against the NumPy references of
tests/reference.py; the first-order pass keeps its kernels (kernels.trace) and still frees
its graph; a Hessian-vector product of a small CNN (conv, relu, max pool, linear) against
finite differences of its gradient and, where installed, PyTorch.
"""
import gc
import os
import sys
import weakref

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import autograd, kernels
from minigrad.gradcheck import gradgradcheck
from minigrad.ops import conv_dispatch
from minigrad.ops.conv import Conv2dWeightGradFunction
from minigrad.ops.pool import MaxPool2dBackward

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as ref  # noqa: E402

# Each gradgradcheck below costs ~0.1 s; these counts keep the file at ~20 s in CI.
# MINIGRAD_SLOW=1 runs test_conv2d_double_backward_many with more examples.
CONV_EXAMPLES = 25
POOL_EXAMPLES = 20


def tensor(a):
    return mg.tensor(a, requires_grad=True)


# ---- conv2d and conv_transpose2d ------------------------------------------------------------

@st.composite
def conv_cases(draw, transpose=False):
    G = draw(st.sampled_from([1, 1, 2, 3]))
    Cg, Kg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    D = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    if transpose:
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(S, D))
    else:
        padding = draw(st.one_of(st.tuples(st.integers(0, 2), st.integers(0, 2)),
                                 st.sampled_from(["same", "valid"])))
        output_padding = None
    pads = (0, 0) if isinstance(padding, str) else padding
    if transpose:
        H, W = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    else:
        H = max(1, D[0] * (k[0] - 1) + 1 - 2 * pads[0]) + draw(st.integers(0, 4))
        W = max(1, D[1] * (k[1] - 1) + 1 - 2 * pads[1]) + draw(st.integers(0, 4))
    return dict(N=draw(st.integers(1, 2)), G=G, Cg=Cg, Kg=Kg, k=k, S=S, D=D, padding=padding,
                output_padding=output_padding, H=H, W=W, bias=draw(st.booleans()),
                unbatched=draw(st.integers(0, 4)) == 0,
                path=draw(st.sampled_from([None, None, "direct"])),
                seed=draw(st.integers(0, 2**31)))


def _conv2d_check(case, channels_last=False):
    rng = np.random.default_rng(case["seed"])
    G, K = case["G"], case["G"] * case["Kg"]
    x_shape = (case["N"], G * case["Cg"], case["H"], case["W"])
    w_shape = (K, case["Cg"]) + case["k"]
    if case["unbatched"]:
        x_shape = x_shape[1:]
    kw = dict(stride=case["S"], padding=case["padding"], dilation=case["D"], groups=G)
    if channels_last:                       # x (N, H, W, C), w (F_h, F_w, C/G, K)
        x_shape = x_shape[:-3] + x_shape[-2:] + x_shape[-3:-2]
        w_shape = w_shape[2:] + (w_shape[1], w_shape[0])
        kw["data_format"] = "channels_last"
    inputs = [tensor(rng.standard_normal(x_shape)), tensor(rng.standard_normal(w_shape))]
    if case["bias"]:
        inputs.append(tensor(rng.standard_normal(K)))
    with kernels.use(case["path"]):
        assert gradgradcheck(lambda x, w, *b: F.conv2d(x, w, *b, **kw), inputs)


@settings(max_examples=CONV_EXAMPLES)
@given(case=conv_cases())
def test_conv2d_double_backward(case):
    """∂²/∂x∂w, ∂²/∂w∂δ, ∂²/∂x∂δ of conv2d (its ∂L/∂x is conv_transpose2d, its ∂L/∂w the
    weight-gradient op) against finite differences, on every geometry, default and
    direct kernels."""
    _conv2d_check(case)


@pytest.mark.slow
@settings(max_examples=300)
@given(case=conv_cases())
def test_conv2d_double_backward_many(case):
    _conv2d_check(case)


@settings(max_examples=10)
@given(case=conv_cases())
def test_conv2d_channels_last_double_backward(case):
    """data_format='channels_last': the permutes around the op are differentiated too."""
    _conv2d_check(case, channels_last=True)


@settings(max_examples=CONV_EXAMPLES)
@given(case=conv_cases(transpose=True))
def test_conv_transpose2d_double_backward(case):
    """conv_transpose2d: its ∂L/∂x is conv2d, its ∂L/∂w the weight-gradient op with the
    roles of x and δ swapped; output_padding up to max(S, D) − 1."""
    rng = np.random.default_rng(case["seed"])
    G, Cin = case["G"], case["G"] * case["Kg"]
    x_shape = (case["N"], Cin, case["H"], case["W"])[case["unbatched"]:]
    kw = dict(stride=case["S"], padding=case["padding"], output_padding=case["output_padding"],
              groups=G, dilation=case["D"])
    out = [ref.conv_transpose2d_out_size(n, k, s, p, op, d) for n, k, s, p, op, d in zip(
        (case["H"], case["W"]), case["k"], case["S"], case["padding"], case["output_padding"],
        case["D"])]
    assume(min(out) >= 1)
    inputs = [tensor(rng.standard_normal(x_shape)),
              tensor(rng.standard_normal((Cin, case["Cg"]) + case["k"]))]
    if case["bias"]:
        inputs.append(tensor(rng.standard_normal(G * case["Cg"])))
    with kernels.use(case["path"]):
        assert gradgradcheck(lambda x, w, *b: F.conv_transpose2d(x, w, *b, **kw), inputs)


@settings(max_examples=CONV_EXAMPLES)
@given(case=conv_cases())
def test_weight_grad_op_backward_is_two_convolutions(case):
    """dw = x ⊛ δ; for Γ of w's shape, ∂⟨Γ, dw⟩/∂δ = conv2d(x, Γ) and ∂⟨Γ, dw⟩/∂x =
    conv_transpose2d(δ, Γ): checked against the references written from the formulas
    (tests/reference.py), then the op's own second derivatives by gradgradcheck."""
    rng = np.random.default_rng(case["seed"])
    G, K = case["G"], case["G"] * case["Kg"]
    x = rng.standard_normal((case["N"], G * case["Cg"], case["H"], case["W"]))
    w_shape = (K, case["Cg"]) + case["k"]
    P4 = ref.conv_padding4(case["padding"], case["H"], case["W"], *case["k"], case["S"], case["D"])
    OH = ref.conv_out_size(case["H"], case["k"][0], case["S"][0], P4[0], P4[1], case["D"][0])
    OW = ref.conv_out_size(case["W"], case["k"][1], case["S"][1], P4[2], P4[3], case["D"][1])
    δ = rng.standard_normal((case["N"], K, OH, OW))
    Γ = rng.standard_normal(w_shape)
    geom = conv_dispatch.Geom(case["S"], (P4[0], P4[2]), case["D"], G)
    xt, δt = tensor(x), tensor(δ)
    with kernels.use(case["path"]):
        dw = Conv2dWeightGradFunction.apply(xt, δt, w_shape, geom)
        _, want_dw, _ = ref.conv2d_vjp(x, Γ, δ, case["S"], P4, case["D"], G)
        np.testing.assert_allclose(dw.data, want_dw, rtol=1e-10, atol=1e-10)
        gx, gδ = autograd.grad(dw, [xt, δt], mg.tensor(Γ))
        np.testing.assert_allclose(gδ.data, ref.conv2d(x, Γ, None, case["S"], P4, case["D"], G),
                                   rtol=1e-10, atol=1e-10)
        want_gx, _, _ = ref.conv2d_vjp(x, Γ, δ, case["S"], P4, case["D"], G)
        np.testing.assert_allclose(gx.data, want_gx, rtol=1e-10, atol=1e-10)
        assert gradgradcheck(lambda a, d: Conv2dWeightGradFunction.apply(a, d, w_shape, geom),
                             [xt, δt])


# ---- pooling and interpolate ------------------------------------------------------------------

def no_ties(rng, shape):
    """Distinct values 0.1 apart (a max pool's derivative is undefined at a tie)."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0


@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    S = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = draw(st.one_of(st.tuples(st.integers(0, k[0] // 2), st.integers(0, k[1] // 2)),
                             st.just("same")))
    D = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H, W = draw(st.integers(D[0] * (k[0] - 1) + 1, 8)), draw(st.integers(D[1] * (k[1] - 1) + 1, 8))
    lead = draw(st.sampled_from([(1, 2), (2, 1), (3,)]))        # (N, C) or unbatched (C,)
    return dict(shape=lead + (H, W), k=k, S=S, padding=padding, D=D,
                ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()),
                path=draw(st.sampled_from([None, "direct"])), seed=draw(st.integers(0, 2**31)))


@settings(max_examples=POOL_EXAMPLES)
@given(case=pool_cases())
def test_max_pool2d_double_backward(case):
    """Max pooling's backward scatters δ through the recorded mask, and that scatter's
    backward gathers at the same mask. Squared, so that ∂²/∂x² is not zero: the gather
    runs for ∂/∂x and ∂/∂δ."""
    x = tensor(no_ties(np.random.default_rng(case["seed"]), case["shape"]))
    kw = dict(kernel_size=case["k"], stride=case["S"], padding=case["padding"],
              dilation=case["D"], ceil_mode=case["ceil_mode"])
    with kernels.use(case["path"]):
        assert gradgradcheck(lambda a: F.max_pool2d(a, **kw) ** 2, [x])


@settings(max_examples=POOL_EXAMPLES)
@given(case=pool_cases())
def test_avg_pool2d_double_backward(case):
    """Average pooling's backward spreads δ / divisor over the windows; its backward is
    average pooling again (also on the 2×2 and whole-plane kernels)."""
    x = tensor(np.random.default_rng(case["seed"]).standard_normal(case["shape"]))
    kw = dict(kernel_size=case["k"], stride=case["S"], padding=case["padding"],
              ceil_mode=case["ceil_mode"], count_include_pad=case["count_include_pad"])
    with kernels.use(case["path"]):
        assert gradgradcheck(lambda a: F.avg_pool2d(a, **kw) ** 2, [x])


@pytest.mark.parametrize("fn", [lambda a: F.avg_pool2d(a, 2) ** 2,           # the '2x2' kernels
                                lambda a: F.max_pool2d(a, 2) ** 2,
                                lambda a: F.adaptive_avg_pool2d(a, 1) ** 2,  # 'plane'
                                lambda a: F.avg_pool2d(a, 2, divisor_override=3) ** 2])
def test_pooling_fast_paths_double_backward(fn):
    x = tensor(no_ties(np.random.default_rng(0), (2, 3, 6, 4)))
    assert gradgradcheck(fn, [x])


@settings(max_examples=POOL_EXAMPLES)
@given(shape=st.sampled_from([(1, 2), (2, 1), (3,)]), H=st.integers(1, 7), W=st.integers(1, 7),
       OH=st.integers(1, 7), OW=st.integers(1, 7), seed=st.integers(0, 2**31))
def test_adaptive_pooling_double_backward(shape, H, W, OH, OW, seed):
    """adaptive_avg_pool2d and adaptive_max_pool2d, windows that overlap when OH ∤ H."""
    x = tensor(no_ties(np.random.default_rng(seed), shape + (H, W)))
    assert gradgradcheck(lambda a: F.adaptive_avg_pool2d(a, (OH, OW)) ** 2, [x])
    assert gradgradcheck(lambda a: F.adaptive_max_pool2d(a, (OH, OW)) ** 2, [x])


def test_max_pool_mask_routes_both_ways():
    """The scatter and the gather are each other's transpose: ⟨Γ, scatter(δ)⟩ = ⟨gather(Γ), δ⟩,
    and both are checked to second order; an output with no winner (mask −1: a dilated
    window entirely in the padding) gets 0 both ways."""
    rng = np.random.default_rng(3)
    x = tensor(no_ties(rng, (2, 3, 5, 5)))
    y = F.max_pool2d(x, 3, stride=2, padding=1)
    mask = y.grad_fn.saved[0].copy()                    # (6, 3, 3) int32
    mask[:, 1, 2] = -1
    δ, Γ = rng.standard_normal(y.shape), rng.standard_normal(x.shape)
    δt = tensor(δ)
    scattered = MaxPool2dBackward.apply(δt, mask, x.shape, x.dtype)
    (gathered,) = autograd.grad(scattered, [δt], mg.tensor(Γ))
    np.testing.assert_allclose(np.sum(Γ * scattered.data), np.sum(gathered.data * δ), rtol=1e-12)
    assert np.all(gathered.data[:, :, 1, 2] == 0)
    want = np.take_along_axis(Γ.reshape(6, 25), np.maximum(mask.reshape(6, 9), 0), 1)
    want[mask.reshape(6, 9) < 0] = 0
    np.testing.assert_array_equal(gathered.data, want.reshape(y.shape))
    assert gradgradcheck(lambda d: MaxPool2dBackward.apply(d, mask, x.shape, x.dtype), [δt])


@settings(max_examples=POOL_EXAMPLES)
@given(mode=st.sampled_from(["nearest", "bilinear-ac", "bilinear"]), H=st.integers(1, 5),
       W=st.integers(1, 5), OH=st.integers(1, 9), OW=st.integers(1, 9),
       scale=st.sampled_from([None, 2, 1.5, 0.7]), seed=st.integers(0, 2**31))
def test_interpolate_double_backward(mode, H, W, OH, OW, scale, seed):
    """interpolate's backward scatters δ through its tables; its backward interpolates."""
    kw = dict(mode=mode[:8]) if mode != "bilinear-ac" else dict(mode="bilinear", align_corners=True)
    if scale is None:
        kw["size"] = (OH, OW)
    else:
        assume(int(H * scale) >= 1 and int(W * scale) >= 1)
        kw["scale_factor"] = scale
    x = tensor(np.random.default_rng(seed).standard_normal((2, 2, H, W)))
    assert gradgradcheck(lambda a: F.interpolate(a, **kw) ** 2, [x])


# ---- the first-order pass: same kernels, graph freed ------------------------------------------

def test_first_order_backward_runs_the_same_passes():
    """A first-order backward records exactly the passes it did before the backward became
    ops: conv2d's input_grad, weight_grad and bias_grad on the chosen paths, then nothing
    from the ops it is now made of; with create_graph=True the same passes, and the second
    backward runs convolutions again: the backward of the conv_transpose2d that made ∂L/∂x
    (its input_grad and weight_grad passes) and of the ops before it."""
    rng = np.random.default_rng(0)
    x, w, b = (tensor(rng.standard_normal(s)) for s in ((4, 3, 9, 9), (5, 3, 3, 3), (5,)))
    want = kernels.choose(x.shape, w.shape, stride=2, padding=1, dtype=x.dtype)
    first = [("conv2d", "input_grad", want.input_grad), ("conv2d", "weight_grad", want.weight_grad),
             ("conv2d", "bias_grad", want.weight_grad), ("max_pool2d", "input_grad", "direct")]
    for create_graph in (False, True):
        y = F.max_pool2d(F.conv2d(x, w, b, stride=2, padding=1), 2)
        with kernels.trace() as calls:
            gx, gw = autograd.grad((y * y).sum(), [x, w], create_graph=create_graph)
        assert sorted((c.op, c.which, c.path) for c in calls) == sorted(first)
        assert gx.requires_grad == gw.requires_grad == create_graph
    with kernels.trace() as calls:
        ((gx * gx).sum() + (gw * gw).sum()).backward()
    assert {(c.op, c.which) for c in calls} >= {
        ("conv_transpose2d", "input_grad"), ("conv_transpose2d", "weight_grad"),
        ("conv2d", "input_grad"), ("conv2d", "weight_grad"), ("conv2d", "forward")}


@pytest.mark.parametrize("path", [None, "direct", "gemm", "blas", "winograd", "winograd4"])
@pytest.mark.parametrize("xs, ws, S, padding, G", [
    ((8, 6, 14, 14), (16, 6, 5, 5), 1, 0, 1),
    ((4, 16, 12, 12), (16, 16, 3, 3), 1, 1, 1),
    ((3, 8, 11, 10), (6, 4, 3, 3), 2, "same", 2),               # 'same': asymmetric padding
    ((8, 11, 10), (6, 4, 3, 3), 2, 1, 2)])                      # no batch axis
def test_the_ops_compute_the_fused_kernels_numbers(xs, ws, S, padding, G, path):
    """conv2d's ∂L/∂x, ∂L/∂w, ∂L/∂b by its three gradient ops (a backward that records the
    graph) equal, bit for bit, the one fused kernel call a first-order backward makes."""
    if path == "blas" and not kernels._blas.available():
        pytest.skip("no OpenBLAS next to NumPy")
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in (xs, ws, ws[:1]))
    δ = None
    grads = {}
    with kernels.use(path):
        for create_graph in (False, True):
            xt, wt, bt = tensor(x), tensor(w), tensor(b)
            y = F.conv2d(xt, wt, bt, stride=S, padding=padding, groups=G)
            δ = rng.standard_normal(y.shape).astype(np.float32) if δ is None else δ
            with kernels.trace() as calls:
                y.backward(δ, create_graph=create_graph)
            grads[create_graph] = [t.grad.data for t in (xt, wt, bt)]
            assert [c.which for c in calls] == ["input_grad", "weight_grad", "bias_grad"]
    for fused, ops in zip(grads[False], grads[True]):
        np.testing.assert_array_equal(fused, ops)


def test_double_backward_on_the_lecture_path():
    """Under kernels.use('direct') every convolution of the second backward runs the plain
    loops too."""
    rng = np.random.default_rng(1)
    x, w = tensor(rng.standard_normal((2, 4, 8, 7))), tensor(rng.standard_normal((6, 2, 3, 3)))
    with kernels.use("direct"), kernels.trace() as calls:
        y = F.conv2d(x, w, stride=2, padding=1, groups=2)
        gx, gw = autograd.grad((y * y).sum(), [x, w], create_graph=True)
        ((gx ** 2).sum() + (gw ** 2).sum()).backward()
    conv = [c for c in calls if c.op.startswith("conv")]
    assert {c.path for c in conv} == {"direct"}
    assert {(c.op, c.which) for c in conv} >= {("conv2d", "forward"), ("conv2d", "input_grad"),
                                              ("conv2d", "weight_grad"),
                                              ("conv_transpose2d", "forward")}


def test_create_graph_false_frees_the_graph():
    """A first-order backward leaves gradients with no graph, frees every saved array
    (the contiguous copy of a channels_last input too) and refuses a second pass."""
    rng = np.random.default_rng(2)
    x = tensor(rng.standard_normal((2, 6, 6, 3)))                 # NHWC: conv copies it
    w = tensor(rng.standard_normal((3, 3, 3, 4)))
    y = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1, data_format="channels_last")), 2,
                     data_format="channels_last")
    loss = F.avg_pool2d(y, 3, data_format="channels_last").sum()
    nodes, todo = [], [loss.grad_fn]
    while todo:                                                  # every node of the graph
        n = todo.pop()
        if n is not None:
            nodes.append(n)
            todo += [i.grad_fn for i in n.inputs if isinstance(i, mg.Tensor)]
    conv = next(n for n in nodes if n.name == "Conv2d")
    assert conv.saved[0] is not x.data and conv.saved[0].base is None   # its NCHW copy of x
    saved = weakref.ref(conv.saved[0])
    loss.backward()
    gc.collect()
    assert saved() is None                                       # the copy of x is gone
    assert all(n.freed and n.saved == () for n in nodes)
    for t in (x, w):
        assert t.grad.grad_fn is None and not t.grad.requires_grad
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


# ---- a Hessian-vector product through a small CNN ------------------------------------------------

def small_cnn_loss(x, labels, w1, b1, w2, b2):
    """conv 3×3 (2 → 3 channels) + relu + 2×2 max pool + linear (48 → 4); the mean
    negative log-likelihood of the labels."""
    h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2)    # (N, 3, 4, 4)
    z = F.linear(h.reshape(h.shape[0], -1), w2, b2)                 # (N, 4)
    onehot = np.eye(4)[labels]
    return -(F.log_softmax(z, 1) * mg.tensor(onehot)).sum() / len(labels)


def cnn_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 2, 8, 8))
    labels = rng.integers(0, 4, 3)
    params = [rng.standard_normal(s) * 0.5 for s in ((3, 2, 3, 3), (3,), (4, 48), (4,))]
    v = [rng.standard_normal(p.shape) for p in params]
    return x, labels, params, v


def hvp(x, labels, params, v):
    """H·v by double backward: grad of ⟨∇L, v⟩."""
    θ = [tensor(p) for p in params]
    g = autograd.grad(small_cnn_loss(mg.tensor(x), labels, *θ), θ, create_graph=True)
    gv = sum((gi * mg.tensor(vi)).sum() for gi, vi in zip(g, v))
    return [h.data for h in autograd.grad(gv, θ)]


def test_cnn_hessian_vector_product_matches_finite_differences():
    """H·v of the small CNN's loss against (∇L(θ + εv) − ∇L(θ − εv)) / 2ε."""
    x, labels, params, v = cnn_problem()
    got = hvp(x, labels, params, v)

    def gradient(ps):
        θ = [tensor(p) for p in ps]
        return [g.data for g in autograd.grad(small_cnn_loss(mg.tensor(x), labels, *θ), θ)]

    eps = 1e-5
    plus = gradient([p + eps * vi for p, vi in zip(params, v)])
    minus = gradient([p - eps * vi for p, vi in zip(params, v)])
    for h, a, b in zip(got, plus, minus):
        np.testing.assert_allclose(h, (a - b) / (2 * eps), rtol=1e-5, atol=1e-7)
    assert max(np.abs(h).max() for h in got) > 1e-2             # not a trivially zero product


def test_cnn_hessian_vector_product_matches_torch():
    torch = pytest.importorskip("torch")
    x, labels, params, v = cnn_problem(1)
    got = hvp(x, labels, params, v)
    θ = [torch.tensor(p, requires_grad=True) for p in params]
    tF = torch.nn.functional
    h = tF.max_pool2d(tF.relu(tF.conv2d(torch.tensor(x), θ[0], θ[1], padding=1)), 2)
    loss = tF.cross_entropy(tF.linear(h.reshape(h.shape[0], -1), θ[2], θ[3]), torch.tensor(labels))
    g = torch.autograd.grad(loss, θ, create_graph=True)
    gv = sum((gi * torch.tensor(vi)).sum() for gi, vi in zip(g, v))
    want = torch.autograd.grad(gv, θ)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-12)
