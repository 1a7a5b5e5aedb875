"""ext/batchnorm.pyx (BatchNorm's 'fused' path) against the NumPy formulas (the 'direct'
path, forced with minigrad.kernels.use) and against finite differences; the checks the
Python side makes before the unchecked loops run."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigrad as mg
import minigrad.kernels as kernels
import minigrad.nn.functional as F
from minigrad.ops import norm


def _run(x, w, b, g, training, path, momentum=0.1, eps=1e-5):
    """y, ∂L/∂x, ∂L/∂γ, ∂L/∂β, running mean, running var of L = Σ g · batch_norm(x) by `path`."""
    C = x.shape[1]
    rm = np.linspace(-0.5, 0.5, C).astype(x.dtype)
    rv = np.linspace(0.5, 2.0, C).astype(x.dtype)
    with kernels.use(path), kernels.trace() as calls:
        xt = mg.tensor(x, requires_grad=True)
        wt = None if w is None else mg.tensor(w, requires_grad=True)
        bt = None if b is None else mg.tensor(b, requires_grad=True)
        y = F.batch_norm(xt, rm, rv, wt, bt, training=training, momentum=momentum, eps=eps)
        (y * mg.tensor(g)).sum().backward()
    used = {c.path for c in calls if c.op == "batch_norm"}
    return ([y.numpy(), xt.grad.numpy(), None if w is None else wt.grad.numpy(),
             None if b is None else bt.grad.numpy(), rm, rv], used)


@st.composite
def cases(draw):
    N = draw(st.integers(1, 4))
    C = draw(st.integers(1, 5))
    spatial = tuple(draw(st.lists(st.integers(1, 9), min_size=0, max_size=2)))
    training = draw(st.booleans())
    if training and N * int(np.prod(spatial, dtype=int)) < 2:
        N = 2                                          # training needs > 1 value per channel
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    affine = draw(st.booleans())
    offset = draw(st.sampled_from([0.0, 3.0, -50.0]))
    seed = draw(st.integers(0, 2 ** 16))
    return (N, C) + spatial, dtype, training, affine, offset, seed


@given(cases())
def test_fused_matches_numpy_formulas(case):
    shape, dtype, training, affine, offset, seed = case
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.5, 2, C).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    fused, used_f = _run(x, w, b, g, training, None)
    ref, used_r = _run(x, w, b, g, training, "direct")
    assert used_f == {"fused"} and used_r == {"direct"}
    tol = 1e-10 if dtype == np.float64 else 2e-4
    names = ["y", "dx", "dw", "db", "running_mean", "running_var"]
    for name, a, r in zip(names, fused, ref):
        if r is None:
            assert a is None
            continue
        assert a.dtype == r.dtype == dtype and a.shape == r.shape, name
        scale = 1 + np.abs(r).max()
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * scale * (10 if name == "dx" else 1),
                                   err_msg=f"{name}, shape {shape}, training={training}")


def test_fused_against_a_formula_written_here(rng):
    """The batch statistics and y from the textbook formula, in float64."""
    x = rng.standard_normal((3, 4, 5, 6)) * 3 + 7
    w, b = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    y = F.batch_norm(mg.tensor(x), None, None, mg.tensor(w), mg.tensor(b), training=True).numpy()
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    expect = (x - mu) / np.sqrt(var + 1e-5) * w.reshape(1, 4, 1, 1) + b.reshape(1, 4, 1, 1)
    np.testing.assert_allclose(y, expect, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (5, 1, 1, 3), (1, 2, 3, 3), (3, 2)])
def test_fused_gradcheck(shape, training, rng):
    x = mg.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    C = shape[1]
    w = mg.tensor(rng.uniform(0.5, 2, C), requires_grad=True)
    b = mg.tensor(rng.standard_normal(C), requires_grad=True)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)

    def f(x, w, b):
        return F.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training)
    with kernels.trace() as calls:
        assert mg.gradcheck(f, [x, w, b])
    assert {c.path for c in calls if c.op == "batch_norm"} == {"fused"}


def test_float32_variance_with_a_large_mean(rng):
    """The shifted one-pass sums keep σ² accurate when |μ| ≫ σ (a naive E[x²] − E[x]² in
    float32 would lose every digit here). y's spread per channel is √(σ² / (σ² + eps)): it
    checks σ² alone (y itself carries μ's float32 rounding, ulp(1000)/σ ≈ 3e-3, on either path)."""
    x = (1000.0 + 0.01 * rng.standard_normal((8, 3, 16, 16))).astype(np.float32)
    y = F.batch_norm(mg.tensor(x), None, None, training=True).numpy()
    var = x.astype(np.float64).var(axis=(0, 2, 3))
    np.testing.assert_allclose(y.astype(np.float64).std(axis=(0, 2, 3)),
                               np.sqrt(var / (var + 1e-5)), rtol=1e-4)
    with kernels.use("direct"):
        ref = F.batch_norm(mg.tensor(x), None, None, training=True).numpy()
    np.testing.assert_allclose(y, ref, atol=1e-2)


def test_fused_non_contiguous_input_and_no_mutation(rng):
    x = rng.standard_normal((4, 5, 6, 3)).astype(np.float32).transpose(0, 3, 1, 2)   # (4, 3, 5, 6)
    assert not x.flags.c_contiguous
    g = rng.standard_normal(x.shape).astype(np.float32)
    x0, g0 = x.copy(), g.copy()
    fused, _ = _run(x, np.ones(3, np.float32), np.zeros(3, np.float32), g, True, None)
    ref, _ = _run(np.ascontiguousarray(x), np.ones(3, np.float32), np.zeros(3, np.float32), g,
                  True, "direct")
    for a, r in zip(fused, ref):
        np.testing.assert_allclose(a, r, atol=2e-5)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(g, g0)


def test_float16_and_empty_batches_take_the_numpy_path():
    with kernels.trace() as calls:
        F.batch_norm(mg.tensor(np.zeros((0, 3, 2, 2), np.float32)), np.zeros(3, np.float32),
                     np.ones(3, np.float32))
    assert [c.path for c in calls if c.op == "batch_norm"] == ["direct"]


def test_python_side_checks_before_the_kernels():
    x = np.ones((2, 3, 4), np.float32)
    for bad in (4, 1):                                  # (1,) would broadcast silently
        with pytest.raises(ValueError, match=r"batch_norm\(\): weight must have shape \(3,\)"):
            norm._forward_fused(x, np.ones(bad, np.float32), None, True, 0.1, 1e-5)
        with pytest.raises(ValueError, match=r"batch_norm\(\): bias must have shape \(3,\)"):
            norm._forward_fused(x, None, np.ones(bad, np.float32), True, 0.1, 1e-5)
        with pytest.raises(ValueError, match=r"batch_norm\(\): weight must have shape \(3,\)"):
            norm._backward_fused(x, x, np.zeros(3, np.float32), np.ones(3, np.float32),
                                 np.ones(bad, np.float32), True, (True, True, True))
    with pytest.raises(ValueError, match=r"batch_norm\(\): grad_output .* does not match"):
        norm._backward_fused(x, np.ones((2, 3, 5), np.float32), np.zeros(3, np.float32),
                             np.ones(3, np.float32), None, True, (True, True, True))
    with pytest.raises(ValueError, match=r"batch_norm\(\): input of shape \(2, 3, 0\)"):
        norm._forward_fused(np.ones((2, 3, 0), np.float32), None, None, True, 0.1, 1e-5)
    with pytest.raises(ValueError, match=r"dtype int64"):
        norm._forward_fused(np.ones((2, 3, 4), np.int64), None, None, True, 0.1, 1e-5)


def test_one_call_kernels_check_their_arguments():
    """batchnorm_forward and batchnorm_backward (the calls ops/norm.py makes) refuse
    per-channel arrays of another length, outputs of another shape, training on one value
    per channel and evaluation without running statistics: ValueErrors naming the argument."""
    from minigrad._ext import batchnorm as bn
    x = np.ones((2, 3, 4), np.float32)
    c3, c2 = np.ones(3, np.float32), np.ones(2, np.float32)
    y = np.empty_like(x)
    with pytest.raises(ValueError, match=r"batchnorm_forward\(\): weight has 2 entries for 3"):
        bn.batchnorm_forward(x, y, c3.copy(), c3.copy(), c2, None, 1e-5, True, None, None, 0.1, 1)
    with pytest.raises(ValueError, match=r"batchnorm_forward\(\): running_var has 2 entries"):
        bn.batchnorm_forward(x, y, c3.copy(), c3.copy(), None, None, 1e-5, True, c3.copy(),
                             c2.copy(), 0.1, 1)
    with pytest.raises(ValueError, match=r"batchnorm_forward\(\): y of shape \(2, 3, 5\)"):
        bn.batchnorm_forward(x, np.empty((2, 3, 5), np.float32), c3.copy(), c3.copy(), None, None,
                             1e-5, True, None, None, 0.1, 1)
    with pytest.raises(ValueError, match=r"more than 1 value per channel"):
        bn.batchnorm_forward(x[:1, :, :1].copy(), y[:1, :, :1].copy(), c3.copy(), c3.copy(),
                             None, None, 1e-5, True, None, None, 0.1, 1)
    with pytest.raises(ValueError, match=r"evaluation takes both running_mean and running_var"):
        bn.batchnorm_forward(x, y, c3.copy(), c3.copy(), None, None, 1e-5, False, c3.copy(),
                             None, 0.1, 1)
    with pytest.raises(ValueError, match=r"batchnorm_backward\(\): dx of shape \(2, 3, 5\)"):
        bn.batchnorm_backward(x, x, c3, c3, None, np.empty((2, 3, 5), np.float32), c3.copy(),
                              c3.copy(), True, 1)
    with pytest.raises(ValueError, match=r"batchnorm_backward\(\): db has 2 entries for 3"):
        bn.batchnorm_backward(x, x, c3, c3, None, None, c3.copy(), c2.copy(), True, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 5, 6), (3, 7, 1), (64, 40, 33)])
