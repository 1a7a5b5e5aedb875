"""Reductions: sum, mean, max, min, var, with PyTorch's `dim`/`keepdim` (NumPy's
`axis`/`keepdims` accepted too)."""
import collections
import numbers

import numpy as np

from ..autograd import Function
from ..tensor_base import wrap
from .elementwise import where
from .shape import Expand


def normalize_dims(dim, ndim, name="dim"):
    """None -> all axes; an int or a sequence of ints -> a sorted tuple of axes in range."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, numbers.Integral):
        dims = (dim,)
    elif isinstance(dim, (tuple, list)):
        dims = tuple(dim)
    else:
        raise TypeError(f"{name} must be an int or a tuple of ints, got {dim!r}")
    out = []
    for d in dims:
        if not isinstance(d, numbers.Integral) or isinstance(d, bool):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {dim!r}")
        lim = ndim if ndim else 1
        if not -lim <= d < lim:
            raise ValueError(f"{name}={d} is out of range for a tensor with {ndim} dims")
        out.append(int(d) % lim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={dim!r} names an axis twice")
    return tuple(sorted(out)) if ndim else ()


def _dim_args(dim, keepdim, axis, keepdims):
    if axis is not None:
        if dim is not None:
            raise TypeError("pass either dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    return dim, bool(keepdim)


def _expand(g, shape, dims, keepdim):
    """The tensor g (reduced over dims) broadcast back to the input's shape: the reduced
    axes put back with size 1, then copied along them."""
    if not keepdim and dims:
        g = g.reshape(np.expand_dims(np.empty(g.shape, dtype=bool), dims).shape)
    return Expand.apply(g, shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        return np.asarray(np.sum(x, axis=dims, keepdims=keepdim))

    @staticmethod
    def backward(ctx, δ):
        """∂(Σ x)/∂x = 1: δ is copied to every element that was summed."""
        return _expand(δ, ctx.shape, ctx.dims, ctx.keepdim), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim):
        ctx.shape, ctx.dims, ctx.keepdim = x.shape, dims, keepdim
        ctx.count = int(np.prod([x.shape[d] for d in dims])) if dims else 1
        if ctx.count == 0:           # the mean of nothing is NaN, as in PyTorch (without NumPy's warning)
            return np.full(np.sum(x, axis=dims, keepdims=keepdim).shape, np.nan, x.dtype)
        return np.asarray(np.mean(x, axis=dims, keepdims=keepdim))

    @staticmethod
    def backward(ctx, δ):
        """∂(Σ x / n)/∂x = 1/n (an empty x has an empty gradient)."""
        if ctx.count == 0:
            return wrap(np.zeros(ctx.shape, δ.dtype)), None, None
        return _expand(δ / ctx.count, ctx.shape, ctx.dims, ctx.keepdim), None, None


class MaxMin(Function):
    """y = max (or min) over dims. Backward: δ goes to the elements equal to the result,
    shared evenly among ties (a tie has no derivative; this is PyTorch's amax rule)."""

    @staticmethod
    def forward(ctx, x, dims, keepdim, largest):
        y = np.amax(x, axis=dims, keepdims=True) if largest else np.amin(x, axis=dims, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.dims, ctx.keepdim = dims, keepdim
        return y if keepdim else np.squeeze(y, axis=dims)

    @staticmethod
    def backward(ctx, δ):
        """δ shared among the elements equal to the result (a constant mask)."""
        x, y = ctx.saved
        hit = (x == y) | (np.isnan(x) & np.isnan(y))
        count = hit.sum(axis=ctx.dims, keepdims=True).astype(x.dtype)
        g = _expand(δ, x.shape, ctx.dims, ctx.keepdim)
        return where(hit, g / count, 0.0), None, None, None


class Var(Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim, correction):
        n = int(np.prod([x.shape[d] for d in dims])) if dims else 1
        mean = np.mean(x, axis=dims, keepdims=True)
        ctx.dims, ctx.keepdim, ctx.denom = dims, keepdim, n - correction
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(np.sum((x - mean) ** 2, axis=dims, keepdims=keepdim) / ctx.denom,
                              dtype=x.dtype)

    @staticmethod
    def backward(ctx, δ):
        """var = Σ(x − x̄)²/(n − c)  ⇒  ∂var/∂x = 2(x − x̄)/(n − c) (the x̄ terms sum to 0)."""
        x, = ctx.inputs[:1]
        mean = Mean.apply(x, ctx.dims, True)
        g = _expand(δ, x.shape, ctx.dims, ctx.keepdim)
        return g * 2 * (x - mean) / ctx.denom, None, None, None


def _reducible(x, name):
    if x.dtype.kind == "b":
        x = wrap(x.data.astype(np.int64), False)
    return x


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Σ of the elements, over all of them or over `dim` (an int or a tuple; keepdim keeps
    those dims with size 1). The gradient copies δ to every summed element."""
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    x = _reducible(x, "sum")
    return Sum.apply(x, normalize_dims(dim, x.ndim), keepdim)


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The mean over all elements or over `dim` (as sum); ∂/∂x = 1/n for each of the n
    averaged elements. The mean of no elements is NaN, as in PyTorch."""
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    if x.dtype.kind != "f":
        raise TypeError(f"mean(): input dtype should be floating point, got {x.dtype}")
    return Mean.apply(x, normalize_dims(dim, x.ndim), keepdim)


MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])


def _maxmin(x, dim, keepdim, axis, keepdims, largest):
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    if x.size == 0:
        raise ValueError(f"{'max' if largest else 'min'}(): the tensor is empty (shape {x.shape})")
    dims = normalize_dims(dim, x.ndim)
    values = MaxMin.apply(x, dims, keepdim, largest)
    if isinstance(dim, numbers.Integral):       # torch.max(x, dim) -> (values, indices)
        arg = np.argmax if largest else np.argmin
        idx = arg(x.data, axis=dims[0]) if x.ndim else np.array(0)
        if keepdim and x.ndim:
            idx = np.expand_dims(idx, dims[0])
        return MaxResult(values, wrap(np.asarray(idx, dtype=np.int64), False))
    return values


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """max over all elements, or over `dim`; with an int dim returns (values, indices) as PyTorch."""
    return _maxmin(x, dim, keepdim, axis, keepdims, True)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """min over all elements, or over `dim`; with an int dim returns (values, indices) as PyTorch."""
    return _maxmin(x, dim, keepdim, axis, keepdims, False)


def amax(x, dim=None, keepdim=False):
    """The maximum over `dim` (values only); ties share the gradient evenly."""
    return MaxMin.apply(x, normalize_dims(dim, x.ndim), bool(keepdim), True)


def amin(x, dim=None, keepdim=False):
    """The minimum over `dim` (values only); ties share the gradient evenly."""
    return MaxMin.apply(x, normalize_dims(dim, x.ndim), bool(keepdim), False)


def var(x, dim=None, keepdim=False, *, unbiased=None, correction=None, axis=None, keepdims=None):
    """Variance; unbiased (n − 1) by default as in PyTorch; correction=0 for the biased one."""
    dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
    if x.dtype.kind != "f":
        raise TypeError(f"var(): input dtype should be floating point, got {x.dtype}")
    if correction is None:
        correction = 0 if unbiased is False else 1
    return Var.apply(x, normalize_dims(dim, x.ndim), keepdim, correction)
