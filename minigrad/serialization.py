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

Loading never unpickles: a file can never run code. mg.load reads the archive itself
(zipfile for the container, its own strict parser for each .npy header) and treats the
file as hostile: every size is checked before anything is allocated or decompressed
(see load() for the bounds), and anything malformed is a ValueError naming the file.

Saving writes a temporary file `.<name>.mgsave-<host>-<pid>-<random>.tmp` in the
target's directory, fsyncs it and renames it over the target, so an interrupted save
leaves the previous checkpoint intact. A save removes the temporary files that earlier,
killed saves of the same target left behind (see save()).
"""
import ast
import json
import os
import re
import socket
import stat
import struct
import tempfile
import time
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from ._safeio import MAX_NDIM, check_arguments, open_regular
from .tensor import Tensor

_META = "__minigrad__"
_FORMAT = "minigrad.save"
_VERSION = 1
MAX_DEPTH = 200                 # nesting of dicts/lists/tuples that save writes and load reads
LOAD_RATIO = 4                  # default cap of load(): the arrays total at most 4 × the file's size


# ---- save ---------------------------------------------------------------------------------
def _encode(obj, arrays, where, depth=0):
    """The JSON node for obj, appending its arrays to `arrays`; TypeError naming `where`."""
    if depth > MAX_DEPTH:
        raise ValueError(f"mg.save(): {where} is nested more than {MAX_DEPTH} levels deep")

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
            items.append([k, _encode(v, arrays, f"{where}[{k!r}]", depth + 1)])
        return {"t": "odict" if isinstance(obj, OrderedDict) else "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        return {"t": "tuple" if isinstance(obj, tuple) else "list",
                "items": [_encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]}
    raise TypeError(f"mg.save(): cannot save {type(obj).__name__} at {where}; only dicts, lists, "
                    f"tuples, ndarrays/Tensors, numbers, bools, strings and None (no pickle)")


def _check_dtype(arr, where):
    if arr.dtype.hasobject:
        raise TypeError(f"mg.save(): the array at {where} has dtype {arr.dtype}, which needs "
                        f"pickle; only numeric, bool and string arrays can be saved")


def save(obj, path):
    """Write `obj` (e.g. model.state_dict() or a dict of state dicts) to `path` as .npz.

    The save is atomic: the data goes to a temporary file beside `path`
    (``.<name>.mgsave-<host>-<pid>-<random>.tmp``), is fsynced and renamed over `path`,
    so a crash mid-save leaves any previous file at `path` unchanged. Before writing,
    a save deletes the temporary files of earlier saves of the same `path` that are
    provably stale: the name has exactly that pattern, the file is a regular file owned
    by this user, and either its writer (host and pid in the name) is this host and no
    longer running and the file is over a minute old, or the file is over a day old.
    Nothing else in the directory is touched.

    Parameters
    ----------
    obj : dict, OrderedDict, list, tuple, ndarray, Tensor, int, float, bool, str or None
        Nested up to MAX_DEPTH (200) levels; dict keys are str or int. Tensors are saved
        as their arrays (and load back as Tensors); nothing is pickled.
    path : str or os.PathLike
        The file to write (any suffix). Its directory must exist.
    """
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
    base = os.path.basename(path)
    _remove_stale_temporaries(directory, base)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{base}.mgsave-{_host_tag()}-{os.getpid()}-",
                               suffix=".tmp")
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


# ---- the temporaries of killed saves ------------------------------------------------------
STALE_DEAD_WRITER = 60.0        # seconds: a dead writer's temporary older than this is removed
STALE_ANY_WRITER = 86400.0      # seconds: any of our temporaries older than this is removed


def _host_tag():
    """8 hex digits naming this host, so that a pid in a temporary's name is only ever
    checked on the host that wrote it (directories may be shared over NFS)."""
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def _alive(pid):
    """Whether process `pid` exists on this host (True when unsure)."""
    if not 0 < pid < 2**31:         # 0 would mean our process group; no such pid otherwise
        return True
    try:
        os.kill(pid, 0)             # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:                 # e.g. PermissionError: it exists, as another user
        return True
    return True


def _remove_stale_temporaries(directory, base):
    """Delete `directory`'s stale temporaries of saves to `base` (the rule is in save())."""
    pattern = re.compile(r"\." + re.escape(base) + r"\.mgsave-([0-9a-f]{8})-([0-9]+)-[a-z0-9_]+\.tmp")
    prefix = f".{base}.mgsave-"
    host, me, now = _host_tag(), os.getpid(), time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            continue
        age = now - st.st_mtime
        pid = int(m.group(2))
        dead = m.group(1) == host and pid != me and not _alive(pid)
        if (dead and age > STALE_DEAD_WRITER) or age > STALE_ANY_WRITER:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


