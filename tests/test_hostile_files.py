"""Hostile and broken files given to mg.load, read_idx and the dataset loaders (issue 17).

Every file is built here byte by byte (a hand-written zip/.npy/gzip writer below), so each
case differs from a valid file in exactly the way it names. Each must raise ValueError
(content) or an OSError subclass (unreadable path) whose message names the function,
the path and the problem: never another exception type, a crash, a hang, or an allocation
beyond the documented bound (tracemalloc sees NumPy's and bytearray's allocations).

The first cases are the ones issue 17 lists (a coverage-guided fuzzer found them); the
fuzz targets in fuzz/ run the same entry points, and whatever they find lands here too.
"""
import json
import os
import stat
import struct
import threading
import tracemalloc
import zlib

import numpy as np
import pytest

import minigrad as mg
import minigrad.serialization as ser
from minigrad.data import load_fashion_mnist, read_idx
from minigrad.data.idx import GZIP_RATIO

MiB = 1 << 20


# ---- a zip, .npy and gzip writer, from the formats' definitions ------------------------------

def stored(name, payload, flags=0, version=20, method=0):
    """A zip entry (name, data as stored, method, uncompressed size, crc, flags, version)."""
    return dict(name=name, data=payload, method=method, usize=len(payload),
                crc=zlib.crc32(payload), flags=flags, version=version)


def deflated(name, raw_deflate, usize, crc):
    return dict(name=name, data=raw_deflate, method=8, usize=usize, crc=crc, flags=0, version=20)


def make_zip(entries):
    """Local headers + data, the central directory, the end record (no zip64, no extras)."""
    out, cd = b"", b""
    for e in entries:
        n = e["name"].encode()
        offset = len(out)
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", e["version"], e["flags"], e["method"], 0, 0x21,
                           e["crc"], len(e["data"]), e["usize"], len(n), 0) + n + e["data"]
        cd += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, e["version"], e["flags"], e["method"], 0,
                          0x21, e["crc"], len(e["data"]), e["usize"], len(n), 0, 0, 0, 0, 0, offset) + n
    return out + cd + struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                                  len(cd), len(out), 0)


