"""The IDX file format of MNIST and Fashion-MNIST (gzip-compressed or raw).

Layout (all integers big-endian):
    bytes 0-1   0x00 0x00                      magic
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                           0x0D float32, 0x0E float64
    byte  3     ndim (number of dimensions)
    then ndim × uint32 sizes, then the data, row-major, exactly prod(sizes) items.

Reading is bounded (see read_idx): the header is decoded and checked first (for a gzip
file, from the first few decompressed bytes), and only then is exactly the declared amount
of data read or decompressed, into one buffer allocated once.
"""
import gzip
import io
import os
import zlib

import numpy as np

from .._safeio import MAX_NDIM, check_arguments, open_regular

IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
GZIP_RATIO = 64                 # default cap on the data of a gzip file: 64 × its size + 1 MiB
GZIP_SLACK = 1 << 20
_CHUNK = 1 << 16                # compressed bytes fed to zlib at a time


class _Raw:
    """An uncompressed byte stream: the file itself."""

    def __init__(self, f):
        self.f = f

    def readinto(self, view):
        """Fill `view` from the stream; the number of bytes it got (fewer at the end)."""
        got = 0
        while got < len(view):
            n = self.f.readinto(view[got:])
            if not n:
                break
            got += n
        return got

    def skip(self, cap):
        """Read and drop up to cap + 1 bytes; how many there were."""
        n = 0
        while n <= cap:
            chunk = self.f.read(min(_CHUNK * 16, cap + 1 - n))
            if not chunk:
                break
            n += len(chunk)
        return n


class _Gunzip(_Raw):
    """The decompressed bytes of a gzip file (one or more members, then optional zero
    padding), produced only as far as asked: never more than the caller's buffer."""

    def __init__(self, f, name):
        super().__init__(f)
        self.name = name
        self.d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self.pending = b""          # compressed input not yet given to zlib
        self.done = False

    def _fail(self, why):
        return ValueError(f"read_idx({self.name}): corrupt or truncated gzip data ({why})")

    def _next_member(self):
        """After a member ended: start the next one, or finish at the end of the file."""
        rest = self.d.unused_data
        while len(rest) < 2:
            more = self.f.read(_CHUNK)
            if not more:
                break
            rest += more
        if rest[:2] == GZIP_MAGIC:
            self.d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            self.pending = rest
            return
        while rest:                 # zero padding up to the end of the file is allowed (as in gzip(1))
            if rest.strip(b"\x00"):
                raise self._fail("bytes after the gzip data that are neither a gzip member nor zero padding")
            rest = self.f.read(_CHUNK)
        self.done = True

    def _produce(self, n):
        """Up to n decompressed bytes (b"" only at the true end of the data)."""
        while not self.done:
            if self.d.eof:
                self._next_member()
                continue
            data = self.d.unconsumed_tail or self.pending
            self.pending = b""
            at_end = False
            if not data:
                data = self.f.read(_CHUNK)
                at_end = not data
            try:
                out = self.d.decompress(data, n)
            except zlib.error as e:
                raise self._fail(e) from None
            if out:
                return out
            if at_end and not self.d.eof:
                raise self._fail("the compressed stream ends early")
        return b""

    def readinto(self, view):
        got = 0
        while got < len(view):
            out = self._produce(len(view) - got)
            if not out:
                break
            view[got:got + len(out)] = out
            got += len(out)
        return got

    def skip(self, cap):
        n = 0
        while n <= cap:
            out = self._produce(min(_CHUNK * 16, cap + 1 - n))
            if not out:
                break
            n += len(out)
        return n


