"""Batch normalisation over the channel axis 1 of (N, C), (N, C, L) or (N, C, H, W) inputs."""
import numbers

import numpy as np

from .. import kernels
from .._ext import batchnorm as _bn
from ..autograd import Function, is_grad_enabled
from ..tensor_base import TensorBase, wrap
from ..threads import get_num_threads
from ._args import as_float_tensor, check_same_dtype
from .activation import HardtanhBackward
from .elementwise import ReLUBackward


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
    ∂L/∂x and ∂L/∂γ are ops of their own (BatchNormBackward, NormWeightGrad) whose
    backward gives the second derivatives; their docstrings derive them.

    Two paths compute the first-order numbers: the NumPy lines below (`_forward_numpy`,
    `_backward_numpy`, the formulas as written; `with minigrad.kernels.use("direct")` forces
    them) and ext/batchnorm.pyx's one-pass kernels (`_forward_fused`, `_backward_fused`, the
    default for C-contiguous float32/float64 input). Both keep x, not x̂: the graph holds x
    anyway, and x̂ = (x − μ) / σ̂ is recomputed where a backward needs it.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, training, momentum, eps, running_mean=None, running_var=None,
                max_val=None):
        relu = isinstance(ctx, BatchNormReLU)      # max(y, 0) in the same pass; r kept for the mask
        residual = getattr(ctx, "residual", None)  # BatchNormAddReLU: max(y + z, 0)
        ctx.hi = max_val if relu else None         # BatchNormReLU: min(max(y, 0), max_val)
        fused = kernels._norm_path(x) == "fused"
        kernels._ran("batch_norm", "forward", "fused" if fused else "direct", x.shape)
        if fused:                                                  # the same steps, one kernel call
            y, mean, inv_std = _forward_fused(x, weight, bias, training, momentum, eps,
                                              running_mean, running_var, relu, residual, ctx.hi)
        else:
            if training:
                n = x.size // x.shape[1]
                mean, var = _batch_stats_numpy(x)                  # (C,), (C,)
                if running_mean is not None:
                    running_mean *= 1 - momentum
                    running_mean += momentum * mean
                if running_var is not None:
                    running_var *= 1 - momentum
                    running_var += momentum * var * (n / (n - 1))
            else:
                mean, var = running_mean, running_var
            mean = np.array(mean, dtype=x.dtype)                   # (C,) μ (a copy: running stats move)
            inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)   # (C,) 1/σ̂
            y = _forward_numpy(x, mean, inv_std, weight, bias, relu, residual, ctx.hi)
        ctx.save_for_backward(mean, inv_std, *((y,) if relu else ()))
        ctx.fused = fused
        ctx.stats = NormStats(x.shape, x.shape, _axes(x), _axes(x), _bshape(x), training, eps)
        return y

    @staticmethod
    def backward(ctx, δ, mask=None, hi=None):
        """A first-order backward (no graph recorded) computes the three gradients in one
        fused pass of the path the forward took (mask, on the fused path only: of δ where
        mask > 0, and mask < hi when hi is given — BatchNormReLU's). Recording
        (create_graph=True), ∂L/∂x is BatchNormBackward and ∂L/∂γ = Σ δ · x̂ is
        NormWeightGrad, ops of their own whose backward gives the second derivatives;
        ∂L/∂β = Σ δ."""
        x, weight = ctx.inputs[:2]
        mean, inv_std = ctx.saved[:2]
        stats, needs = ctx.stats, ctx.needs_input_grad
        rest = (None,) * (len(ctx.inputs) - 3)
        if not is_grad_enabled():
            kernels._ran("batch_norm", "backward", "fused" if ctx.fused else "direct", δ.shape)
            args = (x.data, δ.data, mean, inv_std, None if weight is None else weight.data,
                    stats.training, needs)
            grads = _backward_fused(*args, mask, hi) if ctx.fused else _backward_numpy(*args)
            return tuple(None if g is None else wrap(g) for g in grads) + rest
        dx = dw = db = None
        if needs[0]:
            dx = BatchNormBackward.apply(δ, x, weight, mean, inv_std, stats, ctx.fused)
        if needs[1]:
            xhat = _xhat(x.data, mean, inv_std)
            dw = NormWeightGrad.apply(δ, x, xhat, inv_std, None if stats.training else mean, stats)
        if needs[2]:
            db = δ.sum(stats.axes)                                           # (C,)
        return (dx, dw, db) + rest


