"""Run PyTorch scripts on minigrad: `install_torch_alias()` makes `import torch` give minigrad::

    import minigrad.compat
    minigrad.compat.install_torch_alias()
    import torch, torch.nn as nn, torch.nn.functional as F    # all minigrad underneath

or, for a whole script, unchanged::

    python -m minigrad.run train.py --epochs 2

The alias puts these modules into `sys.modules` (each resolves its names lazily, so a
name minigrad gains later appears without touching this file)::

    torch                      minigrad (tensor, zeros, cat, no_grad, float32, ...) plus the
                               names below; a function missing from minigrad but present
                               as a Tensor method (torch.argmax, torch.clone) calls the method
    torch.nn                   minigrad.nn            torch.nn.functional   minigrad.nn.functional
    torch.nn.init              minigrad.nn.init       torch.nn.utils        minigrad.nn.utils, if any
    torch.optim                minigrad.optim         torch.optim.lr_scheduler
    torch.utils.data           minigrad.data (+ Dataset, and a DataLoader that accepts and
                               ignores num_workers / pin_memory / persistent_workers)
    torch.utils.checkpoint     checkpoint(fn, *args, use_reentrant=..., **kw), recomputing in backward
    torch.jit                  script/unused/ignore/export/... as no-op decorators
    torch.cuda                 is_available() -> False, device_count() -> 0
    torch.backends             cudnn.benchmark / .deterministic settable (no effect), mps.is_available()

`torch.utils.checkpoint.checkpoint` recomputes in backward, as PyTorch does (so side
effects such as BatchNorm's running statistics happen twice there too, and the numbers
agree with PyTorch's to the last step). Creation functions (`torch.zeros(..., device=d)`)
accept `device=` when it names the CPU. A name minigrad lacks raises an AttributeError
that says minigrad does not provide it yet; `import torch.something_else` raises a
ModuleNotFoundError saying the same.
"""
import functools
import importlib
import importlib.abc
import importlib.machinery
import inspect
import sys
import types

import numpy as np

from . import _device
from .autograd import Function, backward as run_backward, enable_grad, is_grad_enabled, no_grad
from .random import generator
from .gradcheck import gradcheck, gradgradcheck
from .tensor import Tensor, from_numpy, zeros

__all__ = ["install_torch_alias", "remove_torch_alias", "torch_alias", "is_alias_installed"]


# ---- the lazily resolving module type ---------------------------------------------------
class _AliasModule(types.ModuleType):
    """A module whose attributes come, on first use, from `extras` (this file's additions)
    and then from the minigrad modules in `sources`, in order."""

    def __init__(self, name, sources, extras=None, doc=None):
        super().__init__(name, doc or f"minigrad's stand-in for {name} (see minigrad.compat).")
        self.__dict__["_sources"] = tuple(sources)
        self.__dict__["_extras"] = dict(extras or {})
        self.__dict__["__minigrad_alias__"] = True

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        extras = self.__dict__["_extras"]
        if name in extras:
            return extras[name]
        for src in self.__dict__["_sources"]:
            if isinstance(src, str):
                try:
                    src = importlib.import_module(src)
                except ImportError:
                    continue
            if hasattr(src, name):
                return getattr(src, name)
        fallback = self.__dict__.get("_fallback")
        if fallback is not None:
            found = fallback(name)
            if found is not None:
                return found
        raise AttributeError(
            f"{self.__name__}.{name}: minigrad does not provide this PyTorch name yet "
            f"(the torch alias maps {self.__name__} to "
            f"{', '.join(s if isinstance(s, str) else s.__name__ for s in self.__dict__['_sources']) or 'minigrad.compat'})")

    def __dir__(self):
        names = set(self.__dict__) | set(self.__dict__["_extras"])
        for src in self.__dict__["_sources"]:
            try:
                mod = importlib.import_module(src) if isinstance(src, str) else src
            except ImportError:
                continue
            names |= {n for n in dir(mod) if not n.startswith("_")}
        return sorted(names)


# ---- torch.* additions ----------------------------------------------------------------------
def _no_device(fn, where):
    """fn accepting (and checking) PyTorch's device=, layout=, pin_memory=, memory_format= keywords."""
    @functools.wraps(fn)
    def wrapper(*args, device=None, layout=None, pin_memory=False, memory_format=None, **kwargs):
        if device is not None:
            _device.check_device(device, f"torch.{where}()")
        return fn(*args, **kwargs)
    return wrapper


