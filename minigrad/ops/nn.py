"""Neural-network ops: linear (affine) map, softmax, log-softmax, dropout.

Each is one Function whose backward is written over tensors (so it can be differentiated
again); the public functions below validate their arguments (ranks, shapes, dtypes) and
are what minigrad.nn.functional exports.
"""
import numpy as np

from .. import _blas
from ..random import generator
from ..autograd import Function
from ._args import as_float_tensor, check_probability, check_same_dtype  # noqa: F401
from .linalg import MatMul
from .reduce import normalize_dims


# The argument checks (as_float_tensor, check_same_dtype, check_probability) live in _args.py
# with the others; imported here for the ops below and the modules that import them from here.


# ---- linear --------------------------------------------------------------------------------
class LinearFunction(Function):
    """y = x Wᵀ + b, for x of shape (..., in), W (out, in), b (out,).

    Backward, with X the input flattened to (M, in) and Δ = δ flattened to (M, out):
      ∂L/∂x = δ W            (..., out) @ (out, in) -> (..., in)
      ∂L/∂W = Δᵀ X           (out, M) @ (M, in) -> (out, in)
      ∂L/∂b = Σ_rows Δ       (M, out) -> (out,)
    """

    @staticmethod
    def forward(ctx, x, w, b):
        X = x.reshape(-1, x.shape[-1])                      # (M, in)
        if X.shape[0] < w.shape[0]:
            # more output features than rows (VGG's 32 × 25088 → 4096): yᵀ = W Xᵀ, W the
            # product's left operand as it is stored, runs 1.2–1.6× faster in OpenBLAS
            # than X Wᵀ (benchmarks/RESULTS.md: Linear)
            y = np.ascontiguousarray(_blas.matmul(w, X.T).T).reshape(x.shape[:-1] + w.shape[:1])
        else:
            y = _blas.matmul(x, w.T)                       # (..., in) @ (in, out) -> (..., out)
        if b is not None:
            y += b                                      # (..., out) + (out,)
        return y

    @staticmethod
    def backward(ctx, δ):
        x, w = ctx.inputs[:2]
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = MatMul.apply(δ, w)                     # (..., out) @ (out, in) -> (..., in)
        Δ = δ if δ.ndim == 2 else δ.reshape(-1, δ.shape[-1])          # (M, out)
        if ctx.needs_input_grad[1]:
            X = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])          # (M, in)
            dw = MatMul.apply(Δ.T, X)                   # (out, M) @ (M, in) -> (out, in)
        if ctx.needs_input_grad[2]:
            db = Δ.sum(0)                               # (M, out) -> (out,)
        return dx, dw, db


def linear(input, weight, bias=None):
    """y = input @ weightᵀ + bias (torch.nn.functional.linear)."""
    x = as_float_tensor(input, "linear", "input")
    w = as_float_tensor(weight, "linear", "weight")
    b = None if bias is None else as_float_tensor(bias, "linear", "bias")
    if x.ndim < 1:
        raise ValueError(f"linear(): input must have at least 1 dim, got shape {x.shape}")
    if w.ndim != 2:
        raise ValueError(f"linear(): weight must be 2-d (out_features, in_features), got shape {w.shape}")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear(): input's last dim is {x.shape[-1]} (shape {x.shape}) but weight "
                         f"expects in_features={w.shape[1]} (shape {w.shape})")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear(): bias must have shape ({w.shape[0]},) to match weight "
                         f"{w.shape}, got {b.shape}")
    check_same_dtype("linear", x, weight=w, bias=b)
    return LinearFunction.apply(x, w, b)


# ---- softmax and log-softmax -----------------------------------------------------------------
class SoftmaxFunction(Function):
    """y_i = exp(x_i − max x) / Σ_j exp(x_j − max x) along `dim`.

    Backward: ∂L/∂x_i = y_i (δ_i − Σ_j δ_j y_j)   (the Jacobian diag(y) − y yᵀ applied to δ).
    """

    @staticmethod
    def forward(ctx, x, dim):
        if x.size == 0:                                # np.max has no identity for an empty axis
            y = np.empty_like(x)
        else:
            e = np.exp(x - np.max(x, axis=dim, keepdims=True))
            y = e / np.sum(e, axis=dim, keepdims=True)
        ctx.save_output(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, δ):
        y = ctx.output()
        return y * (δ - (δ * y).sum(ctx.dim, keepdim=True)), None


