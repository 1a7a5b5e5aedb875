"""The few pieces a training script needs to run the same code on one process or under
`mpiexec -n N` (examples/lenet.py --distributed uses them):

    from minigrad.distributed import training as dt
    rank, world = dt.setup(args.distributed, threads=args.threads)
    loader = dt.data_loader((x, y), args.batch_size, shuffle=True, drop_last=True, seed=args.seed)
    ckpt = dt.load_checkpoint(args.resume)        # rank 0 reads, every rank receives
    net = dt.wrap_model(model)                    # DistributedDataParallel, or model itself
    ...
    loss_sum, correct, seen = dt.reduce_sum(loss_sum, correct, seen)
    dt.print0(f"epoch {e}: ...")                  # rank 0 alone prints
    dt.save_checkpoint({"model": model.state_dict(), ...}, args.save)   # rank 0 alone writes

`batch_size` stays the *global* batch: each of the N ranks takes batch_size / N samples
of it, so a run computes the same steps (up to float rounding) for any N, and a
checkpoint written with one N resumes with another. Without `distributed` (or with
one rank) every function here is the plain single-process behaviour.
"""
import os

from . import (_group, all_reduce, broadcast_object_list, get_rank, get_world_size,
               init_process_group, is_initialized)

__all__ = ["setup", "rank_and_world_size", "is_main_process", "print0", "wrap_model",
           "data_loader", "reduce_sum", "broadcast_value", "load_checkpoint", "save_checkpoint"]


def setup(distributed, threads=None):
    """Join the MPI job when `distributed` (init_process_group) and set the kernel threads:
    `threads` if given, else under MPI the CPUs of this machine shared evenly among its
    ranks (N ranks on one machine must not each start one thread per core).
    Returns (rank, world_size); (0, 1) without distributed."""
    from .. import set_num_threads
    if distributed and not is_initialized():
        init_process_group(backend="mpi")
    if threads:
        set_num_threads(threads)
    elif is_initialized():
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        set_num_threads(max(1, (cpus or 1) // _group.local_size))
    return rank_and_world_size()


def rank_and_world_size():
    """(rank, world size), or (0, 1) when minigrad.distributed is not initialized."""
    return (get_rank(), get_world_size()) if is_initialized() else (0, 1)


def is_main_process():
    """True on rank 0 (and in a single process): the rank that prints and writes files."""
    return rank_and_world_size()[0] == 0


def print0(*args, **kwargs):
    """print() on rank 0 only (flushed, so that mpiexec shows lines as they come)."""
    if is_main_process():
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


def wrap_model(model, sync_batchnorm=False, **ddp_kwargs):
    """DistributedDataParallel(model) under MPI (BatchNorm layers first turned into
    SyncBatchNorm when sync_batchnorm), else `model` unchanged. Keep the unwrapped model
    for state_dict(): its keys do not depend on N."""
    if not is_initialized():
        return model
    from ..nn import SyncBatchNorm
    from ..nn.parallel import DistributedDataParallel
    if sync_batchnorm:
        model = SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, **ddp_kwargs)


def data_loader(dataset, batch_size, shuffle=True, drop_last=True, seed=0):
    """A DataLoader over this rank's share of `dataset` with batch_size / N samples per
    step (batch_size is the global batch). Under MPI the shard comes from a
    DistributedSampler with DataLoader's own permutation, so the N ranks' step-k batches
    together are exactly the single-process step-k batch; call loader.set_epoch(e)."""
    from ..data import DataLoader, DistributedSampler
    from ..data.loader import TensorDataset
    rank, world = rank_and_world_size()
    if world == 1:
        return DataLoader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)
    if batch_size % world:
        raise ValueError(f"data_loader(): the global batch size {batch_size} must be divisible by "
                         f"the number of ranks {world}")
    if isinstance(dataset, (tuple, list)):
        dataset = TensorDataset(*dataset)
    sampler = DistributedSampler(dataset, world, rank, shuffle=shuffle, seed=seed)
    return DataLoader(dataset, batch_size // world, drop_last=drop_last, sampler=sampler)


def reduce_sum(*values):
    """The sums over ranks of Python numbers (e.g. loss sum, correct, seen), as floats."""
    import numpy as np
    arr = np.array(values, dtype=np.float64)
    if is_initialized():
        all_reduce(arr)
    return tuple(arr.tolist())


def broadcast_value(value):
    """Rank 0's `value` (any picklable object) on every rank; e.g. a decision that must
    agree everywhere, such as a wall-clock budget being spent (ranks that disagree on
    when to stop would wait forever in each other's collectives)."""
    if not is_initialized():
        return value
    box = [value]
    broadcast_object_list(box, src=0)
    return box[0]


def load_checkpoint(path):
    """mg.load(path) on rank 0, sent to every rank (only rank 0 needs the file)."""
    from ..serialization import load
    if not is_initialized():
        return load(path)
    return broadcast_value(load(path) if get_rank() == 0 else None)


def save_checkpoint(obj, path):
    """mg.save(obj, path) on rank 0 only."""
    from ..serialization import save
    if is_main_process():
        save(obj, path)
