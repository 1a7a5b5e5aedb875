"""Size limits checked before any kernel runs, so an absurd argument is a ValueError that
names it, not an overflow in index arithmetic, a hang, or the OOM killer.

- Hyper-parameters (stride, padding, dilation, output_padding, output_size) and every
  output dimension must fit in int32 (MAX_INDEX), as the kernels' tables assume.
- An output must fit in the memory this process may use: the smaller of the machine's
  physical memory and the address-space limit (ulimit -v), if any.
"""
import functools
import os

MAX_INDEX = 2 ** 31 - 1


@functools.lru_cache(maxsize=1)
def _physical_memory():
    """The machine's physical memory in bytes (fixed for the process), or None."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget():
    """Bytes this process could ever hold: min(physical memory, RLIMIT_AS)."""
    budget = _physical_memory()
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            budget = soft if budget is None else min(budget, soft)
    except (ImportError, ValueError, OSError):
        pass
    return budget


def check_index(fn, name, value):
    """value (an int) must be at most MAX_INDEX."""
    if value > MAX_INDEX:
        raise ValueError(f"{fn}(): {name} must be at most 2**31 - 1, got {value}")


def check_output(fn, names, shape, itemsize, extra_bytes=0):
    """The output `shape` (plus extra_bytes of tables) must be indexable and fit in memory;
    `names` says which arguments decided its size."""
    for n in shape:
        if n > MAX_INDEX:
            raise ValueError(f"{fn}(): {names} give an output of shape {tuple(shape)}, with a "
                             f"dimension over 2**31 - 1")
    count = 1
    for n in shape:
        count *= int(n)
    need = count * itemsize + extra_bytes
    budget = memory_budget()
    if budget is not None and need > budget:
        raise ValueError(f"{fn}(): {names} give an output of shape {tuple(shape)} that needs "
                         f"{need / 2**30:.1f} GiB, more than this process can hold "
                         f"({budget / 2**30:.1f} GiB)")
