"""Shape ops: reshape/view, permute/transpose, squeeze/unsqueeze, indexing, cat, stack, pad.

They move elements without changing them, so each backward moves δ back the same way.
"""
import math
import numbers

import numpy as np

from ..autograd import Function, is_grad_enabled
from ..tensor_base import TensorBase, as_tensor, wrap
from .elementwise import concatenate, copy_into, filled, operand


def _axis(d, ndim, name="dim"):
    if not isinstance(d, numbers.Integral) or isinstance(d, bool):
        raise TypeError(f"{name} must be an int, got {d!r}")
    if not -ndim <= d < ndim:
        raise ValueError(f"{name}={d} is out of range for a tensor with {ndim} dims")
    return int(d) % ndim


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, δ):
        """Reshape δ back to the input's shape."""
        return Reshape.apply(δ, ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, x, axes):
        ctx.axes = axes
        return np.transpose(x, axes)

    @staticmethod
    def backward(ctx, δ):
        """Apply the inverse permutation to δ."""
        return Permute.apply(δ, tuple(int(a) for a in np.argsort(ctx.axes))), None


class GetItem(Function):
    @staticmethod
    def forward(ctx, x, idx):
        ctx.shape, ctx.dtype, ctx.idx = x.shape, x.dtype, idx
        v = x[idx]
        if not (_is_basic(idx) and isinstance(v, np.ndarray)):
            return np.array(v, copy=True)     # a copy: an op's output is never a view of its input
        return copy_into(np.empty(v.shape, v.dtype), v)   # (x[:, :, ::2, ::2]: on the threads)

    @staticmethod
    def backward(ctx, δ):
        """Scatter δ into zeros at the indexed places, accumulating repeated indices."""
        return IndexGrad.apply(δ, ctx.shape, ctx.idx), None


class IndexGrad(Function):
    """y = zeros(shape) with δ added at x[idx]'s places (repeated indices accumulate):
    the backward of indexing. Linear in δ; its own backward indexes again."""

    @staticmethod
    def forward(ctx, δ, shape, idx):
        ctx.idx = idx
        g = filled(shape, δ.dtype, 0)
        if _is_basic(idx):
            view = g[idx]
            if isinstance(view, np.ndarray):
                copy_into(view, δ)
            else:                                 # one element
                g[idx] = δ
        else:
            np.add.at(g, idx, δ)
        return g

    @staticmethod
    def backward(ctx, g):
        """∂y/∂δ gathers: g at the indexed places."""
        return GetItem.apply(g, ctx.idx), None, None


class View(Function):
    """y = x[idx] for a basic index (slices, ints) as a *view*, no copy: how backward
    formulas hand out parts of δ (Cat, Stack). Its backward scatters into zeros."""

    @staticmethod
    def forward(ctx, x, idx):
        ctx.shape, ctx.idx = x.shape, idx
        return x[idx]

    @staticmethod
    def backward(ctx, g):
        return IndexGrad.apply(g, ctx.shape, ctx.idx), None


class SetItem(Function):
    """y = x with y[idx] = v (v broadcast to x[idx]'s shape): Tensor.__setitem__.

    Backward: ∂L/∂x = δ with δ[idx] set to 0 (those entries were overwritten);
    ∂L/∂v = δ[idx] (Function.apply sums it back over v's broadcast dims)."""

    @staticmethod
    def forward(ctx, x, v, idx):
        ctx.idx = idx
        y = np.array(x, copy=True)
        y[idx] = v
        return y

    @staticmethod
    def backward(ctx, δ):
        dx = dv = None
        if ctx.needs_input_grad[0]:
            dx = SetItem.apply(δ, 0.0, ctx.idx)           # δ with δ[idx] = 0
        if ctx.needs_input_grad[1]:
            dv = GetItem.apply(δ, ctx.idx)                # δ[idx]
        return dx, dv, None


class Expand(Function):
    """y = x broadcast to `shape` (Tensor.expand), as a copy.

    Backward: δ summed over the broadcast dims (done by the engine: autograd.sum_to)."""

    @staticmethod
    def forward(ctx, x, shape):
        return np.array(np.broadcast_to(x, shape), copy=True)

    @staticmethod
    def backward(ctx, δ):
        return δ, None


class Repeat(Function):
    """y = x tiled `reps[i]` times along dim i (Tensor.repeat); extra leading reps add dims.

    Backward: y viewed as (r₀, n₀, r₁, n₁, ...) holds r₀·r₁·… copies of x, so
    ∂L/∂x = δ reshaped that way and summed over the r axes."""

    @staticmethod
    def forward(ctx, x, reps):
        ctx.shape = (1,) * (len(reps) - x.ndim) + x.shape     # x's shape with the new leading dims
        ctx.reps = reps
        return np.tile(x, reps)

    @staticmethod
    def backward(ctx, δ):
        pairs = [n for r, s in zip(ctx.reps, ctx.shape) for n in (r, s)]
        g = δ.reshape(pairs)                                  # (r₀, n₀, r₁, n₁, ...)
        g = g.sum(axis=tuple(range(0, len(pairs), 2)))         # -> (n₀, n₁, ...)
        return g, None


