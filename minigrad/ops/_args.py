"""Argument normalisation shared by the ops and the nn layers: one int-or-pair reader, one
'same'-padding rule, one int limit, one float-array validator (`float_array`, for the
kernels' ndarrays), one float-tensor validator (`as_float_tensor`), the dtype rule of the
ops that multiply by weights (`check_same_dtype`), and `check_probability`. (The math
functions exp, log, ... promote an integer input to float32 instead: elementwise.py.)

Every function takes the public function's name `fn` and the argument's `name`, so an
error reads "conv2d(): stride must be positive, got (0, 0)".
"""
import numbers

import numpy as np

from ..tensor_base import TensorBase, as_tensor
from .limits import MAX_INDEX, check_index

__all__ = ["MAX_INDEX", "is_int", "int_arg", "pair", "same_padding", "float_array", "nonempty_planes",
           "bool_arg", "as_float_tensor", "check_same_dtype", "check_probability"]


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


# ---- tensors: float inputs, one dtype, probabilities ------------------------------------------
def as_float_tensor(x, fn, name):
    """`x` as a floating Tensor, or a TypeError naming fn and the argument."""
    if isinstance(x, np.ndarray):
        try:
            x = as_tensor(x)
        except TypeError as e:          # object, string or complex data
            raise TypeError(f"{fn}(): {name} must be a floating-point array, got dtype {x.dtype} "
                            f"(shape {x.shape}): {e}") from None
    if not isinstance(x, TensorBase):
        raise TypeError(f"{fn}(): {name} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}(): {name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


def check_same_dtype(fn, x, **others):
    """minigrad's dtype rule, PyTorch's: the ops that multiply an input by weights (conv2d,
    conv_transpose2d, linear, matmul, batch_norm) need every tensor operand in one dtype
    and refuse a mix with this TypeError; elementwise arithmetic, cat, where and the
    losses promote as NumPy and PyTorch do (float32 with float64 gives float64, an int or
    bool tensor with a float one gives the float dtype).

    `x` is the input; `others` name the other operands (None ones are skipped). Each may
    be a Tensor or an ndarray."""
    for name, t in others.items():
        if t is not None and t.dtype != x.dtype:
            raise TypeError(
                f"{fn}(): {name} has dtype {t.dtype} but input has dtype {x.dtype}; {fn} does not "
                f"mix dtypes (as in PyTorch). Convert the input (x.float(), x.double() or "
                f"x.to(dtype)) or the model (model.to(dtype), model.float() or model.double())")


def check_probability(fn, p, name="p"):
    if not isinstance(p, numbers.Real) or isinstance(p, bool):
        raise TypeError(f"{fn}(): {name} must be a number, got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}(): {name} must be in [0, 1], got {p}")
    return float(p)
