"""Argument normalisation shared by the ops (conv, pool) and the nn layers: one int-or-pair
reader, one 'same'-padding rule, one int limit, one float-array validator.

Every function takes the public function's name `fn` and the argument's `name`, so an
error reads "conv2d(): stride must be positive, got (0, 0)".
"""
import numbers

import numpy as np

from ..tensor_base import TensorBase
from .limits import MAX_INDEX, check_index

__all__ = ["MAX_INDEX", "is_int", "int_arg", "pair", "same_padding", "float_array", "nonempty_planes",
           "bool_arg"]


def is_int(v):
    """True for a Python or NumPy integer (not a bool)."""
    if type(v) is int:                           # the common case, without the ABC check
        return True
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def int_arg(v, fn, name):
    """An int (not a bool), or a TypeError naming fn and the argument."""
    if not is_int(v):
        raise TypeError(f"{fn}(): {name} must be an int, got {v!r} ({type(v).__name__})")
    return int(v)


def pair(value, fn, name, minimum=None, bounded=True):
    """An int or a pair of ints -> (rows, cols), each ≥ minimum (None: any) and, when
    bounded, ≤ MAX_INDEX (the kernels index in int32).

    TypeError for anything but ints; ValueError for a sequence of another length or a
    value out of range."""
    if type(value) is int:                       # the common case, without the ABC check
        p = (value, value)
    elif is_int(value):
        p = (int(value), int(value))
    elif isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{fn}(): {name} must be an int or a pair of ints, got {value!r}")
        if not (is_int(value[0]) and is_int(value[1])):
            raise TypeError(f"{fn}(): {name} must be an int or a pair of ints, got {value!r}")
        p = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{fn}(): {name} must be an int or a pair of ints, got {value!r} "
                        f"({type(value).__name__})")
    if minimum is not None and min(p) < minimum:
        what = "positive" if minimum == 1 else "non-negative" if minimum == 0 else f"≥ {minimum}"
        raise ValueError(f"{fn}(): {name} must be {what}, got {p}")
    if bounded:
        check_index(fn, name, max(p))
    return p


def same_padding(size, k, s, d):
    """TensorFlow's 'same' along one axis of `size` for a kernel of k taps, stride s,
    dilation d: (out, before, after) with out = ⌈size / s⌉ and the total padding
    max((out − 1)·s + (k − 1)·d + 1 − size, 0), the odd pixel after (bottom/right)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return out, total // 2, total - total // 2


_RANK_NAMES = {1: "1-d", 3: "3-d (C, H, W)", 4: "4-d (N, C, H, W)"}
_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def float_array(x, fn, name, ranks=None, dtypes=_FLOATS, rank_names=None):
    """The ndarray behind a Tensor (or an ndarray / array-like), checked: a dtype among
    `dtypes` (TypeError) and a rank among `ranks` (ValueError), both errors naming fn,
    the argument and its shape."""
    a = x.data if isinstance(x, TensorBase) else np.asarray(x)
    if a.dtype not in dtypes:
        want = ", ".join(d.name for d in dtypes[:-1]) + " or " + dtypes[-1].name
        raise TypeError(f"{fn}(): {name} must be {want}, got dtype {a.dtype} (shape {a.shape})")
    if ranks is not None and a.ndim not in ranks:
        names = rank_names or _RANK_NAMES
        want = " or ".join(names.get(n, f"{n}-d") for n in ranks)
        raise ValueError(f"{fn}(): {name} must be {want}, got shape {a.shape}")
    return a


def nonempty_planes(fn, a, name="input"):
    """(…, C, H, W) with only the batch allowed to be empty."""
    if min(a.shape[-3:]) < 1:
        raise ValueError(f"{fn}(): {name} has shape {a.shape}; only the batch may be empty "
                         f"(channels, height and width must be non-zero)")
    return a


def bool_arg(fn, name, value):
    """A Python or NumPy bool, as bool; anything else is a TypeError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{fn}(): {name} must be a bool, got {value!r}")
