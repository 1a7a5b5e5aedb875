"""Tensor hooks and end-of-backward callbacks, called from autograd.backward's loop.

Tensor.register_hook(fn): fn(grad) runs when the gradient with respect to the tensor is
complete (for a leaf: before it is accumulated into .grad), and may return a Tensor that
replaces it. Tensor.register_post_accumulate_grad_hook(fn): fn(leaf) runs after the leaf's
.grad was accumulated. queue_callback(fn), called during backward (from a hook), runs fn
once the traversal is over. DistributedDataParallel is built on the last two: a gradient
bucket's all-reduce starts as soon as its last .grad is accumulated, and all reductions
are waited for after the traversal. (minigrad.autograd re-exports these names.)
"""
import threading

import numpy as np

from .tensor_base import TensorBase, wrap

_state = threading.local()          # the queue_callback queue of the running backward

class RemovableHandle:
    """What register_hook returns: handle.remove() unregisters the hook (also usable as
    a context manager: the hook is removed on leaving the block)."""

    def __init__(self, hooks, hook):
        self._hooks, self.hook = hooks, hook

    def remove(self):
        if self in self._hooks:
            self._hooks.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


class _Hooks:
    """The hooks of one tensor (Tensor._hooks; None while it has none)."""
    __slots__ = ("grad", "post_accumulate")

    def __init__(self):
        self.grad = []                     # RemovableHandles of fn(grad) -> Tensor or None
        self.post_accumulate = []          # RemovableHandles of fn(tensor) -> None

    def run_grad_hooks(self, t, g):
        """g (a Tensor, ∂L/∂t) after every grad hook of t, in registration order."""
        for handle in list(self.grad):
            out = handle.hook(g)
            if out is None:
                continue                     # the hook may have changed g's data in place
            if isinstance(out, np.ndarray):
                out = wrap(out)
            elif not isinstance(out, TensorBase):
                raise TypeError(f"register_hook(): hook {_hook_name(handle.hook)} must return a "
                                f"Tensor or None, got {type(out).__name__}")
            if out.shape != t.shape:
                raise RuntimeError(f"register_hook(): hook {_hook_name(handle.hook)} changed the "
                                   f"gradient's shape from {t.shape} to {out.shape}")
            if out.dtype != t.dtype:
                raise RuntimeError(f"register_hook(): hook {_hook_name(handle.hook)} changed the "
                                   f"gradient's dtype from {t.dtype} to {out.dtype}")
            g = out
        return g

    def run_post_accumulate_hooks(self, t):
        for handle in list(self.post_accumulate):
            if handle.hook(t) is not None:
                raise RuntimeError(f"register_post_accumulate_grad_hook(): hook "
                                   f"{_hook_name(handle.hook)} must return None")


def _hook_name(fn):
    return getattr(fn, "__qualname__", None) or repr(fn)


def _tensor_hooks(t, fname, hook):
    if not callable(hook):
        raise TypeError(f"{fname}(): hook must be callable, got {type(hook).__name__}")
    if not t.requires_grad:
        raise RuntimeError(f"{fname}(): cannot register a hook on a tensor that does not "
                           f"require grad (shape {t.shape})")
    if t._hooks is None:
        t._hooks = _Hooks()
    return t._hooks


def register_hook(t, hook):
    """Register hook(grad) on tensor t (Tensor.register_hook, PyTorch's semantics).

    Each backward() that computes ∂L/∂t calls hook with that gradient (a Tensor of t's
    shape; for a leaf, before it is added to t.grad; for a non-leaf, once every
    contribution is summed, before it flows to the inputs of t's grad_fn). If the hook
    returns a Tensor, that (same shape and dtype) replaces the gradient; None keeps it.
    Several hooks run in registration order, each seeing the previous one's result.

    Returns a RemovableHandle: handle.remove() unregisters the hook.
    """
    hooks = _tensor_hooks(t, "register_hook", hook)
    handle = RemovableHandle(hooks.grad, hook)
    hooks.grad.append(handle)
    return handle


def register_post_accumulate_grad_hook(t, hook):
    """Register hook(t) on leaf tensor t: called after each backward() has accumulated
    t.grad (PyTorch's Tensor.register_post_accumulate_grad_hook). The hook returns None.
    Returns a RemovableHandle."""
    if t._ctx is not None:
        raise RuntimeError("register_post_accumulate_grad_hook(): post-accumulate-grad hooks "
                           "can only be registered on leaf tensors")
    hooks = _tensor_hooks(t, "register_post_accumulate_grad_hook", hook)
    handle = RemovableHandle(hooks.post_accumulate, hook)
    hooks.post_accumulate.append(handle)
    return handle


class _CallbackQueue:
    """The queue_callback queue of one backward(): callbacks run when the traversal ends
    without an exception; an enclosing backward's queue is restored afterwards."""

    def __enter__(self):
        self.outer = getattr(_state, "callbacks", None)
        _state.callbacks = self.queue = []

    def __exit__(self, exc_type, *exc):
        try:
            while exc_type is None and self.queue:
                self.queue.pop(0)()
        finally:
            _state.callbacks = self.outer
        return False


def queue_callback(callback):
    """Run callback() after the current backward() has finished its traversal (PyTorch's
    Variable._execution_engine.queue_callback). Only valid during backward(), e.g. from a
    hook; callbacks run in the order queued, under no_grad."""
    queue = getattr(_state, "callbacks", None)
    if queue is None:
        raise RuntimeError("queue_callback(): can only be called during backward() (from a hook)")
    if not callable(callback):
        raise TypeError(f"queue_callback(): callback must be callable, got {type(callback).__name__}")
    queue.append(callback)