def test_one_call_kernels_equal_the_numpy_steps_bit_for_bit(dtype, shape):
    """batchnorm_forward's running statistics, μ, 1/σ̂ and y, and batchnorm_backward's
    ∂L/∂γ, ∂L/∂β and ∂L/∂x, equal the numpy steps ops/norm.py took before (μ, σ² from
    batchnorm_stats; the running statistics, 1/σ̂, a, k, m as NumPy array arithmetic;
    then batchnorm_affine, batchnorm_grad_sums, batchnorm_input_grad) bit for bit, in
    training and in evaluation."""
    from minigrad._ext import batchnorm as bn
    rng = np.random.default_rng(3)
    N, C, L = shape
    n, momentum, eps = N * L, 0.1, 1e-5
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    δ = rng.standard_normal(shape).astype(dtype)
    w, b = rng.uniform(0.5, 2, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    rm0, rv0 = rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    for training in (True, False):
        rm, rv = rm0.copy(), rv0.copy()
        if training:
            mean, var = np.empty(C, dtype), np.empty(C, dtype)
            bn.batchnorm_stats(x, mean, var, 2)
            rm *= 1 - momentum
            rm += momentum * mean
            rv *= 1 - momentum
            rv += momentum * var * (n / (n - 1))
        else:
            mean, var = rm0, rv0
        mean = np.array(mean, dtype=dtype)
        inv_std = (1.0 / np.sqrt(var + eps)).astype(dtype)
        y_want = np.empty_like(x)
        bn.batchnorm_affine(x, mean, inv_std * w, b, y_want, 2, True)
        s1, s2 = np.empty(C, dtype), np.empty(C, dtype)
        bn.batchnorm_grad_sums(x, δ, mean, s1, s2, 2, mask=y_want)
        dw_want, a = s2 * inv_std, inv_std * w
        if training:
            k, m = -a * dw_want * inv_std / n, -a * s1 / n
        else:
            k = m = np.zeros(C, dtype)
        dx_want = np.empty_like(x)
        bn.batchnorm_input_grad(x, δ, mean, a, k, m, dx_want, 2, mask=y_want)

        grm, grv = rm0.copy(), rv0.copy()
        y, gmean, ginv = np.empty_like(x), np.empty(C, dtype), np.empty(C, dtype)
        bn.batchnorm_forward(x, y, gmean, ginv, w, b, eps, training, grm, grv, momentum, 2, True)
        dx, dw, db = np.empty_like(x), np.empty(C, dtype), np.empty(C, dtype)
        bn.batchnorm_backward(x, δ, gmean, ginv, w, dx, dw, db, training, 2, mask=y)
        for name, got, want in (("running_mean", grm, rm), ("running_var", grv, rv),
                                ("mean", gmean, mean), ("inv_std", ginv, inv_std), ("y", y, y_want),
                                ("dw", dw, dw_want), ("db", db, s1), ("dx", dx, dx_want)):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} training={training}")
    # evaluation with μ and 1/σ̂ given (statistics of another dtype rounded by the caller)
    gmean, ginv = rm0.copy(), (1.0 / np.sqrt(rv0.astype(np.float64) + eps)).astype(dtype)
    y, y_want = np.empty_like(x), np.empty_like(x)
    bn.batchnorm_forward(x, y, gmean, ginv, w, b, eps, False, None, None, momentum, 2, True)
    bn.batchnorm_affine(x, rm0, ginv * w, b, y_want, 2, True)
    np.testing.assert_array_equal(y, y_want)
    np.testing.assert_array_equal(gmean, rm0)


