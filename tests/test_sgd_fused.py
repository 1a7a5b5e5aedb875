"""SGD's one-pass momentum update (ext/elementwise.pyx sgd_momentum_step) against the rule of
SGD's docstring written out in NumPy, over several steps and every option; the fallback to
the NumPy lines for arrays the kernel does not take."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg


def _reference(p, grads, lr, mu, damp, wd, nesterov):
    """p after one SGD step per gradient in grads, by the docstring's rule."""
    p, buf = p.copy(), None
    for g in grads:
        g = g + wd * p
        buf = g.copy() if buf is None else mu * buf + (1 - damp) * g
        p = p - lr * (g + mu * buf if nesterov else buf)
    return p, buf


@given(shape=st.sampled_from([(1,), (7,), (3, 5), (2, 1, 3, 3), (40000,)]),
       dtype=st.sampled_from([np.float32, np.float64]),
       mu=st.sampled_from([0.5, 0.9]), damp=st.sampled_from([0.0, 0.3]),
       wd=st.sampled_from([0.0, 1e-2]), nesterov=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_fused_sgd_matches_the_rule(shape, dtype, mu, damp, wd, nesterov, seed):
    if nesterov and damp != 0:
        damp = 0.0
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    p = mg.nn.Parameter(mg.tensor(p0.copy()))
    opt = mg.optim.SGD([p], lr=0.1, momentum=mu, dampening=damp, weight_decay=wd, nesterov=nesterov)
    for g in grads:
        p.grad = mg.tensor(g.copy())
        opt.step()
    want, buf = _reference(p0.astype(np.float64), [g.astype(np.float64) for g in grads],
                           0.1, mu, damp, wd, nesterov)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert p.data.dtype == dtype
    np.testing.assert_allclose(p.data, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], buf, rtol=tol, atol=tol)
    for g in grads:                                     # the gradients are left alone
        assert np.isfinite(g).all()


def test_fused_and_numpy_paths_agree(rng):
    """A non-contiguous gradient takes the NumPy lines; the same numbers either way."""
    p0 = rng.standard_normal((6, 4)).astype(np.float32)
    g = rng.standard_normal((4, 6)).astype(np.float32)
    results = []
    for grad in (np.ascontiguousarray(g.T), g.T):      # contiguous: fused; transposed: NumPy
        p = mg.nn.Parameter(mg.tensor(p0.copy()))
        opt = mg.optim.SGD([p], lr=0.05, momentum=0.9, weight_decay=1e-3)
        for _ in range(3):
            p.grad = mg.tensor(grad)
            assert p.grad.data.flags.c_contiguous == grad.flags.c_contiguous
            opt.step()
        results.append(p.data.copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_momentum_buffer_survives_a_state_dict_round_trip(dtype, rng):
    p = mg.nn.Parameter(mg.tensor(rng.standard_normal(5).astype(dtype)))
    opt = mg.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = mg.tensor(np.ones(5, dtype))
    opt.step()
    opt2 = mg.optim.SGD([p], lr=0.1, momentum=0.9)
    opt2.load_state_dict(opt.state_dict())
    before = p.data.copy()
    opt2.step()
    b = 0.9 * 1 + 1                                     # b ← μ·b + g with b = g = 1
    np.testing.assert_allclose(p.data, before - 0.1 * b, rtol=1e-6)