def _is_basic(idx):
    items = idx if isinstance(idx, tuple) else (idx,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, numbers.Integral)) for i in items)


class Cat(Function):
    """y = [x₁ | x₂ | … ] along dim: y[…, o_k + i, …] = x_k[…, i, …], o_k = Σ_{l<k} size_l.

    Inception and DenseNet concatenate along the channels at every block, so both
    directions move each element once and no more: the forward allocates the one
    output and copies each input into its slice (ops.elementwise.concatenate: per row on
    the threads, or np.concatenate); the backward hands each input its slice of δ as a
    *view* (no copy; the op that consumes it copies only if it needs contiguous memory,
    as a conv or ReLU kernel does). benchmarks/cat.py times it against a bare memory copy
    and PyTorch.
    """

    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.splits = np.cumsum([x.shape[dim] for x in xs])[:-1]
        return concatenate(xs, dim)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x_k = δ[…, o_k : o_k + size_k, …]: δ cut along dim into the inputs' sizes
        (views: View ops where the backward is recorded, else the arrays' views as they are
        — a DenseNet-121 step cuts δ a thousand times)."""
        bounds = [0, *ctx.splits, δ.shape[ctx.dim]]
        lead = (slice(None),) * ctx.dim
        cuts = [lead + (slice(int(a), int(b)),) for a, b in zip(bounds[:-1], bounds[1:])]
        if not is_grad_enabled():
            return (None,) + tuple(wrap(δ.data[c]) for c in cuts)
        return (None,) + tuple(View.apply(δ, c) for c in cuts)


class Stack(Function):
    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        return np.stack(xs, axis=dim)

    @staticmethod
    def backward(ctx, δ):
        """Take δ apart along the new dim (views)."""
        lead = (slice(None),) * ctx.dim
        return (None,) + tuple(View.apply(δ, lead + (k,)) for k in range(δ.shape[ctx.dim]))


class Pad(Function):
    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        if x.dtype not in (np.float32, np.float64):
            return np.pad(x, widths, mode="constant", constant_values=value)
        y = filled(tuple(lo + n + hi for (lo, hi), n in zip(widths, x.shape)), x.dtype, value)
        copy_into(y[ctx.slices], x)                                  # the interior
        return y

    @staticmethod
    def backward(ctx, δ):
        """The padding is constant: δ of the interior goes back, the border's is dropped."""
        return GetItem.apply(δ, ctx.slices), None, None


# ---- public functions ----------------------------------------------------------------
def _view(out, x):
    """Mark `out` as a view of x (NumPy shares the memory when it can): an in-place op on
    out then bumps x's version too, and is refused while a graph is recorded."""
    out._base = (x, None)
    return out


def reshape(x, *shape):
    """The same elements in a new shape (C order); one dim may be -1 (inferred), e.g.
    ``x.reshape(len(x), -1)`` flattens all but the batch dim. Backward reshapes δ back."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, numbers.Integral) or isinstance(s, bool):
            raise TypeError(f"reshape(): shape must be ints, got {shape!r}")
    shape = [int(s) for s in shape]
    size = x.data.size
    known = math.prod(s for s in shape if s != -1)
    free = [i for i, s in enumerate(shape) if s == -1]
    ok = len(free) <= 1 and all(s >= -1 for s in shape)
    if ok and free:
        ok = known != 0 and size % known == 0
        if ok:
            shape[free[0]] = size // known
    if not ok or math.prod(shape) != size:
        raise ValueError(f"reshape(): cannot reshape a tensor of shape {x.shape} "
                         f"({size} elements) into shape {tuple(shape)}")
    target = tuple(shape)
    return _view(Reshape.apply(x, target), x)


def flatten(x, start_dim=0, end_dim=-1):
    """Merge dims start_dim..end_dim into one (torch.flatten)."""
    if x.ndim == 0:
        return reshape(x, 1)
    s, e = _axis(start_dim, x.ndim, "start_dim"), _axis(end_dim, x.ndim, "end_dim")
    if s > e:
        raise ValueError(f"flatten(): start_dim ({start_dim}) must not come after end_dim ({end_dim})")
    shape = x.shape[:s] + (-1 if x.size else int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return reshape(x, shape)


def permute(x, *dims):
    """Reorder the dims: output dim i is input dim dims[i], e.g. ``x.permute(0, 3, 1, 2)``
    turns an (N, H, W, C) batch into (N, C, H, W). Backward applies the inverse order."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim:
        raise ValueError(f"permute(): dims {dims} must name all {x.ndim} axes of shape {x.shape}")
    axes = tuple(_axis(d, x.ndim) for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"permute(): dims {dims} repeat an axis")
    return _view(Permute.apply(x, axes), x)


