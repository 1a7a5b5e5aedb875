"""The IDX file format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Layout (all integers big-endian):
    bytes 0-1   0x00 0x00                      magic
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                           0x0D float32, 0x0E float64
    byte  3     ndim (number of dimensions)
    then ndim × uint32 sizes, then the data, row-major, exactly prod(sizes) items.
"""
import gzip
import os
import zlib

import numpy as np

IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == GZIP_MAGIC:                       # detected by content, not by the suffix
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"read_idx({path!s}): corrupt or truncated gzip data ({e})") from None
    return raw


def parse_idx(raw, name="<bytes>"):
    """The array held by the (uncompressed) IDX bytes `raw`; ValueError naming `name` if bad."""
    def fail(msg):
        raise ValueError(f"read_idx({name}): {msg}")

    if len(raw) < 4:
        fail(f"too short for an IDX header ({len(raw)} bytes; need at least 4)")
    if raw[0] != 0 or raw[1] != 0:
        fail(f"bad magic number: first bytes are 0x{raw[0]:02x} 0x{raw[1]:02x}, expected 0x00 0x00 "
             f"(not an IDX file)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        fail(f"unknown data type code 0x{code:02x} (expected one of "
             f"{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    if ndim == 0:
        fail("the header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        fail(f"truncated header: {ndim} dimensions need {header} bytes, the file has {len(raw)}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        fail(f"truncated: dims {dims} of {dtype.name} need {expected} bytes of data, got {got}")
    if got > expected:
        fail(f"{got - expected} trailing bytes after the {expected} bytes of data that dims {dims} "
             f"of {dtype.name} need")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)      # native byte order, writable


def read_idx(path):
    """Read an IDX file (gzip or raw, told apart by the gzip magic bytes) into an ndarray
    of the file's dtype in native byte order. A malformed file raises ValueError naming
    the file and what is wrong (bad magic, unknown type, truncated, trailing bytes)."""
    path = os.fspath(path)
    return parse_idx(_read_bytes(path), path)


def write_idx(path, array, compress=None):
    """Write `array` as an IDX file (gzip-compressed if compress, or if the path ends in .gz)."""
    path = os.fspath(path)
    array = np.asarray(array)
    codes = {v.newbyteorder("=").str.lstrip("<>|="): k for k, v in IDX_DTYPES.items()}
    key = array.dtype.newbyteorder("=").str.lstrip("<>|=")
    if key not in codes:
        raise TypeError(f"write_idx(): dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx(): IDX needs 1 to 255 dimensions, got shape {array.shape}")
    code = codes[key]
    data = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            + np.ascontiguousarray(array, IDX_DTYPES[code]).tobytes())
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