class BatchNormReLU(BatchNorm):
    """r = max(y, 0) with y = γ · x̂ + β, BatchNorm's y: `relu(batch_norm(x))` as one op,
    the same numbers bit for bit (nn.Sequential and the models call it for a BatchNorm
    followed by a ReLU). The forward writes r in the pass that computes y (y itself is
    never stored: one pass over the activation less, and one op less in the graph).
    With max_val (a keyword of apply): r = min(max(y, 0), max_val), bit for bit
    `hardtanh(batch_norm(x), 0, max_val)` — ReLU6 after a BatchNorm (MobileNetV2's).

    Backward: ReLU's, then BatchNorm's, ∂L/∂y = δ where r > 0, else 0 (ReLUBackward, an op,
    so a recorded backward is differentiated through both; with max_val, δ where
    0 < r < max_val — Hardtanh's mask 0 < y < max_val, which r gives exactly —,
    HardtanhBackward), and ∂L/∂x, ∂L/∂γ, ∂L/∂β from ∂L/∂y as in BatchNorm.
    """

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂y = δ · [r > 0] (ReLU's backward; with max_val δ · [0 < r < max_val]),
        then BatchNorm's backward of ∂L/∂y. A first-order backward on the fused path reads
        the mask in BatchNorm's two passes (ext/batchnorm.pyx, `mask`, `hi`) and never
        writes ∂L/∂y out."""
        r, hi = ctx.saved[2], ctx.hi
        if ctx.fused and not is_grad_enabled():
            return BatchNorm.backward(ctx, δ, mask=r, hi=hi)
        masked = ReLUBackward.apply(δ, r) if hi is None else HardtanhBackward.apply(δ, r, 0.0, hi)
        return BatchNorm.backward(ctx, masked)


class BatchNormAddReLU(BatchNormReLU):
    """r = max(y + z, 0) with y BatchNorm's output and z a tensor of y's shape: a residual
    block's end, `relu(batch_norm(x) + z)`, as one op, the same numbers bit for bit (the
    sum rounded once, NaN kept). The forward writes r in the pass that computes y (neither
    y nor y + z is stored: ResNet's relu(bn2(conv2(·)) + identity), through nn.bn_add_relu).

    Backward: ReLU's, then the sum's and BatchNorm's, ∂L/∂z = ∂L/∂y = δ where r > 0, else 0
    (ReLUBackward, an op), and ∂L/∂x, ∂L/∂γ, ∂L/∂β from ∂L/∂y as in BatchNorm.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, z, training, momentum, eps, running_mean=None,
                running_var=None):
        ctx.residual = z
        y = BatchNorm.forward(ctx, x, weight, bias, training, momentum, eps, running_mean,
                              running_var)
        ctx.residual = None                        # (not kept: the backward needs only r)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂y = ∂L/∂z = δ · [r > 0], then BatchNorm's backward of ∂L/∂y."""
        masked = ReLUBackward.apply(δ, ctx.saved[2])
        dx, dw, db = BatchNorm.backward(ctx, masked)[:3]
        return (dx, dw, db, masked if ctx.needs_input_grad[3] else None) + (None,) * (
            len(ctx.inputs) - 4)


def _bshape(x):
    return (1, -1) + (1,) * (x.ndim - 2)                           # (C,) -> (1, C, 1, ...)


def _axes(x):
    return (0,) + tuple(range(2, x.ndim))                          # every axis but the channels


def _xhat(x, mean, inv_std):
    """x̂ = (x − μ) / σ̂ (an ndarray of x's shape)."""
    return (x - mean.reshape(_bshape(x))) * inv_std.reshape(_bshape(x))


def _batch_stats_numpy(x):
    """μ = ⟨x⟩, σ² = ⟨(x − μ)²⟩ per channel: (C,), (C,)."""
    mean = x.mean(axis=_axes(x))                                   # (C,)
    var = np.mean((x - mean.reshape(_bshape(x))) ** 2, axis=_axes(x))   # (C,) biased
    return mean, var