@pytest.mark.parametrize("shape, dtype", [((4, 300, 7, 7), np.float32), ((8, 1030, 2, 2), np.float32),
                                          ((2, 3, 130, 130), np.float64), ((3, 70, 1, 40), np.float64)])
def test_fused_on_threads_and_row_blocks(shape, dtype):
    """Shapes past the one-thread grain: the elementwise passes in blocks of (n, c) rows
    over two threads for long rows (≥ 32 values), in blocks of whole channels (the flat
    loops) for short ones: the NumPy formulas' numbers."""
    rng = np.random.default_rng(7)
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w, b = rng.uniform(0.5, 2, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(2)
        fused, _ = _run(x, w, b, g, True, None)
    finally:
        mg.set_num_threads(before)
    ref, _ = _run(x, w, b, g, True, "direct")
    tol = 1e-10 if dtype == np.float64 else 2e-4
    for name, a, r in zip(["y", "dx", "dw", "db", "running_mean", "running_var"], fused, ref):
        scale = 1 + np.abs(r).max()
        np.testing.assert_allclose(a, r, rtol=0, atol=tol * scale * (10 if name == "dx" else 1),
                                   err_msg=name)


@pytest.mark.parametrize("L", [1, 3, 4, 9, 16, 31])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_rows_in_channel_blocks_on_any_thread_count(L, dtype):
    """Rows shorter than 32 values take the flat loops, each thread its blocks of whole
    channels (256 // L of them; C leaves the last block short): μ, σ², the masked backward
    sums, y = max(a·(x − μ) + b, 0) and ∂L/∂x = a·δ + k·(x − μ) + m (δ where r > 0) equal a
    float64 formula written here, and are the same bit for bit on one thread and on two
    (a shape past the one-thread grain)."""
    from minigrad._ext import batchnorm as bn
    rng = np.random.default_rng(L)
    C = 3 * max(1, 256 // L) + 1
    N = -(-40000 // (C * L))                      # past GRAIN (32768 values)
    x = (rng.standard_normal((N, C, L)) * 2 + 5).astype(dtype)
    δ = rng.standard_normal((N, C, L)).astype(dtype)
    r = np.maximum(rng.standard_normal((N, C, L)), 0).astype(dtype)
    a, b, k, m = (rng.standard_normal(C).astype(dtype) for _ in range(4))
    outs = []
    for threads in (1, 2):
        mean, var, s1, s2 = (np.empty(C, dtype) for _ in range(4))
        y, dx = np.empty_like(x), np.empty_like(x)
        bn.batchnorm_stats(x, mean, var, threads)
        bn.batchnorm_grad_sums(x, δ, mean, s1, s2, threads, mask=r)
        bn.batchnorm_affine(x, mean, a, b, y, threads, True)
        bn.batchnorm_input_grad(x, δ, mean, a, k, m, dx, threads, mask=r)
        outs.append((mean, var, s1, s2, y, dx))
    for one, two in zip(*outs):
        np.testing.assert_array_equal(two, one)
    mean, var, s1, s2, y, dx = outs[0]
    x64, mu = x.astype(np.float64), mean.astype(np.float64)[None, :, None]
    d64 = np.where(r > 0, δ, 0).astype(np.float64)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=tol, atol=tol * 5)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=tol * 10, atol=tol * 10)
    scale = np.sqrt(N * L) * 3
    np.testing.assert_allclose(s1, d64.sum(axis=(0, 2)), rtol=tol, atol=tol * scale)
    np.testing.assert_allclose(s2, (d64 * (x64 - mu)).sum(axis=(0, 2)), rtol=tol,
                               atol=tol * scale * 3)
    per = [v.astype(np.float64)[None, :, None] for v in (a, b, k, m)]
    np.testing.assert_allclose(y, np.maximum(per[0] * (x64 - mu) + per[1], 0), rtol=tol * 10,
                               atol=tol * 100)
    np.testing.assert_allclose(dx, per[0] * d64 + per[2] * (x64 - mu) + per[3], rtol=tol * 10,
                               atol=tol * 100)


@given(st.integers(1, 40), st.integers(1, 9), st.integers(1, 70),
       st.sampled_from([np.float32, np.float64]), st.sampled_from([-1, 0, 1]),
       st.sampled_from([1, 2]), st.integers(0, 2 ** 16))
def test_reductions_channel_by_channel_and_in_memory_order(N, C, L, dtype, by_rows, threads,
                                                           seed):
    """batchnorm_stats and batchnorm_grad_sums, channel by channel (by_rows=0), through
    memory in order with per-thread partial sums (1), or as the row length and the
    stream count decide (−1): μ, σ², Σ δ and Σ δ · (x − μ) of a float64 formula written
    here, on one thread or two (shapes past the one-thread grain included)."""
    from minigrad._ext import batchnorm as bn
    rng = np.random.default_rng(seed)
    if rng.random() < 0.3:                      # past GRAIN (32768 values): two threads split
        N, L = N + 40, L + 400
    x = (rng.standard_normal((N, C, L)) * 2 + 5).astype(dtype)
    δ = rng.standard_normal((N, C, L)).astype(dtype)
    mean, var = np.empty(C, dtype), np.empty(C, dtype)
    bn.batchnorm_stats(x, mean, var, threads, by_rows)
    x64 = x.astype(np.float64)
    mu = x64.mean(axis=(0, 2))
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(mean, mu, rtol=tol, atol=tol * 5)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=tol * 10, atol=tol * 10)
    s1, s2 = np.empty(C, dtype), np.empty(C, dtype)
    bn.batchnorm_grad_sums(x, δ, mean, s1, s2, threads, by_rows)
    d64 = δ.astype(np.float64)
    scale = np.sqrt(N * L) * 3
    np.testing.assert_allclose(s1, d64.sum(axis=(0, 2)), rtol=tol, atol=tol * scale)
    want = (d64 * (x64 - mean.astype(np.float64)[None, :, None])).sum(axis=(0, 2))
    np.testing.assert_allclose(s2, want, rtol=tol, atol=tol * scale * 3)


