"""Elementwise ops: arithmetic with NumPy broadcasting, and the pointwise functions.

Each backward returns the local gradient for each input at the *broadcast* shape;
Function.apply sums it back to the input's shape.
"""
import math
import numbers

import numpy as np

from .._ext import elementwise as _k
from ..autograd import Function
from ..tensor_base import TensorBase, as_tensor, wrap
from ..threads import get_num_threads


def operand(v):
    """A Tensor stays a Tensor; a Python/NumPy scalar stays a Python scalar (so float32
    tensors stay float32, as in PyTorch); an array-like becomes a constant Tensor."""
    if isinstance(v, TensorBase):
        return v
    if isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, (str, bytes)):
        v = v.item() if isinstance(v, np.generic) else v
        if isinstance(v, complex):
            raise TypeError("complex scalars are not supported")
        return v
    return as_tensor(v)


def _values(v):
    return v.data if isinstance(v, TensorBase) else v


def _threaded(a):
    """Whether the threaded kernels (add, fill, copy) take `a`: float32/float64, ≥ 32768 elements."""
    return a.dtype in (np.float32, np.float64) and a.size >= 32768


def add_arrays(a, b, out=None):
    """a + b as a new array (or into `out`, which may be a or b): by the threaded kernel of
    ext/elementwise.pyx when both are C-contiguous float32/float64 arrays of one shape and
    dtype with at least 32768 elements, else by NumPy (scalars, broadcasting, other
    dtypes)."""
    if (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape
            and a.dtype == b.dtype and _threaded(a) and a.flags.c_contiguous
            and b.flags.c_contiguous):
        if out is None:
            out = np.empty_like(a)
        _k.add(a.reshape(-1), b.reshape(-1), out.reshape(-1), get_num_threads())
        return out
    return np.add(a, b) if out is None else np.add(a, b, out=out)


def filled(shape, dtype, value):
    """np.full(shape, value, dtype), the fill split over the threads for float32/float64
    arrays of ≥ 32768 elements (np.zeros and np.full write on one core)."""
    out = np.empty(shape, dtype)
    if _threaded(out):
        _k.fill(out.reshape(-1), value, get_num_threads())
    else:
        out[...] = value
    return out


def copy_into(dst, src):
    """dst[...] = src: by ext/elementwise.pyx's threaded copy when both are 4-d views (any
    strides) of one shape and dtype, float32/float64, ≥ 32768 elements, that do not share
    memory (a fresh array and its source: the callers' case), else by NumPy (broadcasting,
    other dtypes and ranks)."""
    if (type(src) is np.ndarray and dst.ndim == 4 and src.shape == dst.shape
            and src.dtype == dst.dtype and _threaded(dst)):
        _k.copy4(src, dst, get_num_threads())
    else:
        dst[...] = src
    return dst


