"""What the engine and the ops know of a tensor: its array, its gradient, and the node of
the op that made it. The methods people call (``x + y``, ``x.sum()``) are in tensor.py.

The layers, each importing only those above it::

    tensor_base.py   TensorBase: data, grad, requires_grad, grad_fn; wrap() and as_tensor()
    autograd.py      Function (an op's forward and backward) and the backward engine
    ops/*.py         the ops: Functions, and the functions that check and call them
    tensor.py        Tensor(TensorBase): every method, each a call into ops

The ops take TensorBase and return Tensors without importing tensor.py: they make their
results with `wrap`, which builds the class tensor.py registers (`set_result_class`).
"""
import numpy as np


class TensorBase:
    """The state of a tensor: ``data`` (the ndarray), ``grad`` (∂L/∂self after backward,
    a Tensor or None), whether it requires grad, and ``grad_fn`` (the Function node that
    made it; None for a leaf). minigrad.Tensor is this class with the methods added; every
    tensor a user sees is a Tensor."""

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_hooks", "_version", "_base",
                 "__weakref__")

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = as_array(data, dtype)
        self.grad = None
        self._ctx = None                # the Function node that made this tensor
        self._hooks = None              # hooks._Hooks once a hook is registered
        self._version = 0               # bumped by every in-place op (autograd checks it)
        self._base = None               # (tensor, index) for a slice or view of another tensor
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array, requires_grad):
        """A tensor of this class around an ndarray the caller owns (no copy, no checks);
        on TensorBase itself, a minigrad.Tensor (see `wrap`)."""
        t = object.__new__(_result_class if cls is TensorBase else cls)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t._ctx = None
        t._hooks = None
        t._version = 0
        t._base = None
        t._requires_grad = requires_grad
        return t

    @property
    def requires_grad(self):
        """Whether ops on this tensor are recorded and backward() fills its .grad."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        flag = bool(flag)
        if flag and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, not {self.data.dtype}")
        if not flag and self._ctx is not None:
            raise RuntimeError("requires_grad can only be switched off on a leaf; use detach()")
        self._requires_grad = flag

    @property
    def is_leaf(self):
        """True for a tensor no recorded op produced (yours, or a Parameter)."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The node of the op that produced this tensor (None for a leaf)."""
        return self._ctx

    @property
    def shape(self):
        """The shape, a tuple of ints."""
        return self.data.shape

    @property
    def ndim(self):
        """The number of dimensions."""
        return self.data.ndim

    @property
    def dtype(self):
        """The NumPy dtype of the data (float32 unless asked otherwise)."""
        return self.data.dtype


_result_class = TensorBase        # minigrad.Tensor, once tensor.py has defined it


def set_result_class(cls):
    """Make `cls` (a subclass of TensorBase) the class that `wrap` and `as_tensor` build.
    tensor.py calls it once, with Tensor."""
    global _result_class
    if not (isinstance(cls, type) and issubclass(cls, TensorBase)):
        raise TypeError(f"set_result_class(): expected a subclass of TensorBase, got {cls!r}")
    _result_class = cls


def wrap(array, requires_grad=False):
    """A minigrad.Tensor around `array`, not copied: how an op returns its result."""
    return TensorBase._wrap(array, requires_grad)


def as_tensor(x, dtype=None):
    """`x` itself if it is a tensor (and `dtype` is None), else a new leaf Tensor holding a
    copy of `x` (array_like: Python floats become float32, ndarrays keep their dtype)."""
    if isinstance(x, TensorBase) and dtype is None:
        return x
    return _result_class(x, dtype=dtype)


def is_tensor(x):
    """Whether `x` is a minigrad tensor (torch.is_tensor)."""
    return isinstance(x, TensorBase)


def as_array(data, dtype=None):
    """`data` as a new ndarray. Python floats default to float32 (as in PyTorch); ndarrays
    and NumPy scalars keep their dtype. Only bool, integer and float data are accepted."""
    if isinstance(data, TensorBase):
        data = data.data
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf":
            raise TypeError(f"tensor(): dtype must be numeric (bool, int or float), got {dtype}")
        return np.array(data, dtype=dtype)
    arr = np.array(data)
    if not isinstance(data, (np.ndarray, np.generic)) and arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype.kind == "O":
        raise TypeError("tensor(): data must be numeric (bool, int or float), got objects")
    if arr.dtype.kind in "USV":
        raise TypeError(f"tensor(): data must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise TypeError(f"tensor(): complex data ({arr.dtype}) is not supported")
    return arr