@given(st.integers(1, 60), st.integers(1, 6), st.integers(1, 80),
       st.sampled_from([np.float32, np.float64]), st.sampled_from([0, 1]),
       st.sampled_from([1, 2]), st.integers(0, 2 ** 16))
def test_masked_passes_equal_relu_backward_then_the_plain_ones(N, C, L, dtype, by_rows,
                                                                threads, seed):
    """mask=r in batchnorm_grad_sums and batchnorm_input_grad: bit for bit ReLU's backward
    (ext/elementwise.pyx relu_backward: δ where r > 0, else 0 — a NaN or ∞ in δ where
    r ≤ 0 gives 0, a NaN r masks) followed by the unmasked passes, in both orders of the
    reductions."""
    from minigrad._ext import batchnorm as bn, elementwise as ek
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, L)).astype(dtype)
    δ = rng.standard_normal((N, C, L)).astype(dtype)
    r = np.maximum(rng.standard_normal((N, C, L)), 0).astype(dtype)
    flat = δ.reshape(-1)
    flat[rng.integers(0, flat.size, 3)] = [np.nan, np.inf, -np.inf]
    r.reshape(-1)[rng.integers(0, r.size)] = np.nan
    mean = rng.standard_normal(C).astype(dtype)
    a, k, m = (rng.standard_normal(C).astype(dtype) for _ in range(3))
    masked = np.empty_like(δ)
    ek.relu_backward(r.reshape(-1), δ.reshape(-1), masked.reshape(-1), threads)
    want, got = [np.empty(C, dtype) for _ in range(2)], [np.empty(C, dtype) for _ in range(2)]
    bn.batchnorm_grad_sums(x, masked, mean, *want, threads, by_rows)
    bn.batchnorm_grad_sums(x, δ, mean, *got, threads, by_rows, mask=r)
    for w, g in zip(want, got):
        np.testing.assert_array_equal(g, w)
    dx_want, dx_got = np.empty_like(x), np.empty_like(x)
    bn.batchnorm_input_grad(x, masked, mean, a, k, m, dx_want, threads)
    bn.batchnorm_input_grad(x, δ, mean, a, k, m, dx_got, threads, mask=r)
    np.testing.assert_array_equal(dx_got, dx_want)


