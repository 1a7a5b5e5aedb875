"""Thread controls for the OpenMP kernels.

The kernels keep no state of their own; every call passes the thread count it should
use, read from here. Default: MINIGRAD_NUM_THREADS if set, else the number of CPUs.

Where the threads run (Linux): an OpenMP worker that starts its share of a kernel's
parallel region on the CPU of the thread that started the region moves itself to that
thread's other CPUs, so that two threads of one team never spin against each other on one
CPU (ext/omp/keep_apart.c). The calling thread is never pinned. MINIGRAD_WORKER_AFFINITY=off,
or a binding of your own (OMP_PROC_BIND other than false, OMP_PLACES, GOMP_CPU_AFFINITY),
leaves the placement alone (to the scheduler, or to your binding).
"""
import os

from ._ext import elementwise as _k


def _default():
    env = os.environ.get("MINIGRAD_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


_num_threads = _default()


def set_num_threads(n):
    """Set how many threads the kernels use (like torch.set_num_threads)."""
    global _num_threads
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads(): n must be a positive int, got {n!r}")
    _num_threads = n


def get_num_threads():
    """The number of OpenMP threads the kernels use (see set_num_threads)."""
    return _num_threads


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(_k.openmp_enabled())