# ---- load ---------------------------------------------------------------------------------
class _Corrupt(ValueError):
    """A content error already worded for the user (passes through the catch-alls below)."""


# What zipfile and zlib may raise on a malformed archive (besides our own _Corrupt).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError,
                   EOFError, OSError, ValueError, OverflowError, struct.error, zlib.error,
                   UnicodeError, KeyError, IndexError, TypeError)
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER_MAX = 65535          # bytes of a .npy header dict (NumPy writes < 200 for our arrays)
_ENTRY = re.compile(r"a(0|[1-9][0-9]{0,8})\.npy")
_TYPESTR = re.compile(r"[<>|=]?[a-zA-Z?][0-9]{0,9}(\[[0-9]{0,9}[a-zA-Z]{1,3}\])?")   # '<f4', '<M8[ns]'


def load(path, *, max_bytes=None):
    """Read a checkpoint written by mg.save.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (or a symlink to one); FIFOs, devices, sockets and directories are
        refused before they are opened for reading.
    max_bytes : int, optional
        The most bytes the archive's entries may unpack to in total (arrays, their .npy
        headers and the metadata). Default: 4 × the file's size (mg.save stores entries
        uncompressed, so its files need 1×). Checked against the sizes the archive
        declares before anything is decompressed, and again while reading.

    Returns
    -------
    The saved object: dicts (OrderedDicts where an OrderedDict was saved), lists,
    tuples, ndarrays (Tensors come back as ndarrays), Python and NumPy scalars, str and
    None. Peak memory is about twice the arrays' total size.

    Raises
    ------
    ValueError
        The file is empty, truncated, corrupt, not written by mg.save, unpacks to more
        than `max_bytes`, or holds anything mg.save would not write: entries other than
        ``__minigrad__.npy`` and ``a<i>.npy``, encrypted entries or compression methods
        other than stored/deflate, .npy headers that are not a plain dict of descr,
        fortran_order and shape, object (pickle) dtypes, sizes that disagree, metadata
        that is not valid JSON or is nested more than MAX_DEPTH levels. The message
        starts with ``mg.load(<path>)``.
    OSError
        The path cannot be read (FileNotFoundError, PermissionError, IsADirectoryError,
        or OSError for a FIFO/device/socket); the message names mg.load(), the path and why.
    """
    path, max_bytes = check_arguments(path, max_bytes, "mg.load()")

    def bad(msg):
        return _Corrupt(f"mg.load({path}): {msg}")

    f, size = open_regular(path, "mg.load()")
    with f:
        if size == 0:
            raise bad("the file is empty (an interrupted write?)")
        if f.read(len(_NPY_MAGIC)) == _NPY_MAGIC:
            raise bad("not a minigrad checkpoint (a .npy array, not an .npz archive)")
        f.seek(0)
        limit = LOAD_RATIO * size if max_bytes is None else max_bytes
        try:
            with zipfile.ZipFile(f) as zf:
                meta, arrays = _read_archive(zf, limit, max_bytes is None, bad)
        except _Corrupt:
            raise
        except _ARCHIVE_ERRORS as e:
            raise bad(f"not a minigrad checkpoint, or truncated/corrupt ({type(e).__name__}: {e})") from None
    try:
        return _decode(meta["root"], arrays, 0)
    except (KeyError, TypeError, ValueError) as e:
        raise bad(f"corrupt structure ({type(e).__name__}: {e})") from None