def _forward_numpy(x, mean, inv_std, weight, bias, relu=False, residual=None, hi=None):
    """y = γ · x̂ + β, x̂ = (x − μ) / σ̂, as NumPy broadcasting (relu: max(y, 0), NaN kept;
    a residual z: max(y + z, 0); relu with hi: min(max(y, 0), hi) as Hardtanh has it)."""
    bshape = _bshape(x)
    xhat = (x - mean.reshape(bshape)) * inv_std.reshape(bshape)    # (N, C, ...)
    y = xhat if weight is None else xhat * weight.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    if residual is not None:
        y = y + residual
    if relu and hi is not None:                                    # Hardtanh(0, hi): −0 stays
        y = y.astype(x.dtype, copy=False)
        y = np.where(y < 0, y.dtype.type(0), y)
        y = np.where(y > hi, y.dtype.type(hi), y)
    elif relu:
        y = np.where(y <= 0, 0, y)
    return np.ascontiguousarray(y, dtype=x.dtype)


def _backward_numpy(x, δ, mean, inv_std, weight, training, needs):
    """(∂L/∂x, ∂L/∂γ, ∂L/∂β), each None unless needs[0..2], from the docstring's formulas."""
    axes, bshape = _axes(x), _bshape(x)
    xhat = _xhat(x, mean, inv_std)                                 # (N, C, ...)
    dx = dw = db = None
    if needs[0]:
        g = δ if weight is None else δ * weight.reshape(bshape)              # (N, C, ...)
        if training:
            g_mean = g.mean(axis=axes).reshape(bshape)                       # ⟨g⟩      (1, C, 1..)
            gx_mean = (g * xhat).mean(axis=axes).reshape(bshape)             # ⟨g · x̂⟩  (1, C, 1..)
            dx = (g - g_mean - xhat * gx_mean) * inv_std.reshape(bshape)
        else:
            dx = g * inv_std.reshape(bshape)
    if needs[1]:
        dw = (δ * xhat).sum(axis=axes)                                       # (C,)
    if needs[2]:
        db = δ.sum(axis=axes)                                                # (C,)
    return dx, dw, db


def _ncl(a, name, C):
    """a as the kernels' C-contiguous (N, C, L) view; checks what the unchecked loops assume."""
    if a.ndim < 2 or a.shape[1] != C or a.size == 0 or a.dtype not in (np.float32, np.float64):
        raise ValueError(f"batch_norm(): {name} of shape {a.shape}, dtype {a.dtype} cannot go to "
                         f"the fused kernels (need float32/float64 (N, {C}, ...) with N·L ≥ 1)")
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[0], C, -1)


def _per_channel(v, C, dtype, name):
    """A (C,) C-contiguous array of `dtype` for the kernels (ValueError on another shape)."""
    v = np.ascontiguousarray(v, dtype=dtype)
    if v.shape != (C,):
        raise ValueError(f"batch_norm(): {name} must have shape ({C},), got {v.shape}")
    return v


def _forward_fused(x, weight, bias, training, momentum, eps, running_mean=None, running_var=None,
                   relu=False, residual=None, hi=None):
    """(y, μ, 1/σ̂) by ext/batchnorm.pyx's batchnorm_forward: the numpy path's steps —
    μ, σ² (training: in one pass, and the running statistics updated in place) or the
    running ones, 1/σ̂ = 1/√(σ² + eps) — and y = a · (x − μ) + β per channel, a = γ/σ̂
    (= γ · x̂ + β), in one more pass (relu: max(y, 0) in the same pass, min(max(y, 0), hi)
    with hi; a residual z of x's shape: max(y + z, 0))."""
    C = x.shape[1]
    x3 = _ncl(x, "input", C)                                       # (N, C, L)
    y = np.empty(x.shape, x.dtype)
    mean, inv_std = np.empty(C, x.dtype), np.empty(C, x.dtype)     # (C,) μ, 1/σ̂
    if not training and (running_mean.dtype != x.dtype or running_var.dtype != x.dtype):
        mean[...] = running_mean                  # statistics of another dtype (SyncBatchNorm's
        inv_std[...] = 1.0 / np.sqrt(running_var + eps)   # float64 ones): rounded to x's
        running_mean = running_var = None
    _bn.batchnorm_forward(x3, y.reshape(x3.shape), mean, inv_std,
                          None if weight is None else _per_channel(weight, C, x.dtype, "weight"),
                          None if bias is None else _per_channel(bias, C, x.dtype, "bias"),
                          eps, training, running_mean, running_var, momentum, get_num_threads(),
                          relu, None if residual is None else _ncl(residual, "residual", C), hi)
    return y, mean, inv_std


