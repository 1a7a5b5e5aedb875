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
    ("gelu", F.gelu, TF.gelu),
    ("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), lambda x: TF.gelu(x, approximate="tanh")),
])
def test_activations_match_torch(name, fm, ft, rng):
    x = rng.standard_normal((3, 4, 5, 6)) * 4
    x[0, 0, 0, :6] = [0.0, 6.0, -2.0, 3.0, -1.0, 1.0]            # the kinks, exactly
    both(fm, ft, x)


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
