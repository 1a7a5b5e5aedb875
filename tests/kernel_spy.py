"""Test helpers shared by the convolution tests: fill the reused scratch memory with NaN,
and run code with a kernel path forced (minigrad.kernels.use) while recording which
kernels ran (minigrad.kernels.trace)."""
import contextlib

from minigrad import kernels
from minigrad.ops import conv_dispatch


def poison_workspaces():
    """Fill the reused scratch memory with NaN bytes, so that a kernel reading scratch
    it did not write this call shows up in its results instead of passing by luck."""
    for buf, _, _ in getattr(conv_dispatch._tls, "bufs", {}).values():   # (bytes, key, view)
        buf[...] = 0xFF


@contextlib.contextmanager
def forced(path, force=True, **tuning):
    """With `path` forced (force=False: the choice by shape) and `tuning` overridden, and
    the workspaces poisoned, yield the kernels.trace() log of the block."""
    poison_workspaces()
    with kernels.use(path if force else None, **tuning), kernels.trace() as log:
        yield log


def ran(log, path):
    """The (first operand's shape, weight's shape) of every convolution kernel in a
    kernels.trace() log that ran on `path`."""
    return [c.shapes for c in log if c.path == path and c.op.startswith("conv")]