def test_masks_of_another_shape_and_stray_bounds_are_refused():
    """A mask not of x's shape; an upper bound hi without a mask, or in the forward
    without relu or with a residual: ValueErrors naming the kernel."""
    from minigrad._ext import batchnorm as bn
    x = np.ones((2, 3, 4), np.float32)
    s1, s2 = np.empty(3, np.float32), np.empty(3, np.float32)
    with pytest.raises(ValueError, match=r"batchnorm_grad_sums\(\): mask of shape \(2, 3, 5\)"):
        bn.batchnorm_grad_sums(x, x, np.zeros(3, np.float32), s1, s2, 1,
                               mask=np.ones((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"batchnorm_input_grad\(\): mask of shape \(1, 3, 4\)"):
        bn.batchnorm_input_grad(x, x, *(np.ones(3, np.float32) for _ in range(4)),
                                np.empty_like(x), 1, mask=np.ones((1, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"batchnorm_grad_sums\(\): hi=6 needs a mask"):
        bn.batchnorm_grad_sums(x, x, np.zeros(3, np.float32), s1, s2, 1, hi=6)
    with pytest.raises(ValueError, match=r"batchnorm_input_grad\(\): hi=6 needs a mask"):
        bn.batchnorm_input_grad(x, x, *(np.ones(3, np.float32) for _ in range(4)),
                                np.empty_like(x), 1, hi=6)
    for relu, z in ((False, None), (True, x)):
        with pytest.raises(ValueError, match=r"batchnorm_affine\(\): hi goes with relu"):
            bn.batchnorm_affine(x, *(np.ones(3, np.float32) for _ in range(3)), np.empty_like(x),
                                1, relu, z, 6)
    with pytest.raises(ValueError, match=r"batch_norm\(\): mask .* does not match"):
        norm._backward_fused(x, x, np.zeros(3, np.float32), np.ones(3, np.float32), None,
                             True, (True, True, True), mask=np.ones((2, 3, 4), np.float64))


def test_plain_args_is_a_shortcut_of_the_full_checks(monkeypatch):
    """_batch_norm_args' shortcut (_plain_args) returns what the full checks return, or
    None — never accepting what they refuse, so every error still comes from them."""
    C = 3
    x = mg.tensor(np.ones((2, C, 2, 2), np.float32))
    ok = dict(rm=np.zeros(C, np.float32), rv=np.ones(C, np.float32),
              w=mg.tensor(np.ones(C, np.float32)), b=mg.tensor(np.zeros(C, np.float32)),
              training=True, momentum=0.1, eps=1e-5)
    cases = [{}, dict(rm=None, rv=None), dict(w=None, b=None), dict(training=False),
             dict(momentum=0), dict(momentum=1.5), dict(momentum=np.float32(0.1)),
             dict(eps=-1.0), dict(eps=float("nan")), dict(eps=np.float64(1e-5)),
             dict(rm=np.zeros(C + 1, np.float32)), dict(rv=np.ones(C, np.float64)),
             dict(rm=mg.tensor(np.zeros(C, np.float32))), dict(w=np.ones(C, np.float32)),
             dict(b=mg.tensor(np.zeros(C, np.float64))), dict(w=mg.tensor(np.ones(C + 1, np.float32))),
             dict(training=False, rm=None), dict(x=mg.tensor(np.ones((1, C), np.float32))),
             dict(x=np.ones((2, C, 2), np.float32)), dict(x=mg.tensor(np.ones((2, C), np.int64)))]

    def full(a):
        monkeypatch.setattr(norm, "_plain_args", lambda *args: None)
        try:
            return norm._batch_norm_args("batch_norm", a["x"], a["rm"], a["rv"], a["w"], a["b"],
                                         a["training"], a["momentum"], a["eps"])
        except (TypeError, ValueError) as e:
            return e
        finally:
            monkeypatch.undo()

    shortcuts = 0
    for change in cases:
        a = {**ok, "x": x, **change}
        quick = norm._plain_args(a["x"], a["rm"], a["rv"], a["w"], a["b"], a["training"],
                                 a["momentum"], a["eps"])
        checked = full(a)
        if quick is None:
            continue
        shortcuts += 1
        assert not isinstance(checked, Exception), (change, checked)
        assert len(quick) == len(checked)
        for q, c in zip(quick, checked):
            assert q is c or (type(q) is type(c) and q == c), (change, q, c)
    assert shortcuts >= 4                     # the usual calls do take the shortcut
