"""The autograd engine: `Function` (an op with its forward and backward side by side),
the iterative backward traversal, and the grad-mode switches (`no_grad`, `enable_grad`).

An op subclasses `Function` and writes two static methods over plain ndarrays::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = np.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, δ):
            y, = ctx.saved
            return δ * y                       # ∂L/∂x = δ · e^x

`Function.apply` owns the bookkeeping every op would otherwise repeat: it unwraps
Tensors, records the node only when some input requires grad, and, in backward,
skips inputs that need no gradient, sums broadcast gradients back to each input's
shape, casts to the input's dtype, and accumulates (a tensor used twice gets both
contributions).
"""
import functools
import sys
import threading

import numpy as np

from .hooks import (RemovableHandle, register_hook, register_post_accumulate_grad_hook,  # noqa: F401
                    queue_callback, _CallbackQueue)

_state = threading.local()


def is_grad_enabled():
    """Whether ops record the graph in this thread (False inside ``no_grad()``)."""
    return getattr(_state, "grad_enabled", True)


def set_grad_enabled(mode):
    """Switch graph recording on or off for this thread (prefer the ``no_grad()`` block)."""
    _state.grad_enabled = bool(mode)


class _GradMode:
    """Context manager and decorator that sets the grad mode of the current thread."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Within this block (or decorated function) no graph is recorded: for evaluation and
    for updating weights by hand.

    Examples
    --------
    >>> w = mg.tensor([1.0, 2.0], requires_grad=True)
    >>> with mg.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    mode = False


class enable_grad(_GradMode):
    """Within this block (or decorated function) the graph is recorded, even inside no_grad()."""
    mode = True


_anomaly = threading.local()


def is_anomaly_enabled():
    """Whether backward checks every gradient for NaN/inf (inside ``detect_anomaly()``)."""
    return getattr(_anomaly, "enabled", False)


class detect_anomaly:
    """Within this block, backward raises at the first op whose gradient has a NaN or inf."""

    def __enter__(self):
        self._prev = is_anomaly_enabled()
        _anomaly.enabled = True

    def __exit__(self, *exc):
        _anomaly.enabled = self._prev
        return False


def unbroadcast(g, shape):
    """Sum a broadcast gradient back to `shape` (the inverse of NumPy broadcasting)."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


class Function:
    """Base class of every differentiable op; also the node (`grad_fn`) of the graph.

    ``forward(ctx, *args, **kwargs)`` receives ndarrays where the caller passed Tensors
    and returns one ndarray. ``backward(ctx, δ)`` receives ∂L/∂output and returns one
    gradient (or None) per positional argument of forward.
    """

    def __init__(self):
        self.inputs = ()               # the positional arguments of forward (Tensors or not)
        self.needs_input_grad = ()     # per positional argument
        self.saved = ()
        self.versions = ()             # each Tensor input's _version when the op ran
        self.freed = False

    def save_for_backward(self, *arrays):
        """Keep arrays that backward() needs; it reads them back as ``ctx.saved``."""
        self.saved = arrays

    @property
    def name(self):
        """The op's name as graphs, reprs and errors show it: the class name without a
        trailing 'Function' (Conv2dFunction -> 'Conv2d', as the layer and the lecture say)."""
        name = type(self).__name__
        return name[:-len("Function")] if name.endswith("Function") and name != "Function" else name

    def __repr__(self):
        return f"<{self.name}Backward>"

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        from .tensor import Tensor
        ctx = cls()
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx.needs_input_grad = needs
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        requires_grad = any(needs) and is_grad_enabled()
        result = Tensor._wrap(out, requires_grad)
        if requires_grad:
            ctx.inputs = args
            ctx.versions = tuple(a._version if isinstance(a, Tensor) else None for a in args)
            result._ctx = ctx
        return result


def _check_versions(ctx):
    """Raise if an input of ctx was changed in place (Tensor.add_, x[i] = v, ...) after the
    op used it: its backward would read new values, or follow the wrong node."""
    for i, (inp, v) in enumerate(zip(ctx.inputs, ctx.versions)):
        if v is not None and inp._version != v:
            raise RuntimeError(
                f"backward(): input {i} (shape {inp.shape}) of {ctx!r} was modified by an "
                f"in-place operation after {ctx.name} used it (version {v}, now {inp._version}). "
                f"Use the out-of-place form (y = x + 1 instead of x += 1) or clone() it first.")


def _parents(t):
    ctx = t._ctx
    if ctx is None:
        return ()
    if ctx.freed:
        raise RuntimeError(
            f"Trying to backward through the graph a second time: the graph of {ctx!r} "
            "was freed by an earlier backward(). Pass retain_graph=True to the first "
            "backward() if you need to call it again.")
    return [i for i in ctx.inputs if getattr(i, "requires_grad", False)]


