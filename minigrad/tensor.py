"""Tensor: an ndarray, its gradient, and the op (`grad_fn`) that made it."""
import numbers

import numpy as np

from . import autograd

_FLOATS = (np.float16, np.float32, np.float64)


def _as_array(data, dtype=None):
    """Python floats default to float32 (as in PyTorch); ndarrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf":
            raise TypeError(f"tensor(): dtype must be numeric (bool, int or float), got {dtype}")
        return np.array(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        arr = np.array(data)
    elif isinstance(data, np.generic):
        arr = np.array(data)
    else:
        arr = np.array(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if arr.dtype.kind == "O":
        raise TypeError("tensor(): data must be numeric (bool, int or float), got objects")
    if arr.dtype.kind in "USV":
        raise TypeError(f"tensor(): data must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "c":
        raise TypeError(f"tensor(): complex data ({arr.dtype}) is not supported")
    return arr


class _Size(int):
    """An int (the element count) that, when called, gives the shape like torch's size()."""

    def __new__(cls, count, shape):
        obj = super().__new__(cls, count)
        obj._shape = shape
        return obj

    def __call__(self, dim=None):
        if dim is None:
            return self._shape
        if not -len(self._shape) <= dim < len(self._shape):
            raise IndexError(f"size(): dim {dim} is out of range for shape {self._shape}")
        return self._shape[dim]


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``t.data`` is the ndarray (``t.numpy()`` and ``np.asarray(t)`` give it too);
    ``t.grad``, after ``backward()``, a Tensor of the same shape holding ∂L/∂t;
    ``t.grad_fn`` the op that produced t (None for a leaf: a tensor made by you, not by
    an op). Every op applied to a tensor that requires grad records a node, so the graph
    is built as the code runs (define-by-run) and ``backward()`` walks it in reverse.

    Parameters
    ----------
    data : array_like or Tensor
        Copied. Python floats become float32 (PyTorch's default); ndarrays keep their dtype.
    requires_grad : bool
        Record the ops applied to this tensor, and fill ``.grad`` on ``backward()``.
        Only floating-point tensors can require grad.
    dtype : optional
        A NumPy dtype to convert `data` to (bool, integer or float).

    Examples
    --------
    >>> import minigrad as mg
    >>> x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()          # y = Σ x², a scalar
    >>> y.backward()               # ∂y/∂x = 2x
    >>> x.grad
    tensor([2., 4., 6.])
    >>> x.shape, x.dtype, x.is_leaf, y.is_leaf
    ((3,), dtype('float32'), True, False)
    """

    __slots__ = ("data", "grad", "_requires_grad", "_ctx", "_hooks", "__weakref__")
    __array_priority__ = 1000        # ndarray ⊕ Tensor defers to Tensor's operators

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._ctx = None
        self._hooks = None              # autograd._Hooks once a hook is registered
        self._requires_grad = False
        self.requires_grad = requires_grad

    @classmethod
    def _wrap(cls, array, requires_grad):
        """A Tensor around an ndarray the caller owns (no copy, no checks)."""
        t = cls.__new__(cls)
        t.data = array if isinstance(array, np.ndarray) else np.asarray(array)
        t.grad = None
        t._ctx = None
        t._hooks = None
        t._requires_grad = requires_grad
        return t

    # ---- autograd attributes -------------------------------------------------
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

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place (only floating-point tensors can); returns self."""
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self):
        """True for a tensor no recorded op produced (yours, or a Parameter)."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The node of the op that produced this tensor (None for a leaf)."""
        return self._ctx

    def backward(self, grad=None, retain_graph=False):
        """Compute ∂self/∂t for every leaf t that requires grad, and add it to ``t.grad``.

        The chain rule, applied node by node from this tensor back to the leaves in
        reverse topological order: each op's backward turns δ = ∂L/∂(its output) into
        ∂L/∂(its inputs); a tensor used several times sums its contributions.
        Gradients accumulate across calls (call ``zero_grad()`` between steps).

        Parameters
        ----------
        grad : array_like or Tensor, optional
            ∂L/∂self, of self's shape. May be left out only when self has one element
            (a loss): it is then 1.
        retain_graph : bool
            Keep the graph's saved arrays so backward() can run through it again.

        Raises
        ------
        RuntimeError
            If self does not require grad, or `grad` is missing for a non-scalar, or
            has the wrong shape.
        """
        autograd.backward(self, grad, retain_graph)

    def register_hook(self, hook):
        """Call hook(grad) each time backward() computes the gradient with respect to this
        tensor; a returned Tensor replaces the gradient (what a leaf accumulates into .grad,
        what flows on to a non-leaf's inputs). Returns a handle; handle.remove() unhooks.
        See minigrad.autograd.register_hook."""
        return autograd.register_hook(self, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call hook(tensor) on this leaf after backward() has accumulated its .grad.
        Returns a handle; handle.remove() unhooks."""
        return autograd.register_post_accumulate_grad_hook(self, hook)

    def detach(self):
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._wrap(self.data, False)

    def zero_grad(self):
        """Forget the gradient (``.grad = None``)."""
        self.grad = None

    # ---- array protocol --------------------------------------------------------

    def numpy(self):
        """The ndarray itself (not a copy: writing to it changes the tensor)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): only a one-element tensor can be a Python scalar, "
                             f"this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        """The values as nested Python lists."""
        return self.data.tolist()

    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        """The number of elements, as NumPy's `a.size`; called, as PyTorch's `t.size()`,
        the shape (`t.size(1)` one dim of it)."""
        return _Size(self.data.size, self.data.shape)

    def numel(self):
        """The number of elements."""
        return self.data.size

    def dim(self):
        """The number of dimensions (``ndim``)."""
        return self.data.ndim

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self.dtype != np.float32:
            extras.append(f"dtype={self.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn={self._ctx!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __hash__(self):
        return id(self)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def to(self, dtype):
        from .ops.elementwise import cast
        return cast(self, dtype)

    def astype(self, dtype):
        return self.to(dtype)


# ---- creation functions ---------------------------------------------------------------
def tensor(data, requires_grad=False, dtype=None):
    """A new leaf Tensor holding a copy of `data`."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for s in shape:
        if not isinstance(s, (numbers.Integral,)) or isinstance(s, bool) or s < 0:
            raise ValueError(f"shape must be non-negative integers, got {shape}")
    return tuple(int(s) for s in shape)


