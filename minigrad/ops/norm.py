"""Batch normalisation over the channel axis 1 of (N, C), (N, C, L) or (N, C, H, W) inputs."""
import numbers

import numpy as np

from ..autograd import Function, once_differentiable
from ..tensor_base import TensorBase
from .nn import as_float_tensor, check_same_dtype


class BatchNorm(Function):
    """y = γ · x̂ + β with x̂ = (x − μ) / √(σ² + eps), per channel c (axis 1).

    Training: μ, σ² are the batch mean and *biased* variance over the n = N·(spatial)
    values of each channel; the running statistics (when given) are updated in place,
        running_mean ← (1 − m) · running_mean + m · μ
        running_var  ← (1 − m) · running_var  + m · σ² · n / (n − 1)   (unbiased)
    Evaluation: μ, σ² are the running statistics (constants).

    Backward, with σ̂ = √(σ² + eps), g = δ · γ and ⟨·⟩ the mean over a channel's n values:
      ∂L/∂β = Σ δ,   ∂L/∂γ = Σ δ · x̂
      training:   ∂L/∂x = (g − ⟨g⟩ − x̂ · ⟨g · x̂⟩) / σ̂
                  (μ and σ² depend on x: ∂μ/∂x = 1/n, ∂σ²/∂x = 2(x − μ)/n)
      evaluation: ∂L/∂x = g / σ̂
    """

    @staticmethod
    def forward(ctx, x, weight, bias, training, momentum, eps, running_mean=None, running_var=None):
        axes = (0,) + tuple(range(2, x.ndim))                      # every axis but the channels
        bshape = (1, -1) + (1,) * (x.ndim - 2)                     # (C,) -> (1, C, 1, ...)
        if training:
            n = x.size // x.shape[1]
            mean = x.mean(axis=axes)                               # (C,)
            var = np.mean((x - mean.reshape(bshape)) ** 2, axis=axes)   # (C,) biased
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (n / (n - 1))
        else:
            mean, var = running_mean, running_var
        inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)       # (C,) 1/σ̂
        xhat = (x - mean.reshape(bshape).astype(x.dtype)) * inv_std.reshape(bshape)  # (N, C, ...)
        y = xhat if weight is None else xhat * weight.reshape(bshape)
        if bias is not None:
            y = y + bias.reshape(bshape)
        ctx.save_for_backward(xhat, inv_std, weight)
        ctx.axes, ctx.bshape, ctx.training = axes, bshape, training
        return np.ascontiguousarray(y, dtype=x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, δ):
        xhat, inv_std, weight = ctx.saved
        axes, bshape = ctx.axes, ctx.bshape
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            g = δ if weight is None else δ * weight.reshape(bshape)          # (N, C, ...)
            if ctx.training:
                g_mean = g.mean(axis=axes).reshape(bshape)                   # ⟨g⟩      (1, C, 1..)
                gx_mean = (g * xhat).mean(axis=axes).reshape(bshape)         # ⟨g · x̂⟩  (1, C, 1..)
                dx = (g - g_mean - xhat * gx_mean) * inv_std.reshape(bshape)
            else:
                dx = g * inv_std.reshape(bshape)
        if ctx.needs_input_grad[1]:
            dw = (δ * xhat).sum(axis=axes)                                   # (C,)
        if ctx.needs_input_grad[2]:
            db = δ.sum(axis=axes)                                            # (C,)
        return dx, dw, db, None, None, None


def _stat_array(v, name, C):
    if v is None:
        return None
    arr = v.data if isinstance(v, TensorBase) else v
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"batch_norm(): {name} must be an ndarray or a Tensor, got {type(v).__name__}")
    if arr.shape != (C,):
        raise ValueError(f"batch_norm(): {name} must have shape ({C},) (one per channel), got {arr.shape}")
    if arr.dtype.kind != "f":
        raise TypeError(f"batch_norm(): {name} must be floating point, got dtype {arr.dtype}")
    return arr


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over axis 1 (torch.nn.functional.batch_norm).

    training=True normalises with the batch statistics and updates running_mean and
    running_var in place (when given); training=False normalises with them."""
    x = as_float_tensor(input, "batch_norm", "input")
    if x.ndim < 2:
        raise ValueError(f"batch_norm(): input must be (N, C), (N, C, L) or (N, C, H, W), "
                         f"got shape {x.shape}")
    C = x.shape[1]
    rm = _stat_array(running_mean, "running_mean", C)
    rv = _stat_array(running_var, "running_var", C)
    w = None if weight is None else as_float_tensor(weight, "batch_norm", "weight")
    b = None if bias is None else as_float_tensor(bias, "batch_norm", "bias")
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"batch_norm(): {name} must have shape ({C},) for input of shape "
                             f"{x.shape}, got {t.shape}")
    check_same_dtype("batch_norm", x, weight=w, bias=b, running_mean=rm, running_var=rv)
    if not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"batch_norm(): eps must be a non-negative number, got {eps!r}")
    if training:
        if not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"batch_norm(): momentum must be a number in [0, 1], got {momentum!r}")
        if x.size // max(C, 1) <= 1:
            raise ValueError(f"batch_norm(): expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
    elif rm is None or rv is None:
        raise ValueError("batch_norm(): running_mean and running_var are needed when training=False")
    return BatchNorm.apply(x, w, b, bool(training), float(momentum), float(eps),
                           running_mean=rm, running_var=rv)