def concatenate(xs, axis):
    """np.concatenate(xs, axis): by ext/elementwise.pyx's concat_rows (each x viewed as
    (rows, its part of a row), the rows split over the threads) when every x is a
    C-contiguous float32/float64 array of one dtype, with ≥ 2 rows before `axis` and
    ≥ 2¹⁸ elements in all; else by NumPy (which also promotes mixed dtypes). Below that
    size the per-part setup costs what the threads save (DenseNet's 8×480×8² from 15
    parts: 64 vs 54 µs; 8×256×16² from 8 parts: 69 vs 142 µs)."""
    first = xs[0]
    rows = math.prod(first.shape[:axis])
    if (first.dtype in (np.float32, np.float64) and rows >= 2
            and sum(x.size for x in xs) >= 1 << 18
            and all(type(x) is np.ndarray and x.dtype == first.dtype and x.flags.c_contiguous
                    for x in xs)):
        shape = list(first.shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        out = np.empty(shape, first.dtype)
        _k.concat_rows([x.reshape(rows, -1) for x in xs if x.size], out.reshape(rows, -1),
                       get_num_threads())
        return out
    return np.concatenate(xs, axis=axis)


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return add_arrays(a, b)

    @staticmethod
    def backward(ctx, δ):
        """∂(a+b)/∂a = ∂(a+b)/∂b = 1."""
        return δ, δ


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return np.subtract(a, b)

    @staticmethod
    def backward(ctx, δ):
        """∂(a−b)/∂a = 1, ∂(a−b)/∂b = −1."""
        return δ, -δ if ctx.needs_input_grad[1] else None


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        return np.multiply(a, b)

    @staticmethod
    def backward(ctx, δ):
        """∂(a·b)/∂a = b, ∂(a·b)/∂b = a."""
        a, b = ctx.inputs
        da = δ * b if ctx.needs_input_grad[0] else None
        db = δ * a if ctx.needs_input_grad[1] else None
        return da, db


def _ieee():
    """x/0, ln 0, ln(−1), √−1: ±inf or NaN is the IEEE answer, returned quietly as PyTorch
    does (no NumPy RuntimeWarning); mg.detect_anomaly() stops at the gradients they make."""
    return np.errstate(divide="ignore", invalid="ignore")


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        with _ieee():
            return np.true_divide(a, b)

    @staticmethod
    def backward(ctx, δ):
        """∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b²."""
        a, b = ctx.inputs
        da = δ / b if ctx.needs_input_grad[0] else None
        db = -δ * a / (b * b) if ctx.needs_input_grad[1] else None
        return da, db


class Pow(Function):
    @staticmethod
    def forward(ctx, a, b):
        y = np.power(a, b)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂(aᵇ)/∂a = b·aᵇ⁻¹, ∂(aᵇ)/∂b = aᵇ·ln a (taken as 0 where aᵇ = 0)."""
        a, b = ctx.inputs
        da = db = None
        if ctx.needs_input_grad[0]:
            da = δ * b * a ** (b - 1)
        if ctx.needs_input_grad[1]:
            y = ctx.output()
            zero = y.data == 0                           # constant: where aᵇ = 0
            db = δ * where(zero, 0.0, y * log(where(zero, 1.0, a)))
        return da, db


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return np.negative(a)

    @staticmethod
    def backward(ctx, δ):
        """∂(−a)/∂a = −1."""
        return -δ


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂eˣ/∂x = eˣ."""
        return δ * ctx.output()


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        with _ieee():
            return np.log(x)

    @staticmethod
    def backward(ctx, δ):
        """∂ln x/∂x = 1/x."""
        x, = ctx.inputs
        return δ / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        with _ieee():
            y = np.sqrt(x)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂√x/∂x = 1/(2√x)."""
        return δ / (2 * ctx.output())


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.sign(x))
        return np.abs(x)

    @staticmethod
    def backward(ctx, δ):
        """∂|x|/∂x = sign(x) (0 at x = 0, as in PyTorch); sign is constant where it has a slope."""
        sign, = ctx.saved
        return δ * sign


class Clip(Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x, lo, hi)

    @staticmethod
    def backward(ctx, δ):
        """δ passes where lo ≤ x ≤ hi, 0 elsewhere (the mask is constant)."""
        x, = ctx.saved
        inside = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            inside &= x >= ctx.lo
        if ctx.hi is not None:
            inside &= x <= ctx.hi
        return where(inside, δ, 0.0), None, None


class ReLUFunction(Function):
    """y = max(x, 0), computed by the Cython kernel (ext/elementwise.pyx)."""

    @staticmethod
    def forward(ctx, x):
        x = np.ascontiguousarray(x)
        y = np.empty_like(x)
        if x.dtype in (np.float32, np.float64):
            _k.relu_forward(x.reshape(-1), y.reshape(-1), get_num_threads())
        else:
            np.maximum(x, 0, out=y)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = δ where y > 0 (x > 0), else 0."""
        y, = ctx.saved
        return ReLUBackward.apply(δ, y)


class AddReLU(Function):
    """y = max(a + b, 0): `relu(a + b)` as one op, the same numbers bit for bit (a + b
    rounded once, NaN kept), with the sum never stored — a residual connection and its
    ReLU (ResNet's y = relu(F(x) + x), through nn.add_relu). a and b broadcast as in add.

    Backward: ReLU's, then Add's, ∂L/∂a = ∂L/∂b = δ where y > 0, else 0 (ReLUBackward,
    an op, so a recorded backward is differentiated through it)."""

    @staticmethod
    def forward(ctx, a, b):
        if (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape
                and a.dtype == b.dtype and a.dtype in (np.float32, np.float64)
                and a.flags.c_contiguous and b.flags.c_contiguous):
            y = np.empty_like(a)
            _k.add_relu(a.reshape(-1), b.reshape(-1), y.reshape(-1), get_num_threads())
        else:                                          # broadcasting, scalars
            y = np.add(a, b)
            y[y <= 0] = 0
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂a = ∂L/∂b = δ masked by y > 0 (at the broadcast shape; apply sums back)."""
        y, = ctx.saved
        masked = ReLUBackward.apply(δ, y)
        return masked, masked


class ReLUBackward(Function):
    """δ masked by y > 0: ReLU's backward, by the Cython kernel. Linear in δ with a
    constant mask, so its own backward is the same mask again."""

    @staticmethod
    def forward(ctx, δ, y):
        ctx.save_for_backward(y)
        if y.dtype in (np.float32, np.float64) and δ.dtype == y.dtype:
            δ = np.ascontiguousarray(δ)
            dx = np.empty_like(y)
            _k.relu_backward(y.reshape(-1), δ.reshape(-1), dx.reshape(-1), get_num_threads())
            return dx
        return δ * (y > 0)

    @staticmethod
    def backward(ctx, g):
        """∂/∂δ of (δ masked by y > 0) applied to g: g masked the same way."""
        y, = ctx.saved
        return ReLUBackward.apply(g, y), None


class SigmoidFunction(Function):
    @staticmethod
    def forward(ctx, x):
        # σ(x) = 1/(1+e^−x), written to never overflow: e^−|x| ≤ 1
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂σ/∂x = σ(x)(1 − σ(x))."""
        y = ctx.output()
        return δ * y * (1 - y)


class TanhFunction(Function):
    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_output(y)
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂tanh x/∂x = 1 − tanh²x."""
        y = ctx.output()
        return δ * (1 - y * y)


class Cast(Function):
    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, δ):
        """The gradient goes back in the input's dtype."""
        return cast(δ, ctx.dtype), None


class Copy(Function):
    """y = x, in new memory (Tensor.clone)."""

    @staticmethod
    def forward(ctx, x):
        return np.array(x, copy=True, order="C")

    @staticmethod
    def backward(ctx, δ):
        """∂y/∂x = 1: δ passes unchanged."""
        return δ


class Where(Function):
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, δ):
        """δ goes to a where cond holds, to b elsewhere."""
        cond, = ctx.saved
        da = where(cond, δ, 0.0) if ctx.needs_input_grad[1] else None
        db = where(cond, 0.0, δ) if ctx.needs_input_grad[2] else None
        return None, da, db