def transpose(x, dim0, dim1):
    """Swap two dims (``x.transpose(0, 1)`` of a matrix is its transpose)."""
    if x.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return x
    axes = list(range(x.ndim))
    a, b = _axis(dim0, x.ndim, "dim0"), _axis(dim1, x.ndim, "dim1")
    axes[a], axes[b] = axes[b], axes[a]
    return _view(Permute.apply(x, tuple(axes)), x)


def squeeze(x, dim=None):
    """Drop dims of size 1 (all of them, or those among `dim`, an int or a tuple)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        dims = {_axis(d, x.ndim) for d in dims} if x.ndim else set()
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1))
    return _view(Reshape.apply(x, shape), x)


def unsqueeze(x, dim):
    """Insert a dim of size 1 at position `dim`, e.g. (C,) -> (1, C) with dim=0."""
    d = _axis(dim, x.ndim + 1)
    return _view(Reshape.apply(x, x.shape[:d] + (1,) + x.shape[d:]), x)


def _index(idx):
    """Tensors in an index become arrays; lists become integer/bool arrays."""
    def conv(i):
        if isinstance(i, TensorBase):
            i = i.data
        if isinstance(i, list):
            i = np.asarray(i)
        if isinstance(i, np.ndarray) and i.dtype.kind not in "iub":
            raise IndexError(f"tensors used as indices must be integer or bool, got {i.dtype}")
        return i
    return tuple(conv(i) for i in idx) if isinstance(idx, tuple) else conv(idx)


def getitem(x, idx):
    """``x[idx]`` with NumPy's indexing (ints, slices, None, ..., integer or bool arrays).
    Backward scatters δ into zeros of x's shape, adding where an index repeats."""
    idx = _index(idx)
    try:
        x.data[idx]
    except IndexError as e:
        raise IndexError(f"index {idx!r} is invalid for a tensor of shape {x.shape}: {e}") from None
    out = GetItem.apply(x, idx)
    if _is_basic(idx):             # PyTorch gives a view: in-place ops on it write back (Tensor._inplace)
        out._base = (x, idx)
    return out


def setitem(x, idx, value):
    """x with x[idx] = value, as a new Tensor (differentiable in x and value)."""
    idx = _index(idx)
    value = operand(value)
    try:
        target = x.data[idx]
        np.broadcast_to(value.data if isinstance(value, TensorBase) else value, np.shape(target))
    except (IndexError, ValueError) as e:
        raise IndexError(f"setitem: cannot assign a value of shape {np.shape(getattr(value, 'data', value))} "
                         f"to index {idx!r} of a tensor of shape {x.shape}: {e}") from None
    return SetItem.apply(x, value, idx)


def _tensors(xs, name):
    xs = list(xs)
    if not xs:
        raise ValueError(f"{name}(): expected a non-empty sequence of tensors")
    return [x if isinstance(x, TensorBase) else as_tensor(x) for x in xs]


def cat(tensors, dim=0):
    """Join tensors along an existing dim."""
    xs = _tensors(tensors, "cat")
    d = _axis(dim, xs[0].ndim) if xs[0].ndim else 0
    for i, x in enumerate(xs):
        if x.ndim != xs[0].ndim or x.shape[:d] + x.shape[d + 1:] != xs[0].shape[:d] + xs[0].shape[d + 1:]:
            raise ValueError(f"cat(): tensor {i} has shape {x.shape}, which does not match "
                             f"shape {xs[0].shape} outside dim {dim}")
    return Cat.apply(d, *xs)


def stack(tensors, dim=0):
    """Join equal-shaped tensors along a new dim."""
    xs = _tensors(tensors, "stack")
    for i, x in enumerate(xs):
        if x.shape != xs[0].shape:
            raise ValueError(f"stack(): tensor {i} has shape {x.shape}, tensor 0 has {xs[0].shape}")
    return Stack.apply(_axis(dim, xs[0].ndim + 1), *xs)


def pad(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad, constant mode: `pad` lists (left, right) pairs starting
    from the last dim, e.g. (1, 1, 2, 0) pads the last dim by 1|1 and the one before by 2|0."""
    if mode != "constant":
        raise ValueError(f"pad(): only mode='constant' is supported, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad(): pad must have an even length of at most 2·ndim={2 * x.ndim}, "
                         f"got {pad} for shape {x.shape}")
    for p in pad:
        if not isinstance(p, numbers.Integral) or isinstance(p, bool) or p < 0:
            raise ValueError(f"pad(): pad widths must be non-negative ints, got {pad}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    return Pad.apply(x, tuple(widths), value)
