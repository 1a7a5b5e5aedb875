"""The layers of test_layers_zoo.py against PyTorch's functional results (skipped without torch).

float64 forward values and input gradients must agree to 1e-12 relative; the NumPy
references of test_layers_zoo.py carry the requirement without torch.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import minigrad as mg  # noqa: E402
import minigrad.nn as nn  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402


def both(fn_mg, fn_torch, x, δ=None, rtol=1e-12, atol=1e-14):
    """Forward and input gradient of fn_mg(x) and fn_torch(x) agree."""
    xm = mg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ym, yt = fn_mg(xm), fn_torch(xt)
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    if δ is None:
        δ = np.random.default_rng(0).standard_normal(ym.shape)
    ym.backward(δ)
    yt.backward(torch.tensor(δ))
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name,fm,ft", [
    ("relu6", F.relu6, TF.relu6),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("hardtanh", lambda x: F.hardtanh(x, -2, 3), lambda x: TF.hardtanh(x, -2, 3)),
    ("silu", F.silu, TF.silu),
    ("hardsigmoid", F.hardsigmoid, TF.hardsigmoid),
    ("hardswish", F.hardswish, TF.hardswish),
    ("gelu", F.gelu, TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
])
def test_activations_match_torch(name, fm, ft, rng):
    x = rng.standard_normal((3, 4, 5, 6)) * 4
    x[0, 0, 0, :6] = [0.0, 6.0, -2.0, 3.0, -1.0, 1.0]            # the kinks, exactly
    x[0, 0, 1, :2] = [-3.0, 3.0]
    # PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32 (1.0f / 6.0f) even
    # in float64: 3e-8 relative, inside the float64 bound of 1e-7
    both(fm, ft, x, rtol=1e-7 if name == "hardsigmoid" else 1e-12)


@pytest.mark.parametrize("hw,out", [((7, 5), (3, 2)), ((13, 11), (5, 4)), ((6, 6), (4, 4)),
                                    ((3, 5), (7, 8)), ((9, 9), (1, 1)), ((10, 7), (3, 7))])
def test_adaptive_pools_match_torch(hw, out, rng):
    x = rng.standard_normal((2, 3) + hw)
    both(lambda a: F.adaptive_avg_pool2d(a, out), lambda a: TF.adaptive_avg_pool2d(a, out), x)
    both(lambda a: F.adaptive_max_pool2d(a, out), lambda a: TF.adaptive_max_pool2d(a, out), x)
    _, im = F.adaptive_max_pool2d(mg.tensor(x), out, return_indices=True)
    _, it = TF.adaptive_max_pool2d(torch.tensor(x), out, return_indices=True)
    np.testing.assert_array_equal(im.numpy(), it.numpy())


def test_reprs_match_torch():
    for ours, theirs in ((nn.ReLU6(inplace=True), torch.nn.ReLU6(inplace=True)),
                         (nn.LeakyReLU(), torch.nn.LeakyReLU()),
                         (nn.GELU(), torch.nn.GELU()),
                         (nn.AdaptiveMaxPool2d((3, None)), torch.nn.AdaptiveMaxPool2d((3, None)))):
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("shape,n,alpha,beta,k", [((2, 7, 3, 4), 5, 1e-4, 0.75, 2.0), ((2, 6, 5), 4, 0.5, 0.3, 1.0),
                                                  ((1, 3, 2, 2, 2), 2, 2.0, 1.5, 0.5), ((2, 4, 3, 3), 9, 1.0, 0.75, 1.0)])
def test_lrn_matches_torch(shape, n, alpha, beta, k, rng):
    x = rng.standard_normal(shape) * 2
    both(lambda a: F.local_response_norm(a, n, alpha, beta, k),
         lambda a: TF.local_response_norm(a, n, alpha, beta, k), x)


@pytest.mark.parametrize("hw,kwargs", [
    ((5, 7), dict(size=(9, 4), mode="nearest")),
    ((5, 7), dict(scale_factor=2, mode="nearest")),
    ((6, 10), dict(scale_factor=(0.35, 1.7), mode="nearest")),
    ((5, 7), dict(size=(9, 4), mode="bilinear")),
    ((5, 7), dict(size=(9, 4), mode="bilinear", align_corners=True)),
    ((6, 10), dict(scale_factor=(0.35, 1.7), mode="bilinear")),
    ((6, 10), dict(scale_factor=(0.35, 1.7), mode="bilinear", recompute_scale_factor=True)),
    ((4, 4), dict(scale_factor=3, mode="bilinear", align_corners=True)),
    ((1, 3), dict(size=(3, 1), mode="bilinear", align_corners=True)),
])
def test_interpolate_matches_torch(hw, kwargs, rng):
    x = rng.standard_normal((2, 3) + hw)
    both(lambda a: F.interpolate(a, **kwargs), lambda a: TF.interpolate(a, **kwargs), x)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(reduction, rng):
    x = rng.standard_normal((4, 5, 3))
    y = rng.integers(0, 5, (4, 3))
    y[0, 0] = y[2, 1] = -100
    w = rng.uniform(0.5, 2, 5)
    kwargs = dict(weight=w, reduction=reduction)
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lm = F.nll_loss(xm, y, **kwargs)
    lt = TF.nll_loss(xt, torch.tensor(y), weight=torch.tensor(w), reduction=reduction)
    np.testing.assert_allclose(lm.numpy(), lt.detach().numpy(), rtol=1e-13)
    δ = np.ones(lm.shape)
    lm.backward(δ)
    lt.backward(torch.tensor(δ))
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-13)
    y1 = rng.integers(0, 5, (4, 3))
    np.testing.assert_array_equal(F.one_hot(mg.tensor(y1)).numpy(), TF.one_hot(torch.tensor(y1)).numpy())


def test_deterministic_inits_match_torch():
    for shape, groups in (((6, 4, 3, 3), 1), ((6, 2, 3, 5), 3), ((4, 4, 3), 2), ((3, 5, 1, 3, 3), 1)):
        ours = mg.zeros(*shape)
        nn.init.dirac_(ours, groups)
        theirs = torch.zeros(*shape)
        torch.nn.init.dirac_(theirs, groups)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    ours, theirs = mg.zeros(3, 5), torch.zeros(3, 5)
    np.testing.assert_array_equal(nn.init.eye_(ours).numpy(), torch.nn.init.eye_(theirs).numpy())
    for nl, param in (("relu", None), ("leaky_relu", 0.2), ("tanh", None), ("selu", None), ("conv2d", None)):
        assert nn.init.calculate_gain(nl, param) == pytest.approx(torch.nn.init.calculate_gain(nl, param), rel=1e-15)


def test_lazy_model_matches_torch_after_loading_its_weights(rng):
    """The textbook LeNet written with lazy layers: same output and gradients as PyTorch's."""
    def build(lib):                               # d2l's BatchNorm-LeNet
        return lib.Sequential(lib.LazyConv2d(6, 5, padding=2), lib.LazyBatchNorm2d(), lib.Sigmoid(),
                              lib.AvgPool2d(2, 2), lib.LazyConv2d(16, 5), lib.LazyBatchNorm2d(), lib.Sigmoid(),
                              lib.AvgPool2d(2, 2), lib.Flatten(),
                              lib.LazyLinear(120), lib.LazyBatchNorm1d(), lib.Sigmoid(),
                              lib.LazyLinear(84), lib.LazyBatchNorm1d(), lib.Sigmoid(), lib.LazyLinear(10))
    x = rng.standard_normal((4, 1, 28, 28))
    ours, theirs = build(nn), build(torch.nn)
    ours(mg.tensor(x.astype(np.float32)))                       # the dry runs create the parameters
    theirs(torch.tensor(x.astype(np.float32)))
    theirs.double()
    for p in ours.parameters():                                 # compare in float64 (BN's backward
        p.data = p.data.astype(np.float64)                      # cancels: float32 noise would dominate)
    for m in ours.modules():
        for k, b in m._buffers.items():
            if b is not None and b.dtype == np.float32:
                m._buffers[k] = b.astype(np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert type(ours[0]) is nn.Conv2d and type(theirs[0]) is torch.nn.Conv2d
    assert type(ours[10]) is nn.BatchNorm1d
    ym, yt = ours(mg.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(ym.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    ym.sum().backward()
    yt.sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-7, atol=1e-12, err_msg=name)
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_group_norm_matches_torch(rng):
    x = rng.standard_normal((3, 6, 4, 5))
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    both(lambda a: F.group_norm(a, 3, mg.tensor(w), mg.tensor(b)),
         lambda a: TF.group_norm(a, 3, torch.tensor(w), torch.tensor(b)), x)
    assert repr(nn.GroupNorm(2, 6)) == repr(torch.nn.GroupNorm(2, 6))


def test_upsampling_layers_match_torch(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    for ours, theirs in ((nn.UpsamplingNearest2d(scale_factor=2), torch.nn.UpsamplingNearest2d(scale_factor=2)),
                         (nn.UpsamplingBilinear2d(size=(7, 3)), torch.nn.UpsamplingBilinear2d(size=(7, 3))),
                         (nn.Upsample(scale_factor=1.5, mode="bilinear"),
                          torch.nn.Upsample(scale_factor=1.5, mode="bilinear"))):
        both(ours, theirs, x)
        assert repr(ours) == repr(theirs)
