"""Losses: cross-entropy over integer class labels (fused with log-softmax) and mean squared error."""
import numbers

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from .nn import as_float_tensor

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(fn, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{fn}(): reduction must be one of {REDUCTIONS}, got {reduction!r}")


class CrossEntropy(Function):
    """Cross-entropy of logits z (N, C) against integer labels y (N,), PyTorch's definition.

    With p = log_softmax(z), class weights w (all 1 when not given) and label smoothing ε,
    the target distribution of row n is
        q[n, c] = (1 − ε) · w[y_n] · [c = y_n] + (ε / C) · w[c]
    and the loss of row n is ℓ_n = −Σ_c q[n, c] · p[n, c]. Reductions: 'none' gives ℓ,
    'sum' Σ_n ℓ_n, 'mean' Σ_n ℓ_n / D with D = Σ_n w[y_n] (= N without weights).

    Backward: ∂p[n,c]/∂z[n,k] = [c = k] − softmax(z)[n,k], so with s_n = Σ_c q[n, c]
        ∂ℓ_n/∂z[n,k] = softmax(z)[n,k] · s_n − q[n,k]
    (softmax(z) − onehot(y) when w = 1 and ε = 0), times δ_n for 'none', δ for 'sum' and
    δ / D for 'mean'.
    """

    @staticmethod
    def forward(ctx, z, y, weight, reduction, smoothing):
        N, C = z.shape
        m = np.max(z, axis=1, keepdims=True) if N else np.zeros((0, 1), z.dtype)
        with np.errstate(invalid="ignore"):                                   # ±inf logits give NaN
            logp = z - m - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))  # (N, C)
        rows = np.arange(N)
        w = np.ones(C, dtype=z.dtype) if weight is None else weight           # (C,)
        w_y = w[y]                                                             # (N,)
        q = np.zeros_like(logp)                                                # (N, C)
        q[rows, y] = (1 - smoothing) * w_y
        if smoothing:
            q += (smoothing / C) * w                                           # (N, C) + (C,)
        loss = -np.sum(q * logp, axis=1)                                       # (N,)
        ctx.save_for_backward(logp, q)
        ctx.reduction = reduction
        if reduction == "none":
            return loss
        if reduction == "sum":
            return np.asarray(loss.sum(), dtype=z.dtype)
        ctx.denom = w_y.sum()
        with np.errstate(invalid="ignore", divide="ignore"):                   # N = 0 gives NaN, as in PyTorch
            return np.asarray(loss.sum() / ctx.denom, dtype=z.dtype)

    @staticmethod
    def backward(ctx, δ):
        logp, q = ctx.saved
        s = q.sum(axis=1, keepdims=True)                                       # (N, 1)
        g = np.exp(logp) * s - q                                               # (N, C): ∂ℓ_n/∂z[n, :]
        if ctx.reduction == "none":
            g *= δ[:, None]                                                    # (N, C) · (N, 1)
        elif ctx.reduction == "sum":
            g *= δ
        else:
            g *= δ / ctx.denom
        return g, None, None, None, None


def cross_entropy(input, target, weight=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits `input` (N, C) and integer class labels `target` (N,).

    Numerically stable (through log-softmax). weight: optional per-class weights (C,);
    label_smoothing ε in [0, 1] mixes the one-hot target with the uniform distribution."""
    z = as_float_tensor(input, "cross_entropy", "input")
    if z.ndim != 2:
        raise ValueError(f"cross_entropy(): input must be logits of shape (N, C), got shape {z.shape}")
    N, C = z.shape
    if C == 0:
        raise ValueError(f"cross_entropy(): input has 0 classes (shape {z.shape})")
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    if y.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy(): target must hold integer class labels (e.g. int64), "
                        f"got dtype {y.dtype}")
    if y.shape != (N,):
        raise ValueError(f"cross_entropy(): target must have shape ({N},) for input of shape "
                         f"{z.shape}, got {y.shape}")
    bad = (y < 0) | (y >= C)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"cross_entropy(): target[{i}] = {int(y[i])} is not a class label in "
                         f"[0, {C}) for input of shape {z.shape}")
    check_reduction("cross_entropy", reduction)
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy(): label_smoothing must be a number in [0, 1], "
                         f"got {label_smoothing!r}")
    w = None
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
        if w.shape != (C,):
            raise ValueError(f"cross_entropy(): weight must have shape ({C},) (one per class), "
                             f"got {w.shape}")
        if w.dtype.kind not in "fiu":
            raise TypeError(f"cross_entropy(): weight must be numeric, got dtype {w.dtype}")
        w = w.astype(z.dtype)
    return CrossEntropy.apply(z, y.astype(np.int64), w, reduction, float(label_smoothing))


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: mean (or sum, or none) of (input − target)², same shapes.

    Written with existing ops: d = input − target; the gradients 2d·δ (and −2d·δ for the
    target, when it requires grad) come from Sub and Mul."""
    x = as_float_tensor(input, "mse_loss", "input")
    t = as_float_tensor(target, "mse_loss", "target")
    if x.shape != t.shape:
        raise ValueError(f"mse_loss(): input has shape {x.shape} but target has shape {t.shape}; "
                         f"they must match")
    # float32 against float64 promotes to float64, as in PyTorch (ops/nn.check_same_dtype)
    check_reduction("mse_loss", reduction)
    d = x - t
    sq = d * d
    if reduction == "none":
        return sq
    if reduction == "sum":
        return sq.sum()
    return sq.mean()