def promote(a, b):
    """PyTorch's promotion for arithmetic between a and b (Tensors or Python numbers): two
    floating dtypes give the wider one (NumPy's rule too), but an int or bool tensor meeting
    a float tensor or a Python float gives that float dtype (float32 for a Python float),
    where NumPy would give float64. The int/bool operand is cast (it needs no gradient)."""
    ta, tb = isinstance(a, TensorBase), isinstance(b, TensorBase)
    if ta and tb:
        ka, kb = a.dtype.kind, b.dtype.kind
        if ka == "f" and kb in "biu":
            b = cast(b, a.dtype)
        elif kb == "f" and ka in "biu":
            a = cast(a, b.dtype)
    elif ta and isinstance(b, float) and a.dtype.kind in "biu":
        a = cast(a, np.float32)
    elif tb and isinstance(a, float) and b.dtype.kind in "biu":
        b = cast(b, np.float32)
    return a, b


def _binary(fn, a, b):
    return fn.apply(*promote(operand(a), operand(b)))


def add(a, b):
    """a + b, broadcast as NumPy does; each gradient is δ summed back to its input's shape."""
    return _binary(Add, a, b)


def sub(a, b):
    """a − b, broadcast; ∂/∂a = 1, ∂/∂b = −1."""
    return _binary(Sub, a, b)


def mul(a, b):
    """a · b elementwise, broadcast; ∂/∂a = b, ∂/∂b = a."""
    return _binary(Mul, a, b)


def div(a, b):
    """a / b elementwise, broadcast (true division: integer operands give float32, as in
    PyTorch); ∂/∂a = 1/b, ∂/∂b = −a/b²."""
    a, b = promote(operand(a), operand(b))
    if not any(isinstance(v, float) or (isinstance(v, TensorBase) and v.dtype.kind == "f") for v in (a, b)):
        a = cast(a, np.float32) if isinstance(a, TensorBase) else a
        b = cast(b, np.float32) if isinstance(b, TensorBase) else b
    return Div.apply(a, b)


