"""Containers that register sub-modules without calling them: ModuleList and ModuleDict
(PyTorch's names and behaviour). Sequential, which also calls its modules in order,
lives in module.py.

A module held in a plain Python list or dict is invisible to parameters(),
state_dict() and train()/eval(); held in one of these, it is registered under the
keys "0", "1", … (ModuleList) or its own key (ModuleDict), which become part of the
state_dict names (e.g. "blocks.0.conv.weight").
"""
import numbers
from collections.abc import Mapping

from .module import Module


def _check_module(cls, where, m):
    if not isinstance(m, Module):
        raise TypeError(f"{cls}: {where} must be a Module, got {type(m).__name__}")
    return m


class ModuleList(Module):
    """A list of modules, indexed like a Python list; registered as sub-modules "0", "1", ….

    ModuleList(modules=None); supports len, iteration, [i], [i] = m, del [i], [a:b]
    (a new ModuleList), append, extend, insert, +, and `in`. It has no forward: the
    owner decides how to call its modules.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx):
        if not isinstance(idx, numbers.Integral) or isinstance(idx, bool):
            raise TypeError(f"ModuleList indices must be integers or slices, got {type(idx).__name__}")
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"ModuleList index {idx} is out of range for a list of {n} modules")
        return int(idx) % n

    def _renumber(self, mods):
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[str(self._index(idx))]

    def __setitem__(self, idx, module):
        self._modules[str(self._index(idx))] = _check_module("ModuleList", "an item", module)

    def __delitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[self._index(idx)]
        self._renumber(mods)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __contains__(self, module):
        return any(m is module for m in self._modules.values())

    def __add__(self, other):
        return ModuleList(list(self) + list(other))

    def __iadd__(self, modules):
        return self.extend(modules)

    def append(self, module):
        """Add one module at the end; returns self."""
        self._modules[str(len(self))] = _check_module("ModuleList", "append()'s argument", module)
        return self

    def extend(self, modules):
        """Add every module of an iterable at the end; returns self."""
        if not hasattr(modules, "__iter__"):
            raise TypeError(f"ModuleList.extend() needs an iterable of Modules, "
                            f"got {type(modules).__name__}")
        for i, m in enumerate(modules):
            self.append(_check_module("ModuleList", f"item {i} of extend()'s argument", m))
        return self

    def insert(self, index, module):
        """Insert a module before position `index` (as list.insert)."""
        mods = list(self._modules.values())
        mods.insert(index, _check_module("ModuleList", "insert()'s module", module))
        self._renumber(mods)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(): iterate over it and call "
                                  "its modules, e.g. `for layer in self.layers: x = layer(x)`")


class ModuleDict(Module):
    """An ordered dict of named modules, each registered under its key.

    ModuleDict(modules=None) with a mapping or an iterable of (key, module) pairs;
    supports len, iteration over the keys, [key], [key] = m, del [key], `in`, keys(),
    values(), items(), update, pop and clear. Keys are strings without '.'.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    @staticmethod
    def _key(key):
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict keys must be strings, got {type(key).__name__}")
        if not key or "." in key:
            raise KeyError(f"ModuleDict key {key!r} must be a non-empty string without '.'")
        return key

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self._modules[self._key(key)] = _check_module("ModuleDict", f"the value for {key!r}", module)

    def __delitem__(self, key):
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.keys()))

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def clear(self):
        self._modules.clear()

    def pop(self, key):
        """Remove the module under `key` and return it."""
        return self._modules.pop(key)

    def update(self, modules):
        """Add (or replace) modules from a mapping or an iterable of (key, module) pairs."""
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = modules.items()
        else:
            pairs = []
            for i, kv in enumerate(modules):
                if not isinstance(kv, (tuple, list)) or len(kv) != 2:
                    raise TypeError(f"ModuleDict.update(): element {i} should be a (key, module) "
                                    f"pair, got {kv!r}")
                pairs.append(kv)
        for k, m in pairs:
            self[k] = m

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(): look modules up by key and "
                                  "call them, e.g. `self.heads['cls'](x)`")
