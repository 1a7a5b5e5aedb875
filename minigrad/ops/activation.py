"""Activation functions beyond ReLU/sigmoid/tanh: ReLU6, LeakyReLU, Hardtanh, SiLU, GELU,
and the `inplace=` forms of ReLU that PyTorch model code passes.

Each op is one Function with its forward and backward side by side; the derivative
is stated in the backward's docstring. Subgradients at the kinks follow PyTorch, so
gradients agree with it everywhere, not just almost everywhere:

    relu6 / hardtanh:  δ passes where lo < x < hi (strictly), 0 at and beyond the corners
    leaky_relu:        slope 1 where x > 0, negative_slope where x ≤ 0

`inplace=True` is accepted wherever PyTorch accepts it and gives the same numbers. It
is a hint PyTorch uses to save memory; minigrad computes the result out of place and
returns it (the input is left unchanged), which every model written as
`x = self.relu(x)` cannot tell apart.
"""
import math
import numbers

import numpy as np

from .._ext import special as _special
from ..autograd import Function
from ..threads import get_num_threads
from . import elementwise as E
from .nn import as_float_tensor


def _inplace_arg(fn, inplace):
    if not isinstance(inplace, (bool, np.bool_)):
        raise TypeError(f"{fn}(): inplace must be a bool, got {inplace!r}")
    return bool(inplace)


def _number(fn, name, v):
    if not isinstance(v, (numbers.Real, np.generic)) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fn}(): {name} must be a number, got {v!r}")
    v = float(v)
    if math.isnan(v):
        raise ValueError(f"{fn}(): {name} must not be NaN")
    return v


def erf(a):
    """The error function erf(a) = 2/√π ∫₀ᵃ e^(−t²) dt of a float32/float64 ndarray
    (the C library's erf, in a Cython loop; NumPy has none)."""
    a = np.ascontiguousarray(a)
    out = np.empty_like(a)
    _special.erf(a.reshape(-1), out.reshape(-1), get_num_threads())
    return out


# ---- LeakyReLU -------------------------------------------------------------------------
class LeakyReLU(Function):
    """y = x for x > 0, y = a·x for x ≤ 0 (a = negative_slope).

    Backward: ∂L/∂x = δ for x > 0, a·δ for x ≤ 0.
    """

    @staticmethod
    def forward(ctx, x, a):
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.a = a
        return np.where(positive, x, x * x.dtype.type(a))

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · (1 if x > 0 else a)."""
        positive, = ctx.saved
        return np.where(positive, δ, δ * δ.dtype.type(ctx.a)), None


# ---- Hardtanh and ReLU6 ----------------------------------------------------------------
class Hardtanh(Function):
    """y = min(max(x, lo), hi); ReLU6 is lo = 0, hi = 6.

    Backward: ∂L/∂x = δ where lo < x < hi, else 0 (PyTorch's choice at the corners,
    so ReLU6's gradient at 0 is 0 like ReLU's).
    """

    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, x.dtype.type(lo), x.dtype.type(hi))

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · [lo < x < hi]."""
        x, = ctx.saved
        inside = (x > ctx.lo) & (x < ctx.hi)
        return np.where(inside, δ, np.zeros((), δ.dtype)), None, None


# ---- SiLU ------------------------------------------------------------------------------
class SiLU(Function):
    """y = x · σ(x) (SiLU, also called Swish), σ(x) = 1/(1 + e^−x).

    Backward: ∂y/∂x = σ(x) + x·σ(x)(1 − σ(x)) = σ(x)·(1 + x·(1 − σ(x))).
    """

    @staticmethod
    def forward(ctx, x):
        e = np.exp(-np.abs(x))                                   # ≤ 1: never overflows
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)  # σ(x)
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · σ(x) · (1 + x · (1 − σ(x)))."""
        x, s = ctx.saved
        return δ * (s * (1 + x * (1 - s)))


# ---- GELU --------------------------------------------------------------------------------
_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_C = 0.044715


class GELU(Function):
    """y = x · Φ(x), Φ the standard normal CDF (Hendrycks & Gimpel's GELU).

    approximate='none':  Φ(x) = ½ (1 + erf(x/√2))
        ∂y/∂x = Φ(x) + x · φ(x),   φ(x) = e^(−x²/2) / √(2π)
    approximate='tanh':  y = ½ x (1 + tanh u),  u = √(2/π) (x + 0.044715 x³)
        ∂y/∂x = ½ (1 + tanh u) + ½ x (1 − tanh² u) · √(2/π) (1 + 3·0.044715 x²)
    """

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * x ** 3)).astype(x.dtype, copy=False)
            ctx.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = (0.5 * (1 + erf(x / x.dtype.type(_SQRT_2)))).astype(x.dtype, copy=False)  # Φ(x)
        ctx.save_for_backward(x, cdf)
        return x * cdf

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · (Φ(x) + x φ(x)) (exact), or the tanh form's derivative above."""
        x, s = ctx.saved
        if ctx.approximate == "tanh":
            t = s
            du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)        # ∂u/∂x
            return δ * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du), None
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)                  # φ(x)
        return δ * (s + x * pdf), None


# ---- public functions --------------------------------------------------------------------
def relu(input, inplace=False):
    """y = max(x, 0) (torch.nn.functional.relu); ∂L/∂x = δ where x > 0."""
    _inplace_arg("relu", inplace)
    return E.relu(input)


def relu6(input, inplace=False):
    """y = min(max(x, 0), 6) (MobileNetV2's activation); ∂L/∂x = δ where 0 < x < 6."""
    _inplace_arg("relu6", inplace)
    return Hardtanh.apply(as_float_tensor(input, "relu6", "input"), 0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """y = min(max(x, min_val), max_val); ∂L/∂x = δ where min_val < x < max_val."""
    fn = "hardtanh"
    _inplace_arg(fn, inplace)
    lo, hi = _number(fn, "min_val", min_val), _number(fn, "max_val", max_val)
    if lo > hi:
        raise ValueError(f"{fn}(): min_val ({lo}) must not exceed max_val ({hi})")
    return Hardtanh.apply(as_float_tensor(input, fn, "input"), lo, hi)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """y = x for x > 0, negative_slope · x otherwise (torch.nn.functional.leaky_relu)."""
    fn = "leaky_relu"
    _inplace_arg(fn, inplace)
    return LeakyReLU.apply(as_float_tensor(input, fn, "input"), _number(fn, "negative_slope", negative_slope))


def silu(input, inplace=False):
    """y = x · σ(x) (torch.nn.functional.silu)."""
    _inplace_arg("silu", inplace)
    return SiLU.apply(as_float_tensor(input, "silu", "input"))


def gelu_approximate_arg(fn, approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{fn}(): approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


def gelu(input, approximate="none"):
    """y = x · Φ(x) with the exact normal CDF (approximate='none') or its tanh
    approximation (approximate='tanh'), as torch.nn.functional.gelu."""
    approximate = gelu_approximate_arg("gelu", approximate)
    return GELU.apply(as_float_tensor(input, "gelu", "input"), approximate)
