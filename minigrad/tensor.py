"""Tensor: an ndarray, its gradient, and the op (`grad_fn`) that made it, with every method
people call on it. Each method is one call into minigrad.ops, where the op's forward and
backward live (see tensor_base.py for how the modules layer).
"""
import numbers

import numpy as np

from . import _device
from . import autograd
from . import random as _random
from .autograd import is_grad_enabled, no_grad
from .ops import elementwise as _E, linalg as _L, nn as _nn, reduce as _R, shape as _S
from .tensor_base import TensorBase, set_result_class

_FLOATS = (np.float16, np.float32, np.float64)


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


class Tensor(TensorBase, _device.Conversions):
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

    __slots__ = ()
    __array_priority__ = 1000        # ndarray ⊕ Tensor defers to Tensor's operators

    # ---- autograd ------------------------------------------------------------------------
    def requires_grad_(self, requires_grad=True):
        """Set requires_grad in place (only floating-point tensors can); returns self."""
        self.requires_grad = requires_grad
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Compute ∂self/∂t for every leaf t that requires grad, and add it to ``t.grad``.

        The chain rule, applied node by node from this tensor back to the leaves in
        reverse topological order: each op's backward turns δ = ∂L/∂(its output) into
        ∂L/∂(its inputs); a tensor used several times sums its contributions.
        Gradients accumulate across calls (call ``zero_grad()`` between steps).

        Parameters
        ----------
        gradient : array_like or Tensor, optional
            ∂L/∂self, of self's shape. May be left out only when self has one element
            (a loss): it is then 1.
        retain_graph : bool, optional
            Keep the graph's saved arrays so backward() can run through it again
            (default: the value of `create_graph`).
        create_graph : bool
            Record the backward pass as a graph, so that each ``.grad`` can itself be
            differentiated (Hessian-vector products, gradient penalties).
        inputs : sequence of Tensors, optional
            Accumulate only into these tensors' ``.grad``.

        Raises
        ------
        RuntimeError
            If self does not require grad, or `gradient` is missing for a non-scalar, or
            has the wrong shape.
        """
        autograd.backward(self, gradient, retain_graph, create_graph, inputs)

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

    # ---- dtypes and devices (PyTorch's conversions) ---------------------------------
    @property
    def device(self):
        """Where the tensor lives: always `mg.device('cpu')` (equal to the string 'cpu')."""
        return _device.CPU

    @property
    def is_cuda(self):
        """False: minigrad computes on the CPU only."""
        return False

    def to(self, *args, **kwargs):
        """This tensor converted to another dtype, as PyTorch's `Tensor.to`.

        Accepts `to(dtype)`, `to('cpu')`, `to(mg.device('cpu'))`, `to(other)` (other's
        dtype), `to(device, dtype)` and the keywords `dtype=`, `device=`, `non_blocking=`
        (ignored), `copy=`. Returns self when nothing changes (and copy is False); a new
        dtype gives a differentiable cast (the gradient flows back in this tensor's
        dtype). Any device but the CPU raises a RuntimeError: minigrad runs on the CPU.
        """
        dtype, copy = _device.parse_to(args, kwargs, "Tensor.to()", Tensor)
        out = self if dtype is None else _E.cast(self, dtype)
        return out.clone() if copy and out is self else out

    def astype(self, dtype):
        """NumPy's name for `to(dtype)`."""
        return self.to(dtype)

    def long(self):
        """This tensor as int64 (not differentiable, as in PyTorch)."""
        return self.to(np.int64)

    def int(self):
        """This tensor as int32 (not differentiable, as in PyTorch)."""
        return self.to(np.int32)

    def bool(self):
        """This tensor as bool (not differentiable)."""
        return self.to(np.bool_)

    def is_floating_point(self):
        """True for float16/32/64 tensors."""
        return self.dtype.kind == "f"

    def type_as(self, other):
        """This tensor in `other`'s dtype (PyTorch's `type_as`)."""
        return self.to(other.dtype)

    def type(self, dtype=None):
        """With a dtype, `to(dtype)`; without, PyTorch's type name such as 'torch.FloatTensor'."""
        if dtype is None:
            return "torch." + _TYPE_NAMES.get(self.dtype.type, str(self.dtype)) + "Tensor"
        return self.to(_device.as_dtype(dtype, "Tensor.type()"))

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """Zeros of shape `size` in this tensor's dtype (or `dtype`), as torch's new_zeros."""
        return self.new_full(_shape_arg(size), 0, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        """Ones of shape `size` in this tensor's dtype (or `dtype`)."""
        return self.new_full(_shape_arg(size), 1, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        """`fill_value` in shape `size`, in this tensor's dtype (or `dtype`)."""
        if device is not None:
            _device.check_device(device, "Tensor.new_full()")
        dt = self.dtype if dtype is None else _device.as_dtype(dtype, "Tensor.new_full()")
        size = _shape_arg(size if isinstance(size, (tuple, list)) else (size,))
        return Tensor._wrap(np.full(size, fill_value, dt), False).requires_grad_(requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        """A new leaf holding a copy of `data`, in this tensor's dtype (or `dtype`)."""
        if device is not None:
            _device.check_device(device, "Tensor.new_tensor()")
        return Tensor(data, requires_grad=requires_grad, dtype=self.dtype if dtype is None else dtype)

    # ---- copies and views ---------------------------------------------------------------
    def clone(self):
        """A copy of the data that stays in the graph: ∂clone(x)/∂x = 1."""
        return _E.Copy.apply(self)

    def contiguous(self):
        """Self if the data is C-contiguous, else a contiguous (differentiable) copy."""
        return self if self.data.flags.c_contiguous else self.clone()

    def detach_(self):
        """Cut this tensor from the graph in place: it becomes a leaf that needs no grad."""
        self._ctx = None
        self._requires_grad = False
        return self

    def expand(self, *sizes):
        """This tensor broadcast to `sizes` (−1 keeps a dim), as torch's expand.

        A size-1 dim may grow; new leading dims may be added. Backward sums δ over the
        expanded dims. (The result is a copy: minigrad's ops never return views.)"""
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = tuple(sizes[0])
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand(): sizes {sizes} have fewer dims than the tensor's shape {self.shape}")
        shape = tuple(self.shape[i - lead] if (s == -1 and i >= lead) else s for i, s in enumerate(sizes))
        for i, n in enumerate(shape):
            old = self.shape[i - lead] if i >= lead else 1
            if not isinstance(n, numbers.Integral) or n < 0 or (old != 1 and old != n):
                raise ValueError(f"expand(): cannot expand shape {self.shape} to {tuple(sizes)} "
                                 f"(dim {i}: {old} -> {n}; only size-1 dims grow)")
        return _S.Expand.apply(self, tuple(int(n) for n in shape))

    def t(self):
        """The transpose of a matrix (a 0-d or 1-d tensor is returned as it is), as torch's t()."""
        if self.ndim > 2:
            raise ValueError(f"t(): expects a tensor with at most 2 dims, got shape {self.shape}")
        return _S.transpose(self, 0, 1) if self.ndim == 2 else self

    def expand_as(self, other):
        """`expand(other.shape)`."""
        return self.expand(other.shape)

    def repeat(self, *repeats):
        """Tile the tensor `repeats[i]` times along dim i (torch's repeat, NumPy's tile).

        Backward: δ, viewed as (r₀, n₀, r₁, n₁, ...), summed over the r axes."""
        if len(repeats) == 1 and isinstance(repeats[0], (tuple, list)):
            repeats = tuple(repeats[0])
        if len(repeats) < self.ndim:
            raise ValueError(f"repeat(): needs at least {self.ndim} repeats for shape {self.shape}, "
                             f"got {repeats}")
        for r in repeats:
            if not isinstance(r, numbers.Integral) or isinstance(r, bool) or r < 0:
                raise ValueError(f"repeat(): repeats must be non-negative ints, got {repeats}")
        return _S.Repeat.apply(self, tuple(int(r) for r in repeats))

    # ---- arithmetic: each operator is an op of minigrad.ops.elementwise ------------------
    def __add__(self, other):
        return _E.add(self, other)

    def __radd__(self, other):
        return _E.add(other, self)

    def __sub__(self, other):
        return _E.sub(self, other)

    def __rsub__(self, other):
        return _E.sub(other, self)

    def __mul__(self, other):
        return _E.mul(self, other)

    def __rmul__(self, other):
        return _E.mul(other, self)

    def __truediv__(self, other):
        return _E.div(self, other)

    def __rtruediv__(self, other):
        return _E.div(other, self)

    def __pow__(self, other):
        return _E.pow(self, other)

    def __rpow__(self, other):
        return _E.pow(other, self)

    def __matmul__(self, other):
        return _L.matmul(self, other)

    def __rmatmul__(self, other):
        return _L.matmul(other, self)

    def __neg__(self):
        return _E.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _E.abs(self)

    def add(self, other):
        """self + other (broadcast); see minigrad.ops.elementwise.add."""
        return _E.add(self, other)

    def sub(self, other):
        """self − other (broadcast)."""
        return _E.sub(self, other)

    def mul(self, other):
        """self · other (broadcast)."""
        return _E.mul(self, other)

    def div(self, other):
        """self / other (broadcast)."""
        return _E.div(self, other)

    def pow(self, exponent):
        """self ** exponent (broadcast)."""
        return _E.pow(self, exponent)

    def neg(self):
        """−self."""
        return _E.neg(self)

    def matmul(self, other):
        """self @ other (NumPy's matmul rules); see minigrad.ops.linalg.matmul."""
        return _L.matmul(self, other)

    # ---- comparisons: bool tensors, not differentiable ---------------------------------
    def __eq__(self, other):
        return _E.eq(self, other)

    def __ne__(self, other):
        return _E.ne(self, other)

    def __lt__(self, other):
        return _E.lt(self, other)

    def __le__(self, other):
        return _E.le(self, other)

    def __gt__(self, other):
        return _E.gt(self, other)

    def __ge__(self, other):
        return _E.ge(self, other)

    def eq(self, other):
        """self == other elementwise (a bool tensor)."""
        return _E.eq(self, other)

    def ne(self, other):
        """self != other elementwise."""
        return _E.ne(self, other)

    def lt(self, other):
        """self < other elementwise."""
        return _E.lt(self, other)

    def le(self, other):
        """self <= other elementwise."""
        return _E.le(self, other)

    def gt(self, other):
        """self > other elementwise."""
        return _E.gt(self, other)

    def ge(self, other):
        """self >= other elementwise."""
        return _E.ge(self, other)

    # ---- pointwise functions -------------------------------------------------------------
    def exp(self):
        """e^self; ∂/∂x = e^x."""
        return _E.exp(self)

    def log(self):
        """ln self; ∂/∂x = 1/x."""
        return _E.log(self)

    def sqrt(self):
        """√self; ∂/∂x = 1/(2√x)."""
        return _E.sqrt(self)

    def abs(self):
        """The absolute value of each element, ``abs(x)``; ∂/∂x = sign(x)."""
        return _E.abs(self)

    def clip(self, min=None, max=None):
        """self clamped into [min, max] (either may be None); ∂/∂x = 1 inside, 0 outside."""
        return _E.clip(self, min, max)

    def clamp(self, min=None, max=None):
        """PyTorch's name for clip."""
        return _E.clip(self, min, max)

    def relu(self):
        """max(self, 0); ∂/∂x = 1 where x > 0, else 0."""
        return _E.relu(self)

    def sigmoid(self):
        """σ(self) = 1/(1 + e^−x); ∂/∂x = σ(x)(1 − σ(x))."""
        return _E.sigmoid(self)

    def tanh(self):
        """tanh(self); ∂/∂x = 1 − tanh²(x)."""
        return _E.tanh(self)

    # ---- reductions ------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """Σ over `dim` (all dims when None); see minigrad.ops.reduce.sum."""
        return _R.sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The mean over `dim` (all dims when None)."""
        return _R.mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest entry; with `dim`, (values, indices) along it, as in PyTorch."""
        return _R.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest entry; with `dim`, (values, indices) along it."""
        return _R.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim=None, keepdim=False):
        """The largest entries along `dim` (values only)."""
        return _R.amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        """The smallest entries along `dim` (values only)."""
        return _R.amin(self, dim, keepdim)

    def var(self, dim=None, keepdim=False, *, unbiased=None, correction=None, axis=None,
            keepdims=None):
        """The variance over `dim` (unbiased unless told otherwise, as in PyTorch)."""
        return _R.var(self, dim, keepdim, unbiased=unbiased, correction=correction, axis=axis,
                      keepdims=keepdims)

    # ---- shapes and indexing -----------------------------------------------------------------
    def __getitem__(self, idx):
        return _S.getitem(self, idx)

    def reshape(self, *shape):
        """The same elements in `shape` (one dim may be −1)."""
        return _S.reshape(self, *shape)

    def view(self, *shape):
        """PyTorch's name for reshape (here always a copy-free reshape of the data)."""
        return _S.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        """Dims start_dim..end_dim merged into one."""
        return _S.flatten(self, start_dim, end_dim)

    def squeeze(self, dim=None):
        """Size-1 dims removed (only `dim`, if given)."""
        return _S.squeeze(self, dim)

    def unsqueeze(self, dim):
        """A size-1 dim inserted at `dim`."""
        return _S.unsqueeze(self, dim)

    def transpose(self, dim0, dim1):
        """Dims dim0 and dim1 swapped."""
        return _S.transpose(self, dim0, dim1)

    def permute(self, *dims):
        """The dims reordered: output dim i is input dim dims[i]."""
        return _S.permute(self, *dims)

    @property
    def T(self):
        """All dims reversed (the transpose of a matrix)."""
        return _S.permute(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self):
        """The last two dims swapped (a batch of matrices transposed)."""
        return _S.transpose(self, -2, -1)

    # ---- index reductions and softmax as methods ------------------------------------------
    def argmax(self, dim=None, keepdim=False, *, axis=None):
        """Indices (int64) of the largest entries along `dim`, or into the flattened tensor
        when dim is None (the first one on ties, as NumPy and PyTorch)."""
        return self._arg(np.argmax, "argmax", dim, keepdim, axis)

    def argmin(self, dim=None, keepdim=False, *, axis=None):
        """Indices (int64) of the smallest entries along `dim` (flattened when dim is None)."""
        return self._arg(np.argmin, "argmin", dim, keepdim, axis)

    def _arg(self, fn, name, dim, keepdim, axis):
        dim = axis if dim is None else dim
        if self.data.size == 0:
            raise ValueError(f"{name}(): the tensor is empty (shape {self.shape})")
        if dim is None:
            idx = np.asarray(fn(self.data))
            if keepdim:
                idx = idx.reshape((1,) * self.ndim)
        else:
            d, = _R.normalize_dims(dim, self.ndim) if self.ndim else (None,)
            idx = np.asarray(fn(self.data, axis=d))
            if keepdim and self.ndim:
                idx = np.expand_dims(idx, d)
        return Tensor._wrap(idx.astype(np.int64), False)

    def softmax(self, dim):
        """`F.softmax(self, dim)`."""
        return _nn.softmax(self, dim)

    def log_softmax(self, dim):
        """`F.log_softmax(self, dim)`."""
        return _nn.log_softmax(self, dim)

    # ---- in-place operations ------------------------------------------------------------
    def _inplace(self, name, out_of_place, other=None):
        """Make `out_of_place(self)` (a Tensor of self's shape) the new value of self.

        Outside a recorded graph (no_grad, or nothing requires grad) the new value is
        written into self's array, so every view and alias of it (from_numpy's array, a
        state_dict entry) sees it, as in PyTorch. Inside a graph the old value keeps its
        node under a new Tensor and self becomes the op's output; a leaf that requires
        grad is refused, as PyTorch refuses it. Either way self's version goes up, and a
        backward through an op that used the old version raises (autograd.backward)."""
        recording = is_grad_enabled() and (
            self._requires_grad or (isinstance(other, Tensor) and other._requires_grad))
        if recording:
            if self._base is not None:
                raise RuntimeError(
                    f"{name}(): this tensor is a slice or view of another, and minigrad cannot change "
                    f"a view in place while the graph is recorded (PyTorch can); use the out-of-place "
                    f"form (e.g. y = torch.cat(...) or x = x + v), or do it under `with mg.no_grad():`")
            if self._requires_grad and self._ctx is None:
                raise RuntimeError(
                    f"{name}(): a leaf tensor that requires grad cannot be changed in place "
                    f"while the graph is recorded (as in PyTorch); do it under `with mg.no_grad():` "
                    f"(e.g. an update of a parameter) or use the out-of-place form")
            old = Tensor._wrap(self.data, self._requires_grad)
            old._ctx = self._ctx
            new = out_of_place(old)
            if new.shape != self.shape:
                raise RuntimeError(f"{name}(): the result has shape {new.shape}, which is not the "
                                   f"tensor's shape {self.shape} (in-place ops cannot broadcast self)")
            new = new.to(self.dtype)
            self.data, self._ctx, self._requires_grad = new.data, new._ctx, new._requires_grad
        else:
            with no_grad():
                new = out_of_place(self)
            if new.shape != self.shape:
                raise RuntimeError(f"{name}(): the result has shape {new.shape}, which is not the "
                                   f"tensor's shape {self.shape} (in-place ops cannot broadcast self)")
            if self.data.flags.writeable:
                np.copyto(self.data, new.data, casting="unsafe")
            else:
                self.data = new.data.astype(self.dtype)
            view = self
            while view._base is not None:              # a slice (a copy here) writes back, as a
                base, idx = view._base                  # view would in PyTorch; views of memory
                if idx is not None and not np.shares_memory(base.data, view.data):
                    base.data[idx] = view.data          # already share it
                base._version += 1
                view = base
        self._version += 1
        return self

    def copy_(self, src):
        """Copy `src` (broadcast to this shape, cast to this dtype) into self."""
        src = _E.operand(src)
        return self._inplace("copy_", lambda t: _broadcast_value(src, t), src)

    def fill_(self, value):
        """Set every element to `value`."""
        return self._inplace("fill_", lambda t: _broadcast_value(value, t), value)

    def zero_(self):
        """Set every element to 0."""
        return self.fill_(0)

    def add_(self, other, *, alpha=1):
        """self ← self + alpha · other."""
        return self._inplace("add_", lambda t: t + (other if alpha == 1 else other * alpha), other)

    def sub_(self, other, *, alpha=1):
        """self ← self − alpha · other."""
        return self._inplace("sub_", lambda t: t - (other if alpha == 1 else other * alpha), other)

    def mul_(self, other):
        """self ← self · other."""
        return self._inplace("mul_", lambda t: t * other, other)

    def div_(self, other):
        """self ← self / other."""
        return self._inplace("div_", lambda t: t / other, other)

    def clamp_(self, min=None, max=None):
        """self ← clamp(self, min, max)."""
        return self._inplace("clamp_", lambda t: t.clamp(min, max))

    def relu_(self):
        """self ← max(self, 0)."""
        return self._inplace("relu_", lambda t: t.relu())

    def normal_(self, mean=0.0, std=1.0):
        """Fill with samples of N(mean, std²) from minigrad's seedable generator."""
        return self.copy_(_random.generator().normal(mean, std, self.shape))

    def uniform_(self, a=0.0, b=1.0):
        """Fill with samples of U(a, b) from minigrad's seedable generator."""
        return self.copy_(_random.generator().uniform(a, b, self.shape))

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __setitem__(self, idx, value):
        """self[idx] = value, in place (differentiable in both when recorded, see _inplace)."""
        value = _E.operand(value)
        self._inplace("__setitem__", lambda t: _S.setitem(t, idx, value), value)


def _broadcast_value(value, like):
    """`value` (a Tensor or a number) broadcast to `like`'s shape, as a Tensor (differentiable)."""
    v = _E.operand(value)
    if not isinstance(v, Tensor):
        return Tensor._wrap(np.full(like.shape, v, like.dtype), False)
    if v.shape == like.shape:
        return v.to(like.dtype).clone()
    try:
        np.broadcast_shapes(v.shape, like.shape)
    except ValueError:
        raise RuntimeError(f"copy_(): the source of shape {v.shape} does not broadcast to "
                           f"{like.shape}") from None
    return v.to(like.dtype).expand(like.shape)


_TYPE_NAMES = {np.float32: "Float", np.float64: "Double", np.float16: "Half", np.int64: "Long",
               np.int32: "Int", np.int16: "Short", np.int8: "Char", np.uint8: "Byte",
               np.bool_: "Bool"}


# ---- creation functions ---------------------------------------------------------------
def tensor(data, requires_grad=False, dtype=None):
    """A new leaf Tensor holding a copy of `data`."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def from_numpy(array):
    """A Tensor sharing memory with the ndarray `array` (torch.from_numpy): writes to one
    show in the other. The dtype is kept (float64 stays float64)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy(): expected an np.ndarray, got {type(array).__name__}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"from_numpy(): the array must be numeric (bool, int or float), got dtype {array.dtype}")
    return Tensor._wrap(array, False)


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
    arr = _random.generator().standard_normal(_shape_arg(shape)).astype(_float_dtype(dtype))
    return Tensor._wrap(arr, False).requires_grad_(requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1) from minigrad's seedable generator."""
    arr = _random.generator().random(_shape_arg(shape)).astype(_float_dtype(dtype))
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


set_result_class(Tensor)        # what the ops return (see tensor_base.py)
