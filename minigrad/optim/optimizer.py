"""Optimizer base class: parameter groups, zero_grad, state_dict / load_state_dict.

A subclass sets its defaults and writes `step()`; per-parameter state (momentum
buffers, Adam moments) lives in `self.state[p]`, a dict of ndarrays and numbers, so
`state_dict()` can be written with mg.save and read back with mg.load.
"""
import copy
import numbers

import numpy as np

from ..tensor import Tensor


class Optimizer:
    """Base class of the optimizers: holds ``param_groups`` (dicts of 'params' and
    hyperparameters such as 'lr', which schedulers change) and per-parameter state.

    ``params`` is an iterable of Parameters, e.g. ``model.parameters()``, or of dicts
    ``{'params': [...], 'lr': ...}`` for groups with their own hyperparameters; the
    keyword arguments of the subclass are the defaults of every group. A training step
    is ``opt.zero_grad(); loss.backward(); opt.step()``.
    """

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}(): params must be an iterable of Parameters (or of dicts of "
                            f"param groups), got a single Tensor; wrap it in a list")
        if isinstance(params, dict):
            params = [params]
        try:
            params = list(params)
        except TypeError:
            raise TypeError(f"{name}(): params must be an iterable of Parameters, got "
                            f"{type(params).__name__}") from None
        if not params:
            raise ValueError(f"{name}(): got an empty parameter list")
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group):
        """Add a dict {'params': [...], hyperparameter: value, ...}; missing
        hyperparameters take the optimizer's defaults. A parameter may be in one group only."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}(): a param group must be a dict with a 'params' entry, got {group!r}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{name}(): a param group has no parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}(): can only optimize Tensors/Parameters, but params[{i}] "
                                f"is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}(): can't optimize a non-leaf tensor (params[{i}], shape {p.shape})")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}(): params[{i}] has dtype {p.dtype}; only floating-point "
                                f"tensors can be optimized")
            if id(p) in seen:
                raise ValueError(f"{name}(): params[{i}] (shape {p.shape}) appears in more than one "
                                 f"place; a parameter may be optimized only once")
            seen.add(id(p))
        full = {k: v for k, v in group.items() if k != "params"}
        unknown = set(full) - set(self.defaults)
        if unknown:
            raise ValueError(f"{name}(): unknown hyperparameters {sorted(unknown)} in a param group")
        for k, v in self.defaults.items():
            full.setdefault(k, v)
        self._validate(full)
        full["params"] = params
        self.param_groups.append(full)

    def _validate(self, group):
        """Subclasses check their hyperparameters here (ValueError naming the bad one)."""
        lr = group.get("lr")
        if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not lr >= 0:
            raise ValueError(f"{type(self).__name__}(): invalid learning rate lr={lr!r} (must be ≥ 0)")

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (grad = None, as PyTorch's default)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data = np.zeros_like(p.grad.data)

    def step(self):
        """Update every parameter that has a gradient, by the subclass's rule."""
        raise NotImplementedError

    @staticmethod
    def _grad(p):
        """The gradient as an ndarray in p's dtype (None when p has none)."""
        if p.grad is None:
            return None
        g = p.grad.data
        return g if g.dtype == p.dtype else g.astype(p.dtype)

    # ---- state ----------------------------------------------------------------------------
    def state_dict(self):
        """{'state': {index: {name: ndarray or number}}, 'param_groups': [{hyperparameters,
        'params': [index, ...]}]}: parameters are numbered in group order, as in PyTorch.
        Only ndarrays, numbers, bools, tuples and lists: mg.save can write it."""
        index, groups, k = {}, [], 0
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index[id(p)] = k
                ids.append(k)
                k += 1
            packed = {key: copy.deepcopy(v) for key, v in g.items() if key != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {key: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for key, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and per-parameter state saved by state_dict(); the
        optimizer must have the same groups of the same sizes (checked before changing
        anything). Arrays are copied, in each parameter's dtype; shapes are checked."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}.load_state_dict(): expected a dict with keys 'state' and "
                             f"'param_groups', got {type(state_dict).__name__} "
                             f"{sorted(state_dict) if isinstance(state_dict, dict) else ''}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict(): the state dict has {len(saved_groups)} "
                             f"param groups, the optimizer {len(self.param_groups)}")
        by_index = {}
        for gi, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict(): param group {gi} has "
                                 f"{len(saved['params'])} parameters in the state dict but "
                                 f"{len(own['params'])} in the optimizer")
            for idx, p in zip(saved["params"], own["params"]):
                by_index[int(idx)] = p
        new_state = {}
        for idx, entry in state_dict["state"].items():
            idx = int(idx)
            if idx not in by_index:
                raise ValueError(f"{name}.load_state_dict(): state for parameter {idx}, which no "
                                 f"param group lists")
            p = by_index[idx]
            restored = {}
            for key, v in entry.items():
                if key != "step" and isinstance(v, (np.ndarray, Tensor)):
                    arr = np.asarray(getattr(v, "data", v))
                    if arr.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict(): state[{idx}][{key!r}] has shape "
                                         f"{arr.shape} but the parameter has shape {p.shape}")
                    restored[key] = arr.astype(p.dtype, copy=True)
                else:
                    restored[key] = v.item() if isinstance(v, (np.ndarray, np.generic)) else v
            new_state[p] = restored
        groups = []
        for saved, own in zip(saved_groups, self.param_groups):
            g = {k: _plain(v) for k, v in saved.items() if k != "params"}
            g["params"] = own["params"]
            self._validate(g)
            groups.append(g)
        self.param_groups = groups
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines + [")"])


def _plain(v):
    """0-d arrays and NumPy scalars back to Python numbers; lists of them to tuples."""
    if isinstance(v, (np.ndarray, np.generic)) and np.ndim(v) == 0:
        return v.item()
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    return v
