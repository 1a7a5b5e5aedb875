"""Collective communication between processes, on MPI (PyTorch's torch.distributed names).

    import minigrad.distributed as dist
    dist.init_process_group(backend="mpi")      # under `mpiexec -n N python script.py`
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.all_reduce(t)                          # t ← Σ over ranks of t, in place
    dist.broadcast(t, src=0)                    # t ← rank 0's t

MPI (through mpi4py) is an optional dependency: `pip install "minigrad[distributed]"`
(or `pip install mpi4py mpich`). Importing minigrad never needs it; init_process_group
says what to install when it is missing. Every rank is one `mpiexec` process; rank and
world size come from MPI's world communicator, so there is no address or port to set.

After init_process_group an uncaught exception on any rank prints that rank's traceback
and aborts the whole job (MPI_Abort), so the other ranks never hang in a collective that
the failed rank will not join.

Collectives take a Tensor or an ndarray and work on its data in place; every rank must
call the same collectives in the same order with the same shapes and dtypes.
"""
import numbers
import sys
import time
import traceback

import numpy as np

from ..tensor import Tensor

__all__ = ["is_available", "init_process_group", "is_initialized", "get_rank", "get_world_size",
           "destroy_process_group", "all_reduce", "broadcast", "all_gather", "barrier",
           "broadcast_object_list", "ReduceOp", "Work"]

_INSTALL_HINT = ('minigrad.distributed needs MPI through mpi4py: pip install "minigrad[distributed]" '
                 "(or: pip install mpi4py mpich), then launch with `mpiexec -n N python script.py`")


class _Group:
    """The state of the default process group: the MPI module and communicator."""
    MPI = None
    comm = None
    rank = 0
    size = 1
    local_size = 1          # ranks on this machine
    prev_excepthook = None


_group = _Group()


class ReduceOp:
    """The reductions of all_reduce (PyTorch's names; plain strings work too)."""
    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


_OPS = ("sum", "product", "min", "max", "avg")


def is_available():
    """Whether mpi4py can be imported (the [distributed] extra is installed)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _abort_on_uncaught_exception(exc_type, exc, tb):
    """sys.excepthook after init_process_group: print this rank's traceback, then end
    every rank of the job (a rank that died would leave the others waiting forever in
    their next collective)."""
    try:
        sys.stdout.flush()
        sys.stderr.write(f"[rank {_group.rank}/{_group.size}] uncaught exception; "
                         f"aborting all ranks of the job:\n")
        traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        sys.stderr.flush()
        # Abort kills mpiexec's proxies at once, and with them whatever of this rank's
        # stderr they have not forwarded yet (seen on a loaded machine: an empty stderr).
        # Give the forwarding a moment: the traceback is the point of this hook.
        time.sleep(0.5)
    finally:
        _group.MPI.COMM_WORLD.Abort(1)


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, **kwargs):
    """Join the job's process group (PyTorch's torch.distributed.init_process_group).

    Parameters
    ----------
    backend : str
        "mpi", the only backend. Rank and world size come from MPI_COMM_WORLD, that
        is from `mpiexec -n N` (a script run without mpiexec is a group of one).
    init_method, timeout, world_size, rank
        Accepted for PyTorch compatibility (MPI needs no address and has no timeout);
        world_size and rank, when given (≥ 0), must agree with MPI's.

    Also installs an excepthook that aborts the whole job when this rank raises.
    Raises ImportError (saying what to install) when mpi4py is missing, RuntimeError
    when called twice.
    """
    if backend not in ("mpi", "MPI"):
        raise ValueError(f"init_process_group(): backend must be 'mpi' (the only one), got {backend!r}")
    if kwargs:
        raise TypeError(f"init_process_group(): unexpected arguments {sorted(kwargs)}")
    if _group.comm is not None:
        raise RuntimeError("init_process_group(): the default process group is already initialized")
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(f"init_process_group(): {_INSTALL_HINT} (the error was: {e})") from None
    comm = MPI.COMM_WORLD
    for name, given, actual in (("world_size", world_size, comm.Get_size()), ("rank", rank, comm.Get_rank())):
        if given is not None and given >= 0 and given != actual:
            raise ValueError(f"init_process_group(): {name}={given} but MPI says {actual} "
                             f"(rank and size come from mpiexec)")
    _group.MPI, _group.comm = MPI, comm
    _group.rank, _group.size = comm.Get_rank(), comm.Get_size()
    _group.local_size = comm.Split_type(MPI.COMM_TYPE_SHARED).Get_size()
    _group.prev_excepthook = sys.excepthook
    sys.excepthook = _abort_on_uncaught_exception


def is_initialized():
    """Whether init_process_group has been called (and not undone)."""
    return _group.comm is not None


def _require(fname):
    if _group.comm is None:
        raise RuntimeError(f"{fname}(): the default process group has not been initialized; "
                           f"call minigrad.distributed.init_process_group() first")
    return _group.comm


def get_rank():
    """This process's rank, 0 … world size − 1."""
    _require("get_rank")
    return _group.rank


def get_world_size():
    """The number of processes in the job."""
    _require("get_world_size")
    return _group.size


def destroy_process_group():
    """Leave the process group: restores the excepthook. (MPI itself is finalized by
    mpi4py when the process exits.)"""
    _require("destroy_process_group")
    if sys.excepthook is _abort_on_uncaught_exception:
        sys.excepthook = _group.prev_excepthook
    _group.MPI = _group.comm = _group.prev_excepthook = None
    _group.rank, _group.size, _group.local_size = 0, 1, 1