def npy(header, data=b"", major=1):
    """A .npy file: magic, version, header length, the header text padded to 64 bytes."""
    text = header.encode("latin-1" if major < 3 else "utf-8")
    lenfmt = "<H" if major == 1 else "<I"
    pre = 6 + 2 + struct.calcsize(lenfmt)
    text += b" " * ((-(pre + len(text) + 1)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([major, 0]) + struct.pack(lenfmt, len(text)) + text + data


def npy_header(descr, shape, fortran=False):
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"


def npy_of(a):
    a = np.asarray(a)
    return npy(npy_header(a.dtype.str, a.shape), a.tobytes())


def meta_npy(text):
    """The __minigrad__ entry: a 0-d unicode array holding `text`."""
    return npy(npy_header(f"<U{max(len(text), 1)}", ()), text.encode("utf-32-le") or b"\0\0\0\0")


def meta_json(root):
    return json.dumps({"format": "minigrad.save", "version": 1, "root": root})


W = {"t": "dict", "items": [["w", {"t": "array", "k": "a0"}]]}


def checkpoint(root=W, arrays=(np.arange(3.0),), meta=None, extra=()):
    """A checkpoint as mg.save would write it (stored entries), from its parts."""
    entries = [stored("__minigrad__.npy", meta_npy(meta_json(root) if meta is None else meta))]
    entries += [stored(f"a{i}.npy", a if isinstance(a, bytes) else npy_of(a)) for i, a in enumerate(arrays)]
    return make_zip(entries + list(extra))


def raw_deflate_zeros(prefix, n_mib):
    """Raw deflate data of `prefix` followed by n_mib MiB of zero bytes, built in O(1 MiB)
    time: after a full flush the compressor starts afresh, so one compressed MiB of zeros
    can be repeated."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    crc = zlib.crc32(prefix)
    zero = bytes(MiB)
    for _ in range(n_mib):
        crc = zlib.crc32(zero, crc)
    return head + block * n_mib + tail, len(prefix) + n_mib * MiB, crc


def gzip_zeros(prefix, n_mib):
    """A valid gzip member of `prefix` + n_mib MiB of zeros."""
    body, size, crc = raw_deflate_zeros(prefix, n_mib)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body
            + struct.pack("<II", crc, size & 0xFFFFFFFF))


def idx_header(code, dims):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def write(tmp_path, data, name="hostile.bin"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def peak_bytes(fn):
    """(outcome, peak bytes traced while fn ran): outcome is the exception or the value."""
    tracemalloc.start()
    try:
        try:
            out = fn()
        except Exception as e:        # the test inspects it
            out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def expect_load_error(path, match, **kw):
    with pytest.raises(ValueError, match=match) as e:
        mg.load(path, **kw)
    assert str(e.value).startswith(f"mg.load({path})"), str(e.value)
    return e.value


# ---- the writer itself is right: its valid checkpoint loads --------------------------------

def test_the_hand_built_checkpoint_loads(tmp_path):
    p = write(tmp_path, checkpoint())
    back = mg.load(p)
    assert list(back) == ["w"] and back["w"].dtype == np.float64
    np.testing.assert_array_equal(back["w"], [0.0, 1.0, 2.0])
    z = gzip_zeros(b"abc", 3)
    assert zlib.decompress(z, 31) == b"abc" + bytes(3 * MiB)


# ---- mg.load: issue 17's list ------------------------------------------------------------------

def _entry_variant(**change):
    e = stored("a0.npy", npy_of(np.arange(3.0)))
    e.update(change)
    return make_zip([stored("__minigrad__.npy", meta_npy(meta_json(W))), e])


LOAD_CASES = {
    # zipfile's NotImplementedError / RuntimeError
    "zip-version-needed-99": (lambda: _entry_variant(version=99), "zip file version 9.9"),
    "strong-encryption-flag": (lambda: _entry_variant(flags=0x40), "encrypted"),
    "encryption-bit": (lambda: _entry_variant(flags=0x01), "encrypted"),
    "unknown-compression-method": (lambda: _entry_variant(method=99), "compression method 99"),
    "bzip2-method": (lambda: _entry_variant(method=12), "compression method 12"),
    # the .npy header: TokenError, SyntaxError, OverflowError, MemoryError
    "npy-header-unterminated": (lambda: checkpoint(arrays=[npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), ", bytes(24))]), "not a Python literal"),
    "npy-descr-malformed": (lambda: checkpoint(arrays=[npy(
        "{'descr': '<f8, 'fortran_order': False, 'shape': (3,), }", bytes(24))]), "not a Python literal"),
    "npy-descr-not-a-dtype": (lambda: checkpoint(arrays=[npy(npy_header("<q9", (3,)), bytes(24))]),
                              "not a NumPy dtype"),
    "npy-descr-bad-fields": (lambda: checkpoint(arrays=[npy(
        "{'descr': [('a',)], 'fortran_order': False, 'shape': (3,), }", bytes(24))]), "not a NumPy dtype"),
    # found by fuzz/fuzz_load.py: NumPy parses ",f4" as a comma-string dtype and its
    # ast.literal_eval raised SyntaxError out of mg.load
    "npy-descr-comma-string": (lambda: checkpoint(arrays=[npy(npy_header(",f4", (2,)), bytes(8))]),
                               "not a plain type string"),
    "npy-descr-subarray": (lambda: checkpoint(arrays=[npy(npy_header("(2,)f8", (3,)), bytes(48))]),
                           "not a plain type string"),
    "npy-field-comma-string": (lambda: checkpoint(arrays=[npy(
        "{'descr': [('a', ',f4')], 'fortran_order': False, 'shape': (2,), }", bytes(8))]), "not a NumPy dtype"),
    "npy-descr-number": (lambda: checkpoint(arrays=[npy(
        "{'descr': 8, 'fortran_order': False, 'shape': (3,), }", bytes(24))]), "not a NumPy dtype"),
    "npy-shape-beyond-int64": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (2**64,)), bytes(8))]),
                               "shape"),
    "npy-shape-negative": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (-1,)), b"")]), "shape"),
    "npy-shape-not-ints": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (1.5,)), bytes(8))]), "shape"),
    "npy-2^31-items": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (2**31,)), bytes(8))]),
                       "too large|declares shape"),
    "npy-2^40-items": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (2**20, 2**20)), bytes(8))]),
                       "too large|declares shape"),
    "npy-empty-but-huge-dims": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (0, 2**40, 2**40)))]),
                                "too large"),
    "npy-too-many-dims": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (1,) * 65), bytes(8))]),
                          "at most"),
    "npy-fortran-not-bool": (lambda: checkpoint(arrays=[npy(
        "{'descr': '<f8', 'fortran_order': 0, 'shape': (3,), }", bytes(24))]), "fortran_order"),
    "npy-extra-key": (lambda: checkpoint(arrays=[npy(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}", bytes(24))]), "not a dict of"),
    "npy-version-9": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (3,)), bytes(24))[:6] + b"\x09"
                                                 + npy(npy_header("<f8", (3,)), bytes(24))[7:]]),
                      "unknown .npy format version"),
    "npy-header-4GiB-long": (lambda: checkpoint(arrays=[b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**32 - 1)
                                                        + b"{" * 100]), "header of 4294967295 bytes"),
    "npy-object-dtype": (lambda: checkpoint(arrays=[npy(npy_header("|O", (1,)), bytes(8))]), "pickle"),
    "npy-size-disagrees": (lambda: checkpoint(arrays=[npy(npy_header("<f8", (3,)), bytes(23))]),
                           "declares shape"),
    "npy-unicode-code-point": (lambda: checkpoint(arrays=[npy(npy_header("<U1", (1,)),
                                                              struct.pack("<I", 0x110000))]), "code point"),
    # the metadata: RecursionError, SystemError, AttributeError
    "meta-json-nested-1000": (lambda: checkpoint(meta='{"format": "minigrad.save", "version": 1, "root": '
                                                 + '{"t": "list", "items": [' * 1000 + "]}" * 1000 + "}"),
                              "nested more than|JSON"),
    "meta-json-nested-100000": (lambda: checkpoint(meta='{"format": "minigrad.save", "version": 1, "root": '
                                                   + "[" * 100000 + "]" * 100000 + "}"), "JSON|node"),
    "meta-code-point-0x110000": (lambda: make_zip([stored("__minigrad__.npy", npy(
        npy_header("<U2", ()), struct.pack("<II", 0x7B, 0x110000)))]), "not valid text"),
    "meta-not-a-string": (lambda: make_zip([stored("__minigrad__.npy", npy_of(np.float64(1.0)))]),
                          "not a string"),
    "meta-json-list": (lambda: checkpoint(meta="[1, 2]"), "unknown format"),
    "meta-json-invalid": (lambda: checkpoint(meta='{"format": '), "not valid JSON"),
    "meta-huge-int": (lambda: checkpoint(meta='{"version": ' + "9" * 5000 + "}"), "not valid JSON"),
    "meta-no-root": (lambda: checkpoint(meta='{"format": "minigrad.save", "version": 1}'), "no root"),
    "meta-node-not-object": (lambda: checkpoint(root=[1, 2]), "corrupt structure"),
    "meta-node-type-number": (lambda: checkpoint(root={"t": 5}), "corrupt structure"),
    "meta-items-not-pairs": (lambda: checkpoint(root={"t": "dict", "items": [[1]]}), "corrupt structure"),
    "meta-dict-key-bool": (lambda: checkpoint(root={"t": "dict", "items": [[True, {"t": "none"}]]}),
                           "corrupt structure"),
    "meta-missing-entry": (lambda: checkpoint(root={"t": "array", "k": "a7"}), "does not hold"),
    "meta-int-of-floats": (lambda: checkpoint(root={"t": "int", "k": "a0"}, arrays=[np.float64(1.5)]),
                           "dtype float64"),
    "meta-unknown-node": (lambda: checkpoint(root={"t": "pickle"}), "unknown node type"),
    # entries that are not mg.save's
    "entry-not-npy": (lambda: checkpoint(arrays=[b"hello, I am raw bytes"]), "not a .npy array"),
    "entry-foreign-name": (lambda: checkpoint(extra=[stored("notes.txt", b"hi")]), "unexpected entry"),
    "entry-duplicated": (lambda: checkpoint(extra=[stored("a0.npy", npy_of(np.zeros(3)))]),
                         "same name"),
    "zip-sizes-lie-small": (lambda: make_zip([stored("__minigrad__.npy", meta_npy(meta_json(W))),
                                              dict(stored("a0.npy", npy_of(np.arange(3.0))), usize=100)]),
                            "declares shape|truncated|corrupt"),
    "zip-deflate-longer-than-declared": (lambda: make_zip([
        stored("__minigrad__.npy", meta_npy(meta_json(W))),
        deflated("a0.npy", *(lambda d, n, c: (d, n - MiB, c))(*raw_deflate_zeros(
            npy(npy_header("<f8", (3,))) + bytes(24), 1)))]), "declares shape|truncated|corrupt"),
    "zip-crc-wrong": (lambda: make_zip([stored("__minigrad__.npy", meta_npy(meta_json(W))),
                                        dict(stored("a0.npy", npy_of(np.arange(3.0))), crc=1)]),
                      "corrupt"),
}


@pytest.mark.parametrize("case", list(LOAD_CASES))
def test_load_refuses_hostile_checkpoint(tmp_path, case):
    build, match = LOAD_CASES[case]
    p = write(tmp_path, build())
    err, peak = peak_bytes(lambda: expect_load_error(p, match))
    assert isinstance(err, ValueError) and not isinstance(err, AssertionError), err
    assert peak < 8 * MiB + 40 * os.path.getsize(p), f"{peak} bytes allocated for a {os.path.getsize(p)}-byte file"


def test_load_caps_decompressed_size(tmp_path):
    """A 256 KiB .npz whose deflated entry unpacks to 256 MiB is refused from the sizes it
    declares, before anything is decompressed; max_bytes= lets a larger archive through."""
    data, size, crc = raw_deflate_zeros(npy(npy_header("|u1", (256 * MiB,))), 256)
    p = write(tmp_path, make_zip([stored("__minigrad__.npy", meta_npy(meta_json(W))),
                                  deflated("a0.npy", data, size, crc)]))
    assert os.path.getsize(p) < MiB
    err, peak = peak_bytes(lambda: expect_load_error(p, r"unpack to \d+ bytes, more than the limit of "
                                                        r"\d+ bytes \(4 × the file's size; pass max_bytes="))
    assert isinstance(err, ValueError) and peak < 4 * MiB, peak
    small, size, crc = raw_deflate_zeros(npy(npy_header("|u1", (2 * MiB,))), 2)
    p = write(tmp_path, make_zip([stored("__minigrad__.npy", meta_npy(meta_json(W))),
                                  deflated("a0.npy", small, size, crc)]), "small")
    expect_load_error(p, "more than the limit")
    back = mg.load(p, max_bytes=4 * MiB)
    assert back["w"].shape == (2 * MiB,) and not back["w"].any()
    expect_load_error(p, "more than max_bytes=1000", max_bytes=1000)
    with pytest.raises(TypeError, match="max_bytes"):
        mg.load(p, max_bytes="big")


# ---- paths that are not regular files ----------------------------------------------------------

def _fifo(tmp_path):
    p = tmp_path / "fifo"
    os.mkfifo(p)
    return p


def _call_with_deadline(fn, unblock, seconds=20):
    """fn()'s exception; the test fails (instead of hanging) if fn blocks, and unblock()
    releases it."""
    box = {}

    def run():
        try:
            fn()
        except BaseException as e:   # the test inspects it
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        unblock()
        t.join(5)
        pytest.fail(f"blocked for {seconds} s")
    return box.get("error")


def _unblock_fifo(p):
    fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)
    os.close(fd)


@pytest.mark.parametrize("fn,name", [(mg.load, "mg.load()"), (read_idx, "read_idx()")])
def test_a_fifo_without_writer_is_refused_at_once(tmp_path, fn, name):
    p = _fifo(tmp_path)
    err = _call_with_deadline(lambda: fn(p), lambda: _unblock_fifo(p))
    assert isinstance(err, OSError), repr(err)
    assert str(err).startswith(name) and str(p) in str(err) and "FIFO" in str(err), str(err)


@pytest.mark.parametrize("fn,name", [(mg.load, "mg.load()"), (read_idx, "read_idx()")])
def test_devices_directories_and_missing_files(tmp_path, fn, name):
    link = tmp_path / "zero.gz"
    os.symlink("/dev/zero", link)
    with pytest.raises(OSError, match="character device") as e:
        fn(link)
    assert str(e.value).startswith(name) and str(link) in str(e.value)
    with pytest.raises(IsADirectoryError, match="is a directory") as e:
        fn(tmp_path)
    assert str(e.value).startswith(name) and str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="no such file") as e:
        fn(tmp_path / "missing")
    assert str(e.value).startswith(name) and str(tmp_path / "missing") in str(e.value)
    dangling = tmp_path / "dangling"
    os.symlink(tmp_path / "gone", dangling)
    with pytest.raises(FileNotFoundError, match="no such file"):
        fn(dangling)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of their mode")
def test_unreadable_file(tmp_path):
    p = write(tmp_path, checkpoint())
    os.chmod(p, 0)
    with pytest.raises(PermissionError, match=r"mg\.load\(\)"):
        mg.load(p)


# ---- read_idx ----------------------------------------------------------------------------------

def test_read_idx_gzip_bomb_is_not_decompressed_whole(tmp_path):
    """Issue 17: 10 declared items then 1 GiB of zeros was decompressed whole (2 GiB peak)
    before the header was checked. Now the header comes first, the 10 items are read,
    and the trailing data is counted only up to the limit, in fixed-size chunks."""
    p = write(tmp_path, gzip_zeros(idx_header(0x08, (10,)) + bytes(range(10)), 1024), "bomb.gz")
    assert os.path.getsize(p) < 2 * MiB
    err, peak = peak_bytes(lambda: read_idx(p))
    assert isinstance(err, ValueError), repr(err)
    assert str(err).startswith(f"read_idx({p})") and "trailing bytes" in str(err), str(err)
    assert peak < 4 * MiB, f"{peak / MiB:.1f} MiB allocated"


@pytest.mark.parametrize("dims", [(2**31,), (2**20, 2**20), (2**16, 2**16, 2**16)])
def test_read_idx_declared_size_beyond_the_limit(tmp_path, dims):
    gz = write(tmp_path, gzip_zeros(idx_header(0x08, dims), 1), "big.gz")
    err, peak = peak_bytes(lambda: read_idx(gz))
    assert isinstance(err, ValueError) and "more than the limit" in str(err) and "max_bytes" in str(err), err
    assert str(gz) in str(err) and peak < 4 * MiB
    raw = write(tmp_path, idx_header(0x0E, dims) + bytes(64), "big.raw")
    err, peak = peak_bytes(lambda: read_idx(raw))
    assert isinstance(err, ValueError) and "need" in str(err) and str(raw) in str(err), err
    assert peak < MiB


def test_read_idx_max_bytes(tmp_path):
    """A gzip file whose data is beyond GZIP_RATIO × its size + 1 MiB reads with max_bytes."""
    body = idx_header(0x08, (4 * MiB,))
    p = write(tmp_path, gzip_zeros(body, 4), "zeros.gz")
    with pytest.raises(ValueError, match="more than the limit"):
        read_idx(p)
    a = read_idx(p, max_bytes=4 * MiB)
    assert a.shape == (4 * MiB,) and a.dtype == np.uint8 and not a.any()
    with pytest.raises(ValueError, match="max_bytes=100"):
        read_idx(p, max_bytes=100)
    with pytest.raises(ValueError, match=r"read_idx\(\): max_bytes must be >= 0"):
        read_idx(p, max_bytes=-1)
    with pytest.raises(TypeError, match=r"read_idx\(\): max_bytes must be an int"):
        read_idx(p, max_bytes=1.5)


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_too_many_dimensions(tmp_path, compress):
    raw = idx_header(0x08, (1,) * 65) + b"\x07"
    p = write(tmp_path, zlib.compress(raw, wbits=31) if compress else raw)
    with pytest.raises(ValueError, match="65 dimensions") as e:
        read_idx(p)
    assert str(e.value).startswith(f"read_idx({p})")


def test_read_idx_gzip_members_padding_and_garbage(tmp_path):
    a = np.arange(12, dtype=np.uint8)
    raw = idx_header(0x08, (12,)) + a.tobytes()
    two = zlib.compress(raw[:9], wbits=31) + zlib.compress(raw[9:], wbits=31)
    np.testing.assert_array_equal(read_idx(write(tmp_path, two, "two.gz")), a)       # as gzip(1)
    padded = zlib.compress(raw, wbits=31) + bytes(1000)
    np.testing.assert_array_equal(read_idx(write(tmp_path, padded, "pad.gz")), a)
    for junk in (b"junk", b"\x1f"):
        p = write(tmp_path, zlib.compress(raw, wbits=31) + junk, "junk.gz")
        with pytest.raises(ValueError, match="neither a gzip member nor zero padding") as e:
            read_idx(p)
        assert str(p) in str(e.value)
    bad_crc = bytearray(zlib.compress(raw, wbits=31))
    bad_crc[-6] ^= 1
    with pytest.raises(ValueError, match="corrupt or truncated gzip"):
        read_idx(write(tmp_path, bytes(bad_crc), "crc.gz"))


def test_read_idx_path_must_be_a_path(tmp_path):
    with pytest.raises(TypeError, match=r"read_idx\(\): path"):
        read_idx(3)


# ---- the dataset loaders ---------------------------------------------------------------------

def _fake_dataset(root):
    root.mkdir()
    for split, n in (("train", 4), ("t10k", 2)):
        (root / f"{split}-images-idx3-ubyte").write_bytes(idx_header(0x08, (n, 28, 28)) + bytes(n * 784))
        (root / f"{split}-labels-idx1-ubyte").write_bytes(idx_header(0x08, (n,)) + bytes(n))


def test_dataset_loader_names_itself_and_the_file(tmp_path):
    root = tmp_path / "data"
    _fake_dataset(root)
    x, y = load_fashion_mnist(root)
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,)
    images = root / "train-images-idx3-ubyte"
    images.write_bytes(gzip_zeros(idx_header(0x08, (2**20, 28, 28)), 0))
    with pytest.raises(ValueError, match="more than the limit") as e:
        load_fashion_mnist(root)
    assert str(e.value).startswith("load_fashion_mnist(): read_idx(") and str(images) in str(e.value)
    images.unlink()
    os.mkfifo(images)
    err = _call_with_deadline(lambda: load_fashion_mnist(root), lambda: _unblock_fifo(images))
    assert isinstance(err, OSError) and "FIFO" in str(err) and str(images) in str(err), repr(err)
    assert str(err).startswith("load_fashion_mnist(): ")
    images.unlink()
    (root / "train-images-idx3-ubyte").write_bytes(idx_header(0x0D, (4, 28, 28)) + bytes(4 * 784 * 4))
    with pytest.raises(ValueError, match=r"load_fashion_mnist\(\): .*expected uint8 images"):
        load_fashion_mnist(root)


# ---- mg.save cleans up after saves that were killed -----------------------------------------------

def _dead_pid():
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_save_removes_only_its_own_stale_temporaries(tmp_path):
    path = tmp_path / "ck.npz"
    host, dead, me = ser._host_tag(), _dead_pid(), os.getpid()
    old = os.path.getmtime(tmp_path) - 3600
    files = {
        f".ck.npz.mgsave-{host}-{dead}-abc123_x.tmp": ("old, writer dead", old, False),
        f".ck.npz.mgsave-{host}-{dead}-young001.tmp": ("writer dead but written just now", None, True),
        f".ck.npz.mgsave-{host}-{me}-ownpid01.tmp": ("this process's own (another thread?)", old, True),
        f".ck.npz.mgsave-{host}-1-initproc.tmp": ("writer pid 1 is alive", old, True),
        f".ck.npz.mgsave-{host}-0-procgrp0.tmp": ("pid 0 is no process", old, True),
        f".ck.npz.mgsave-{host}-{10**30}-hugepid1.tmp": ("no such pid: cannot check", old, True),
        f".ck.npz.mgsave-0badc0de-{dead}-elsewher.tmp": ("another host's pid: cannot check", old, True),
        f".ck.npz.mgsave-0badc0de-{dead}-lastyear.tmp": ("another host's, over a day old", old - 86400, False),
        f".other.npz.mgsave-{host}-{dead}-abc123_x.tmp": ("another target's", old, True),
        f".ck.npz.mgsave-{host}-{dead}-abc123_x.tmp.keep": ("not the pattern", old, True),
        f".ck.npz.abcdefgh.tmp": ("an older minigrad's name: not provably ours", old, True),
        "ck.npz.tmp": ("the user's", old, True),
    }
    for name, (_, mtime, _) in files.items():
        (tmp_path / name).write_bytes(b"partial")
        if mtime is not None:
            os.utime(tmp_path / name, (mtime, mtime))
    link = tmp_path / f".ck.npz.mgsave-{host}-{dead}-symlink1.tmp"
    os.symlink(tmp_path / "ck.npz.tmp", link)
    os.utime(link, (old, old), follow_symlinks=False)
    mg.save({"w": np.ones(2)}, path)
    for name, (why, _, kept) in files.items():
        assert (tmp_path / name).exists() == kept, f"{name}: {why}"
    assert link.is_symlink(), "a symlink is never ours"
    assert mg.load(path)["w"].tolist() == [1.0, 1.0]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".ck.npz.mgsave") and n.endswith(".tmp")
                and f"-{me}-" in n and n not in files]     # this save left no temporary


def test_save_refuses_nesting_that_load_would_refuse(tmp_path):
    deep = []
    for _ in range(ser.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than 200 levels"):
        mg.save(deep, tmp_path / "deep")
    ok = []
    for _ in range(ser.MAX_DEPTH):
        ok = [ok]
    mg.save(ok, tmp_path / "ok")
    assert mg.load(tmp_path / "ok") == ok


def test_load_keeps_structured_and_big_endian_arrays(tmp_path):
    """Arrays mg.save could always write still load: structured, big-endian, Fortran, 0-d."""
    obj = {"rec": np.array([(1, 2.5)], dtype=[("i", "<i4"), ("f", ">f8")]),
           "be": np.arange(4, dtype=">i2"), "f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
           "s": np.array(["ab", "ü"]), "b": np.array([b"x"])}
    mg.save(obj, tmp_path / "ck")
    back = mg.load(tmp_path / "ck")
    for k, v in obj.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and back[k].tobytes() == v.tobytes(), k
    assert back["f"].flags.f_contiguous and all(a.flags.writeable for a in back.values())
    mode = os.stat(tmp_path / "ck").st_mode
    assert stat.S_ISREG(mode)


# ---- the fuzz targets (fuzz/) run here too, with their fallback driver -----------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FUZZ = os.path.join(ROOT, "fuzz")


def _fuzz_env():
    return dict(os.environ, MINIGRAD_FUZZ_FALLBACK="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.mark.parametrize("target", ["load", "idx", "datasets"])
def test_fuzz_target_holds_on_its_corpus_and_mutations(tmp_path, target):
    """Each target replays its seed corpus and 400 mutations of it without a crash (the
    fallback driver, no coverage feedback: a smoke test of the target, not the fuzzing)."""
    import subprocess
    import sys
    corpus = os.path.join(FUZZ, "corpus", target)
    assert len(os.listdir(corpus)) >= 2
    out = subprocess.run([sys.executable, os.path.join(FUZZ, f"fuzz_{target}.py"), "-runs=400", "-seed=7",
                          f"-artifact_prefix={tmp_path}/", corpus], capture_output=True, text=True,
                         env=_fuzz_env(), timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "Done 400 runs" in out.stdout
    assert not os.listdir(tmp_path)


def test_fuzz_driver_reports_a_broken_rule(tmp_path):
    """A parser that lets a KeyError through is a crash: non-zero exit, the input saved."""
    import subprocess
    import sys
    code = (f"import sys; sys.path.insert(0, {FUZZ!r}); import fuzz_load, _harness\n"
            "def broken(path): raise KeyError('a stray KeyError')\n"
            "fuzz_load.mg.load = broken\n"
            f"_harness.main(fuzz_load.test_one_input, ['t', '-runs=3', '-artifact_prefix={tmp_path}/', "
            f"{os.path.join(FUZZ, 'corpus', 'load')!r}])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_fuzz_env(),
                         timeout=300)
    assert out.returncode != 0 and "a stray KeyError" in out.stderr, out.stderr[-2000:]
    assert [n for n in os.listdir(tmp_path) if n.startswith("crash-")]


# ---- CI's sanitizer pass really runs sanitized kernels ---------------------------------------------

@pytest.mark.skipif(os.environ.get("MINIGRAD_SANITIZED") != "1",
                    reason="only in CI's sanitizer pass (.ci/sanitize sets MINIGRAD_SANITIZED=1)")
def test_kernels_run_under_address_sanitizer():
    import glob
    import subprocess
    import sys
    import minigrad._ext as ext
    libs = glob.glob(os.path.join(os.path.dirname(ext.__file__), "*.so"))
    assert libs
    for so in libs:
        with open(so, "rb") as f:
            body = f.read()
        assert b"__asan_report" in body and b"__ubsan_handle" in body, f"{so} is not instrumented"
    with open("/proc/self/maps") as f:
        assert "libasan" in f.read()
    # one element past the end of a 3-element array, read by a kernel through a raw pointer
    # (which Cython's bounds checks, also on in this pass, do not see): ASan must stop it
    out = subprocess.run([sys.executable, "-c", "import numpy as np; from minigrad._ext import elementwise as k; "
                          "k._probe_unchecked(np.arange(3.0), 3)"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "AddressSanitizer: heap-buffer-overflow" in out.stderr, out.stderr[-2000:]
