"""Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight decay."""
import numbers

import numpy as np

from .optimizer import Optimizer


def _nonneg(cls, name, v):
    if not isinstance(v, numbers.Real) or isinstance(v, bool) or not v >= 0:
        raise ValueError(f"{cls}(): invalid {name}={v!r} (must be a number ≥ 0)")


class SGD(Optimizer):
    """For each parameter p with gradient g (PyTorch's rule, torch.optim.SGD)::

        g ← g + weight_decay · p                          (if weight_decay ≠ 0)
        b ← g                          on the first step   (if momentum ≠ 0)
        b ← momentum · b + (1 − dampening) · g   later
        g ← g + momentum · b   if nesterov, else g ← b
        p ← p − lr · g

    Parameters whose grad is None are skipped (and their momentum is left alone).
    """

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _validate(self, group):
        super()._validate(group)
        for name in ("momentum", "dampening", "weight_decay"):
            _nonneg("SGD", name, group[name])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD(): nesterov momentum requires momentum > 0 and dampening = 0")

    def step(self):
        """One update of every parameter that has a gradient, by the rule above."""
        for group in self.param_groups:
            lr, mu, damp = group["lr"], group["momentum"], group["dampening"]
            wd, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                g = self._grad(p)
                if g is None:
                    continue
                if wd != 0:
                    g = g + wd * p.data
                if mu != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(g, dtype=p.dtype, copy=True)
                    else:
                        buf *= mu
                        buf += (1 - damp) * g
                    state["momentum_buffer"] = buf
                    g = g + mu * buf if nesterov else buf
                p.data -= lr * g
