"""Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and weight decay."""
import numbers

import numpy as np

from .._ext import elementwise as _k
from ..threads import get_num_threads
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
                if mu != 0 and self._fused_step(p, g, group):
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

    def _fused_step(self, p, g, group):
        """The momentum update above in one pass (ext/elementwise.pyx sgd_momentum_step) when
        p, g and the buffer are C-contiguous float32/float64 arrays of one shape and dtype;
        False (nothing done) otherwise, and the NumPy lines run instead."""
        data = p.data
        if (data.dtype not in (np.float32, np.float64) or g.dtype != data.dtype
                or g.shape != data.shape or not (data.flags.c_contiguous and data.flags.writeable
                                                  and g.flags.c_contiguous)):
            return False
        state = self.state.setdefault(p, {})
        buf = state.get("momentum_buffer")
        first = buf is None
        if first:
            buf = np.empty_like(data)
        elif not (isinstance(buf, np.ndarray) and buf.dtype == data.dtype
                  and buf.shape == data.shape and buf.flags.c_contiguous and buf.flags.writeable):
            return False
        _k.sgd_momentum_step(data.reshape(-1), g.reshape(-1), buf.reshape(-1), float(group["lr"]),
                             float(group["momentum"]), float(group["dampening"]),
                             float(group["weight_decay"]), bool(group["nesterov"]), first,
                             get_num_threads())
        state["momentum_buffer"] = buf
        return True