def _backward_fused(x, δ, mean, inv_std, weight, training, needs, mask=None, hi=None):
    """The docstring's formulas in two passes (ext/batchnorm.pyx batchnorm_backward): the
    sums Σ δ and Σ δ · (x − μ), then ∂L/∂x = a · δ + k · (x − μ) + m per channel, where
    a = γ/σ̂ and (training) k = −a · ∂L/∂γ / (n σ̂), m = −a · ∂L/∂β / n — that is
    γ/σ̂ · (δ − ⟨δ⟩ − x̂ · ⟨δ · x̂⟩) with ⟨δ⟩ = ∂L/∂β / n and ⟨δ · x̂⟩ = ∂L/∂γ / n.
    mask (x's shape and dtype, or None): δ is taken as 0 where mask ≤ 0 — ReLU's backward
    of a BatchNorm followed by ReLU (mask = its output), read in both passes — and, with hi,
    where mask ≥ hi (ReLU6's: hi = 6)."""
    C = x.shape[1]
    x3, δ3 = _ncl(x, "input", C), _ncl(δ, "grad_output", C)       # (N, C, L) each
    q3 = None if mask is None else _ncl(mask, "mask", C)           # (N, C, L) or None
    for name, a, a3 in (("grad_output", δ, δ3), ("mask", mask, q3)):
        if a3 is not None and (a3.shape != x3.shape or a3.dtype != x3.dtype):
            raise ValueError(f"batch_norm(): {name} {a.shape} {a.dtype} does not match the "
                             f"input {x.shape} {x.dtype}")
    dx = np.empty(x.shape, x.dtype) if needs[0] else None
    dw, db = np.empty(C, x.dtype), np.empty(C, x.dtype)           # (C,) ∂L/∂γ, ∂L/∂β
    _bn.batchnorm_backward(x3, δ3, _per_channel(mean, C, x.dtype, "mean"),
                           _per_channel(inv_std, C, x.dtype, "inv_std"),
                           None if weight is None else _per_channel(weight, C, x.dtype, "weight"),
                           None if dx is None else dx.reshape(x3.shape), dw, db, training,
                           get_num_threads(), mask=q3, hi=hi)
    return dx, (dw if needs[1] else None), (db if needs[2] else None)


class NormStats:
    """Where a normalisation takes its statistics, for the backward ops (BatchNorm,
    GroupNorm, SyncBatchNorm share them).

    x (the shape `shape`) is viewed as `group_shape`, in which μ and σ² are the means over
    `dims` (kept as size-1 axes): BatchNorm views x as it is and averages over
    `axes` = every axis but the channels; GroupNorm views (N, C, …) as (N, G, m) and
    averages over axis 2. `axes` are the axes ∂L/∂γ and ∂L/∂β sum over, `bshape` the
    shape γ broadcasts as. `training` says whether μ and σ² are x's own statistics
    (functions of x) or constants (BatchNorm in evaluation)."""

    def __init__(self, shape, group_shape, dims, axes, bshape, training, eps):
        self.shape, self.group_shape, self.dims = shape, group_shape, dims
        self.axes, self.bshape, self.training, self.eps = axes, bshape, training, eps

    def group(self, t):
        """t (a tensor of x's shape) viewed as group_shape."""
        return t if self.group_shape == self.shape else t.reshape(self.group_shape)

    def ungroup(self, t):
        return t if self.group_shape == self.shape else t.reshape(self.shape)

    def mean(self, t):
        """⟨t⟩: the mean over each group's values, kept as size-1 axes."""
        return t.mean(self.dims, keepdim=True)

    def normalized(self, x, mean=None, inv_std=None):
        """x̂ and 1/σ̂ (group layout) as tensors of x's graph, recomputed from x: the double
        backward differentiates through them. In evaluation μ = `mean` and 1/σ̂ = `inv_std`
        are the constants the forward used."""
        xg = self.group(x)
        if not self.training:
            inv = inv_std.reshape(self.bshape)
            return (xg - mean.reshape(self.bshape)) * inv, inv
        μ = self.mean(xg)
        c = xg - μ                                                          # x − μ
        σ2 = self.mean(c * c)                                                # σ² (biased)
        inv = 1.0 / (σ2 + self.eps).sqrt()                                   # 1/σ̂
        return c * inv, inv

    def project(self, v, xhat):
        """P(v) = v − ⟨v⟩ − x̂ · ⟨v · x̂⟩ (group layout): what the normalisation's Jacobian
        does to a gradient, up to the factor 1/σ̂. P is symmetric: ⟨a, P b⟩ = ⟨P a, b⟩."""
        return v - self.mean(v) - xhat * self.mean(v * xhat)