def _read_archive(zf, limit, default_limit, bad):
    """(metadata dict, {entry name: ndarray}) of an open archive, checking every entry's
    name, flags, method and declared size before reading any of them."""
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if _META + ".npy" not in names:
        raise bad(f"not written by mg.save (no {_META!r} entry; entries: {names[:5]})")
    if len(set(names)) != len(names):
        raise bad("the archive holds two entries with the same name")
    total = 0
    for info in infos:
        name = info.filename
        if name != _META + ".npy" and not _ENTRY.fullmatch(name):
            raise bad(f"unexpected entry {name!r} (mg.save writes only {_META}.npy and a0.npy, a1.npy, ...)")
        if info.flag_bits & 0x41:
            raise bad(f"entry {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise bad(f"entry {name!r} uses compression method {info.compress_type} "
                      f"(only stored and deflate are read)")
        total += info.file_size
    if total > limit:
        raise bad(f"the entries would unpack to {total} bytes, more than "
                  + (f"the limit of {limit} bytes ({LOAD_RATIO} × the file's size; pass max_bytes= to "
                     f"allow more)" if default_limit else f"max_bytes={limit}"))
    meta = None
    arrays = {}
    for info in infos:
        name = info.filename
        where = f"entry {name!r}"
        dtype, shape, fortran, data = _read_npy(zf, info, limit, where, bad)
        if name == _META + ".npy":
            meta = _parse_meta(dtype, shape, data, bad)
        else:
            arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
            if dtype.kind == "U" and dtype.fields is None and arr.size:   # code points must be valid
                codes = np.frombuffer(data, dtype=dtype.byteorder.replace("|", "=") + "u4")
                if int(codes.max()) > 0x10FFFF:
                    raise bad(f"{where}: a string holds a code point above U+10FFFF")
            arrays[name[:-4]] = arr.copy(order="K")                     # writable, own memory
    return meta, arrays


def _read_npy(zf, info, limit, where, bad):
    """(dtype, shape, fortran_order, data bytes) of one .npy entry, header checked first."""
    with zf.open(info) as e:
        head = e.read(10)
        if len(head) < 10 or head[:6] != _NPY_MAGIC:
            raise bad(f"{where} is not a .npy array")
        major = head[6]
        if major == 1:
            hlen, prefix = struct.unpack("<H", head[8:10])[0], 10
        elif major in (2, 3):
            head += e.read(2)
            hlen, prefix = struct.unpack("<I", head[8:12])[0], 12
        else:
            raise bad(f"{where}: unknown .npy format version {major}.{head[7]}")
        if hlen > _NPY_HEADER_MAX:
            raise bad(f"{where}: a .npy header of {hlen} bytes (at most {_NPY_HEADER_MAX} are read)")
        text = e.read(hlen)
        if len(text) < hlen:
            raise bad(f"{where}: truncated .npy header")
        try:
            text = text.decode("utf-8" if major == 3 else "latin-1")
        except UnicodeDecodeError:
            raise bad(f"{where}: the .npy header is not valid UTF-8") from None
        dtype, shape, fortran = _parse_npy_header(text, lambda msg: bad(f"{where}: {msg}"))
        count = 1
        span = max(dtype.itemsize, 1)
        for n in shape:
            count *= n
            span *= max(n, 1)
        if span >= 2**63 or count > max(limit, 1):
            raise bad(f"{where}: shape {shape} of {dtype} is too large (limit {limit} bytes)")
        nbytes = count * dtype.itemsize
        if prefix + hlen + nbytes != info.file_size:
            raise bad(f"{where}: its header declares shape {shape} of {dtype} ({nbytes} bytes of data) "
                      f"but the entry holds {info.file_size - prefix - hlen}")
        data = e.read(nbytes)
        if len(data) != nbytes or e.read(1):
            raise bad(f"{where}: truncated or corrupt data")
    return dtype, shape, fortran, data


