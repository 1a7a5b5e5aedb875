"""Products with one thin dimension (ext/thin_gemm.h through ext/gemm.pyx and
_blas.split_matmul): C = A · B by each loop against float64, the same bits whatever the
loop, threads, chunks and blocks, the rule that sends a product to each, and a Linear
layer's forward and gradients through them."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigrad as mg
from minigrad import _blas
from minigrad._ext import gemm as kernel

pytestmark = pytest.mark.skipif(not (_blas.available() and kernel.thin_available()),
                                reason="no AVX-512 thin-product loops in this build or on this CPU")


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
       chunk=st.sampled_from([48, 96, 144, 1536]), kb=st.sampled_from([1, 5, 16, 64]),
       threads=st.integers(1, 3), ldb_extra=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_each_loop_matches_float64_and_all_give_the_same_bits(
        m, k, n, chunk, kb, threads, ldb_extra, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n + ldb_extra)).astype(np.float32)
    b = np.ascontiguousarray(b[:, ldb_extra:])          # any alignment of B's rows
    c = _run(a, b, chunk, threads)
    _close_to_float64(c, a, b)
    # each element is one in-order chain of fused multiply-adds over p: which loop, thread,
    # chunk, block of p or panel computes it does not change a bit
    np.testing.assert_array_equal(c, _run(a, b, 48, 1))
    for loop in (lambda c: kernel.gemm_small_m(a, b, c, chunk, kb, threads),
                 lambda c: kernel.gemm_small_n(a, b, c, kb, threads)):
        c2 = np.full_like(c, np.nan)
        loop(c2)
        np.testing.assert_array_equal(c2, c)


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
        c = np.full_like(expected, np.nan)
        kernel.gemm_small_m(a, b, c, chunk, 2, threads)
        np.testing.assert_array_equal(c, expected)
    at, bt = np.ascontiguousarray(b.T), np.ascontiguousarray(a.T)      # n thin: Cᵀ = Bᵀ Aᵀ
    for kb, threads in ((1, 1), (2, 2), (64, 3), (2, 5)):
        c = np.full((n, m), np.nan, np.float32)
        kernel.gemm_small_n(at, bt, c, kb, threads)
        np.testing.assert_array_equal(c, expected.T)


@pytest.mark.parametrize("sa, sb, sc, ss, chunk, shapes_wrong", [
    ((3, 2), (3, 4), (3, 4), (2, 96), 48, True),        # B's rows ≠ A's columns
    ((3, 2), (2, 4), (4, 4), (2, 96), 48, True),        # C's rows ≠ A's rows
    ((3, 2), (2, 4), (3, 5), (2, 96), 48, True),        # C's columns ≠ B's
    ((3, 0), (0, 4), (3, 4), (2, 96), 48, True),        # k = 0
    ((3, 2), (2, 4), (3, 4), (2, 95), 48, False),       # scratch rows shorter than k · chunk
    ((3, 2), (2, 100), (3, 100), (1, 96), 48, False),   # one scratch row for two column blocks
    ((3, 2), (2, 4), (3, 4), (2, 200), 50, False),      # chunk not a multiple of 48
])
def test_the_loops_reject_what_does_not_fit(sa, sb, sc, ss, chunk, shapes_wrong):
    a, b, c = np.ones(sa, np.float32), np.ones(sb, np.float32), np.ones(sc, np.float32)
    with pytest.raises(ValueError, match=r"gemm_small_k\(\)"):
        kernel.gemm_small_k(a, b, c, np.ones(ss, np.float32), chunk, 2)
    if shapes_wrong:
        with pytest.raises(ValueError, match=r"gemm_small_m\(\)"):
            kernel.gemm_small_m(a, b, c, 96, 4, 2)
        with pytest.raises(ValueError, match=r"gemm_small_n\(\)"):
            kernel.gemm_small_n(a, b, c, 4, 2)


@pytest.mark.parametrize("name, args", [("gemm_small_m", (0, 4, 2)), ("gemm_small_m", (96, 0, 2)),
                                        ("gemm_small_m", (96, 4, 0)), ("gemm_small_n", (0, 2)),
                                        ("gemm_small_n", (4, 0))])
def test_the_loops_reject_blocks_and_threads_below_one(name, args):
    a, b, c = np.ones((3, 2), np.float32), np.ones((2, 4), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=name):
        getattr(kernel, name)(a, b, c, *args)
    with pytest.raises(ValueError, match="gemm_small_k"):
        kernel.gemm_small_k(a, b, c, np.ones((2, 96), np.float32), 48, 0)


def test_the_rule_names_a_loop_for_a_linear_layers_products():
    thin = _blas.thin
    # VGG-11's fc1, batch 32: ∂L/∂W = Δᵀ X, ∂L/∂x = δ W, yᵀ = W Xᵀ (X as a transposed view)
    assert thin(4096, 32, 25088, np.float32, a_transposed=True) == "small_k"
    assert thin(32, 4096, 25088, np.float32) == "small_m"
    assert thin(4096, 25088, 32, np.float32, b_transposed=True) == "small_n"
    assert thin(4096, 32, 4096, np.float32) == "small_k"                 # fc2
    assert thin(1024, _blas.SMALL_K_MAX, 1024, np.float32) == "small_k"
    assert thin(4096, _blas.SMALL_K_MAX + 1, 4096, np.float32) is None
    assert thin(1023, 32, 1024, np.float32) is None                      # m·n under the line
    assert thin(_blas.SMALL_M_MAX + 1, 4096, 4096, np.float32) is None   # m past the line
    assert thin(4096, 4096, _blas.SMALL_N_MAX + 1, np.float32) is None
    assert thin(32, 1024, 4095, np.float32) is None                      # k·n under 2²²
    assert thin(32, 4096, 25088, np.float32, b_transposed=True) is None  # B must lie by rows
    assert thin(4096, 25088, 32, np.float32, a_transposed=True) is None  # A must lie by rows
    for shape in ((4096, 32, 25088), (32, 4096, 25088), (4096, 25088, 32)):
        assert thin(*shape, np.float64) is None
    assert thin(4096, 0, 25088, np.float32) is None


def test_split_matmul_sends_the_products_the_rule_names(monkeypatch):
    calls = []
    real = kernel.gemm_small_k
    monkeypatch.setattr(kernel, "gemm_small_k", lambda *args: calls.append(args[2].shape) or real(*args))
    rng = np.random.default_rng(3)
    d = rng.standard_normal((32, 1100)).astype(np.float32)           # Δ (batch, out)
    x = rng.standard_normal((32, 1000)).astype(np.float32)           # X (batch, in)
    assert _blas.thin(1100, 32, 1000, np.float32) == "small_k"
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
    monkeypatch.setattr(_blas, "_thin_loops", False)                  # no AVX-512: OpenBLAS
    monkeypatch.setattr(_blas, "SMALL_K_MAX", 64)
    _blas.split_matmul(d.T, x)
    assert calls == []


def test_linear_forward_and_gradients_through_the_three_loops(monkeypatch):
    """A float32 Linear with a small batch: yᵀ = W Xᵀ by small_n, ∂L/∂x = δ W by small_m,
    ∂L/∂W = Δᵀ X by small_k, each against float64."""
    calls = []
    for name in ("gemm_small_k", "gemm_small_m", "gemm_small_n"):
        real = getattr(kernel, name)
        monkeypatch.setattr(kernel, name, lambda *args, name=name, real=real:
                            calls.append((name, args[2].shape)) or real(*args))
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 2048)).astype(np.float32)
    w = (rng.standard_normal((2100, 2048)) / 40).astype(np.float32)
    assert 2 * 32 * 2048 * 2100 >= _blas.SMALL_GEMM_FLOPS           # products split_matmul takes
    tx, tw = mg.tensor(x, requires_grad=True), mg.tensor(w, requires_grad=True)
    y = mg.nn.functional.linear(tx, tw)
    d = rng.standard_normal(y.shape).astype(np.float32)
    (y * mg.tensor(d)).sum().backward()
    assert sorted(calls) == [("gemm_small_k", (2100, 2048)), ("gemm_small_m", (32, 2048)),
                             ("gemm_small_n", (2100, 32))]
    _close_to_float64(y.numpy().T, w, np.ascontiguousarray(x.T))
    _close_to_float64(tx.grad.numpy(), d, w)
    _close_to_float64(tw.grad.numpy(), np.ascontiguousarray(d.T), x)