class BatchNormBackward(Function):
    """∂L/∂x of batch normalisation, as an op of its own: forward is the first-order
    formula (by the path BatchNorm's forward took: `_backward_fused` or `_backward_numpy`),
    backward its derivative, written over tensors (it runs only for the gradient of a
    gradient). GroupNormBackward and SyncBatchNormBackward share the backward.

    With g = δ · γ, ⟨·⟩ the mean over a channel's n values (a group's, for GroupNorm) and
    P(v) = v − ⟨v⟩ − x̂ ⟨v · x̂⟩:
        training:   ∂L/∂x = P(g) / σ̂          evaluation: ∂L/∂x = g / σ̂

    Double backward. Let ε be the gradient arriving at ∂L/∂x. P is symmetric, so
        ∂/∂δ = γ · P(ε) / σ̂,      ∂/∂γ = Σ δ · P(ε) / σ̂     (evaluation: P(ε) → ε)
    and, in training, where x̂ and σ̂ depend on x (∂σ̂/∂x_j = x̂_j / n,
    ∂x̂_i/∂x_j = ([i = j] − 1/n − x̂_i x̂_j / n) / σ̂ within a channel):
        ∂/∂x = (1/σ̂²) · [ 3 x̂ ⟨g x̂⟩⟨ε x̂⟩ − x̂ (⟨ε g⟩ − ⟨ε⟩⟨g⟩)
                          − (g − ⟨g⟩) ⟨ε x̂⟩ − (ε − ⟨ε⟩) ⟨g x̂⟩ ]
    (0 in evaluation, where μ and σ² are constants). x̂ and σ̂ are recomputed from x with
    tensor ops, so these formulas are differentiated again for third derivatives.
    """

    @staticmethod
    def forward(ctx, δ, x, weight, mean, inv_std, stats, fused):
        ctx.save_for_backward(mean, inv_std)
        ctx.stats = stats
        dx, _, _ = (_backward_fused if fused else _backward_numpy)(
            x, δ, mean, inv_std, weight, stats.training, (True, False, False))
        return dx

    @staticmethod
    def backward(ctx, ε):
        δ, x, weight = ctx.inputs[:3]
        return normalization_double_backward(ctx, ε, δ, x, weight, ctx.stats, ctx.saved[1])


def normalization_double_backward(ctx, ε, δ, x, weight, stats, inv_std):
    """(∂/∂δ, ∂/∂x, ∂/∂γ, None…) of ⟨ε, P(δ · γ)/σ̂⟩ (BatchNormBackward's docstring), for
    the ops whose inputs are (δ, x, γ, …)."""
    need_δ, need_x, need_w = ctx.needs_input_grad[:3]
    γ = None if weight is None else weight.reshape(stats.bshape)
    εg = stats.group(ε)
    if stats.training:
        xhat, inv = stats.normalized(x)                                     # group layout
        Pε = stats.project(εg, xhat)
    else:
        Pε, inv = εg, inv_std.reshape(stats.bshape)                         # 1/σ̂ a constant
    pe = stats.ungroup(Pε * inv)                                            # P(ε)/σ̂, x's shape
    dδ = dx = dw = None
    if need_δ:
        dδ = pe if γ is None else pe * γ
    if need_w:
        dw = (δ * pe).sum(stats.axes)                                        # (C,)
    if need_x and stats.training:
        g = stats.group(δ if γ is None else δ * γ)
        m = stats.mean
        gx, εx = m(g * xhat), m(εg * xhat)                                   # ⟨g x̂⟩, ⟨ε x̂⟩
        dx = (3 * xhat * gx * εx - xhat * (m(εg * g) - m(εg) * m(g))
              - (g - m(g)) * εx - (εg - m(εg)) * gx) * (inv * inv)
        dx = stats.ungroup(dx)
    return (dδ, dx, dw) + (None,) * (len(ctx.inputs) - 3)


