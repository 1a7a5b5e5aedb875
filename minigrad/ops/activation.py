"""Activation functions beyond ReLU/sigmoid/tanh: ReLU6, LeakyReLU, Hardtanh, SiLU, GELU,
Hardsigmoid, Hardswish, and the `inplace=` forms of ReLU that PyTorch model code passes.

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

from .._ext import activation as _k
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


def _compute(a):
    """a as a C-contiguous float32/float64 array for the kernels (float16 is computed in
    float32; Function.apply casts the gradient back to the input's dtype)."""
    return np.ascontiguousarray(a, dtype=np.float32 if a.dtype == np.float16 else a.dtype)


def _run(kernel, *arrays, outputs=1, args=()):
    """Call a kernel of ext/activation.pyx on the flat views of `arrays`; returns `outputs`
    new arrays shaped like arrays[0]."""
    outs = [np.empty_like(arrays[0]) for _ in range(outputs)]
    kernel(*[a.reshape(-1) for a in arrays], *[o.reshape(-1) for o in outs], *args, get_num_threads())
    return outs[0] if outputs == 1 else outs


def erf(a):
    """The error function erf(a) = 2/√π ∫₀ᵃ e^(−t²) dt of a float ndarray (the C library's
    erf, in a Cython loop; NumPy has none)."""
    return _run(_k.erf, _compute(a))


# ---- LeakyReLU -------------------------------------------------------------------------
class LeakyReLUFunction(Function):
    """y = x for x > 0, y = a·x for x ≤ 0 (a = negative_slope).

    Backward: ∂L/∂x = δ for x > 0, a·δ for x ≤ 0.
    """

    @staticmethod
    def forward(ctx, x, a):
        xc = _compute(x)
        ctx.save_for_backward(xc)
        ctx.a = a
        return _run(_k.leaky_relu_forward, xc, args=(a,)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · (1 if x > 0 else a)."""
        x, = ctx.saved
        return LeakyReLUBackward.apply(δ, x, ctx.a), None


class LeakyReLUBackward(Function):
    """δ · (1 if x > 0 else a): LeakyReLU's backward by the Cython kernel, an op of its own.
    Linear in δ with a slope that is constant where it has a derivative, so its own
    backward is the same op applied to the incoming gradient (x is a constant here)."""

    @staticmethod
    def forward(ctx, δ, x, a):
        ctx.save_for_backward(x)
        ctx.a = a
        return _run(_k.leaky_relu_backward, x, _compute_like(δ, x), args=(a,))

    @staticmethod
    def backward(ctx, ε):
        x, = ctx.saved
        return LeakyReLUBackward.apply(ε, x, ctx.a), None, None


# ---- Hardtanh and ReLU6 ----------------------------------------------------------------
class HardtanhFunction(Function):
    """y = min(max(x, lo), hi); ReLU6 is lo = 0, hi = 6.

    Backward: ∂L/∂x = δ where lo < x < hi, else 0 (PyTorch's choice at the corners,
    so ReLU6's gradient at 0 is 0 like ReLU's).
    """

    @staticmethod
    def forward(ctx, x, lo, hi):
        xc = _compute(x)
        ctx.save_for_backward(xc)
        ctx.lo, ctx.hi = lo, hi
        return _run(_k.hardtanh_forward, xc, args=(lo, hi)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · [lo < x < hi]."""
        x, = ctx.saved
        return HardtanhBackward.apply(δ, x, ctx.lo, ctx.hi), None, None


class HardtanhBackward(Function):
    """δ · [lo < x < hi]: Hardtanh's (and ReLU6's) backward by the Cython kernel, an op of
    its own. Linear in δ with a constant mask, so its own backward is the same mask."""

    @staticmethod
    def forward(ctx, δ, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return _run(_k.hardtanh_backward, x, _compute_like(δ, x), args=(lo, hi))

    @staticmethod
    def backward(ctx, ε):
        x, = ctx.saved
        return HardtanhBackward.apply(ε, x, ctx.lo, ctx.hi), None, None, None


# ---- SiLU ------------------------------------------------------------------------------
class SiLUFunction(Function):
    """y = x · σ(x) (SiLU, also called Swish), σ(x) = 1/(1 + e^−x).

    Backward: ∂y/∂x = σ(x) + x·σ(x)(1 − σ(x)) = σ(x)·(1 + x·(1 − σ(x))).
    """

    @staticmethod
    def forward(ctx, x):
        xc = _compute(x)
        y, s = _run(_k.silu_forward, xc, outputs=2)              # y, σ(x)
        ctx.save_for_backward(xc, s)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · σ(x) · (1 + x · (1 − σ(x)))."""
        x, s = ctx.saved
        return SiLUBackward.apply(δ, ctx.inputs[0], x, s)


class SlopeBackward(Function):
    """δ · f'(x), the backward of a smooth activation f, as an op of its own: forward(ctx, δ,
    x_t, *saved) runs the fast kernel over the saved arrays (x_t is the input tensor, kept
    for the graph). Base of SiLUBackward and GELUBackward.

    Backward, ε arriving at ∂L/∂x: linear in δ, so ∂/∂δ is the same op applied to ε, and
        ∂/∂x = ε · δ · f''(x)
    with f'' the subclass's `curvature(ctx, x_t)`, written over the input tensor (so it is
    differentiated again for third derivatives).
    """

    @staticmethod
    def curvature(ctx, x_t):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, ε):
        δ, x_t = ctx.inputs[:2]
        op = type(ctx)
        dδ = op.apply(ε, *ctx.inputs[1:]) if ctx.needs_input_grad[0] else None
        dx = ε * δ * op.curvature(ctx, x_t) if ctx.needs_input_grad[1] else None
        return (dδ, dx) + (None,) * (len(ctx.inputs) - 2)


class SiLUBackward(SlopeBackward):
    """δ · σ(x)(1 + x(1 − σ(x))): SiLU's backward by the Cython kernel (saved: x, σ(x)).

    Second derivative (SlopeBackward's backward): f''(x) = σ(x)(1 − σ(x)) · (2 + x(1 − 2σ(x))).
    """

    @staticmethod
    def forward(ctx, δ, x_t, x, s):
        return _run(_k.silu_backward, x, s, _compute_like(δ, x))

    @staticmethod
    def curvature(ctx, x_t):
        σ = E.sigmoid(x_t)                                     # recomputed as an op of x
        return σ * (1 - σ) * (2 + x_t * (1 - 2 * σ))


# ---- GELU --------------------------------------------------------------------------------
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class GELUFunction(Function):
    """y = x · Φ(x), Φ the standard normal CDF (Hendrycks & Gimpel's GELU).

    approximate='none':  Φ(x) = ½ (1 + erf(x/√2))
        ∂y/∂x = Φ(x) + x · φ(x),   φ(x) = e^(−x²/2) / √(2π)
    approximate='tanh':  y = ½ x (1 + tanh u),  u = √(2/π) (x + 0.044715 x³)
        ∂y/∂x = ½ (1 + tanh u) + ½ x (1 − tanh² u) · √(2/π) (1 + 3·0.044715 x²)
    """

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.approximate = approximate
        xc = _compute(x)
        if approximate == "tanh":
            t = np.tanh(_SQRT_2_OVER_PI * (xc + _GELU_C * xc ** 3)).astype(xc.dtype, copy=False)
            ctx.save_for_backward(xc, t)
            return (0.5 * xc * (1 + t)).astype(x.dtype, copy=False)
        y, cdf = _run(_k.gelu_forward, xc, outputs=2)             # y, Φ(x)
        ctx.save_for_backward(xc, cdf)
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · (Φ(x) + x φ(x)) (exact), or the tanh form's derivative above."""
        x, s = ctx.saved
        return GELUBackward.apply(δ, ctx.inputs[0], x, s, ctx.approximate), None


class GELUBackward(SlopeBackward):
    """δ · ∂y/∂x of GELU (formulas in GELU's docstring): the Cython kernel for the exact
    form, NumPy for the tanh form, over the saved x and Φ(x) (or tanh u).

    Second derivative (SlopeBackward's backward), recomputed from the input tensor x_t:
        exact:  ∂²y/∂x² = φ(x) · (2 − x²)
        tanh:   ∂²y/∂x² = (1 − t²) · (u' + ½ x (u'' − 2 t u'²)),
                t = tanh u, u' = √(2/π)(1 + 3·0.044715 x²), u'' = √(2/π) · 6·0.044715 x
    """

    @staticmethod
    def forward(ctx, δ, x_t, x, s, approximate):
        ctx.approximate = approximate
        if approximate == "tanh":
            t = s
            du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)        # ∂u/∂x
            return δ * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
        return _run(_k.gelu_backward, x, s, _compute_like(δ, x))

    @staticmethod
    def curvature(ctx, x_t):
        if ctx.approximate == "tanh":
            t = E.tanh(_SQRT_2_OVER_PI * (x_t + _GELU_C * x_t ** 3))
            du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x_t * x_t)            # u'
            ddu = (_SQRT_2_OVER_PI * 6 * _GELU_C) * x_t                     # u''
            return (1 - t * t) * (du + 0.5 * x_t * (ddu - 2 * t * du * du))
        return E.exp(-0.5 * x_t * x_t) * (2 - x_t * x_t) * _INV_SQRT_2PI   # φ(x)(2 − x²)


def _compute_like(δ, x):
    """δ as a C-contiguous array of x's (compute) dtype."""
    return np.ascontiguousarray(δ, dtype=x.dtype)


# ---- Hardsigmoid and Hardswish (MobileNetV3) ---------------------------------------------
class HardsigmoidFunction(Function):
    """y = relu6(x + 3) / 6: 0 for x ≤ −3, 1 for x ≥ 3, x/6 + ½ between.

    Backward: ∂L/∂x = δ/6 where −3 < x < 3, else 0.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ/6 · [−3 < x < 3] (a constant mask: the second derivative is 0)."""
        x, = ctx.saved
        return E.where((x > -3) & (x < 3), δ / 6, 0.0)


class HardswishFunction(Function):
    """y = x · relu6(x + 3) / 6: 0 for x ≤ −3, x for x ≥ 3, x(x + 3)/6 between.

    Backward (PyTorch's choice at the corners): ∂L/∂x = 0 for x ≤ −3,
    δ · (x/3 + ½) for −3 < x < 3, δ for x ≥ 3.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ · (0 | x/3 + ½ | 1) on x ≤ −3 | −3 < x < 3 | x ≥ 3; the slope is an op
        of the input tensor, so the second derivative δ/3 on −3 < x < 3 follows."""
        x, = ctx.saved
        inside = (x > -3) & (x < 3)                                  # a constant mask
        slope = E.where(inside, ctx.inputs[0] / 3 + 0.5, (x >= 3).astype(δ.dtype))
        return δ * slope


# ---- public functions --------------------------------------------------------------------
def relu(input, inplace=False):
    """y = max(x, 0) (torch.nn.functional.relu); ∂L/∂x = δ where x > 0."""
    _inplace_arg("relu", inplace)
    return E.relu(input)


def relu6(input, inplace=False):
    """y = min(max(x, 0), 6) (MobileNetV2's activation); ∂L/∂x = δ where 0 < x < 6."""
    _inplace_arg("relu6", inplace)
    return HardtanhFunction.apply(as_float_tensor(input, "relu6", "input"), 0.0, 6.0)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """y = min(max(x, min_val), max_val); ∂L/∂x = δ where min_val < x < max_val."""
    fn = "hardtanh"
    _inplace_arg(fn, inplace)
    lo, hi = _number(fn, "min_val", min_val), _number(fn, "max_val", max_val)
    if lo > hi:
        raise ValueError(f"{fn}(): min_val ({lo}) must not exceed max_val ({hi})")
    return HardtanhFunction.apply(as_float_tensor(input, fn, "input"), lo, hi)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """y = x for x > 0, negative_slope · x otherwise (torch.nn.functional.leaky_relu)."""
    fn = "leaky_relu"
    _inplace_arg(fn, inplace)
    return LeakyReLUFunction.apply(as_float_tensor(input, fn, "input"), _number(fn, "negative_slope", negative_slope))


def silu(input, inplace=False):
    """y = x · σ(x) (torch.nn.functional.silu)."""
    _inplace_arg("silu", inplace)
    return SiLUFunction.apply(as_float_tensor(input, "silu", "input"))


def gelu_approximate_arg(fn, approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"{fn}(): approximate must be 'none' or 'tanh', got {approximate!r}")
    return approximate


def gelu(input, approximate="none"):
    """y = x · Φ(x) with the exact normal CDF (approximate='none') or its tanh
    approximation (approximate='tanh'), as torch.nn.functional.gelu."""
    approximate = gelu_approximate_arg("gelu", approximate)
    return GELUFunction.apply(as_float_tensor(input, "gelu", "input"), approximate)


def hardsigmoid(input, inplace=False):
    """y = relu6(x + 3) / 6 (torch.nn.functional.hardsigmoid)."""
    _inplace_arg("hardsigmoid", inplace)
    return HardsigmoidFunction.apply(as_float_tensor(input, "hardsigmoid", "input"))


def hardswish(input, inplace=False):
    """y = x · relu6(x + 3) / 6 (torch.nn.functional.hardswish, MobileNetV3's activation)."""
    _inplace_arg("hardswish", inplace)
    return HardswishFunction.apply(as_float_tensor(input, "hardswish", "input"))
