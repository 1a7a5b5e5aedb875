"""Test helpers shared by the convolution tests: fill the reused scratch memory with NaN,
and run code with a kernel family forced and its kernel function spied on."""
import contextlib

from minigrad.ops import conv as C


def poison_workspaces():
    """Fill the reused scratch memory with NaN bytes, so that a kernel reading scratch
    it did not write this call shows up in its results instead of passing by luck."""
    for buf in getattr(C._tls, "bufs", {}).values():
        buf[...] = 0xFF


@contextlib.contextmanager
def forced(path, module, kernel_name, force=True, which=None):
    """With C._FORCE_PATH = path (None if not force) and the workspaces poisoned, yield
    the list of the (first argument's shape, second argument's shape) of every call that
    reached module.kernel_name (only those for which which(*args) is true, if given);
    everything is restored on exit."""
    poison_workspaces()
    calls = []
    kernel = getattr(module, kernel_name)

    def spy(a, b, *args):
        if which is None or which(a, b, *args):
            calls.append((tuple(a.shape), tuple(b.shape)))
        return kernel(a, b, *args)

    saved = C._FORCE_PATH
    C._FORCE_PATH = path if force else None
    setattr(module, kernel_name, spy)
    try:
        yield calls
    finally:
        setattr(module, kernel_name, kernel)
        C._FORCE_PATH = saved