class NormWeightGrad(Function):
    """∂L/∂γ = Σ δ · x̂ over every axis but the channels (a normalisation's weight
    gradient), as an op of its own: forward over the saved x̂, backward over tensors.

    Backward, with ε (C,) the gradient arriving at ∂L/∂γ: ⟨ε, Σ δ x̂⟩ = Σ (ε δ) · x̂, which is
    the normalisation's output with γ = ε seen from x, so
        ∂/∂δ = ε · x̂,     ∂/∂x = P(ε · δ) / σ̂   (training),   ε · δ / σ̂   (evaluation)
    (BatchNormBackward's formula for ∂L/∂x with g = ε · δ).
    """

    @staticmethod
    def forward(ctx, δ, x, xhat, inv_std, mean, stats):
        ctx.save_for_backward(inv_std, mean)
        ctx.stats = stats
        return (δ * xhat).sum(axis=stats.axes)                                   # (C,)

    @staticmethod
    def backward(ctx, ε):
        δ, x = ctx.inputs[:2]
        inv_std, mean = ctx.saved
        stats = ctx.stats
        εb = ε.reshape(stats.bshape)                                             # (1, C, 1..)
        xhat, inv = stats.normalized(x, mean, inv_std)                          # group layout
        dδ = dx = None
        if ctx.needs_input_grad[0]:
            dδ = stats.ungroup(xhat) * εb
        if ctx.needs_input_grad[1]:
            h = stats.group(δ * εb)
            Ph = stats.project(h, xhat) if stats.training else h
            dx = stats.ungroup(Ph * inv)
        return dδ, dx, None, None, None, None


def _plain_args(x, rm, rv, w, b, training, momentum, eps):
    """_batch_norm_args' result when its checks would all pass for plain reasons — x a float
    Tensor of rank ≥ 2, rm and rv ndarrays and w and b Tensors (or None) of shape (C,) and
    x's dtype, eps and (training) momentum Python floats in range, more than one value per
    channel, the running statistics there unless training —, else None. A subset of what
    the full checks accept, with the same result: 8–11 µs less a BatchNorm forward (of
    53–61 on a tiny input; benchmarks/RESULTS.md, session 22)."""
    if not isinstance(x, TensorBase) or type(eps) is not float or not eps >= 0:
        return None
    a = x.data
    if a.ndim < 2 or a.dtype.kind != "f":
        return None
    C, dt = a.shape[1], a.dtype
    for v in (rm, rv):
        if v is not None and (type(v) is not np.ndarray or v.shape != (C,) or v.dtype != dt):
            return None
    for t in (w, b):
        if t is not None and (not isinstance(t, TensorBase) or t.data.shape != (C,)
                              or t.data.dtype != dt):
            return None
    if training:
        if type(momentum) is not float or not 0.0 <= momentum <= 1.0 or a.size <= C:
            return None
    elif rm is None or rv is None:
        return None
    return x, w, b, bool(training), float(momentum), eps, rm, rv