def _toposort(root):
    """Tensors reachable from `root` through recorded ops, each before every tensor it was
    made from (reverse topological order). Iterative depth-first search: a tensor is
    appended only after all its inputs are, so graphs 100k ops deep are fine."""
    order, visited = [], {id(root)}
    stack = [(root, iter(_parents(root)))]
    while stack:
        t, inputs = stack[-1]
        for inp in inputs:
            if id(inp) not in visited:
                visited.add(id(inp))
                stack.append((inp, iter(_parents(inp))))
                break
        else:
            stack.pop()
            order.append(t)
    order.reverse()
    return order


def _local_only_refs():
    """What sys.getrefcount reports for an array that one local variable alone holds,
    and for the memory-owning base of a reshaped view that only the view holds."""
    a = np.empty(4)
    v = a.reshape(2, 2)
    del a
    return sys.getrefcount(v), sys.getrefcount(v.base)


_LOCAL_ONLY_REFS, _BASE_ONLY_REFS = _local_only_refs()


def _may_keep(g, dtype):
    """Whether a leaf's first gradient g may become its .grad as it is rather than a copy:
    a writeable array in the leaf's dtype that owns its memory, or a reshaped view of the
    whole of an array only it refers to (kernels return those). The caller also checks
    that only its variable refers to g itself: then g is a fresh result of some backward,
    not the user's δ, an array saved in the graph, or a gradient also handed to another
    input (x + y hands δ to both). Saves copying large input gradients (measured: a
    64×512×7×7 float32 gradient, 0.15 ms of a 0.31 ms pooling forward+backward)."""
    if type(g) is not np.ndarray or g.dtype != dtype or not g.flags.writeable:
        return False
    if g.base is None:
        return True
    return (type(g.base) is np.ndarray and g.base.base is None and g.flags.c_contiguous
            and g.base.nbytes == g.nbytes and sys.getrefcount(g.base) <= _BASE_ONLY_REFS)


def backward(root, grad=None, retain_graph=False):
    """Accumulate ∂root/∂leaf into `.grad` of every leaf that requires grad."""
    from .tensor import Tensor
    if not root.requires_grad:
        raise RuntimeError("backward(): the tensor does not require grad and has no grad_fn")
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward(): grad can be implicitly created only for scalar outputs; "
                f"this output has shape {root.shape}. Pass grad= of that shape.")
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.dtype)
        if grad.shape != root.shape:
            raise RuntimeError(
                f"backward(): grad has shape {grad.shape} but the output has shape {root.shape}")

    order = _toposort(root)
    grads = {id(root): grad}
    anomaly = is_anomaly_enabled()
    # A gradient may be ±inf or NaN at the edge of a function's domain (the slope of √x at
    # 0, of ln x at 0): the IEEE answer, returned quietly as PyTorch does (no NumPy
    # RuntimeWarning); detect_anomaly() is the way to stop at one.
    with no_grad(), np.errstate(divide="ignore", invalid="ignore", over="ignore"), \
            _CallbackQueue():             # queue_callback: run after the loop
        for t in order:
            g = grads.pop(id(t), None)
            if g is None:
                continue
            hooks = t._hooks                      # ---- hooks (register_hook)
            if hooks is not None and hooks.grad:
                g = hooks.run_grad_hooks(t, g)
            ctx = t._ctx
            if ctx is None:                       # a leaf: accumulate into .grad
                if t.grad is None:
                    if not (_may_keep(g, t.dtype) and sys.getrefcount(g) <= _LOCAL_ONLY_REFS):
                        g = np.array(g, dtype=t.dtype, copy=True)
                    t.grad = Tensor._wrap(g, False)
                else:
                    t.grad.data = t.grad.data + g
                if hooks is not None and hooks.post_accumulate:   # ---- hooks
                    hooks.run_post_accumulate_hooks(t)
                continue
            _check_versions(ctx)
            local = ctx.backward(ctx, g)
            if not isinstance(local, tuple):
                local = (local,)
            for inp, need, gi in zip(ctx.inputs, ctx.needs_input_grad, local):
                if not need or gi is None:
                    continue
                gi = unbroadcast(np.asarray(gi), inp.shape)
                if gi.dtype != inp.dtype:
                    gi = gi.astype(inp.dtype)
                if anomaly and not np.all(np.isfinite(gi)):
                    raise RuntimeError(
                        f"detect_anomaly: {ctx.name} backward produced a non-finite "
                        f"gradient (NaN or inf) for an input of shape {inp.shape}")
                prev = grads.get(id(inp))
                grads[id(inp)] = gi if prev is None else prev + gi
            local = gi = prev = None              # hold no gradient past its use (_may_keep)
            if not retain_graph:
                ctx.saved = ()
                ctx.inputs = ()
                ctx.freed = True