def _float_dtype(dtype):
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    return dtype


def zeros(*shape, dtype=None, requires_grad=False):
    """A tensor of zeros, e.g. ``mg.zeros(2, 3)`` or ``mg.zeros((2, 3))`` (float32 by default)."""
    return Tensor._wrap(np.zeros(_shape_arg(shape), _float_dtype(dtype)), False).requires_grad_(requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    """A tensor of ones (float32 by default)."""
    return Tensor._wrap(np.ones(_shape_arg(shape), _float_dtype(dtype)), False).requires_grad_(requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    """A tensor of `shape` filled with `fill_value`."""
    shape = _shape_arg((shape,) if isinstance(shape, (tuple, list)) else (shape,))
    return Tensor._wrap(np.full(shape, fill_value, _float_dtype(dtype)), False).requires_grad_(requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    """Zeros of t's shape (and dtype, unless given)."""
    arr = np.asarray(t)
    return Tensor._wrap(np.zeros(arr.shape, dtype or arr.dtype), False).requires_grad_(requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    """Ones of t's shape (and dtype, unless given)."""
    arr = np.asarray(t)
    return Tensor._wrap(np.ones(arr.shape, dtype or arr.dtype), False).requires_grad_(requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard normal samples from minigrad's seedable generator (see manual_seed)."""
    from .random import generator
    arr = generator().standard_normal(_shape_arg(shape)).astype(_float_dtype(dtype))
    return Tensor._wrap(arr, False).requires_grad_(requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from minigrad's seedable generator."""
    from .random import generator
    arr = generator().random(_shape_arg(shape)).astype(_float_dtype(dtype))
    return Tensor._wrap(arr, False).requires_grad_(requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Like torch.arange: integer arguments give int64, any float gives float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange(): step must be non-zero")
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return Tensor._wrap(np.arange(start, end, step, dtype=dtype), False).requires_grad_(requires_grad)


# ---- operators and methods: thin wrappers over minigrad.ops -------------------------

def _install_methods():
    """Give Tensor its operators and methods (x + y, x.sum(), x.reshape(...)), each the
    function of minigrad.ops that does the work, so the two share one docstring."""
    from .ops import elementwise as E, linalg as L, reduce as R, shape as S

    def rev(fn):
        return lambda self, other: fn(other, self)

    methods = {
        "__add__": E.add, "__radd__": rev(E.add),
        "__sub__": E.sub, "__rsub__": rev(E.sub),
        "__mul__": E.mul, "__rmul__": rev(E.mul),
        "__truediv__": E.div, "__rtruediv__": rev(E.div),
        "__pow__": E.pow, "__rpow__": rev(E.pow),
        "__matmul__": L.matmul, "__rmatmul__": rev(L.matmul),
        "__neg__": E.neg,
        "__pos__": lambda self: self,
        "__eq__": E.eq, "__ne__": E.ne, "__lt__": E.lt, "__le__": E.le,
        "__gt__": E.gt, "__ge__": E.ge,
        "__getitem__": S.getitem,
        "matmul": L.matmul,
        "exp": E.exp, "log": E.log, "sqrt": E.sqrt, "abs": E.abs, "clip": E.clip,
        "clamp": E.clip, "relu": E.relu, "sigmoid": E.sigmoid, "tanh": E.tanh,
        "sum": R.sum, "mean": R.mean, "max": R.max, "min": R.min, "var": R.var,
        "amax": R.amax, "amin": R.amin,
        "reshape": S.reshape, "view": S.reshape, "flatten": S.flatten,
        "squeeze": S.squeeze, "unsqueeze": S.unsqueeze, "transpose": S.transpose,
        "permute": S.permute,
    }
    for name, fn in methods.items():
        setattr(Tensor, name, fn)
    Tensor.__abs__ = E.abs
    Tensor.T = property(lambda self: S.permute(self, tuple(reversed(range(self.ndim)))))
    Tensor.mT = property(lambda self: S.transpose(self, -2, -1))


_install_methods()