def _stat_array(fn, v, name, C):
    if v is None:
        return None
    arr = v.data if isinstance(v, TensorBase) else v
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fn}(): {name} must be an ndarray or a Tensor, got {type(v).__name__}")
    if arr.shape != (C,):
        raise ValueError(f"{fn}(): {name} must have shape ({C},) (one per channel), got {arr.shape}")
    if arr.dtype.kind != "f":
        raise TypeError(f"{fn}(): {name} must be floating point, got dtype {arr.dtype}")
    return arr


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over axis 1 (torch.nn.functional.batch_norm).

    training=True normalises with the batch statistics and updates running_mean and
    running_var in place (when given); training=False normalises with them."""
    *args, rm, rv = _batch_norm_args("batch_norm", input, running_mean, running_var, weight,
                                     bias, training, momentum, eps)
    return BatchNorm.apply(*args, running_mean=rm, running_var=rv)


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None, training=False,
                    momentum=0.1, eps=1e-5, max_val=None):
    """relu(batch_norm(input, …)) as one op (BatchNormReLU): the same arguments as
    batch_norm and the same numbers as the two calls, bit for bit, with max(y, 0) written in
    the pass that computes y. nn.Sequential and the models use it for a BatchNorm2d followed
    by a ReLU (nn.batch_norm_relu).

    max_val (a positive finite number, or None): min(max(y, 0), max_val) instead, bit for
    bit hardtanh(batch_norm(input, …), 0, max_val) — relu6 with max_val = 6 (MobileNetV2's
    BatchNorm followed by ReLU6); ∂L/∂y = δ where 0 < y < max_val."""
    *args, rm, rv = _batch_norm_args("batch_norm_relu", input, running_mean, running_var,
                                     weight, bias, training, momentum, eps)
    if max_val is not None:
        if isinstance(max_val, bool) or not isinstance(max_val, numbers.Real):
            raise TypeError(f"batch_norm_relu(): max_val must be a number or None, got "
                            f"{type(max_val).__name__}")
        if not 0 < max_val < float("inf"):
            raise ValueError(f"batch_norm_relu(): max_val must be positive and finite, got {max_val}")
        max_val = float(max_val)
    return BatchNormReLU.apply(*args, running_mean=rm, running_var=rv, max_val=max_val)


def batch_norm_add_relu(input, residual, running_mean, running_var, weight=None, bias=None,
                        training=False, momentum=0.1, eps=1e-5):
    """relu(batch_norm(input, …) + residual) as one op (BatchNormAddReLU): batch_norm's
    arguments and a residual of input's shape and dtype, and the same numbers as the three
    calls, bit for bit, with max(y + residual, 0) written in the pass that computes y. The
    ResNet blocks use it for relu(bn2(conv2(·)) + identity) (nn.bn_add_relu).
    ∂L/∂residual = δ where the result is > 0."""
    *args, rm, rv = _batch_norm_args("batch_norm_add_relu", input, running_mean, running_var,
                                     weight, bias, training, momentum, eps)
    z = as_float_tensor(residual, "batch_norm_add_relu", "residual")
    if z.shape != args[0].shape or z.dtype != args[0].dtype:
        raise ValueError(f"batch_norm_add_relu(): residual {z.shape} {z.dtype} must have the "
                         f"input's shape and dtype, {args[0].shape} {args[0].dtype}")
    x, w, b, *rest = args
    return BatchNormAddReLU.apply(x, w, b, z, *rest, running_mean=rm, running_var=rv)


def _batch_norm_args(fn, input, running_mean, running_var, weight, bias, training, momentum, eps):
    """BatchNorm.apply's arguments, checked: x, weight, bias, training, momentum, eps and the
    running mean and variance (ndarrays or None). The usual call (a module's: tensors and
    arrays already in shape) passes _plain_args' few comparisons; anything else gets the
    checks below, and their errors."""
    args = _plain_args(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if args is not None:
        return args
    x = as_float_tensor(input, fn, "input")
    if x.ndim < 2:
        raise ValueError(f"{fn}(): input must be (N, C), (N, C, L) or (N, C, H, W), "
                         f"got shape {x.shape}")
    C = x.shape[1]
    rm = _stat_array(fn, running_mean, "running_mean", C)
    rv = _stat_array(fn, running_var, "running_var", C)
    w = None if weight is None else as_float_tensor(weight, fn, "weight")
    b = None if bias is None else as_float_tensor(bias, fn, "bias")
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"{fn}(): {name} must have shape ({C},) for input of shape "
                             f"{x.shape}, got {t.shape}")
    check_same_dtype(fn, x, weight=w, bias=b, running_mean=rm, running_var=rv)
    if not isinstance(eps, numbers.Real) or not eps >= 0:
        raise ValueError(f"{fn}(): eps must be a non-negative number, got {eps!r}")
    if training:
        if not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{fn}(): momentum must be a number in [0, 1], got {momentum!r}")
        if x.size // max(C, 1) <= 1:
            raise ValueError(f"{fn}(): expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
    elif rm is None or rv is None:
        raise ValueError(f"{fn}(): running_mean and running_var are needed when training=False")
    return x, w, b, bool(training), float(momentum), float(eps), rm, rv