def _read_array(stream, name, limit, limit_text):
    """The array of an IDX stream: header first, then exactly the data it declares."""
    def fail(msg):
        raise ValueError(f"read_idx({name}): {msg}")

    head = bytearray(4)
    got = stream.readinto(memoryview(head))
    if got < 4:
        fail(f"too short for an IDX header ({got} bytes; need at least 4)")
    if head[0] != 0 or head[1] != 0:
        fail(f"bad magic number: first bytes are 0x{head[0]:02x} 0x{head[1]:02x}, expected 0x00 0x00 "
             f"(not an IDX file)")
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        fail(f"unknown data type code 0x{code:02x} (expected one of "
             f"{', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    if ndim == 0:
        fail("the header declares 0 dimensions")
    if ndim > MAX_NDIM:
        fail(f"the header declares {ndim} dimensions; NumPy arrays have at most {MAX_NDIM}")
    header = 4 + 4 * ndim
    sizes = bytearray(4 * ndim)
    got = stream.readinto(memoryview(sizes))
    if got < len(sizes):
        fail(f"truncated header: {ndim} dimensions need {header} bytes, the file has {4 + got}")
    dims = tuple(int(d) for d in np.frombuffer(bytes(sizes), dtype=">u4"))
    dtype = IDX_DTYPES[code]
    span = dtype.itemsize
    for d in dims:                     # NumPy refuses shapes whose nonzero sizes overflow int64
        span *= max(d, 1)
    if span >= 2**63:
        fail(f"dims {dims} of {dtype.name} describe an array too large for NumPy")
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if expected > limit:
        fail(f"dims {dims} of {dtype.name} need {expected} bytes of data, more than {limit_text}")
    data = bytearray(expected)         # bounded: expected <= limit
    got = stream.readinto(memoryview(data))
    if got < expected:
        fail(f"truncated: dims {dims} of {dtype.name} need {expected} bytes of data, got {got}")
    extra = stream.skip(limit)
    if extra:
        fail(f"{'more than ' if extra > limit else ''}{min(extra, limit)} trailing bytes after the "
             f"{expected} bytes of data that dims {dims} of {dtype.name} need")
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)       # writable: data is a bytearray
    return arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))   # native byte order


def parse_idx(raw, name="<bytes>"):
    """The array held by the (uncompressed) IDX bytes `raw`; ValueError naming `name` if bad."""
    raw = bytes(raw)
    return _read_array(_Raw(io.BytesIO(raw)), name, len(raw), f"the {len(raw)} bytes given")


def read_idx(path, max_bytes=None):
    """Read an IDX file (gzip or raw, told apart by the gzip magic bytes) into an ndarray
    of the file's dtype in native byte order.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (or a symlink to one). FIFOs, devices, sockets and directories are
        refused before they are opened for reading, so nothing blocks or reads forever.
    max_bytes : int, optional
        The most data bytes the array may have. Default: the file's size for a raw file
        (the data must be in it), and 64 × the file's size + 1 MiB for a gzip file (about
        30× more than MNIST needs). A header that declares more is refused before any of
        the data is decompressed.

    Returns
    -------
    ndarray of the declared shape (d_1, ..., d_n) and dtype; memory used is the array plus,
    for multi-byte types, one byte-swapped copy of it.

    Raises
    ------
    ValueError
        The content is malformed: bad magic, unknown type code, 0 or more than NumPy's
        maximum number of dimensions, truncated header or data, trailing bytes, corrupt or
        truncated gzip data, or more data than `max_bytes`. The message starts with
        ``read_idx(<path>)`` and says what is wrong.
    OSError
        The path cannot be read (FileNotFoundError, PermissionError, IsADirectoryError, or
        OSError for a FIFO/device/socket); the message names read_idx(), the path and why.
    """
    path, max_bytes = check_arguments(path, max_bytes, "read_idx()")
    f, size = open_regular(path, "read_idx()")
    with f:
        start = f.read(2)
        f.seek(0)
        if start == GZIP_MAGIC:                     # detected by content, not by the suffix
            stream = _Gunzip(f, path)
            limit = GZIP_RATIO * size + GZIP_SLACK if max_bytes is None else max_bytes
            text = (f"the limit of {limit} bytes ({GZIP_RATIO} × the gzip file's {size} bytes + 1 MiB; "
                    f"pass max_bytes= to allow more)" if max_bytes is None else f"max_bytes={limit}")
        else:
            stream = _Raw(f)
            limit = size if max_bytes is None else max_bytes
            text = (f"the file holds (it has {size} bytes)" if max_bytes is None else f"max_bytes={limit}")
        try:
            return _read_array(stream, path, limit, text)
        except OSError as e:                         # an I/O error while reading
            raise type(e)(f"read_idx({path}): error while reading: {e.strerror or e}") from None


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