# ---- collectives ------------------------------------------------------------------------
def _buffer(fname, tensor, name="tensor"):
    """The ndarray that a collective reads and writes (Tensor.data or the array itself)."""
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{fname}(): {name} must be a Tensor or an ndarray, got {type(tensor).__name__}")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{fname}(): {name} must have a numeric dtype (int or float), got {arr.dtype}")
    if not arr.flags.writeable:
        raise ValueError(f"{fname}(): {name} (shape {arr.shape}) is read-only; collectives write in place")
    return arr


def _rank_arg(fname, name, r):
    if not isinstance(r, numbers.Integral) or isinstance(r, bool) or not 0 <= r < _group.size:
        raise ValueError(f"{fname}(): {name} must be a rank in [0, {_group.size}), got {r!r}")
    return int(r)


class Work:
    """A collective in flight (what async_op=True returns): wait() blocks until it is
    done on this rank and its result is in place; is_completed() polls."""

    def __init__(self, request, finish=None):
        self.request, self.finish = request, finish
        self.done = False

    def _complete(self):
        self.done = True
        if self.finish is not None:
            self.finish()

    def wait(self):
        if not self.done:
            self.request.Wait()
            self._complete()
        return True

    def is_completed(self):
        if not self.done and self.request.Test():
            self._complete()
        return self.done


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce `tensor` over all ranks, in place: afterwards every rank holds
    op(tensor of rank 0, …, tensor of rank N−1), elementwise.

    op: "sum" (default), "product", "min", "max" or "avg" (the sum / N).
    async_op=True starts the reduction and returns a Work whose wait() completes it
    (MPI_Iallreduce); the tensor must not be touched until then.
    """
    comm = _require("all_reduce")
    if group is not None:
        raise ValueError("all_reduce(): only the default group (group=None) is supported")
    if op not in _OPS:
        raise ValueError(f"all_reduce(): op must be one of {_OPS}, got {op!r}")
    arr = _buffer("all_reduce", tensor)
    MPI = _group.MPI
    mpi_op = {"sum": MPI.SUM, "avg": MPI.SUM, "product": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}[op]
    buf = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)
    size = _group.size

    def finish():
        if op == "avg":
            if buf.dtype.kind == "f":
                buf[...] /= size
            else:
                buf[...] //= size
        if buf is not arr:
            arr[...] = buf
    if async_op:
        return Work(comm.Iallreduce(MPI.IN_PLACE, buf, op=mpi_op), finish)
    comm.Allreduce(MPI.IN_PLACE, buf, op=mpi_op)
    finish()
    return None


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank `src`'s tensor into `tensor` on every rank, in place (MPI_Bcast)."""
    comm = _require("broadcast")
    if group is not None:
        raise ValueError("broadcast(): only the default group (group=None) is supported")
    src = _rank_arg("broadcast", "src", src)
    arr = _buffer("broadcast", tensor)
    buf = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)

    def finish():
        if buf is not arr:
            arr[...] = buf
    if async_op:
        return Work(comm.Ibcast(buf, root=src), finish)
    comm.Bcast(buf, root=src)
    finish()
    return None


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Gather every rank's `tensor` into `tensor_list` on every rank (MPI_Allgather):
    afterwards tensor_list[r] holds rank r's tensor. tensor_list: world-size Tensors or
    ndarrays of tensor's shape and dtype, written in place."""
    comm = _require("all_gather")
    if group is not None:
        raise ValueError("all_gather(): only the default group (group=None) is supported")
    arr = np.ascontiguousarray(_buffer("all_gather", tensor))
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != _group.size:
        raise ValueError(f"all_gather(): tensor_list must be a list of {_group.size} tensors "
                         f"(one per rank), got {type(tensor_list).__name__}"
                         + (f" of length {len(tensor_list)}" if hasattr(tensor_list, "__len__") else ""))
    outs = [_buffer("all_gather", t, f"tensor_list[{r}]") for r, t in enumerate(tensor_list)]
    for r, o in enumerate(outs):
        if o.shape != arr.shape or o.dtype != arr.dtype:
            raise ValueError(f"all_gather(): tensor_list[{r}] is {o.dtype} {o.shape} but tensor "
                             f"is {arr.dtype} {arr.shape}")
    gathered = np.empty((_group.size,) + arr.shape, arr.dtype)      # (N, *shape)

    def finish():
        for o, g in zip(outs, gathered):
            o[...] = g
    if async_op:
        return Work(comm.Iallgather(arr, gathered), finish)
    comm.Allgather(arr, gathered)
    finish()
    return None


def barrier(group=None, async_op=False):
    """Wait until every rank has reached this call."""
    comm = _require("barrier")
    if async_op:
        return Work(comm.Ibarrier())
    comm.Barrier()
    return None


def broadcast_object_list(object_list, src=0, group=None):
    """Replace the items of `object_list` on every rank with rank src's (any picklable
    Python objects, e.g. a checkpoint that rank 0 read); the list has the same length
    on every rank."""
    comm = _require("broadcast_object_list")
    src = _rank_arg("broadcast_object_list", "src", src)
    if not isinstance(object_list, list):
        raise TypeError(f"broadcast_object_list(): object_list must be a list, got {type(object_list).__name__}")
    received = comm.bcast(object_list if _group.rank == src else None, root=src)
    if len(received) != len(object_list):
        raise ValueError(f"broadcast_object_list(): rank {src} sent {len(received)} objects but "
                         f"this rank's list has {len(object_list)}")
    object_list[:] = received


def _mpi():
    """(MPI module, communicator) of the initialized group, for minigrad's own layers."""
    return _group.MPI, _require("minigrad.distributed")

