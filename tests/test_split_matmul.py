"""Large products on the OpenMP threads (_blas.split_matmul, ext/gemm.pyx): the blocks
cover C exactly once, for every operand layout, and the ops route large products there."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import _blas

pytestmark = pytest.mark.skipif(not _blas.available(), reason="no OpenBLAS next to NumPy")


def _operand(rng, shape, layout, dtype):
    """A (rows, cols) matrix stored C-contiguous, transposed (F-contiguous) or strided."""
    r, c = shape
    if layout == "c":
        return rng.standard_normal((r, c)).astype(dtype)
    if layout == "t":
        return rng.standard_normal((c, r)).astype(dtype).T
    return rng.standard_normal((r, 2 * c)).astype(dtype)[:, ::2]


class mg_threads:
    """mg.set_num_threads(n) inside the block."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.saved = mg.get_num_threads()
        mg.set_num_threads(self.n)

    def __exit__(self, *exc):
        mg.set_num_threads(self.saved)


@pytest.mark.parametrize("threads", [1, 2, 3, 5])
@pytest.mark.parametrize("m, k, n", [(37, 19, 5), (5, 19, 37), (16, 1, 16), (1, 40, 1),
                                     (100, 33, 17), (17, 33, 100), (64, 8, 64)])
@pytest.mark.parametrize("layouts", ["cc", "tc", "ct", "tt", "sc", "cs"])
def test_split_matmul_matches_numpy(threads, m, k, n, layouts):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    for dtype, rtol in ((np.float32, 2e-6), (np.float64, 1e-13)):
        a = _operand(rng, (m, k), layouts[0], dtype)
        b = _operand(rng, (k, n), layouts[1], dtype)
        expected = a.astype(np.float64) @ b.astype(np.float64)
        with mg_threads(threads):
            c = _blas.split_matmul(a, b)
        assert c.shape == (m, n) and c.dtype == dtype and c.flags.c_contiguous
        scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
        assert np.all(np.abs(c - expected) <= rtol * 8 * scale + 1e-30), (dtype, layouts)


def test_large_products_take_the_split_and_small_ones_do_not(monkeypatch):
    calls = []
    real = _blas.split_matmul
    monkeypatch.setattr(_blas, "split_matmul", lambda a, b: calls.append((a.shape, b.shape)) or real(a, b))
    rng = np.random.default_rng(0)
    big_k = _blas.SMALL_GEMM_FLOPS // (2 * 64 * 64) + 1           # 2·m·k·n just over the threshold
    a = rng.standard_normal((64, big_k)).astype(np.float32)
    b = rng.standard_normal((big_k, 64)).astype(np.float32)
    np.testing.assert_allclose(_blas.matmul(a, b), a @ b, rtol=1e-4, atol=1e-3)
    assert calls == [((64, big_k), (big_k, 64))]
    calls.clear()
    _blas.matmul(a[:, :big_k // 2], b[:big_k // 2])                 # under the threshold
    assert calls == []
    a3 = a.reshape(2, 32, big_k)                                    # (…, m, k) @ (k, n): rows merged
    np.testing.assert_allclose(_blas.matmul(a3, b), a3 @ b, rtol=1e-4, atol=1e-3)
    assert calls == [((64, big_k), (big_k, 64))]
    calls.clear()
    a3s = np.swapaxes(a.reshape(32, 2, big_k), 0, 1)                # not contiguous: NumPy's batched product
    np.testing.assert_allclose(_blas.matmul(a3s, b), a3s @ b, rtol=1e-4, atol=1e-3)
    assert calls == []
    _blas.matmul(a.astype(np.float64), b)                           # mixed dtypes: NumPy's rules
    assert calls == []


def test_linear_with_a_large_product_trains_like_the_formula():
    """Linear whose three products cross the threshold: forward and gradients against NumPy."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 1024)).astype(np.float32)
    w = rng.standard_normal((1100, 1024)).astype(np.float32) / 32
    assert 2 * 64 * 1024 * 1100 >= _blas.SMALL_GEMM_FLOPS
    tx, tw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = mg.nn.functional.linear(tx, tw)
    d = rng.standard_normal(y.shape).astype(np.float32)
    (y * mg.tensor(d)).sum().backward()
    x64, w64, d64 = x.astype(np.float64), w.astype(np.float64), d.astype(np.float64)
    np.testing.assert_allclose(y.numpy(), x64 @ w64.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tx.grad.numpy(), d64 @ w64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tw.grad.numpy(), d64.T @ x64, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("m, k, n", [(3, 0, 4), (0, 5, 4), (3, 5, 0)])
def test_split_matmul_of_an_empty_product(m, k, n):
    a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    c = _blas.split_matmul(a, b)
    assert c.shape == (m, n) and c.dtype == np.float32
    np.testing.assert_array_equal(c, np.zeros((m, n)))


def test_split_matmul_leaves_openblas_thread_count_alone():
    before = _blas._lib["get_threads"]()
    rng = np.random.default_rng(2)
    _blas.split_matmul(rng.standard_normal((40, 30)), rng.standard_normal((30, 50)))
    assert _blas._lib["get_threads"]() == before and _blas._users == 0
