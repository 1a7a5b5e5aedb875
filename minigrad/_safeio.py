"""Opening files that may be hostile: regular files only, never blocking, reads of a known size.

mg.load and read_idx take paths from users, downloads and shared directories. Before a
byte is read, the path must name a regular file: a FIFO with no writer would block
open() forever, /dev/zero (or a symlink to it) never ends, a directory is not data.
"""
import os
import stat

import numpy as np

# NumPy refuses arrays with more dimensions than this (32 before NumPy 2, 64 since).
MAX_NDIM = 64 if int(np.__version__.split(".")[0]) >= 2 else 32


def _kind(mode):
    """What a non-regular file is, in words."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _refuse(fn, path, mode):
    what = _kind(mode)
    cls = IsADirectoryError if stat.S_ISDIR(mode) else OSError
    return cls(f"{fn}: {path} is {what}, not a regular file; only regular files are read")


def open_regular(path, fn):
    """Open `path` for binary reading if (after following symlinks) it is a regular file.

    Parameters
    ----------
    path : str
        The file to open.
    fn : str
        The public function asking, e.g. ``"mg.load()"``; every error message starts with it.

    Returns
    -------
    (file, size)
        A buffered binary file object (the caller closes it) and the file's size in bytes
        when it was opened.

    Raises
    ------
    OSError
        A subclass matching the cause (FileNotFoundError, PermissionError,
        IsADirectoryError, ...) whose message names `fn`, the path and the problem; a
        FIFO, device or socket is refused before open() (so nothing blocks) and checked
        again on the opened descriptor (in case the path was swapped in between).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{fn}: no such file: {path}") from None
    except OSError as e:
        raise type(e)(f"{fn}: cannot read {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(fn, path, st.st_mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise type(e)(f"{fn}: cannot open {path}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(fn, path, st.st_mode)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise



def check_arguments(path, max_bytes, fn):
    """(path as str, max_bytes as int or None) for a reader `fn`; TypeError or ValueError
    naming `fn` and the argument otherwise."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"{fn}: path must be a str or os.PathLike, got {type(path).__name__}") from None
    if max_bytes is None:
        return path, None
    if not isinstance(max_bytes, (int, np.integer)) or isinstance(max_bytes, bool):
        raise TypeError(f"{fn}: max_bytes must be an int or None, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"{fn}: max_bytes must be >= 0, got {max_bytes}")
    return path, int(max_bytes)
