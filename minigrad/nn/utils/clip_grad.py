"""Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), in place on .grad."""
import math
import numbers

import numpy as np

from ...tensor import Tensor


def _grads(fn, parameters):
    """The .grad arrays of the parameters that have one (a single Tensor is accepted)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}(): parameters must be Tensors, but item {i} is a {type(p).__name__}")
        if p.grad is not None:
            out.append(p.grad)
    return out


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together so that their joint norm is at most max_norm.

    The joint norm treats every gradient as one long vector g:
        ‖g‖_q = (Σ_p ‖g_p‖_q^q)^(1/q)      (q = norm_type; q = inf: max |g|)
    and every gradient is multiplied by min(1, max_norm / (‖g‖_q + 10⁻⁶)) (PyTorch's
    rule). Returns the norm before clipping as a 0-d Tensor. With
    error_if_nonfinite=True a NaN or infinite norm raises RuntimeError (else the
    gradients are scaled by NaN, as in PyTorch). foreach is accepted and ignored.
    """
    fn = "clip_grad_norm_"
    for name, v in (("max_norm", max_norm), ("norm_type", norm_type)):
        if not isinstance(v, (numbers.Real, np.generic)) or isinstance(v, bool):
            raise TypeError(f"{fn}(): {name} must be a number, got {v!r}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"{fn}(): norm_type must be positive (or inf), got {norm_type}")
    grads = _grads(fn, parameters)
    if not grads:
        return Tensor(np.float32(0.0))
    dtype = np.result_type(*[g.dtype for g in grads])
    if norm_type == math.inf:
        norms = [np.abs(g.data).max() if g.data.size else 0.0 for g in grads]
        total = np.max(np.asarray(norms, dtype=np.float64))
    else:
        norms = [np.sum(np.abs(g.data.astype(np.float64)) ** norm_type) for g in grads]
        total = np.sum(norms) ** (1.0 / norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"{fn}(): the total norm of order {norm_type} of the gradients is "
                           f"{total}, so they cannot be clipped (error_if_nonfinite=True)")
    coef = min(1.0, float(max_norm) / (float(total) + 1e-6)) if np.isfinite(total) else float("nan")
    if coef != 1.0:
        for g in grads:
            g.data = (g.data * g.data.dtype.type(coef)).astype(g.data.dtype, copy=False)
    return Tensor(np.asarray(total, dtype=dtype))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element into [−clip_value, clip_value], in place. Returns None."""
    fn = "clip_grad_value_"
    if not isinstance(clip_value, (numbers.Real, np.generic)) or isinstance(clip_value, bool):
        raise TypeError(f"{fn}(): clip_value must be a number, got {clip_value!r}")
    c = float(clip_value)
    for g in _grads(fn, parameters):
        np.clip(g.data, -c, c, out=g.data)