def _parse_npy_header(text, bad):
    """(dtype, shape, fortran_order) from a .npy header: exactly a dict literal with the
    keys 'descr', 'fortran_order' and 'shape', checked value by value."""
    try:
        d = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as e:
        raise bad(f"the .npy header is not a Python literal ({type(e).__name__})") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise bad("the .npy header is not a dict of descr, fortran_order and shape")
    descr, fortran, shape = d["descr"], d["fortran_order"], d["shape"]
    if not isinstance(fortran, bool):
        raise bad(f"fortran_order is {fortran!r}, not a bool")
    if (not isinstance(shape, tuple) or len(shape) > MAX_NDIM
            or not all(type(n) is int and 0 <= n < 2**63 for n in shape)):
        raise bad(f"shape {str(shape)[:80]} is not a tuple of at most {MAX_NDIM} sizes in [0, 2**63)")
    if isinstance(descr, str) and not _TYPESTR.fullmatch(descr):     # e.g. NumPy's ",f4" or "(2,)f8"
        raise bad(f"descr {descr[:80]!r} is not a plain type string such as '<f4'")
    try:                              # (NumPy's dtype parser may run ast.literal_eval: SyntaxError)
        if isinstance(descr, str):
            dtype = np.dtype(descr)
        elif isinstance(descr, list):
            dtype = np.lib.format.descr_to_dtype(descr)
        else:
            raise TypeError(type(descr).__name__)
    except (TypeError, ValueError, OverflowError, KeyError, IndexError, SyntaxError, RecursionError) as e:
        raise bad(f"descr {str(descr)[:80]} is not a NumPy dtype ({type(e).__name__})") from None
    if dtype.hasobject:
        raise bad(f"dtype {dtype} holds Python objects, which would need pickle")
    return dtype, shape, fortran


def _parse_meta(dtype, shape, data, bad):
    """The metadata dict from the __minigrad__ entry (a 0-d unicode array of JSON)."""
    if dtype.kind != "U" or dtype.fields is not None or shape != ():
        raise bad(f"the {_META} entry is {dtype} of shape {shape}, not a string")
    try:
        text = data.decode("utf-32-be" if dtype.byteorder == ">" else "utf-32-le").rstrip("\x00")
    except UnicodeDecodeError:
        raise bad(f"the {_META} entry is not valid text (a code point above U+10FFFF "
                  f"or a surrogate)") from None
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise bad(f"the {_META} entry is not valid JSON ({type(e).__name__}: {str(e)[:100]})") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise bad("not written by mg.save (unknown format)")
    if meta.get("version") != _VERSION:
        raise bad(f"format version {str(meta.get('version'))[:20]} is not supported "
                  f"(this minigrad reads version {_VERSION})")
    if "root" not in meta:
        raise bad("corrupt structure (no root)")
    return meta


def _decode(node, arrays, depth):
    """The object a metadata node describes; ValueError/TypeError/KeyError if malformed."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    if not isinstance(node, dict) or not isinstance(node.get("t"), str):
        raise TypeError(f"a node is {type(node).__name__}, not an object with a type 't'")
    t = node["t"]
    if t == "none":
        return None
    if t == "str":
        if not isinstance(node.get("v"), str):
            raise TypeError("a str node without a string value")
        return node["v"]
    if t in ("dict", "odict", "list", "tuple"):
        items = node.get("items")
        if not isinstance(items, list):
            raise TypeError(f"a {t} node without a list of items")
    if t in ("dict", "odict"):
        out = OrderedDict() if t == "odict" else {}
        for item in items:
            if not isinstance(item, list) or len(item) != 2:
                raise TypeError("a dict item is not a [key, value] pair")
            k, v = item
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(f"dict key {str(k)[:40]}")
            out[k] = _decode(v, arrays, depth + 1)
        return out
    if t in ("list", "tuple"):
        items = [_decode(v, arrays, depth + 1) for v in items]
        return tuple(items) if t == "tuple" else items
    if t not in ("array", "tensor", "int", "float", "bool", "scalar"):
        raise ValueError(f"unknown node type {t[:40]!r}")
    k = node.get("k")
    if not isinstance(k, str) or k not in arrays:
        raise KeyError(f"a node refers to entry {str(k)[:40]}, which the archive does not hold")
    arr = arrays[k]
    if t == "array":
        return arr
    if t == "tensor":
        return Tensor._wrap(arr, False)
    if arr.ndim != 0:
        raise ValueError(f"scalar entry {k} has shape {arr.shape}")
    kinds = {"int": "iu", "float": "f", "bool": "b"}
    if t in kinds and arr.dtype.kind not in kinds[t]:
        raise ValueError(f"{t} entry {k} has dtype {arr.dtype}")
    if t == "int":
        return int(arr)
    if t == "float":
        return float(arr)
    if t == "bool":
        return bool(arr)
    return arr[()]