class LogSoftmaxFunction(Function):
    """y_i = x_i − m − log Σ_j exp(x_j − m) with m = max_j x_j (never overflows).

    Backward: ∂y_i/∂x_k = [i = k] − softmax_k, so ∂L/∂x_k = δ_k − exp(y_k) Σ_i δ_i.
    """

    @staticmethod
    def forward(ctx, x, dim):
        if x.size == 0:
            y = np.empty_like(x)
        else:
            z = x - np.max(x, axis=dim, keepdims=True)
            with np.errstate(invalid="ignore"):        # ±inf inputs give NaN, as IEEE says
                y = z - np.log(np.sum(np.exp(z), axis=dim, keepdims=True))
        ctx.save_output(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, δ):
        y = ctx.output()
        return δ - y.exp() * δ.sum(ctx.dim, keepdim=True), None


def _softmax_dim(fn, x, dim):
    if dim is None:
        raise TypeError(f"{fn}(): dim must be given (an int), as in torch.{fn}")
    if x.ndim == 0:
        if dim not in (0, -1):
            raise ValueError(f"{fn}(): dim={dim} is out of range for a 0-d tensor")
        return None
    d, = normalize_dims(dim, x.ndim)
    return d


def softmax(input, dim):
    """softmax along `dim`: exp(x) / Σ exp(x), computed stably."""
    x = as_float_tensor(input, "softmax", "input")
    return SoftmaxFunction.apply(x, _softmax_dim("softmax", x, dim))


def log_softmax(input, dim):
    """log(softmax(x)) along `dim`, computed as x − max − log Σ exp(x − max)."""
    x = as_float_tensor(input, "log_softmax", "input")
    return LogSoftmaxFunction.apply(x, _softmax_dim("log_softmax", x, dim))


# ---- dropout ------------------------------------------------------------------------------
class DropoutFunction(Function):
    """Inverted dropout: y = x · m with m_i = 1/(1−p) kept (probability 1−p), else 0.
    m has x's shape (dropout) or one entry per channel broadcast over H, W (dropout2d).

    Backward: ∂L/∂x = δ · m (the same mask).
    """

    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, δ):
        mask, = ctx.saved
        return δ * mask, None


def _keep_mask(shape, p, dtype):
    """m with m_i = 1/(1−p) (kept, probability 1−p) or 0, drawn from minigrad's generator."""
    if p == 1.0:
        return np.zeros(shape, dtype=dtype)
    keep = generator().random(shape) >= p                          # P(keep) = 1 − p
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def dropout(input, p=0.5, training=True, inplace=False):
    """Zero each element with probability p and scale the rest by 1/(1−p) (PyTorch semantics).

    The mask is drawn from minigrad's global generator (seeded by mg.manual_seed).
    Not training, or p = 0: the input itself is returned. p = 1: all zeros.
    inplace=True is accepted and gives the same numbers (computed out of place)."""
    x = as_float_tensor(input, "dropout", "input")
    p = check_probability("dropout", p)
    _bool_arg("dropout", "inplace", inplace)
    if not training or p == 0.0:
        return x
    return DropoutFunction.apply(x, _keep_mask(x.shape, p, x.dtype))


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel dropout (torch.nn.functional.dropout2d): each whole channel plane x[n, c]
    is zeroed with probability p, the kept ones scaled by 1/(1−p):

        y[n, c, h, w] = x[n, c, h, w] · m[n, c],  m[n, c] ∈ {0, 1/(1−p)}

    Backward: ∂L/∂x[n, c, h, w] = δ[n, c, h, w] · m[n, c] (Dropout's, with the mask broadcast).

    input: (N, C, H, W); a 3-d input is read as (N, C, L), one mask entry per (n, c), as
    PyTorch does today. Not training, or p = 0: the input itself is returned."""
    fn = "dropout2d"
    x = as_float_tensor(input, fn, "input")
    p = check_probability(fn, p)
    _bool_arg(fn, "inplace", inplace)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}(): input must be 4-d (N, C, H, W) or 3-d (N, C, L), got shape "
                         f"{x.shape}; use dropout for element-wise dropout")
    if not training or p == 0.0:
        return x
    mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)                 # (N, C, 1, 1)
    return DropoutFunction.apply(x, _keep_mask(mask_shape, p, x.dtype))


def _bool_arg(fn, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}(): {name} must be a bool, got {value!r}")
    return bool(value)