_CREATION = ("tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "randn", "rand",
             "arange", "empty", "as_tensor")


def _empty(*shape, dtype=None, requires_grad=False):
    """torch.empty: minigrad gives zeros (defined values, same shape and dtype)."""
    return zeros(*shape, dtype=dtype, requires_grad=requires_grad)


def _as_tensor(data, dtype=None):
    """torch.as_tensor: the Tensor itself when it already has the dtype, else a new Tensor."""
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    if isinstance(data, np.ndarray) and (dtype is None or np.dtype(dtype) == data.dtype):
        return from_numpy(data)
    return Tensor(data, dtype=dtype)


def is_tensor(obj):
    """True if obj is a minigrad Tensor (torch.is_tensor)."""
    return isinstance(obj, Tensor)


def numel(t):
    """The number of elements of t (torch.numel)."""
    return t.numel()


def _assert(condition, message):
    """torch._assert: raise AssertionError(message) unless condition holds."""
    if not condition:
        raise AssertionError(message)


def _save(obj, f, *args, **kwargs):
    """torch.save: mg.save (a .npz file, no pickle); PyTorch's extra arguments are ignored."""
    from .serialization import save
    save(obj, f)


def _load(f, map_location=None, weights_only=None, **kwargs):
    """torch.load: mg.load; map_location may name the CPU (anything else is refused)."""
    from .serialization import load
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        _device.check_device(map_location, "torch.load()")
    return load(f)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """torch.allclose: |input − other| ≤ atol + rtol·|other| everywhere (a bool)."""
    return bool(np.allclose(np.asarray(input), np.asarray(other), rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


def equal(input, other):
    """torch.equal: same shape and the same values (a bool)."""
    a, b = np.asarray(input), np.asarray(other)
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _use_deterministic_algorithms(mode, *, warn_only=False):
    """torch.use_deterministic_algorithms: minigrad's kernels are deterministic; a no-op."""


def _get_default_dtype():
    """torch.get_default_dtype: float32, the dtype of new float tensors."""
    return np.float32


def _set_default_dtype(dtype):
    """torch.set_default_dtype: only float32 (minigrad's fixed default) is accepted."""
    if np.dtype(dtype) != np.float32:
        raise NotImplementedError(
            f"torch.set_default_dtype({dtype!r}): minigrad's default float dtype is float32 and "
            f"cannot be changed yet; pass dtype= to the creation functions or use model.double()")


def _backends_extras():
    """torch.backends.cudnn / .mps: attributes scripts set or ask (nothing to switch on the CPU)."""
    cudnn = types.SimpleNamespace(benchmark=False, deterministic=False, enabled=False,
                                  allow_tf32=False, is_available=_false)
    mps = types.SimpleNamespace(is_available=_false, is_built=_false)
    return {"cudnn": cudnn, "mps": mps}


def _method_fallback(name):
    """torch.f(x, *args) for a Tensor method f that minigrad has no function for
    (argmax, softmax, clone, ...): calls x.f(*args)."""
    attr = Tensor.__dict__.get(name)
    if not inspect.isfunction(attr) or name.startswith("_"):
        return None

    @functools.wraps(attr)
    def call(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    return call


def _torch_extras():
    import minigrad as mg
    extras = {
        "device": _device.device,
        "dtype": np.dtype,
        "Size": tuple,
        "is_tensor": is_tensor,
        "numel": numel,
        "_assert": _assert,
        "empty": _empty,
        "save": _save,
        "load": _load,
        "allclose": allclose,
        "equal": equal,
        "use_deterministic_algorithms": _use_deterministic_algorithms,
        "get_default_dtype": _get_default_dtype,
        "set_default_dtype": _set_default_dtype,
        "as_tensor": _as_tensor,
        "__version__": f"{mg.__version__}+minigrad",
    }
    for name in _CREATION:
        fn = extras.get(name) or getattr(mg, name)
        extras[name] = _no_device(fn, name)
    return extras


# ---- torch.nn: placeholders for layers minigrad lacks ------------------------------------------
# PyTorch code names these in default arguments and isinstance checks (torchvision's
# `norm_layer=nn.BatchNorm3d`, `isinstance(m, (nn.BatchNorm2d, nn.GroupNorm))`) even where
# it never builds one; a placeholder lets such code load, and refuses to be built. A name
# minigrad.nn defines (GroupNorm, say) is minigrad's own layer: placeholders come last.
PLACEHOLDERS = ("GroupNorm", "LayerNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                "BatchNorm3d", "SyncBatchNorm", "Conv1d", "Conv3d", "ConvTranspose1d",
                "ConvTranspose3d", "MaxPool1d", "MaxPool3d", "AvgPool1d", "AvgPool3d",
                "AdaptiveAvgPool1d", "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool3d",
                "Embedding", "RNN", "LSTM", "GRU", "MultiheadAttention", "Transformer",
                "TransformerEncoderLayer", "PReLU", "ELU", "SELU",
                "CELU", "Mish", "Softplus")


def _placeholder(name):
    """A Module subclass named `name` that refuses construction (see PLACEHOLDERS)."""
    from .nn import Module

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"torch.nn.{name}: minigrad does not provide this layer yet "
                                  f"(the name exists only so that code mentioning it loads)")
    return type(name, (Module,), {"__init__": __init__, "__doc__": f"Placeholder: {__init__.__doc__}",
                                  "__module__": "torch.nn"})


def _nn_fallback(module):
    def fallback(name):
        if name not in PLACEHOLDERS:
            return None
        cls = _placeholder(name)
        module.__dict__[name] = cls          # one class per name, so isinstance is stable
        return cls
    return fallback


# ---- torch.jit: decorators as no-ops ---------------------------------------------------------
def _decorator(fn=None, *args, **kwargs):
    """A no-op decorator usable bare (@jit.unused) or called (@jit.ignore(drop=True))."""
    if callable(fn):
        return fn
    return lambda f: f


def _script(obj, *args, **kwargs):
    """torch.jit.script: minigrad runs eagerly, so the function or module itself."""
    return obj


def _annotate(the_type, the_value):
    """torch.jit.annotate(type, value): value."""
    return the_value


def _false(*args, **kwargs):
    return False


def _jit_extras():
    return {"script": _script, "unused": _decorator, "ignore": _decorator, "export": _decorator,
            "_overload_method": _decorator, "_overload": _decorator, "annotate": _annotate,
            "is_scripting": _false, "is_tracing": _false, "Final": type("Final", (), {}),
            "script_method": _decorator}


# ---- torch.cuda: no GPU ----------------------------------------------------------------------
def _cuda_extras():
    def refuse(*args, **kwargs):
        _device.check_device("cuda", "torch.cuda")
    noop = (lambda *args, **kwargs: None)
    return {"is_available": _false, "device_count": lambda: 0, "manual_seed": noop,
            "manual_seed_all": noop, "synchronize": noop, "empty_cache": noop,
            "current_device": refuse, "set_device": refuse, "get_device_name": refuse}


# ---- torch.utils.checkpoint -------------------------------------------------------------------
class Checkpoint(Function):
    """The recomputation behind `checkpoint`: forward runs `function` without recording a
    graph (its activations are dropped); backward runs it again, from the same inputs and
    the same random-generator state, with recording on, and backpropagates δ through that
    fresh graph. The parameters inside `function` receive their gradients during that
    inner backward; the Tensor arguments receive theirs as this op's gradients.

    Under ``create_graph=True`` the inner backward records itself too, so the gradients
    are tensors of a graph (of the recomputation, of δ, and of the inputs: each fresh leaf
    the recomputation started from is joined to its input by an identity node once the
    inner backward is done), and the gradient of a gradient flows through checkpoint."""

    @staticmethod
    def forward(ctx, *raw, function, kwargs, is_tensor, rng_state):
        ctx.function, ctx.kwargs, ctx.is_tensor, ctx.rng_state = function, kwargs, is_tensor, rng_state
        ctx.raw = raw
        args = [Tensor._wrap(a, False) if t else a for a, t in zip(raw, is_tensor)]
        with no_grad():
            out = function(*args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"checkpoint(): minigrad recomputes functions that return one Tensor; "
                            f"this one returned {type(out).__name__}")
        return out.data

    @staticmethod
    def backward(ctx, δ):
        """Rerun function(*inputs) with the graph recorded; ∂L/∂input is what δ sends back
        through that graph to each input."""
        create_graph = is_grad_enabled()            # the outer backward is being recorded
        inputs = [Tensor._wrap(a, bool(need)) if t else a
                  for a, t, need in zip(ctx.raw, ctx.is_tensor, ctx.needs_input_grad)]
        saved = _rng_state()
        _set_rng_state(ctx.rng_state)
        try:
            with enable_grad():
                out = ctx.function(*inputs, **ctx.kwargs)
        finally:
            _set_rng_state(saved)
        if out.requires_grad:
            run_backward(out, δ, create_graph=create_graph)
        grads = tuple(t.grad if isinstance(t, Tensor) else None for t in inputs)
        if create_graph:
            for leaf, real in zip(inputs, ctx.inputs):
                if isinstance(leaf, Tensor) and leaf.requires_grad:
                    _Alias.attach(leaf, real)
        return grads


class _Alias(Function):
    """leaf = real, as an identity node attached after the fact: the fresh leaf a
    recomputation started from becomes, for the graph recorded on it, the input it copied."""

    @staticmethod
    def attach(leaf, real):
        node = _Alias()
        node.inputs, node.needs_input_grad, node.versions = (real,), (True,), (real._version,)
        leaf._ctx = node

    @staticmethod
    def backward(ctx, δ):
        return δ


def _rng_state():
    return generator().bit_generator.state


def _set_rng_state(state):
    generator().bit_generator.state = state


def checkpoint(function, *args, use_reentrant=None, context_fn=None, determinism_check=None,
               debug=None, preserve_rng_state=True, **kwargs):
    """torch.utils.checkpoint.checkpoint: `function(*args, **kwargs)`, recomputed in backward.

    As in PyTorch, the forward keeps no activations inside `function`; backward runs it
    again (with the random generator reset to its state at the forward, so dropout draws
    the same mask) and backpropagates through that second run. The numbers are those of
    a plain call, and side effects of `function` happen twice, as in PyTorch (e.g. a
    BatchNorm in training mode updates its running statistics at both runs).

    `function` must return one Tensor when some Tensor argument requires grad (what
    torchvision's DenseNet does); when none does, or under no_grad, it is called plainly.
    PyTorch-only keywords are accepted and ignored.

    ``backward(create_graph=True)`` and ``autograd.grad(..., create_graph=True)`` work
    through it (the gradient of a gradient is recorded through the recomputation). As with
    PyTorch's reentrant checkpoint, the parameters inside `function` get their gradients
    from the inner backward, into ``.grad``, even when the outer call is ``autograd.grad``
    (which PyTorch's reentrant checkpoint refuses); zero them if that call should not."""
    if not is_grad_enabled() or not any(isinstance(a, Tensor) and a.requires_grad for a in args):
        return function(*args, **kwargs)
    return Checkpoint.apply(*args, function=function, kwargs=kwargs,
                            is_tensor=tuple(isinstance(a, Tensor) for a in args),
                            rng_state=_rng_state())


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """torch.utils.checkpoint.checkpoint_sequential: the modules applied in order (plain calls)."""
    if hasattr(functions, "children") and not isinstance(functions, (list, tuple)):
        functions = list(functions.children())
    for f in functions:
        input = f(input)
    return input


# ---- torch.utils.data additions --------------------------------------------------------------
class Dataset:
    """torch.utils.data.Dataset: subclass it with __len__ and __getitem__ (returning a
    sample or a tuple of arrays/Tensors/numbers); minigrad's DataLoader batches it."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


def _make_dataloader():
    from .data import DataLoader as _Base

    class DataLoader(_Base):
        """minigrad.data.DataLoader under PyTorch's signature: num_workers, pin_memory,
        persistent_workers, prefetch_factor, timeout and worker_init_fn are accepted and
        ignored (batches are made in the main process); sampler, batch_sampler and
        collate_fn are refused with a NotImplementedError."""

        def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                     num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                     worker_init_fn=None, generator=None, prefetch_factor=None,
                     persistent_workers=False, **kwargs):
            for name, v in (("sampler", sampler), ("batch_sampler", batch_sampler),
                            ("collate_fn", collate_fn)):
                if v is not None:
                    raise NotImplementedError(f"torch.utils.data.DataLoader({name}=...): minigrad's "
                                              f"DataLoader does not support {name} yet")
            super().__init__(dataset, batch_size=batch_size, shuffle=bool(shuffle),
                             drop_last=bool(drop_last), **kwargs)
    return DataLoader


# ---- installing -------------------------------------------------------------------------------
def _build():
    """Fresh alias modules: name -> module."""
    torch = _AliasModule("torch", ["minigrad"], _torch_extras())
    torch.__dict__["_fallback"] = _method_fallback
    nn = _AliasModule("torch.nn", ["minigrad.nn"])
    nn.__dict__["_fallback"] = _nn_fallback(nn)
    mods = {
        "torch": torch,
        "torch.nn": nn,
        "torch.nn.functional": _AliasModule("torch.nn.functional", ["minigrad.nn.functional"]),
        "torch.nn.init": _AliasModule("torch.nn.init", ["minigrad.nn.init"]),
        "torch.nn.utils": _AliasModule("torch.nn.utils", ["minigrad.nn.utils"]),
        "torch.nn.parameter": _AliasModule("torch.nn.parameter", ["minigrad.nn"]),
        "torch.nn.modules": _AliasModule("torch.nn.modules", ["minigrad.nn"]),
        "torch.optim": _AliasModule("torch.optim", ["minigrad.optim"]),
        "torch.optim.lr_scheduler": _AliasModule("torch.optim.lr_scheduler",
                                                 ["minigrad.optim.lr_scheduler"]),
        "torch.utils": _AliasModule("torch.utils", []),
        "torch.utils.data": _AliasModule("torch.utils.data", ["minigrad.data"],
                                         {"Dataset": Dataset, "DataLoader": _make_dataloader()}),
        "torch.utils.checkpoint": _AliasModule("torch.utils.checkpoint", [], {
            "checkpoint": checkpoint, "checkpoint_sequential": checkpoint_sequential}),
        "torch.jit": _AliasModule("torch.jit", [], _jit_extras()),
        "torch.cuda": _AliasModule("torch.cuda", [], _cuda_extras()),
        "torch.backends": _AliasModule("torch.backends", [], _backends_extras()),
        "torch.autograd": _AliasModule("torch.autograd", ["minigrad.autograd"], {
            "gradcheck": gradcheck, "gradgradcheck": gradgradcheck}),
    }
    for name, mod in mods.items():              # torch.nn is also an attribute of torch, ...
        parent, _, child = name.rpartition(".")
        if parent:
            mod.__dict__["__package__"] = parent
            mods[parent].__dict__[child] = mod
        mod.__dict__["__path__"] = []           # a package: `import torch.x.y` looks inside
        mod.__dict__["__spec__"] = importlib.machinery.ModuleSpec(name, None, is_package=True)
    return mods


class _RefuseFinder(importlib.abc.MetaPathFinder):
    """While the alias is installed, `import torch.<anything not aliased>` fails with a
    ModuleNotFoundError that names minigrad, not a confusing half-import."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: the torch alias is installed (minigrad.compat) and "
                f"minigrad does not provide {fullname} yet", name=fullname)
        return None


_saved = None            # the sys.modules entries the alias replaced, while installed
_finder = _RefuseFinder()


def is_alias_installed():
    """True while install_torch_alias() is in effect."""
    return _saved is not None


def install_torch_alias():
    """Make `import torch` (and torch.nn, torch.nn.functional, torch.nn.init, torch.optim,
    torch.optim.lr_scheduler, torch.utils.data, torch.utils.checkpoint, torch.jit,
    torch.cuda) give minigrad-backed modules, so a PyTorch script runs on minigrad
    unchanged. Returns the alias `torch` module.

    Any real torch modules already imported are set aside and come back with
    remove_torch_alias(). Installing twice is harmless."""
    global _saved
    if _saved is not None:
        return sys.modules["torch"]
    mods = _build()
    _saved = {n: m for n, m in sys.modules.items() if n == "torch" or n.startswith("torch.")}
    for n in _saved:
        del sys.modules[n]
    sys.modules.update(mods)
    sys.meta_path.insert(0, _finder)
    return mods["torch"]


def remove_torch_alias():
    """Undo install_torch_alias(): the alias modules leave sys.modules and any real torch
    modules that were imported before come back."""
    global _saved
    if _saved is None:
        return
    for n in [n for n in sys.modules if n == "torch" or n.startswith("torch.")]:
        del sys.modules[n]
    sys.modules.update(_saved)
    _saved = None
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)


class torch_alias:
    """`with torch_alias() as torch:` installs the alias for the block and removes it after
    (only if this block installed it)."""

    def __enter__(self):
        self._installed = not is_alias_installed()
        return install_torch_alias()

    def __exit__(self, *exc):
        if self._installed:
            remove_torch_alias()
        return False
