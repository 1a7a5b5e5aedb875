"""Module and Parameter: the PyTorch-style container for layers and their weights."""
import numbers
import weakref
from collections import OrderedDict, namedtuple

import numpy as np

from .._device import Conversions
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


_MISSING = object()
_SHADOWED = weakref.WeakKeyDictionary()   # type -> {name: whether the class has it} (_member)


class Module(Conversions):
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
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

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

    def _member(self, store, name):
        """self.<name>, for the layers' own forwards, without Python's failed normal lookup
        before Module.__getattr__ (about 1.5 µs an attribute, five a BatchNorm call): read
        from `store` (one of "_parameters", "_buffers", "_modules") when the name is
        registered there and no class attribute of the type would shadow it; else getattr."""
        v = self.__dict__[store].get(name, _MISSING)
        if v is _MISSING:
            return getattr(self, name)
        cls = type(self)
        names = _SHADOWED.get(cls)
        if names is None:
            names = _SHADOWED[cls] = {}
        shadowed = names.get(name)
        if shadowed is None:
            shadowed = names[name] = hasattr(cls, name)
        return getattr(self, name) if shadowed else v

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
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) for self and every sub-module, depth first in registration order
        (self first, named `prefix`; a child of "a" is "a.child"), as PyTorch's.

        A module reachable twice (shared) is yielded once unless remove_duplicate=False;
        `memo`, a set of modules already seen, is updated in place (PyTorch's argument)."""
        seen = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if remove_duplicate:
                if m in seen:
                    continue
                seen.add(m)
            yield name, m
            children = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items() if c is not None]
            stack.extend(reversed(children))

    def modules(self):
        """Self and every sub-module, each once (see named_modules)."""
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """(name, module) for each direct child, in registration order."""
        for n, m in self._modules.items():
            if m is not None:
                yield n, m

    def children(self):
        """The direct children, in registration order."""
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, Parameter) for every parameter of self and (recurse) its sub-modules;
        a parameter shared by two modules is yielded once unless remove_duplicate=False."""
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mname, m in mods:
            for pname, p in m._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self, recurse=True):
        """Every Parameter of self and (recurse) its sub-modules, each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        """(dotted name, ndarray) for every buffer (e.g. BatchNorm's running statistics)."""
        for mname, m in self.named_modules(prefix=prefix):
            for bname, b in m._buffers.items():
                if b is not None:
                    yield (f"{mname}.{bname}" if mname else bname), b

    def buffers(self):
        """Every buffer array of self and its sub-modules."""
        for _, b in self.named_buffers():
            yield b

    def apply(self, fn):
        """Call fn(m) on every sub-module (children first) and on self; returns self."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    # ---- modes and gradients --------------------------------------------------
    def train(self, mode=True):
        """Set training mode (mode=True) or evaluation mode on self and every sub-module
        (Dropout and BatchNorm behave differently); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """`train(False)`: evaluation mode; returns self."""
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (.grad becomes None)."""
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad=True):
        """Switch gradient recording on or off for every parameter (e.g. to freeze layers); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- dtypes and devices ----------------------------------------------------------
    def to(self, *args, **kwargs):
        """Convert every floating-point parameter and buffer to a dtype, in place; returns self.

        PyTorch's forms: `to(dtype)`, `to('cpu')`, `to(device)`, `to(tensor)` (its dtype),
        `to(device, dtype)`, `to(dtype=..., device=..., non_blocking=...)`. Integer buffers
        (BatchNorm's num_batches_tracked) keep their dtype, as in PyTorch. The Parameter
        objects stay the same (an optimizer built before still holds them); a gradient
        is converted with its parameter. Any device but the CPU raises a RuntimeError.
        """
        from .._device import parse_to
        dtype, _ = parse_to(args, kwargs, f"{type(self).__name__}.to()", Tensor)
        if dtype is None:
            return self
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to(): a module's dtype must be floating point, "
                            f"got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.dtype.kind == "f" and p.dtype != dtype:
                    p.data = p.data.astype(dtype)
                    if p.grad is not None:
                        p.grad = Tensor._wrap(p.grad.data.astype(dtype), False)
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    m._buffers[name] = b.astype(dtype)
        return self

    # ---- hooks -------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook):
        """Call `hook(module, args)` before every forward; args is the tuple of positional
        inputs. If the hook returns something other than None it replaces the inputs (a
        non-tuple is wrapped in a 1-tuple). Returns a handle whose .remove() unregisters it."""
        return _HookHandle(self._hooks("_forward_pre_hooks"), hook)

    def register_forward_hook(self, hook):
        """Call `hook(module, args, output)` after every forward; if it returns something
        other than None, that becomes the output. Returns a handle with .remove()."""
        return _HookHandle(self._hooks("_forward_hooks"), hook)

    def _hooks(self, name):
        hooks = self.__dict__.get(name)
        if hooks is None:                        # a module made before hooks existed
            hooks = OrderedDict()
            object.__setattr__(self, name, hooks)
        return hooks

    # ---- state ------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """An ordered name -> Tensor dict of every parameter and buffer, PyTorch's keys.

        As in PyTorch the values share memory with the model (detached Tensors; with
        keep_vars=True the Parameters themselves): `sd[k].copy_(v)` writes into the
        model, and a snapshot needs `{k: v.clone() for k, v in sd.items()}`. Each value has
        .shape, .dtype, .numpy(), .clone(), .copy_(); mg.save writes them as arrays."""
        sd = OrderedDict() if destination is None else destination
        for mname, m in self.named_modules(prefix=prefix):
            for pname, p in m._parameters.items():
                if p is not None:
                    sd[f"{mname}.{pname}" if mname else pname] = p if keep_vars else p.detach()
            for bname, b in m._buffers.items():
                if b is not None:
                    sd[f"{mname}.{bname}" if mname else bname] = Tensor._wrap(b, False)
        return sd

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the existing parameters and buffers, keeping their dtypes.

        The values may be Tensors, ndarrays, or anything np.asarray reads (so a dict
        `{k: v.numpy() for k, v in torch_model.state_dict().items()}` exported from
        PyTorch loads by the same keys). The copy is made into the existing arrays, so
        earlier state_dict() values and views see the new numbers, as in PyTorch.

        Everything is checked before anything is copied, so a failed load leaves the
        model as it was: missing/unexpected keys (when strict) raise a KeyError naming
        them, a wrong shape a ValueError, a non-numeric value a TypeError, each naming
        the key. Returns (missing_keys, unexpected_keys), a named tuple as PyTorch's."""
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
            target = current.data if isinstance(current, Tensor) else current
            if target.flags.writeable:
                np.copyto(target, new)
            elif isinstance(current, Tensor):
                current.data = new
            else:
                store[n] = new
        return IncompatibleKeys(missing, unexpected)

    # ---- calling -----------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation of the layer; subclasses define it, and module(x) calls it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        pre, post = self.__dict__.get("_forward_pre_hooks"), self.__dict__.get("_forward_hooks")
        if not pre and not post:
            return self.forward(*args, **kwargs)
        for hook in list(pre.values()) if pre else ():
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        out = self.forward(*args, **kwargs)
        for hook in list(post.values()) if post else ():
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

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


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = """What load_state_dict returns: the keys the model has and the dict lacked
(missing_keys), and the keys the dict has and the model lacks (unexpected_keys)."""


class _HookHandle:
    """What register_forward_hook and register_forward_pre_hook return: .remove()
    unregisters the hook (calling it twice is harmless)."""

    _next_id = 0

    def __init__(self, hooks, hook):
        if not callable(hook):
            raise TypeError(f"register hook: expected a callable, got {type(hook).__name__}")
        _HookHandle._next_id += 1
        self.id = _HookHandle._next_id
        self._hooks = hooks
        hooks[self.id] = hook

    def remove(self):
        """Unregister the hook."""
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


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
        """Apply the modules in order: x -> m0(x) -> m1(m0(x)) -> ... A run of Conv2d and
        BatchNorm2d layers (with a BatchNorm's ReLU or ReLU6) runs as one op, and any other
        BatchNorm followed by a ReLU or a ReLU6 as one op, where that gives the same result
        (nn.conv_norm_chain, nn.bn_relu)."""
        from .chain import run_modules
        return run_modules(list(self._modules.values()), x)