def pow(a, b):
    """a ** b elementwise, broadcast; ∂/∂a = b·a^(b−1), ∂/∂b = a^b · ln a."""
    return _binary(Pow, a, b)


def neg(x):
    """−x."""
    return Neg.apply(x)


def _float_input(x, name):
    x = operand(x)
    if not isinstance(x, TensorBase):
        x = as_tensor(x)
    if x.dtype.kind not in "f":
        x = cast(x, np.float32)
    return x


def exp(x):
    """eˣ elementwise; ∂/∂x = eˣ."""
    return Exp.apply(_float_input(x, "exp"))


def log(x):
    """The natural logarithm ln x elementwise; ∂/∂x = 1/x."""
    return Log.apply(_float_input(x, "log"))


def sqrt(x):
    """√x elementwise; ∂/∂x = 1/(2√x)."""
    return Sqrt.apply(_float_input(x, "sqrt"))


def abs(x):
    """The absolute value ``|x|`` elementwise; ∂/∂x = sign(x) (0 at x = 0, as in PyTorch)."""
    return Abs.apply(operand(x) if isinstance(x, TensorBase) else as_tensor(x))


def clip(x, min=None, max=None):
    """Clamp to [min, max] (either may be None); gradient 1 inside, 0 outside."""
    if min is None and max is None:
        raise ValueError("clip(): at least one of min and max must be given")
    for name, v in (("min", min), ("max", max)):
        if v is not None and not isinstance(v, (numbers.Real, np.generic)):
            raise TypeError(f"clip(): {name} must be a number or None, got {type(v).__name__}")
    return Clip.apply(x, min, max)


def relu(x):
    """ReLU, max(x, 0) elementwise; ∂/∂x = 1 where x > 0, else 0."""
    return ReLUFunction.apply(_float_input(x, "relu"))


def add_relu(a, b):
    """relu(a + b) as one op (AddReLU) when a and b are float tensors of one dtype (the
    same numbers bit for bit, the sum never stored); otherwise the two calls, as add and
    relu promote and broadcast. ∂L/∂a = ∂L/∂b = δ where the result is > 0 (summed back to
    each input's shape)."""
    try:
        a, b = promote(operand(a), operand(b))
    except TypeError as e:
        raise TypeError(f"add_relu(): {e}") from None
    try:
        np.broadcast_shapes(np.shape(_values(a)), np.shape(_values(b)))
    except ValueError:
        raise ValueError(f"add_relu(): the shapes {np.shape(_values(a))} and "
                         f"{np.shape(_values(b))} do not broadcast") from None
    if (isinstance(a, TensorBase) and isinstance(b, TensorBase) and a.dtype == b.dtype
            and a.dtype.kind == "f"):
        return AddReLU.apply(a, b)
    return relu(_binary(Add, a, b))


def sigmoid(x):
    """The logistic function σ(x) = 1 / (1 + e⁻ˣ) elementwise; ∂/∂x = σ(x)·(1 − σ(x))."""
    return SigmoidFunction.apply(_float_input(x, "sigmoid"))


def tanh(x):
    """tanh x elementwise; ∂/∂x = 1 − tanh²x."""
    return TanhFunction.apply(_float_input(x, "tanh"))


def cast(x, dtype):
    """x converted to `dtype` (NumPy's rules); the gradient is cast back to x's dtype."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.requires_grad and dtype.kind != "f":
        return wrap(x.data.astype(dtype), False)
    return Cast.apply(x, dtype)


def where(cond, a, b):
    """Elements of a where cond holds, else of b (differentiable in a and b)."""
    cond = np.asarray(_values(cond), dtype=bool)
    return Where.apply(cond, operand(a), operand(b))


def _compare(op):
    def compare(a, b):
        return wrap(op(_values(a), _values(operand(b))), False)
    return compare


eq = _compare(np.equal)
ne = _compare(np.not_equal)
lt = _compare(np.less)
le = _compare(np.less_equal)
gt = _compare(np.greater)
ge = _compare(np.greater_equal)
