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
