"""Matrix product with NumPy's matmul semantics (batched, broadcast, 1-d operands)."""
import numpy as np

from .. import _blas
from ..autograd import Function
from ..tensor_base import TensorBase
from ._args import check_same_dtype
from .elementwise import operand


class MatMul(Function):
    """y = a @ b.

    Backward: ∂L/∂a = δ @ bᵀ and ∂L/∂b = aᵀ @ δ (transposing the last two axes),
    with 1-d operands promoted to matrices for the products and batch axes that were
    broadcast summed back by the engine (autograd.sum_to).
    """

    @staticmethod
    def forward(ctx, a, b):
        return _blas.matmul(a, b)

    @staticmethod
    def backward(ctx, δ):
        a, b = ctx.inputs
        a2 = a.reshape(1, -1) if a.ndim == 1 else a     # (k,) -> (1, k)
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b     # (k,) -> (k, 1)
        # δ at the promoted shape (..., m, n): 1-d operands dropped an axis from y
        promoted = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
        g = δ if δ.shape == promoted else δ.reshape(promoted)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = MatMul.apply(g, b2.mT)                   # (..., m, n) @ (..., n, k) -> (..., m, k)
            if a.ndim == 1:
                da = da.reshape(da.shape[:-2] + da.shape[-1:])   # (..., 1, k) -> (..., k)
        if ctx.needs_input_grad[1]:
            db = MatMul.apply(a2.mT, g)                   # (..., k, m) @ (..., m, n) -> (..., k, n)
            if b.ndim == 1:
                db = db.reshape(db.shape[:-1])            # (..., k, 1) -> (..., k)
        return da, db     # batch axes that were broadcast: summed back by the engine


def matmul(a, b):
    """Matrix product a @ b (NumPy's matmul rules for the shapes).
    Backward: ∂L/∂a = δ @ bᵀ, ∂L/∂b = aᵀ @ δ."""
    def as_operand(v, name):
        try:
            return operand(v)
        except TypeError as e:
            raise TypeError(f"matmul(): operand {name}: {e}") from None

    a, b = as_operand(a, "a"), as_operand(b, "b")
    for name, t in (("a", a), ("b", b)):
        if isinstance(t, TensorBase) and t.dtype.kind not in "fiu":
            raise TypeError(f"matmul(): operand {name} has dtype {t.dtype} (shape {t.shape}); "
                            f"only integer and floating-point tensors can be multiplied")
    if not isinstance(a, TensorBase) or not isinstance(b, TensorBase) or a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul(): both operands must be tensors with at least 1 dim "
                         "(use * for scalars)")
    check_same_dtype("matmul", a, other=b)
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(f"matmul(): shapes {a.shape} and {b.shape} do not match "
                         f"(inner dims {ka} and {kb})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul(): batch dims of {a.shape} and {b.shape} do not broadcast") from None
    return MatMul.apply(a, b)
