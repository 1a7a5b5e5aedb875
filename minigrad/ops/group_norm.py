"""Group normalisation (Wu & He 2018): batch norm's formula, but the statistics come from
each sample's own channel groups, so it does not depend on the batch (torch's F.group_norm).

x (N, C, …) is split into G groups of C/G consecutive channels; for sample n and group g
the mean μ and biased variance σ² are taken over the m = (C/G)·(spatial size) values
of that group, and

    x̂ = (x − μ) / σ̂,  σ̂ = √(σ² + eps),        y[n, c, …] = γ_c · x̂[n, c, …] + β_c

Backward: within one (n, g) group this is batch norm's training-mode normalisation, so
with g = δ·γ and ⟨·⟩ the mean over the group's m values
    ∂L/∂x = (g − ⟨g⟩ − x̂ · ⟨g · x̂⟩) / σ̂
    ∂L/∂γ_c = Σ_{n, …} δ · x̂,   ∂L/∂β_c = Σ_{n, …} δ
"""
import numbers

import numpy as np

from ..autograd import Function
from .norm import NormStats, NormWeightGrad, normalization_double_backward
from .nn import as_float_tensor, check_same_dtype


class GroupNormFunction(Function):
    """y = γ · (x − μ_{n,g}) / √(σ²_{n,g} + eps) + β, statistics per sample and channel group.

    Backward (module docstring): ∂L/∂x = (g − ⟨g⟩ − x̂⟨g x̂⟩)/σ̂ per group, g = δγ;
    ∂L/∂γ = Σ δ x̂, ∂L/∂β = Σ δ over every axis but the channels.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, G, eps):
        N, C = x.shape[:2]
        xg = x.reshape(N, G, -1)                                     # (N, G, m)
        mean = xg.mean(axis=2, keepdims=True)                        # (N, G, 1)
        var = np.mean((xg - mean) ** 2, axis=2, keepdims=True)       # (N, G, 1) biased
        inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)        # (N, G, 1) 1/σ̂
        xhat = ((xg - mean) * inv_std).reshape(x.shape)              # (N, C, …)
        cshape = (1, C) + (1,) * (x.ndim - 2)                        # (C,) -> (1, C, 1, …)
        y = xhat if weight is None else xhat * weight.reshape(cshape)
        if bias is not None:
            y = y + bias.reshape(cshape)
        ctx.save_for_backward(xhat, inv_std)
        axes = (0,) + tuple(range(2, x.ndim))                        # every axis but C
        ctx.stats = NormStats(x.shape, (N, G, -1), (2,), axes, cshape, True, eps)
        return np.ascontiguousarray(y, dtype=x.dtype)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x by GroupNormBackward, ∂L/∂γ by NormWeightGrad (ops of their own, so that
        they are differentiated again), ∂L/∂β = Σ δ."""
        x, weight = ctx.inputs[:2]
        xhat, inv_std = ctx.saved
        stats = ctx.stats
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = GroupNormBackward.apply(δ, x, weight, xhat, inv_std, stats)
        if ctx.needs_input_grad[1]:
            dw = NormWeightGrad.apply(δ, x, xhat, inv_std, None, stats)
        if ctx.needs_input_grad[2]:
            db = δ.sum(stats.axes)                                   # (C,)
        return dx, dw, db, None, None


class GroupNormBackward(Function):
    """GroupNorm's ∂L/∂x = P(g)/σ̂ per (n, g) group (module docstring), as an op of its own:
    forward over the saved x̂ and 1/σ̂; backward (the double backward) over tensors, with
    BatchNormBackward's formulas read per group:
        ∂/∂δ = γ · P(ε)/σ̂,   ∂/∂γ = Σ δ · P(ε)/σ̂,
        ∂/∂x = (1/σ̂²)[3x̂⟨gx̂⟩⟨εx̂⟩ − x̂(⟨εg⟩ − ⟨ε⟩⟨g⟩) − (g − ⟨g⟩)⟨εx̂⟩ − (ε − ⟨ε⟩)⟨gx̂⟩]
    (g = δ · γ; γ may differ within a group, so γ multiplies P(ε), not ε).
    """

    @staticmethod
    def forward(ctx, δ, x, weight, xhat, inv_std, stats):
        ctx.stats = stats
        G, cshape = stats.group_shape[1], stats.bshape
        N = xhat.shape[0]
        g = (δ if weight is None else δ * weight.reshape(cshape)).reshape(N, G, -1)   # (N, G, m)
        xh = xhat.reshape(N, G, -1)                                                  # (N, G, m)
        dx = (g - g.mean(axis=2, keepdims=True)
              - xh * (g * xh).mean(axis=2, keepdims=True)) * inv_std                 # (N, G, m)
        return dx.reshape(xhat.shape)

    @staticmethod
    def backward(ctx, ε):
        δ, x, weight = ctx.inputs[:3]
        return normalization_double_backward(ctx, ε, δ, x, weight, ctx.stats, None)


def group_norm_args(fn, num_groups, num_channels, eps):
    for name, v in (("num_groups", num_groups), ("num_channels", num_channels)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{fn}(): {name} must be a positive int, got {v!r}")
    if num_channels % num_groups:
        raise ValueError(f"{fn}(): num_channels ({num_channels}) must be divisible by "
                         f"num_groups ({num_groups})")
    if not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"{fn}(): eps must be a non-negative number, got {eps!r}")
    return int(num_groups), int(num_channels), float(eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation of (N, C, …) (torch.nn.functional.group_norm): the mean and
    variance of each sample's group of C/num_groups channels normalise it, then
    y = weight_c · x̂ + bias_c (weight, bias: (C,) or None)."""
    fn = "group_norm"
    x = as_float_tensor(input, fn, "input")
    if x.ndim < 2:
        raise ValueError(f"{fn}(): input must be (N, C, ...), got shape {x.shape}")
    G, C, eps = group_norm_args(fn, num_groups, x.shape[1], eps)
    w = None if weight is None else as_float_tensor(weight, fn, "weight")
    b = None if bias is None else as_float_tensor(bias, fn, "bias")
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"{fn}(): {name} must have shape ({C},) for input of shape {x.shape}, "
                             f"got {t.shape}")
    check_same_dtype(fn, x, weight=w, bias=b)
    return GroupNormFunction.apply(x, w, b, G, eps)
