"""Adam and AdamW with PyTorch's update rules (torch.optim.Adam / AdamW)."""
import math
import numbers

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ... (PyTorch's rule)::

        g ← g + weight_decay · p                      (L2 penalty; Adam only, if ≠ 0)
        m ← β₁ · m + (1 − β₁) · g
        v ← β₂ · v + (1 − β₂) · g²
        v̂ ← max(v̂, v) if amsgrad, else v
        p ← p − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)

    Parameters whose grad is None are skipped (their step count does not advance).
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _validate(self, group):
        super()._validate(group)
        cls = type(self).__name__
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{cls}(): betas must be a pair (β₁, β₂), got {betas!r}")
        for i, b in enumerate(betas):
            if not isinstance(b, numbers.Real) or isinstance(b, bool) or not 0.0 <= b < 1.0:
                raise ValueError(f"{cls}(): invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")
        group["betas"] = (float(betas[0]), float(betas[1]))
        for name in ("eps", "weight_decay"):
            v = group[name]
            if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v >= 0:
                raise ValueError(f"{cls}(): invalid {name}={v!r} (must be a number ≥ 0)")

    def step(self):
        """One update of every parameter that has a gradient, by the rule above."""
        for group in self.param_groups:
            lr, (β1, β2), eps = group["lr"], group["betas"], group["eps"]
            wd, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                g = self._grad(p)
                if g is None:
                    continue
                state = self.state.setdefault(p, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                t = state["step"]
                if wd != 0:
                    if self._decoupled:
                        p.data *= 1 - lr * wd                 # AdamW: p ← p · (1 − lr · wd)
                    else:
                        g = g + wd * p.data                   # Adam: L2 penalty in the gradient
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m *= β1
                m += (1 - β1) * g
                v *= β2
                v += (1 - β2) * g * g
                if amsgrad:
                    vmax = state.setdefault("max_exp_avg_sq", np.zeros_like(p.data))
                    np.maximum(vmax, v, out=vmax)
                    v = vmax
                step_size = lr / (1 - β1 ** t)
                denom = np.sqrt(v) / math.sqrt(1 - β2 ** t) + eps
                p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's rule: before the
    Adam step, p ← p · (1 − lr · weight_decay); the gradient carries no L2 term."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
