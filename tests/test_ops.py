"""Property tests for every foundation op: forward against NumPy, gradients against
finite differences (mg.gradcheck, float64), no mutation of inputs or of δ."""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.nn.functional as F

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def values(shape, lo=-2.0, hi=2.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False,
                                                           allow_infinity=False, width=64))


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast: some dims of the second set to 1, some leading dims dropped."""
    a = draw(shapes)
    b = list(a)
    for i in range(len(b)):
        if draw(st.booleans()):
            b[i] = 1
    b = tuple(b[draw(st.integers(0, len(b))):])
    if draw(st.booleans()):
        a, b = b, a
    return a, b


def away_from(arr, points, gap=0.05):
    """Push elements closer than `gap` to a kink (0 for ReLU/abs, a clip bound) away from it."""
    arr = arr.copy()
    for p in points:
        near = np.abs(arr - p) < gap
        arr[near] = p + np.where(arr[near] >= p, gap, -gap)
    return arr


def check(fn, reference, *arrays):
    """fn on Tensors equals reference on arrays; backward mutates neither inputs nor δ;
    gradients match finite differences."""
    tensors = [mg.tensor(a, requires_grad=True) for a in arrays]
    before = [a.copy() for a in arrays]
    out = fn(*tensors)
    np.testing.assert_allclose(out.numpy(), reference(*arrays), rtol=1e-12, atol=1e-12)
    δ = np.random.default_rng(0).standard_normal(out.shape)
    δ_before = δ.copy()
    out.backward(δ)
    np.testing.assert_array_equal(δ, δ_before)
    for t, a, b in zip(tensors, arrays, before):
        np.testing.assert_array_equal(t.numpy(), b)
        assert t.grad.shape == t.shape and t.grad.dtype == t.dtype
    assert mg.gradcheck(fn, tensors)


# ---- arithmetic with broadcasting -------------------------------------------------------
@given(broadcast_pair().flatmap(lambda s: st.tuples(values(s[0]), values(s[1]))))
def test_add_sub_mul_broadcast(ab):
    a, b = ab
    check(lambda x, y: x + y, np.add, a, b)
    check(lambda x, y: x - y, np.subtract, a, b)
    check(lambda x, y: x * y, np.multiply, a, b)


@given(broadcast_pair().flatmap(lambda s: st.tuples(values(s[0]), values(s[1], 0.5, 2.0))))
def test_div_broadcast(ab):
    a, b = ab
    check(lambda x, y: x / y, np.divide, a, b)
    check(lambda x, y: y / x, lambda p, q: q / p, a * 0 + 1.5 + np.abs(a), b)


@given(broadcast_pair().flatmap(lambda s: st.tuples(values(s[0], 0.3, 2.0), values(s[1], -2, 2))))
def test_pow_both_sides_tensors(ab):
    a, b = ab
    check(lambda x, y: x ** y, np.power, a, b)


@given(values(shapes, 0.3, 2.0), st.sampled_from([2, 3, 0.5, -1.5]), st.floats(-2, 2))
def test_scalar_operands_on_both_sides(a, p, s):
    check(lambda x: x ** p, lambda v: v ** p, a)
    check(lambda x: 2.0 ** x, lambda v: 2.0 ** v, a)
    check(lambda x: s - x, lambda v: s - v, a)
    check(lambda x: s / x, lambda v: s / v, a)
    check(lambda x: x * s + s, lambda v: v * s + s, a)
    check(lambda x: -x, np.negative, a)


def test_scalars_keep_float32_and_arrays_promote():
    x = mg.tensor([1.0, 2.0])
    assert x.dtype == np.float32
    assert (x * 2.5).dtype == np.float32 and (3 - x).dtype == np.float32
    assert (x * np.float64(2)).dtype == np.float32
    assert (x + mg.tensor(np.ones(2))).dtype == np.float64          # NumPy promotion


# ---- pointwise functions ----------------------------------------------------------------
@given(values(shapes))
def test_exp_tanh_sigmoid(a):
    check(lambda x: x.exp(), np.exp, a)
    check(lambda x: x.tanh(), np.tanh, a)
    check(lambda x: x.sigmoid(), lambda v: 1 / (1 + np.exp(-v)), a)


@given(values(shapes, 0.1, 3.0))
def test_log_sqrt(a):
    check(lambda x: x.log(), np.log, a)
    check(lambda x: x.sqrt(), np.sqrt, a)


@given(values(shapes))
def test_abs_relu_away_from_zero(a):
    a = away_from(a, [0.0])
    check(lambda x: abs(x), np.abs, a)
    check(lambda x: x.relu(), lambda v: np.maximum(v, 0), a)
    check(lambda x: F.relu(x), lambda v: np.maximum(v, 0), a)


@given(values(shapes), st.floats(-1.5, 0.0), st.floats(0.1, 1.5))
def test_clip_away_from_bounds(a, lo, hi):
    a = away_from(a, [lo, hi])
    check(lambda x: x.clip(lo, hi), lambda v: np.clip(v, lo, hi), a)
    check(lambda x: mg.clip(x, min=lo), lambda v: np.maximum(v, lo), a)


def test_sigmoid_does_not_overflow():
    x = mg.tensor([-1000.0, 0.0, 1000.0])
    np.testing.assert_array_equal(x.sigmoid().numpy(), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernel_large_input_and_nan(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(100_003).astype(dtype)       # above the kernel's parallel grain
    a[5] = np.nan
    x = mg.tensor(a, requires_grad=True)
    y = x.relu()
    np.testing.assert_array_equal(np.isnan(y.numpy()), np.isnan(a))
    ok = ~np.isnan(a)
    np.testing.assert_array_equal(y.numpy()[ok], np.maximum(a[ok], 0))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[ok], (a[ok] > 0).astype(dtype))


# ---- matmul -------------------------------------------------------------------------------
@st.composite
def matmul_shapes(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    kind = draw(st.sampled_from(["vv", "vm", "mv", "mm", "bm", "mb", "bb", "bv", "vb"]))
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    b1 = tuple(1 if draw(st.booleans()) else d for d in batch)
    return {"vv": ((k,), (k,)), "vm": ((k,), (k, n)), "mv": ((m, k), (k,)),
            "mm": ((m, k), (k, n)), "bm": (batch + (m, k), (k, n)),
            "mb": ((m, k), batch + (k, n)), "bb": (batch + (m, k), b1 + (k, n)),
            "bv": (batch + (m, k), (k,)), "vb": ((k,), batch + (k, n))}[kind]


@given(matmul_shapes().flatmap(lambda s: st.tuples(values(s[0]), values(s[1]))))
def test_matmul_batched_and_1d(ab):
    a, b = ab
    check(lambda x, y: x @ y, np.matmul, a, b)


def test_matmul_shape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        mg.ones(2, 3) @ mg.ones(2, 3)


# ---- reductions ------------------------------------------------------------------------
@st.composite
def array_and_dims(draw, lo=-2.0, hi=2.0, distinct=False):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    if distinct:                       # no ties: a permutation of well-separated values
        a = draw(st.permutations(range(int(np.prod(shape))))) 
        arr = (np.array(a, dtype=np.float64).reshape(shape) - len(a) / 2) * 0.1
    else:
        arr = draw(values(shape, lo, hi))
    dims = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)
                          .map(tuple)))
    return arr, dims, draw(st.booleans())


@given(array_and_dims())
def test_sum_mean_dims_keepdim(case):
    a, dims, keep = case
    check(lambda x: x.sum(dim=dims, keepdim=keep), lambda v: np.sum(v, axis=dims, keepdims=keep), a)
    check(lambda x: x.mean(axis=dims, keepdims=keep), lambda v: np.mean(v, axis=dims, keepdims=keep), a)


@given(array_and_dims())
def test_var_unbiased_and_biased(case):
    a, dims, keep = case
    n = a.size if dims is None else int(np.prod([a.shape[d] for d in np.atleast_1d(dims)]))
    assume(n > 1)
    check(lambda x: x.var(dim=dims, keepdim=keep), lambda v: np.var(v, axis=dims, keepdims=keep, ddof=1), a)
    check(lambda x: x.var(dim=dims, keepdim=keep, correction=0),
          lambda v: np.var(v, axis=dims, keepdims=keep), a)


@given(array_and_dims(distinct=True))
def test_max_min_without_ties(case):
    a, dims, keep = case
    if isinstance(dims, int):
        check(lambda x: x.max(dim=dims, keepdim=keep).values, lambda v: np.max(v, axis=dims, keepdims=keep), a)
        check(lambda x: x.min(dim=dims, keepdim=keep)[0], lambda v: np.min(v, axis=dims, keepdims=keep), a)
        idx = mg.tensor(a).max(dim=dims, keepdim=keep).indices.numpy()
        np.testing.assert_array_equal(idx, np.argmax(a, axis=dims) if not keep
                                      else np.expand_dims(np.argmax(a, axis=dims), dims))
    else:
        check(lambda x: x.max(dim=dims, keepdim=keep), lambda v: np.max(v, axis=dims, keepdims=keep), a)
        check(lambda x: x.min(dims, keep), lambda v: np.min(v, axis=dims, keepdims=keep), a)


def test_max_tie_shares_gradient():
    x = mg.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_reduction_dim_errors():
    with pytest.raises(ValueError, match="out of range"):
        mg.ones(2, 3).sum(dim=2)
    with pytest.raises(TypeError, match="dim"):
        mg.ones(2, 3).sum(dim=1.0)


# ---- shape ops -----------------------------------------------------------------------------
@given(values(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)), st.data())
def test_reshape_view_flatten(a, data):
    new = tuple(data.draw(st.permutations(list(a.shape))))
    check(lambda x: x.reshape(new), lambda v: v.reshape(new), a)
    check(lambda x: x.view(-1), lambda v: v.reshape(-1), a)
    s = data.draw(st.integers(0, a.ndim - 1))
    e = data.draw(st.integers(s, a.ndim - 1))
    check(lambda x: x.flatten(s, e),
          lambda v: v.reshape(v.shape[:s] + (-1,) + v.shape[e + 1:]), a)


@given(values(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)), st.data())
def test_permute_transpose_T(a, data):
    perm = tuple(data.draw(st.permutations(range(a.ndim))))
    check(lambda x: x.permute(*perm), lambda v: np.transpose(v, perm), a)
    check(lambda x: x.T, lambda v: v.T, a)
    d0, d1 = data.draw(st.integers(0, a.ndim - 1)), data.draw(st.integers(-a.ndim, -1))
    check(lambda x: x.transpose(d0, d1), lambda v: np.swapaxes(v, d0, d1), a)


@given(values(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=2)), st.data())
def test_squeeze_unsqueeze(a, data):
    check(lambda x: x.squeeze(), np.squeeze, a)
    d = data.draw(st.integers(-a.ndim - 1, a.ndim))
    check(lambda x: x.unsqueeze(d), lambda v: np.expand_dims(v, d), a)
    ones = [i for i, n in enumerate(a.shape) if n == 1]
    if ones:
        check(lambda x: x.squeeze(ones[0]), lambda v: np.squeeze(v, ones[0]), a)


@st.composite
def basic_index(draw, shape):
    idx = []
    for n in shape:
        kind = draw(st.sampled_from(["int", "slice", "all"]))
        if kind == "int":
            idx.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            lo = draw(st.integers(0, n - 1))
            idx.append(slice(lo, draw(st.integers(lo + 1, n)), draw(st.integers(1, 2))))
        else:
            idx.append(slice(None))
    if draw(st.booleans()):
        idx.insert(draw(st.integers(0, len(idx))), None)
    return tuple(idx)


@given(values(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)), st.data())
def test_indexing_basic(a, data):
    idx = data.draw(basic_index(a.shape))
    check(lambda x: x[idx], lambda v: v[idx], a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dim", [0, 1, 2, 3])
def test_large_cat_on_the_threads_matches_numpy(dtype, dim, monkeypatch):
    """cat of C-contiguous activations (≥ 2¹⁸ elements, ≥ 2 rows before dim) copies rows
    on the threads (ext/elementwise.pyx concat_rows; DenseNet's channel concatenations):
    np.concatenate's array bit for bit, empty parts skipped; dim 0 (one row) and a mixed
    dtype (promoted) stay NumPy's. Its backward hands each part its slice of δ, first order
    and recorded (a second derivative through the cut)."""
    from minigrad.ops import elementwise
    ran = []
    real = elementwise._k.concat_rows
    monkeypatch.setattr(elementwise._k, "concat_rows", lambda *a: (ran.append(len(a[0])), real(*a))[1])
    rng = np.random.default_rng(dim)
    sizes = [5, 0, 32, 1, 17]
    shapes = [tuple(n if i == dim else m for i, m in enumerate((4, 60, 40, 36))) for n in sizes]
    parts = [rng.standard_normal(sh).astype(dtype) for sh in shapes]
    ts = [mg.tensor(p, requires_grad=True) for p in parts]
    y = mg.cat(ts, dim=dim)
    np.testing.assert_array_equal(y.numpy(), np.concatenate(parts, axis=dim))
    assert ran == ([] if dim == 0 else [4])                      # the empty part skipped
    δ = rng.standard_normal(y.shape).astype(dtype)
    y.backward(mg.tensor(δ))
    cuts = np.cumsum([0] + sizes)
    for t, a, b in zip(ts, cuts[:-1], cuts[1:]):
        np.testing.assert_array_equal(t.grad.numpy(), np.take(δ, range(a, b), axis=dim))
    mixed = mg.cat([mg.tensor(parts[0]), mg.tensor(parts[2].astype(np.float16))], dim=dim)
    assert mixed.dtype == np.result_type(dtype, np.float16)
    x = mg.tensor(parts[0].astype(np.float64), requires_grad=True)
    (g,) = mg.autograd.grad((mg.cat([x * x, x], dim=dim) ** 2).sum(), [x], create_graph=True)
    (gg,) = mg.autograd.grad(g.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), 12 * x.numpy() ** 2 + 2, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("idx", [(slice(None), slice(None), slice(None, None, 2), slice(None, None, 2)),
                                 (slice(None), slice(None, None, -1), slice(1, -1), slice(None)),
                                 (slice(1, None), slice(None), slice(1, None, 2), slice(2, 27, 2)),
                                 (Ellipsis,)])
def test_large_slices_and_padding_on_the_threads_match_numpy(dtype, idx, monkeypatch):
    """Slicing, its backward (δ placed into zeros) and constant padding of activations of
    ≥ 32768 elements run on ext/elementwise.pyx's threaded fill and strided copy (ResNet-20's
    option-A shortcut: pad(x[:, :, ::2, ::2])): the same values as NumPy's, every stride
    (negative, stepped, offset), for the forward and the backward."""
    from minigrad.ops import elementwise
    ran = []
    for name in ("copy4", "fill"):
        real = getattr(elementwise._k, name)
        monkeypatch.setattr(elementwise._k, name,
                            lambda *a, _r=real, _n=name: (ran.append(_n), _r(*a))[1])
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 32, 28, 28)).astype(dtype)       # every slice ≥ 32768 elements
    xt = mg.tensor(x, requires_grad=True)
    widths = (0, 0, 1, 2, 4, 4)                      # W: none, H: 1 | 2, C: 4 | 4
    y = F.pad(xt[idx], widths, value=0.5)
    want = np.pad(x[idx], ((0, 0), (4, 4), (1, 2), (0, 0)), constant_values=0.5)
    np.testing.assert_array_equal(y.numpy(), want)
    δ = rng.standard_normal(y.shape).astype(dtype)
    y.backward(mg.tensor(δ))
    dx = np.zeros_like(x)
    dx[idx] = δ[:, 4:-4, 1:-2, :]
    np.testing.assert_array_equal(xt.grad.numpy(), dx)
    # copies: x[idx], pad's interior, δ's interior (pad's backward), δ into zeros (the
    # slice's backward); fills: pad's border, the zeros
    assert ran.count("copy4") == 4 and ran.count("fill") == 2, ran


@given(values(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)), st.data())
def test_indexing_integer_arrays_with_repeats_accumulate(a, data):
    idx = np.array(data.draw(st.lists(st.integers(0, a.shape[0] - 1), min_size=1, max_size=6)))
    check(lambda x: x[idx], lambda v: v[idx], a)
    check(lambda x: x[mg.tensor(idx)], lambda v: v[idx], a)
    mask = a > 0
    check(lambda x: x[mask], lambda v: v[mask], a)


def test_repeated_index_gradient_counts_repeats():
    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), st.data())
def test_cat_and_stack(shape, data):
    d = data.draw(st.integers(-len(shape), len(shape) - 1))
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        s = list(shape)
        s[d] = data.draw(st.integers(1, 3))
        parts.append(data.draw(values(tuple(s))))
    check(lambda *xs: mg.cat(xs, dim=d), lambda *vs: np.concatenate(vs, axis=d), *parts)
    same = [data.draw(values(shape)) for _ in range(len(parts))]
    ds = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(lambda *xs: mg.stack(xs, dim=ds), lambda *vs: np.stack(vs, axis=ds), *same)


@given(broadcast_pair().flatmap(lambda s: st.tuples(values(s[0]), values(s[1]))))
def test_where(ab):
    a, b = ab
    cond = np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape)) > 0
    check(lambda x, y: mg.where(cond, x, y), lambda p, q: np.where(cond, p, q), a, b)


@given(values(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)), st.data())
def test_pad_constant(a, data):
    k = data.draw(st.integers(1, a.ndim))
    pads = tuple(data.draw(st.integers(0, 2)) for _ in range(2 * k))
    value = data.draw(st.floats(-1, 1))
    widths = [(0, 0)] * (a.ndim - k) + [(pads[2 * i], pads[2 * i + 1]) for i in reversed(range(k))]
    check(lambda x: F.pad(x, pads, value=value),
          lambda v: np.pad(v, widths, constant_values=value), a)


def test_shape_errors_are_clear():
    x = mg.ones(2, 3)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match="match"):
        mg.cat([x, mg.ones(3, 2)], dim=0)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0)
    with pytest.raises(IndexError, match=r"\(2, 3\)"):
        x[5]


def test_comparisons_are_not_differentiable():
    x = mg.tensor([1.0, -1.0], requires_grad=True)
    for c in (x > 0, x >= 0, x < 0, x <= 0, x == 1, x != 1):
        assert not c.requires_grad and c.dtype == bool
    np.testing.assert_array_equal((x > 0).numpy(), [True, False])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [32767, 32768, 100003])
def test_add_of_large_arrays_is_numpys_sum(dtype, n):
    """Whole activations are added by the threaded kernel (ext/elementwise.pyx add): the
    same numbers as NumPy's a + b, bit for bit (inf and NaN included), into a new array or
    into one of the operands; its gradient is δ for both."""
    from minigrad.ops.elementwise import add_arrays
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(dtype).reshape(-1, 1)
    b = rng.standard_normal(n).astype(dtype).reshape(-1, 1)
    a[::97], b[5::101] = np.inf, np.nan
    want = a + b
    np.testing.assert_array_equal(add_arrays(a, b), want)
    at, bt = mg.tensor(a, requires_grad=True), mg.tensor(b, requires_grad=True)
    y = at + bt
    np.testing.assert_array_equal(y.numpy(), want)
    y.backward(np.full_like(a, 3))
    np.testing.assert_array_equal(at.grad.numpy(), np.full_like(a, 3))
    np.testing.assert_array_equal(bt.grad.numpy(), np.full_like(b, 3))
    c = a.copy()
    assert add_arrays(c, b, out=c) is c
    np.testing.assert_array_equal(c, want)
    np.testing.assert_array_equal(add_arrays(a[::2], b[::2]), want[::2])     # strided: NumPy
