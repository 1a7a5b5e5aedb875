"""Checkpoints: mg.save(obj, path) / mg.load(path), as .npz files without pickle.

`obj` is a (possibly nested) dict (or OrderedDict) / list / tuple of ndarrays, Tensors, numbers, bools,
strings and None: model and optimizer state dicts. Every array (and every number, as
a 0-d array) becomes one entry `a0, a1, ...` of the .npz; the nesting and the types
are one JSON document in the entry `__minigrad__`:

    {"format": "minigrad.save", "version": 1, "root": node}
    node = {"t": "dict" | "odict", "items": [[key, node], ...]}   keys: str or int, in order
         | {"t": "list" | "tuple", "items": [node, ...]}
         | {"t": "array" | "tensor", "k": "a3"}            ndarray, or Tensor (loaded as a Tensor
                                                           that needs no grad, like state_dict's)
         | {"t": "int" | "float" | "bool" | "scalar", "k": "a4"}   Python / NumPy scalar
         | {"t": "str", "v": "..."} | {"t": "none"}

Loading uses np.load(allow_pickle=False): a file can never run code. Saving writes a
temporary file in the target's directory, fsyncs it and renames it over the target,
so an interrupted save leaves the previous checkpoint intact.
"""
import json
import os
import tempfile
import zipfile
from collections import OrderedDict

import numpy as np

from .tensor import Tensor

_META = "__minigrad__"
_FORMAT = "minigrad.save"
_VERSION = 1


# ---- save ---------------------------------------------------------------------------------
def _encode(obj, arrays, where):
    """The JSON node for obj, appending its arrays to `arrays`; TypeError naming `where`."""
    def put(a):
        key = f"a{len(arrays)}"
        arrays[key] = a
        return key

    if obj is None:
        return {"t": "none"}
    if isinstance(obj, bool):
        return {"t": "bool", "k": put(np.array(obj))}
    if isinstance(obj, int):
        try:
            return {"t": "int", "k": put(np.array(obj, dtype=np.int64))}
        except OverflowError:
            raise ValueError(f"mg.save(): the integer at {where} does not fit in int64") from None
    if isinstance(obj, float):
        return {"t": "float", "k": put(np.array(obj, dtype=np.float64))}
    if isinstance(obj, str):
        return {"t": "str", "v": obj}
    if isinstance(obj, np.generic):
        arr = np.array(obj)
        _check_dtype(arr, where)
        return {"t": "scalar", "k": put(arr)}
    if isinstance(obj, (np.ndarray, Tensor)):
        arr = obj.data if isinstance(obj, Tensor) else obj
        _check_dtype(arr, where)
        return {"t": "tensor" if isinstance(obj, Tensor) else "array", "k": put(arr)}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, (bool, np.bool_)) or not isinstance(k, (str, int, np.integer)):
                raise TypeError(f"mg.save(): dict keys must be str or int; {where} has key {k!r}")
            k = int(k) if not isinstance(k, str) else k
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]")])
        return {"t": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"t": "tuple" if isinstance(obj, tuple) else "list",
                "items": [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"mg.save(): cannot save {type(obj).__name__} at {where}; only dicts, lists, "
                    f"tuples, ndarrays/Tensors, numbers, bools, strings and None (no pickle)")


def _check_dtype(arr, where):
    if arr.dtype.hasobject:
        raise TypeError(f"mg.save(): the array at {where} has dtype {arr.dtype}, which needs "
                        f"pickle; only numeric, bool and string arrays can be saved")


def save(obj, path):
    """Write `obj` (e.g. model.state_dict() or a dict of state dicts) to `path` as .npz,
    atomically: a crash mid-save leaves any previous file at `path` unchanged."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"mg.save(): path must be a str or os.PathLike, got {type(path).__name__}") from None
    arrays = {}
    root = _encode(obj, arrays, "obj")
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root}, allow_nan=False)
    arrays[_META] = np.array(meta)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"mg.save(): directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(path))     # mkstemp makes it 0600; give it a normal file's mode
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:                                    # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _file_mode(path):
    """The mode of the file being replaced, or 0666 less the process's umask for a new one."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        pass
    umask = 0o022
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


# ---- load ---------------------------------------------------------------------------------
def load(path):
    """Read a file written by mg.save. Raises FileNotFoundError if it does not exist and
    ValueError naming the path if it is empty, truncated, corrupt or not written by mg.save."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"mg.load(): path must be a str or os.PathLike, got {type(path).__name__}") from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"mg.load(): no such file: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"mg.load({path}): the file is empty (an interrupted write?)")

    def bad(msg):
        return ValueError(f"mg.load({path}): {msg}")

    try:
        npz = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise bad(f"not a minigrad checkpoint, or truncated/corrupt ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise bad("not a minigrad checkpoint (a .npy array, not an .npz archive)")
    with npz:
        try:
            if _META not in npz.files:
                raise bad(f"not written by mg.save (no {_META!r} entry; entries: {npz.files[:5]})")
            meta = json.loads(str(npz[_META][()]))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise bad("not written by mg.save (unknown format)")
            if meta.get("version") != _VERSION:
                raise bad(f"format version {meta.get('version')!r} is not supported "
                          f"(this minigrad reads version {_VERSION})")
            arrays = {k: npz[k] for k in npz.files if k != _META}
        except ValueError as e:
            if str(e).startswith(f"mg.load({path})"):
                raise
            raise bad(f"corrupt ({type(e).__name__}: {e})") from None
        except (zipfile.BadZipFile, OSError, EOFError, KeyError, TypeError) as e:
            raise bad(f"truncated or corrupt ({type(e).__name__}: {e})") from None
    try:
        return _decode(meta["root"], arrays)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        raise bad(f"corrupt structure ({type(e).__name__}: {e})") from None


def _decode(node, arrays):
    t = node["t"]
    if t == "none":
        return None
    if t == "str":
        return str(node["v"])
    if t in ("dict", "odict"):
        out = OrderedDict() if t == "odict" else {}
        for k, v in node["items"]:
            if not isinstance(k, (str, int)):
                raise TypeError(f"dict key {k!r}")
            out[k] = _decode(v, arrays)
        return out
    if t in ("list", "tuple"):
        items = [_decode(v, arrays) for v in node["items"]]
        return tuple(items) if t == "tuple" else items
    arr = arrays[node["k"]]
    if t == "array":
        return arr
    if t == "tensor":
        return Tensor._wrap(arr, False)
    if arr.ndim != 0:
        raise ValueError(f"scalar entry {node['k']} has shape {arr.shape}")
    if t == "int":
        return int(arr)
    if t == "float":
        return float(arr)
    if t == "bool":
        return bool(arr)
    if t == "scalar":
        return arr[()]
    raise ValueError(f"unknown node type {t!r}")
