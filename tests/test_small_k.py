"""A small inner dimension, a large result (ext/small_k.h through ext/gemm.pyx and
_blas.split_matmul): C = A · B against float64, the same bits whatever the threads and
chunks, the rule that sends a product there, and Linear's weight gradient through it."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad import _blas
from minigrad._ext import gemm as kernel

pytestmark = pytest.mark.skipif(not (_blas.available() and kernel.small_k_available()),
                                reason="no AVX-512 small-k loop in this build or on this CPU")


def _run(a, b, chunk, threads):
    c = np.full((a.shape[0], b.shape[1]), np.nan, np.float32)
    kernel.gemm_small_k(a, b, c, np.full((threads, a.shape[1] * chunk), np.nan, np.float32),
                        chunk, threads)
    return c


def _close_to_float64(c, a, b):
    """|C − A·B| within float32's rounding of k in-order fused multiply-adds."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = (a.shape[1] + 1) * np.finfo(np.float32).eps * (np.abs(a64) @ np.abs(b64)) + 1e-30
    assert np.all(np.abs(c - a64 @ b64) <= bound)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 27), k=st.integers(1, 70), n=st.integers(1, 230),
       chunk=st.sampled_from([48, 96, 144, 1536]), threads=st.integers(1, 3),
       ldb_extra=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_small_k_matches_float64_and_is_the_same_for_any_chunk_and_threads(
        m, k, n, chunk, threads, ldb_extra, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n + ldb_extra)).astype(np.float32)
    b = np.ascontiguousarray(b[:, ldb_extra:])          # any alignment of B's rows
    c = _run(a, b, chunk, threads)
    _close_to_float64(c, a, b)
    # each element is one in-order sum over p: which thread, chunk or panel computes it
    # does not change a bit
    np.testing.assert_array_equal(c, _run(a, b, 48, 1))


def test_small_k_tails_every_panel_kind():
    """Rows 8 at a time and 1 at a time; columns by 48, by 16 and one by one, across
    chunks and thread blocks, with a value at every (i, p, j) that only that term makes."""
    m, k, n = 19, 3, 48 * 4 + 16 * 2 + 7
    a = np.zeros((m, k), np.float32)
    b = np.zeros((k, n), np.float32)
    a[np.arange(m), np.arange(m) % k] = np.arange(1, m + 1)
    b[np.arange(n) % k, np.arange(n)] = 1000 * np.arange(1, n + 1)
    expected = (a.astype(np.float64) @ b.astype(np.float64)).astype(np.float32)
    for chunk, threads in ((48, 1), (96, 2), (1536, 3), (48, 4)):
        np.testing.assert_array_equal(_run(a, b, chunk, threads), expected)


@pytest.mark.parametrize("sa, sb, sc, ss, chunk", [
    ((3, 2), (3, 4), (3, 4), (2, 96), 48),              # B's rows ≠ A's columns
    ((3, 2), (2, 4), (4, 4), (2, 96), 48),              # C's rows ≠ A's rows
    ((3, 2), (2, 4), (3, 5), (2, 96), 48),              # C's columns ≠ B's
    ((3, 2), (2, 4), (3, 4), (2, 95), 48),              # scratch rows shorter than k · chunk
    ((3, 2), (2, 100), (3, 100), (1, 96), 48),          # one scratch row for two column blocks
    ((3, 2), (2, 4), (3, 4), (2, 200), 50),             # chunk not a multiple of 48
    ((3, 0), (0, 4), (3, 4), (2, 96), 48),              # k = 0
])
def test_small_k_rejects_what_does_not_fit(sa, sb, sc, ss, chunk):
    with pytest.raises(ValueError, match=r"gemm_small_k\(\)"):
        kernel.gemm_small_k(np.ones(sa, np.float32), np.ones(sb, np.float32),
                            np.ones(sc, np.float32), np.ones(ss, np.float32), chunk, 2)


def test_the_rule_takes_small_k_and_large_results_only():
    assert _blas.small_k(4096, 32, 25088, np.float32)                  # VGG's fc1 ∂L/∂W
    assert _blas.small_k(4096, 32, 4096, np.float32)                   # fc2
    assert _blas.small_k(1024, _blas.SMALL_K_MAX, 1024, np.float32)
    assert not _blas.small_k(4096, _blas.SMALL_K_MAX + 1, 4096, np.float32)
    assert not _blas.small_k(1023, 32, 1024, np.float32)               # m·n under the line
    assert not _blas.small_k(4096, 32, 25088, np.float64)
    assert not _blas.small_k(4096, 32, 25088, np.float32, b_transposed=True)
    assert not _blas.small_k(4096, 0, 25088, np.float32)


def test_split_matmul_sends_the_products_the_rule_names(monkeypatch):
    calls = []
    real = kernel.gemm_small_k
    monkeypatch.setattr(kernel, "gemm_small_k", lambda *args: calls.append(args[2].shape) or real(*args))
    rng = np.random.default_rng(3)
    d = rng.standard_normal((32, 1100)).astype(np.float32)           # Δ (batch, out)
    x = rng.standard_normal((32, 1000)).astype(np.float32)           # X (batch, in)
    assert _blas.small_k(1100, 32, 1000, np.float32)
    for a in (d.T, np.ascontiguousarray(d.T)):                       # Δᵀ as a view and stored
        c = _blas.split_matmul(a, x)
        _close_to_float64(c, np.ascontiguousarray(a), x)
    assert calls == [(1100, 1000)] * 2
    calls.clear()
    _blas.split_matmul(d.T, np.asfortranarray(x))                    # B stored transposed: OpenBLAS
    _blas.split_matmul(d.T.astype(np.float64), x.astype(np.float64))
    monkeypatch.setattr(_blas, "SMALL_K_MAX", 31)
    _blas.split_matmul(d.T, x)
    assert calls == []


def test_linear_weight_gradient_through_small_k(monkeypatch):
    """A float32 Linear with a small batch: ∂L/∂W = Δᵀ X by ext/small_k.h, against float64."""
    calls = []
    real = kernel.gemm_small_k
    monkeypatch.setattr(kernel, "gemm_small_k", lambda *args: calls.append(args[2].shape) or real(*args))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 2048)).astype(np.float32)
    w = (rng.standard_normal((1100, 2048)) / 40).astype(np.float32)
    assert 2 * 32 * 2048 * 1100 >= _blas.SMALL_GEMM_FLOPS           # a product split_matmul takes
    tx, tw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = mg.nn.functional.linear(tx, tw)
    d = rng.standard_normal(y.shape).astype(np.float32)
    (y * mg.tensor(d)).sum().backward()
    assert calls == [(1100, 2048)]
    _close_to_float64(tw.grad.numpy(), np.ascontiguousarray(d.T), x)
