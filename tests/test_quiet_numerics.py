"""No NumPy RuntimeWarning where the answer is the IEEE one (issue 16, item 7).

The suite turns RuntimeWarnings into errors (pyproject.toml); these tests also check it
without that configuration, and check the values that come out.
"""
import warnings

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_mean_of_nothing_is_nan_and_its_gradient_is_empty():
    x = mg.zeros(3, 0, requires_grad=True)
    y = x.mean(1)                                     # three means of nothing
    assert y.shape == (3,) and np.isnan(y.numpy()).all()
    y.sum().backward()
    assert x.grad.shape == (3, 0)
    assert np.isnan(mg.zeros(0).mean().item())


@pytest.mark.parametrize("loss", [lambda x: F.cross_entropy(x, np.zeros(0, np.int64)),
                                  lambda x: F.mse_loss(x, mg.zeros(0, 3))])
def test_losses_of_an_empty_batch_are_nan_with_an_empty_gradient(loss):
    x = mg.zeros(0, 3, requires_grad=True)
    out = loss(x)
    assert np.isnan(out.item())
    out.backward()
    assert x.grad.shape == (0, 3)


def test_cross_entropy_with_all_weights_zero_is_nan_both_ways():
    z = mg.tensor([[1.0, 2.0], [0.5, 0.0]], requires_grad=True)
    out = F.cross_entropy(z, mg.tensor([0, 0]), weight=mg.tensor([0.0, 1.0]))   # D = Σ w[y_n] = 0
    assert np.isnan(out.item())
    out.backward()
    assert np.isnan(z.grad.numpy()).all()


@pytest.mark.parametrize("fn, value, grad", [
    (lambda t: t.sqrt(), [0.0, np.nan, 2.0], [np.inf, np.nan, 0.25]),
    (lambda t: t.log(), [-np.inf, np.nan, np.log(4.0)], [np.inf, -1.0, 0.25]),
    (lambda t: 1 / t, [np.inf, -1.0, 0.25], [-np.inf, -1.0, -0.0625]),
])
def test_edges_of_the_domain_give_ieee_values_quietly(fn, value, grad):
    x = mg.tensor([0.0, -1.0, 4.0], requires_grad=True)
    y = fn(x)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), value, rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-6)


def test_detect_anomaly_still_stops_at_an_infinite_gradient():
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    with mg.detect_anomaly(), pytest.raises(RuntimeError, match="Sqrt"):
        x.sqrt().sum().backward()
