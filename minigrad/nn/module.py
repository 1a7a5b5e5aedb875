"""Module and Parameter: the PyTorch-style container for layers and their weights."""
import numbers
from collections import OrderedDict

import numpy as np

from ..tensor import Tensor


class StateDictKeyError(KeyError):
    """load_state_dict(): missing or unexpected keys (a KeyError with a readable message)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class Parameter(Tensor):
    """A Tensor that a Module registers as one of its parameters (requires grad by default)."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model (PyTorch's ``nn.Module``).

    Subclass it: create the layers and Parameters in ``__init__`` (after
    ``super().__init__()``) and write ``forward``; ``module(x)`` calls ``forward(x)``.
    Assigning a Parameter or a Module to an attribute registers it, and
    ``parameters()``, ``state_dict()``, ``train()``/``eval()`` and ``zero_grad()`` walk
    the registrations in order (sub-modules depth first).

    Examples
    --------
    >>> import minigrad as mg, minigrad.nn as nn
    >>> class TinyNet(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(1, 4, 3, padding=1)   # (N, 1, 8, 8) -> (N, 4, 8, 8)
    ...         self.fc = nn.Linear(4 * 8 * 8, 10)           # (N, 256) -> (N, 10)
    ...     def forward(self, x):
    ...         return self.fc(self.conv(x).relu().reshape(len(x), -1))
    >>> net = TinyNet()
    >>> [name for name, p in net.named_parameters()]
    ['conv.weight', 'conv.bias', 'fc.weight', 'fc.bias']
    >>> net(mg.zeros(2, 1, 8, 8)).shape
    (2, 10)
    >>> sorted(net.state_dict()) == sorted(name for name, p in net.named_parameters())
    True
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ----------------------------------------------------------
    def __setattr__(self, name, value):
        """Register a Parameter or Module assigned to an attribute; set anything else plainly."""
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() is called")
        if value is None and name in self._parameters:     # e.g. bias=False keeps the slot
            self._parameters[name] = None
            return
        if name in self._parameters and not isinstance(value, Parameter):
            raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r} "
                            f"(a Parameter or None is expected)")
        if name in self._buffers and (value is None or isinstance(value, (np.ndarray, np.generic, Tensor, numbers.Number))):
            self._buffers[name] = None if value is None else np.asarray(
                value.data if isinstance(value, Tensor) else value)
            return
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        """Register `param` (a Parameter, or None for an empty slot such as bias=False) as `name`."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter(): {name!r} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self._parameters[name] = param

    def register_buffer(self, name, array):
        """A named ndarray saved in state_dict but not trained (e.g. BatchNorm's running mean).

        Read it as an attribute (self.running_mean); assigning an array to the name
        replaces the buffer; layers usually update it in place."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"register_buffer(): name must be a non-empty string without '.', got {name!r}")
        if array is not None and not isinstance(array, (np.ndarray, Tensor, np.generic)):
            raise TypeError(f"register_buffer(): {name!r} must be an ndarray or None, "
                            f"got {type(array).__name__}")
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = None if array is None else np.asarray(
            array.data if isinstance(array, Tensor) else array)

    def add_module(self, name, module):
        """Register `module` as the child `name` (what assigning self.name = module does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module(): {name!r} must be a Module, got {type(module).__name__}")
        self._modules[name] = module

    # ---- traversal -------------------------------------------------------------
    def named_modules(self, prefix=""):
        """(name, module) for self (named `prefix`) and every sub-module, depth first, each once;
        names are dotted paths such as "0" or "features.3"."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            children = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        """Self and every sub-module, depth first, each once (see named_modules)."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """(name, module) for the direct children, in registration order."""
        for n, m in self._modules.items():
            if m is not None:
                yield n, m

    def children(self):
        """The direct children, in registration order."""
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, Parameter) for every parameter (of sub-modules too unless
        recurse=False), each shared parameter once; the names are state_dict's keys."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for pname, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse=True):
        """Every Parameter, each once: what an optimizer takes, e.g.
        ``mg.optim.SGD(model.parameters(), lr=0.1)``."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        """(dotted name, ndarray) for every buffer of self and its sub-modules."""
        for mname, m in self.named_modules(prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        """Every buffer (ndarray) of self and its sub-modules."""
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn):
        """Call fn(m) on every sub-module (children first) and on self; returns self."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    # ---- modes and gradients --------------------------------------------------
    def train(self, mode=True):
        """Set training mode (mode=True) or evaluation mode on self and every sub-module;
        Dropout and BatchNorm behave differently in the two. Returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: same as train(False). Returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (p.grad = None) before the next backward()."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad on every parameter (False freezes them). Returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- state ------------------------------------------------------------------
    def state_dict(self):
        """An ordered name -> ndarray copy of every parameter and buffer (PyTorch's keys)."""
        sd = OrderedDict()
        for mname, m in self.named_modules():
            for pname, p in m._parameters.items():
                if p is not None:
                    sd[f"{mname}.{pname}" if mname else pname] = p.data.copy()
            for bname, b in m._buffers.items():
                if b is not None:
                    sd[f"{mname}.{bname}" if mname else bname] = np.array(b, copy=True)
        return sd

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the existing parameters and buffers, keeping their dtypes.

        Everything is checked before anything is copied, so a failed load leaves the
        model as it was: missing/unexpected keys (when strict) raise a KeyError naming
        them, a wrong shape a ValueError, a non-numeric value a TypeError, each naming
        the key. Returns (missing_keys, unexpected_keys)."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict(): expected a dict of name -> array, "
                            f"got {type(state_dict).__name__}")
        own = OrderedDict()
        for mname, m in self.named_modules():
            for store in (m._parameters, m._buffers):
                for n, v in store.items():
                    if v is not None:
                        own[f"{mname}.{n}" if mname else n] = (m, store, n)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict.keys() if k not in own]
        if strict and (missing or unexpected):
            raise StateDictKeyError(
                f"load_state_dict() for {type(self).__name__}: "
                + "; ".join(part for part in (
                    f"missing keys {missing}" if missing else "",
                    f"unexpected keys {unexpected}" if unexpected else "") if part))
        updates = []
        for key, (m, store, n) in own.items():
            if key not in state_dict:
                continue
            raw = state_dict[key]
            value = np.asarray(raw.data if isinstance(raw, Tensor) else raw)
            current = store[n]
            cur_arr = current.data if isinstance(current, Tensor) else current
            if value.dtype.kind not in "fiub":
                raise TypeError(f"load_state_dict(): {key!r} has unsupported dtype {value.dtype}")
            if value.shape != cur_arr.shape:
                raise ValueError(f"load_state_dict(): {key!r} has shape {value.shape} in the "
                                 f"state dict but {cur_arr.shape} in the model")
            updates.append((store, n, current, value.astype(cur_arr.dtype, copy=True)))
        for store, n, current, new in updates:
            if isinstance(current, Tensor):
                current.data = new
            else:
                store[n] = new
        return missing, unexpected

    # ---- calling -----------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation of the layer; subclasses define it, and module(x) calls it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def backward(self, input, grad_output):
        """Torch7's module-wise backward (seed 001: `model:backward(X, dloss_doutput)`).

        Given the input x that went into this module and δ = ∂L/∂y for its output y,
        returns ∂L/∂x (a Tensor shaped like x) and *accumulates* ∂L/∂θ into `.grad` of
        every parameter θ of the module, as Torch7's updateGradInput + accGradParameters:

            ∂L/∂x = (∂y/∂x)ᵀ δ,      θ.grad += (∂y/∂θ)ᵀ δ

        So a learner can push δ through a network by hand, last layer first:

            δ = lin.backward(h, δ); δ = act.backward(z, δ); δ = conv.backward(x, δ)

        Arguments: input, the Tensor (or array) given to forward; grad_output, δ in the
        shape of forward(input). The module's forward is run again on a detached copy of
        input (the layer's own recorded graph is its backward), so the current mode
        counts: a random layer (Dropout in training mode) draws a new mask; BatchNorm's
        running statistics are left as they were.
        """
        from ..autograd import enable_grad
        name = f"{type(self).__name__}.backward()"
        x = input.data if isinstance(input, Tensor) else np.asarray(input)
        if x.dtype.kind != "f":
            raise TypeError(f"{name}: input must be a floating-point tensor, got {x.dtype}")
        x = Tensor._wrap(x, True)                            # a fresh leaf: ∂L/∂x lands in x.grad
        saved = [(m, n, np.copy(b)) for m in self.modules() for n, b in m._buffers.items()
                 if b is not None]
        with enable_grad():
            y = self.forward(x)
        for m, n, b in saved:                                # undo the running-statistics update
            if m._buffers.get(n) is not None and m._buffers[n].shape == b.shape:
                m._buffers[n][...] = b
        δ = grad_output.data if isinstance(grad_output, Tensor) else np.asarray(grad_output)
        if not isinstance(y, Tensor) or δ.shape != y.shape:
            raise ValueError(f"{name}: grad_output has shape {δ.shape} but the output of "
                             f"forward(input of shape {x.shape}) has shape {getattr(y, 'shape', None)}")
        if y.requires_grad:
            y.backward(δ.astype(y.dtype, copy=False))
        return x.grad if x.grad is not None else Tensor._wrap(np.zeros_like(x.data), False)

    def extra_repr(self):
        """The layer's own settings as shown inside its repr, e.g. "in_features=400, ..."."""
        return ""

    def __repr__(self):
        lines = []
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {sub}")
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"


class Sequential(Module):
    """Modules applied in order; indexable (seq[0], seq[-1], seq[1:])."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add `module` at the end (named by its index). Returns self."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        """Apply the modules in order: x -> m0(x) -> m1(m0(x)) -> ..."""
        for m in self._modules.values():
            x = m(x)
        return x
