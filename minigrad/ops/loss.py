"""Losses: cross-entropy over integer class labels (fused with log-softmax), mean squared
error, negative log-likelihood of log-probabilities; and one_hot (labels -> indicator rows)."""
import numbers

import numpy as np

from ..autograd import Function
from ..tensor_base import TensorBase, wrap
from ._args import as_float_tensor
from .nn import SoftmaxFunction

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
        ctx.reduction, ctx.denom = reduction, None
        if reduction == "none":
            return loss
        if reduction == "sum":
            return np.asarray(loss.sum(), dtype=z.dtype)
        ctx.denom = w_y.sum()
        with np.errstate(invalid="ignore", divide="ignore"):                   # N = 0 gives NaN, as in PyTorch
            return np.asarray(loss.sum() / ctx.denom, dtype=z.dtype)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂z = (softmax(z) · s − q) · (δ_n, δ or δ/D), s_n = Σ_c q[n, c]: CrossEntropyBackward."""
        logp, q = ctx.saved
        return (CrossEntropyBackward.apply(δ, ctx.inputs[0], logp, q, ctx.reduction, ctx.denom),
                None, None, None, None)


def _loss_scale(δ, reduction, denom, shape):
    """What multiplies ∂ℓ_n/∂input for each reduction: δ_n (reshaped to `shape`, δ's shape
    with the class axis put back as size 1), δ, or δ / D. δ is an ndarray or a tensor."""
    if reduction == "none":
        return δ.reshape(shape)
    if reduction == "sum":
        return δ
    with np.errstate(invalid="ignore", divide="ignore"):                       # D = 0: NaN, as the forward
        return δ / denom


class CrossEntropyBackward(Function):
    """CrossEntropy's ∂L/∂z = G · scale, G = softmax(z) · s − q (s_n = Σ_c q[n, c]) and
    scale = δ_n, δ or δ/D (CrossEntropy's docstring), as an op: forward in NumPy over the
    saved log-softmax; backward over tensors, softmax recomputed from z as an op.

    Backward, ε (N, C) arriving at ∂L/∂z. ⟨ε, G · scale⟩ is linear in δ:
        ∂/∂δ_n = Σ_c ε[n, c] G[n, c]   ('none');   Σ ε G ('sum');   Σ ε G / D ('mean')
    and depends on z through p = softmax(z), whose row Jacobian is diag(p) − p pᵀ: with
    v = ε · scale · s,
        ∂/∂z = p ⊙ (v − Σ_c v p)        (row by row)
    """

    @staticmethod
    def forward(ctx, δ, z, logp, q, reduction, denom):
        ctx.save_for_backward(q)
        ctx.reduction, ctx.denom = reduction, denom
        s = q.sum(axis=1, keepdims=True)                                       # (N, 1)
        g = np.exp(logp) * s - q                                               # (N, C): ∂ℓ_n/∂z[n, :]
        g *= _loss_scale(δ, reduction, denom, (-1, 1))                         # · (N, 1), () or ()
        return g

    @staticmethod
    def backward(ctx, ε):
        δ, z = ctx.inputs[:2]
        q, = ctx.saved
        s = q.sum(axis=1, keepdims=True)                                       # (N, 1)
        p = SoftmaxFunction.apply(z, 1)                                                # softmax(z), an op of z
        dδ = dz = None
        if ctx.needs_input_grad[0]:
            εG = ε * (p * s - q)                                               # (N, C)
            if ctx.reduction == "none":
                dδ = εG.sum(1)                                                 # (N,)
            else:
                dδ = _loss_scale(εG.sum(), ctx.reduction, ctx.denom, ())
        if ctx.needs_input_grad[1]:
            v = ε * _loss_scale(δ, ctx.reduction, ctx.denom, (-1, 1)) * s      # (N, C)
            dz = p * (v - (v * p).sum(1, keepdim=True))
        return dδ, dz, None, None, None, None


def cross_entropy(input, target, weight=None, reduction="mean", label_smoothing=0.0):
    """Cross-entropy between logits (N, C) and integer class labels (N,) (torch's
    F.cross_entropy): softmax and negative log-likelihood in one stable step.

    With p = log_softmax(z) over the classes, per-class weights w (all 1 by default) and
    label smoothing ε, row n's target distribution and loss are::

        q[n, c] = (1 − ε) · w[y_n] · [c = y_n] + (ε / C) · w[c]
        ℓ_n     = −Σ_c q[n, c] · p[n, c]          (= −log softmax(z_n)[y_n] when w = 1, ε = 0)

    and the gradient is ∂ℓ_n/∂z[n, k] = softmax(z)[n, k] · Σ_c q[n, c] − q[n, k]
    (softmax(z_n) − onehot(y_n) in the plain case).

    Parameters
    ----------
    input : Tensor, (N, C)
        Logits: raw scores, not probabilities (log-softmax is applied inside, shifted by
        each row's maximum so that large logits do not overflow). float32 or float64.
    target : Tensor or array, (N,)
        Integer class labels y_n in [0, C).
    weight : Tensor or array, (C,), optional
        w[c], the weight of class c (e.g. against class imbalance).
    reduction : {'mean', 'sum', 'none'}
        'mean' (default): Σ_n ℓ_n / Σ_n w[y_n], the batch mean when unweighted (NaN for
        an empty batch, as in PyTorch); 'sum': Σ_n ℓ_n; 'none': ℓ, one loss per row.
    label_smoothing : float in [0, 1]
        ε: mixes the one-hot target with the uniform distribution. Default 0.

    Returns
    -------
    Tensor
        A scalar, or (N,) with reduction='none'.

    Examples
    --------
    >>> logits = mg.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> F.cross_entropy(logits, mg.tensor([0, 2]), reduction='none')   # log(1 + 2e⁻²), log 3
    tensor([0.2395, 1.0986])
    >>> loss = F.cross_entropy(logits, mg.tensor([0, 2]))             # their mean
    >>> round(loss.item(), 4)
    0.6691
    """
    z = as_float_tensor(input, "cross_entropy", "input")
    if z.ndim != 2:
        raise ValueError(f"cross_entropy(): input must be logits of shape (N, C), got shape {z.shape}")
    N, C = z.shape
    if C == 0:
        raise ValueError(f"cross_entropy(): input has 0 classes (shape {z.shape})")
    y = target.data if isinstance(target, TensorBase) else np.asarray(target)
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
        w = np.asarray(weight.data if isinstance(weight, TensorBase) else weight)
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
    if isinstance(target, np.ndarray) and target.dtype.kind == "f":
        target = target.astype(x.dtype, copy=False)         # a constant array follows the input
    t = as_float_tensor(target, "mse_loss", "target")
    if x.shape != t.shape:
        raise ValueError(f"mse_loss(): input has shape {x.shape} but target has shape {t.shape}; "
                         f"they must match")
    # float32 against a float64 Tensor promotes to float64, as in PyTorch (ops/nn.check_same_dtype)
    check_reduction("mse_loss", reduction)
    d = x - t
    sq = d * d
    if reduction == "none":
        return sq
    if reduction == "sum":
        return sq.sum()
    return sq.mean()


class NLLLossFunction(Function):
    """Negative log-likelihood of log-probabilities x (N, C, …) at integer labels y (N, …):

        ℓ_n = −w[y_n] · x[n, y_n]       (0 where y_n = ignore_index)

    (n runs over the batch and any trailing positions). Reductions: 'none' gives ℓ,
    'sum' Σ_n ℓ_n, 'mean' Σ_n ℓ_n / D with D = Σ_{n not ignored} w[y_n].

    Backward: ∂ℓ_n/∂x[n, c] = −w[c] · [c = y_n] (0 for ignored n), times δ_n for 'none',
    δ for 'sum' and δ / D for 'mean'.
    """

    @staticmethod
    def forward(ctx, x, y, weight, ignore_index, reduction):
        # move the class axis last: (N, C, …) -> (M, C) rows, y -> (M,)
        xc = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])                # (M, C)
        yf = y.reshape(-1)                                                  # (M,)
        keep = yf != ignore_index                                           # (M,)
        safe = np.where(keep, yf, 0)                                        # a valid column everywhere
        w = np.ones(x.shape[1], x.dtype) if weight is None else weight      # (C,)
        w_y = np.where(keep, w[safe], 0).astype(x.dtype)                    # (M,) w[y_n], 0 if ignored
        loss = -w_y * xc[np.arange(len(yf)), safe]                          # (M,)
        ctx.save_for_backward(safe, w_y)
        ctx.reduction, ctx.x_shape, ctx.denom = reduction, x.shape, None
        if reduction == "none":
            return loss.reshape(y.shape)
        if reduction == "sum":
            return np.asarray(loss.sum(), dtype=x.dtype)
        ctx.denom = w_y.sum()
        with np.errstate(invalid="ignore", divide="ignore"):               # nothing counted: NaN, as PyTorch
            return np.asarray(loss.sum() / ctx.denom, dtype=x.dtype)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x[n, y_n] = −w[y_n] · (δ_n, δ or δ/D); every other entry 0: NLLLossBackward."""
        safe, w_y = ctx.saved
        return NLLLossBackward.apply(δ, safe, w_y, ctx.reduction, ctx.denom, ctx.x_shape), None, None, None, None


class NLLLossBackward(Function):
    """NLLLoss's ∂L/∂x as an op: −w[y_n] · scale at (n, y_n), 0 elsewhere, with scale = δ_n,
    δ or δ/D. It does not depend on x, and is linear in δ with a constant pattern
    P[n, c] = −w[y_n] [c = y_n], so its backward (ε arriving at ∂L/∂x) is
        ∂/∂δ_n = Σ_c ε[n, c] P[n, c]  ('none'),   Σ ε P  ('sum'),   Σ ε P / D  ('mean')
    """

    @staticmethod
    def forward(ctx, δ, safe, w_y, reduction, denom, shape):
        ctx.save_for_backward(safe, w_y)
        ctx.reduction, ctx.denom, ctx.shape = reduction, denom, shape
        C = shape[1]
        g = np.zeros((len(safe), C), w_y.dtype)                            # (M, C)
        g[np.arange(len(safe)), safe] = -w_y * _loss_scale(δ, reduction, denom, -1)
        moved = (shape[0],) + shape[2:] + (C,)                              # (N, …, C)
        return np.moveaxis(g.reshape(moved), -1, 1)

    @staticmethod
    def backward(ctx, ε):
        safe, w_y = ctx.saved
        shape = ctx.shape
        C = shape[1]
        εc = ε.permute(0, *range(2, len(shape)), 1).reshape(-1, C)          # (M, C), class axis last
        picked = εc[np.arange(len(safe)), safe] * -w_y                      # (M,) Σ_c ε P per row
        if ctx.reduction == "none":
            return picked.reshape((shape[0],) + shape[2:]), None, None, None, None, None
        return _loss_scale(picked.sum(), ctx.reduction, ctx.denom, ()), None, None, None, None, None


def _class_targets(fn, x, target, ignore_index):
    """target as an int64 ndarray of shape x.shape without axis 1, labels in [0, C) or ignore_index."""
    y = target.data if isinstance(target, TensorBase) else np.asarray(target)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{fn}(): target must hold integer class labels (e.g. int64), got dtype {y.dtype}")
    expect = x.shape[:1] + x.shape[2:]
    if y.shape != expect:
        raise ValueError(f"{fn}(): target must have shape {expect} for input of shape {x.shape}, "
                         f"got {y.shape}")
    C = x.shape[1]
    bad = ((y < 0) | (y >= C)) & (y != ignore_index)
    if np.any(bad):
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{fn}(): target{list(i)} = {int(y[i])} is not a class label in [0, {C}) "
                         f"(nor ignore_index={ignore_index}) for input of shape {x.shape}")
    return y.astype(np.int64)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood loss (torch.nn.functional.nll_loss): input holds
    log-probabilities (N, C) or (N, C, d₁, …) (e.g. from log_softmax(·, dim=1)), target
    integer labels (N,) or (N, d₁, …); also an unbatched (C,) input with a 0-d target.

        ℓ_n = −weight[y_n] · input[n, y_n],  ignored (0, not counted) where y_n = ignore_index

    reduction 'mean' divides Σ ℓ by Σ weight[y_n] over the counted n; 'sum'; 'none'.
    size_average/reduce (PyTorch's deprecated flags) must be left None.
    cross_entropy(z, y) = nll_loss(log_softmax(z, 1), y)."""
    fn = "nll_loss"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{fn}(): size_average and reduce are deprecated; use reduction=")
    x = as_float_tensor(input, fn, "input")
    check_reduction(fn, reduction)
    if not isinstance(ignore_index, numbers.Integral) or isinstance(ignore_index, bool):
        raise TypeError(f"{fn}(): ignore_index must be an int, got {ignore_index!r}")
    unbatched = x.ndim == 1
    if unbatched:
        from .shape import reshape
        x = reshape(x, (1, x.shape[0]))
        target = np.asarray(target.data if isinstance(target, TensorBase) else target).reshape(1)
    if x.ndim < 2 or x.shape[1] == 0:
        raise ValueError(f"{fn}(): input must be (N, C) or (N, C, d1, ...) with C ≥ 1, got shape {x.shape}")
    y = _class_targets(fn, x, target, int(ignore_index))
    w = None
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, TensorBase) else weight)
        if w.shape != (x.shape[1],):
            raise ValueError(f"{fn}(): weight must have shape ({x.shape[1]},) (one per class), got {w.shape}")
        if w.dtype.kind not in "fiu":
            raise TypeError(f"{fn}(): weight must be numeric, got dtype {w.dtype}")
        w = w.astype(x.dtype)
    out = NLLLossFunction.apply(x, y, w, int(ignore_index), reduction)
    if unbatched and reduction == "none":
        from .shape import reshape
        out = reshape(out, ())
    return out


def one_hot(tensor, num_classes=-1):
    """torch.nn.functional.one_hot: an int64 tensor of shape tensor.shape + (num_classes,)
    with out[…, k] = 1 where tensor[…] = k, else 0. num_classes=-1 takes max(tensor) + 1.
    tensor must hold non-negative integers below num_classes. Not differentiable."""
    fn = "one_hot"
    y = tensor.data if isinstance(tensor, TensorBase) else np.asarray(tensor)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{fn}(): the input must hold integers (class indices), got dtype {y.dtype}")
    if not isinstance(num_classes, numbers.Integral) or isinstance(num_classes, bool):
        raise TypeError(f"{fn}(): num_classes must be an int, got {num_classes!r}")
    if y.size and y.min() < 0:
        raise ValueError(f"{fn}(): class values must be non-negative, got {int(y.min())}")
    if num_classes == -1:
        if y.size == 0:
            raise ValueError(f"{fn}(): cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = int(y.max()) + 1
    elif num_classes < 1:
        raise ValueError(f"{fn}(): num_classes must be positive or -1, got {num_classes}")
    elif y.size and y.max() >= num_classes:
        raise ValueError(f"{fn}(): class value {int(y.max())} is too large for num_classes={num_classes}")
    from .limits import check_output
    check_output(fn, "num_classes", y.shape + (int(num_classes),), 8)
    out = (y[..., None] == np.arange(num_classes)).astype(np.int64)     # (…, num_classes)
    return wrap(out, False)
