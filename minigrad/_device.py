"""Devices and dtypes under PyTorch's names: `mg.device('cpu')`, `mg.float32`, `mg.long`, ...

minigrad computes on the CPU only. `device` exists so that PyTorch code that names a
device (`torch.device('cuda' if torch.cuda.is_available() else 'cpu')`, `x.to('cpu')`,
`model.to(device)`) runs unchanged; asking for any other device is refused with an
error that says so (never an AttributeError from deep inside NumPy).

The dtypes are NumPy's scalar types, so `x.dtype == mg.float32` and
`np.zeros(3, mg.long)` both work.
"""
import numbers

import numpy as np

# PyTorch's dtype names -> NumPy scalar types (the objects minigrad uses as dtypes)
DTYPES = {
    "float32": np.float32, "float": np.float32,
    "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16,
    "int64": np.int64, "long": np.int64,
    "int32": np.int32, "int": np.int32,
    "int16": np.int16, "short": np.int16,
    "int8": np.int8, "uint8": np.uint8,
    "bool": np.bool_,
}


class device:
    """A compute device, as `torch.device`: `device('cpu')`, `device('cpu', 0)`, `device('cuda:0')`.

    Parameters
    ----------
    type : str or device
        'cpu' (minigrad's only device), optionally with an index ('cpu:0'); other types
        such as 'cuda' or 'mps' can be *named* (so `torch.device('cuda')` in a script
        still builds), but moving a tensor or a module there raises a RuntimeError.
    index : int, optional
        The device index, as PyTorch's.

    A device compares equal to another device of the same type and index and to its
    string form: `mg.device('cpu') == 'cpu'`.
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string such as 'cpu', got {type!r}")
        name, sep, idx = type.partition(":")
        if sep:
            if index is not None:
                raise ValueError(f"device(): {type!r} already has an index; do not pass index={index}")
            try:
                index = int(idx)
            except ValueError:
                raise ValueError(f"device(): invalid device string {type!r}") from None
        if index is not None and (not isinstance(index, numbers.Integral) or index < 0):
            raise ValueError(f"device(): index must be a non-negative int, got {index!r}")
        if not name or not name.isidentifier():
            raise ValueError(f"device(): invalid device string {type!r}")
        self.type = name
        self.index = None if index is None else int(index)

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except (TypeError, ValueError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))


CPU = device("cpu")


def check_device(dev, where):
    """`dev` (a str or a device) as a device, or a RuntimeError if it is not the CPU."""
    dev = dev if isinstance(dev, device) else device(dev)
    if dev.type != "cpu":
        raise RuntimeError(
            f"{where}: minigrad runs on the CPU only and cannot use device {str(dev)!r}. "
            f"Leave the tensors and the model on the CPU: pass 'cpu' (PyTorch scripts often write "
            f"`device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')`, "
            f"which picks 'cpu' here).")
    return dev


def as_dtype(dtype, where):
    """`dtype` (a NumPy type or dtype, a Tensor's dtype, or one of PyTorch's names such as
    'long') as a numpy.dtype, or a TypeError naming `where`."""
    if isinstance(dtype, str) and dtype in DTYPES:
        dtype = DTYPES[dtype]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: {dtype!r} is not a dtype (use e.g. mg.float32, mg.float64, "
                        f"mg.long)") from None
    if dt.kind not in "biuf":
        raise TypeError(f"{where}: dtype must be numeric (bool, int or float), got {dt}")
    return dt


def parse_to(args, kwargs, where, tensor_type):
    """The (dtype or None, copy) asked for by PyTorch's `.to(...)` forms:

        .to(dtype)  .to('cpu')  .to(device)  .to(other_tensor)  .to(device, dtype)
        .to(dtype=..., device=..., non_blocking=..., copy=...)

    A device other than the CPU raises a RuntimeError (see check_device)."""
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    copy = bool(kwargs.pop("copy", False))
    if kwargs:
        raise TypeError(f"{where}: unexpected keyword arguments {sorted(kwargs)}")
    if len(args) > 3:
        raise TypeError(f"{where}: too many positional arguments {args!r}")
    for a in args:
        if isinstance(a, tensor_type):
            dtype = a.dtype
        elif isinstance(a, (str, device)):
            dev = a
        elif isinstance(a, bool):             # to(dtype, non_blocking, copy) positionals
            continue
        else:
            dtype = a
    if dev is not None:
        check_device(dev, where)
    return (None if dtype is None else as_dtype(dtype, where)), copy


class Conversions:
    """PyTorch's shorthand conversions float/double/half/cpu/cuda, each calling `self.to`:
    a base class of Tensor and Module. On a Tensor they return a (differentiable) converted
    tensor, or self when nothing changes; on a Module they convert every floating parameter
    and buffer in place and return the module. (No state: it changes neither class's
    memory layout.)"""

    __slots__ = ()

    def float(self):
        """`to(mg.float32)`."""
        return self.to(np.float32)

    def double(self):
        """`to(mg.float64)`."""
        return self.to(np.float64)

    def half(self):
        """`to(mg.float16)`."""
        return self.to(np.float16)

    def cpu(self):
        """Self: minigrad computes on the CPU only."""
        return self

    def cuda(self, *args, **kwargs):
        """Refused with a RuntimeError: minigrad runs on the CPU only."""
        check_device("cuda", f"{type(self).__name__}.cuda()")
