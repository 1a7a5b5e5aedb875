"""DistributedDataParallel: data-parallel training over the ranks of an MPI job.

Every rank holds a full copy of the model and trains on its own share of each global
batch. With per-rank loss L_r (the mean over its B samples) and N ranks, the loss of the
global batch of N·B samples is L = (1/N) Σ_r L_r, so

    ∂L/∂w = (1/N) Σ_r ∂L_r/∂w,

the mean over ranks of the local gradients: after backward() every rank holds the same
gradient, and the same optimizer step keeps the copies identical.

How the mean is computed (PyTorch's design): the parameters are grouped, in reverse order
of registration (the order backward produces their gradients), into buckets of about
`bucket_cap_mb` MB. A post-accumulate-grad hook on each parameter counts down its
bucket; when the bucket's last gradient is in, the gradients are copied into the
bucket's flat buffer and its sum over ranks starts without blocking (MPI_Iallreduce),
while backward goes on computing the gradients of earlier layers. Buckets start in
index order on every rank (MPI needs the collectives in the same order everywhere). A
callback queued for the end of backward starts any bucket still waiting (a parameter
that got no gradient on this rank counts as a zero gradient), waits for all of them and
writes sum / N back into each .grad.
"""
import contextlib
import numbers

import numpy as np

from ... import autograd
from ... import distributed as dist
from ...tensor import Tensor
from ..module import Module


def _broadcast_coalesced(comm, arrays, src=0):
    """Overwrite `arrays` (ndarrays) with rank src's, one MPI_Bcast per dtype."""
    by_dtype = {}
    for a in arrays:
        by_dtype.setdefault(a.dtype.str, []).append(a)
    for group in by_dtype.values():
        flat = np.concatenate([a.ravel() for a in group])          # (Σ sizes,)
        comm.Bcast(flat, root=src)
        offset = 0
        for a in group:
            a[...] = flat[offset:offset + a.size].reshape(a.shape)
            offset += a.size


class _Bucket:
    """Parameters whose gradients travel in one all-reduce, and its flat buffer: the
    gradients one after the other, then one count per parameter (1 where this rank has
    a .grad), so that a parameter no rank has a gradient for keeps .grad None."""

    def __init__(self, params):
        self.params = params
        self.offsets = np.cumsum([0] + [p.data.size for p in params]).tolist()
        self.buffer = np.empty(self.offsets[-1] + len(params), params[0].dtype)
        self.pending = len(params)           # gradients still to come in this backward
        self.request = None

    def start(self, MPI, comm):
        """Copy the gradients (zeros where none) into the buffer; start its sum over ranks."""
        counts = self.buffer[self.offsets[-1]:]                        # (len(params),)
        for i, (p, lo, hi) in enumerate(zip(self.params, self.offsets, self.offsets[1:])):
            if p.grad is None:
                self.buffer[lo:hi] = 0
                counts[i] = 0
            else:
                self.buffer[lo:hi] = p.grad.data.ravel()
                counts[i] = 1
        self.request = comm.Iallreduce(MPI.IN_PLACE, self.buffer, op=MPI.SUM)

    def finish(self, world_size):
        """Wait for the sum; every .grad becomes the mean over ranks."""
        self.request.Wait()
        self.request = None
        counts = self.buffer[self.offsets[-1]:]
        mean = self.buffer[:self.offsets[-1]] / world_size             # (Σ sizes,) fresh array
        for p, lo, hi, count in zip(self.params, self.offsets, self.offsets[1:], counts):
            if count == 0:
                continue                                               # no rank has a gradient
            g = mean[lo:hi].reshape(p.shape)
            if p.grad is None:
                p.grad = Tensor._wrap(g, False)
            else:
                p.grad.data = g
        self.pending = len(self.params)


class DistributedDataParallel(Module):
    """Wrap `module` for data-parallel training (torch.nn.parallel.DistributedDataParallel).

        dist.init_process_group()
        model = DistributedDataParallel(lenet5())
        loss = F.cross_entropy(model(x_local), y_local)
        loss.backward()          # .grad = mean over ranks of each rank's gradient
        opt.step()               # the same step on every rank

    At construction rank 0's parameters and buffers are broadcast to every rank (so the
    ranks start equal whatever their own initialisation). After each backward() every
    parameter's .grad is the mean over ranks of the local gradients, summed in buckets
    that start while backward still runs (see the module docstring).

    Parameters
    ----------
    module : Module
        The model; reach it as `ddp.module` (state_dict keys get a "module." prefix, as
        in PyTorch — save `ddp.module.state_dict()` for a checkpoint any N can load).
    broadcast_buffers : bool
        True (PyTorch's default): every forward that records a graph (outside no_sync)
        first copies rank 0's buffers (e.g. BatchNorm's running statistics) to all ranks.
    bucket_cap_mb : float
        Gradient bytes per bucket (default 25, PyTorch's).
    find_unused_parameters : bool
        Accepted for PyTorch compatibility; a parameter that gets no gradient on a rank
        always counts as a zero gradient there (so every bucket is reduced every step),
        and one that gets none on any rank keeps .grad None. Such a parameter holds its
        bucket, and the buckets after it, back until the end of backward (no overlap).
    device_ids, output_device, dim, process_group
        Accepted for compatibility: CPU only, the default group.

    Every rank must run the same number of forward/backward passes; within `no_sync()`
    gradients accumulate locally and the next backward outside it reduces the sum.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel(): module must be a Module, got {type(module).__name__}")
        if process_group is not None:
            raise ValueError("DistributedDataParallel(): only the default process group is supported")
        if (not isinstance(bucket_cap_mb, numbers.Real) or isinstance(bucket_cap_mb, bool)
                or not bucket_cap_mb > 0):
            raise ValueError(f"DistributedDataParallel(): bucket_cap_mb must be a positive number, "
                             f"got {bucket_cap_mb!r}")
        MPI, comm = dist._mpi()
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self.find_unused_parameters = bool(find_unused_parameters)
        self.require_backward_grad_sync = True
        self._mpi, self._comm = MPI, comm
        self._world_size = comm.Get_size()

        self._check_same_model_on_every_rank()
        _broadcast_coalesced(comm, [p.data for p in module.parameters()] + list(module.buffers()))

        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = self._make_buckets(params, bucket_cap_mb * 2**20)
        self._where = {id(p): b for b in self._buckets for p in b.params}
        self._next_bucket = 0               # buckets start in this order on every rank
        self._reducing = False              # a backward with reductions is under way
        self._sync_backward = True          # decided by the latest forward
        self._hook_handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for p in params]

    def _check_same_model_on_every_rank(self):
        """Every rank must hold the same parameter and buffer names, shapes and dtypes;
        otherwise the coalesced collectives would mix up (or hang on) their bytes."""
        named = list(self.module.named_parameters()) + list(self.module.named_buffers())
        mine = [(n, tuple(np.shape(v)), np.asarray(v).dtype.str) for n, v in named]
        everyone = self._comm.allgather(mine)
        for r, theirs in enumerate(everyone):
            if theirs != everyone[0]:
                diff = next((a, b) for a, b in zip(everyone[0] + [None] * len(theirs),
                                                     theirs + [None] * len(everyone[0])) if a != b)
                raise ValueError(f"DistributedDataParallel(): the model differs between ranks: "
                                 f"rank 0 has {diff[0]}, rank {r} has {diff[1]} "
                                 f"(name, shape, dtype)")

    @staticmethod
    def _make_buckets(params, cap_bytes):
        """Parameters in reverse order of registration, cut into buckets of about cap_bytes,
        one dtype per bucket."""
        buckets, open_ = [], {}
        for p in reversed(params):
            group = open_.setdefault(p.dtype.str, [])
            group.append(p)
            if sum(q.data.nbytes for q in group) >= cap_bytes:
                buckets.append(_Bucket(group))
                open_[p.dtype.str] = []
        buckets.extend(_Bucket(g) for g in open_.values() if g)
        return buckets

    # ---- forward --------------------------------------------------------------------------
    def forward(self, *inputs, **kwargs):
        if autograd.is_grad_enabled():
            self._sync_backward = self.require_backward_grad_sync
            if self._sync_backward and self.broadcast_buffers and self._world_size > 1:
                buffers = list(self.module.buffers())
                if buffers:
                    _broadcast_coalesced(self._comm, buffers)
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Within this block forward/backward accumulate gradients locally (no
        communication); the first backward after it reduces the accumulated sum."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # ---- backward: the hooks ----------------------------------------------------------------
    def _grad_ready(self, p):
        """Post-accumulate-grad hook of every parameter: count down its bucket."""
        if not self._sync_backward:
            return
        if not self._reducing:
            self._reducing = True
            autograd.queue_callback(self._finish_reductions)
        bucket = self._where[id(p)]
        bucket.pending -= 1
        if bucket.pending == 0:
            self._start_ready_buckets()
        else:
            self._progress()

    def _start_ready_buckets(self):
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].pending == 0:
            self._buckets[self._next_bucket].start(self._mpi, self._comm)
            self._next_bucket += 1

    def _progress(self):
        """Let MPI move the reductions in flight along (MPICH progresses them only inside
        MPI calls)."""
        inflight = [b.request for b in self._buckets[:self._next_bucket] if b.request is not None]
        if inflight:
            self._mpi.Request.Testall(inflight)

    def _finish_reductions(self):
        """End-of-backward callback: start what has not started, wait, write the means."""
        while self._next_bucket < len(self._buckets):
            self._buckets[self._next_bucket].start(self._mpi, self._comm)
            self._next_bucket += 1
        for b in self._buckets:
            b.finish(self._world_size)
        self._next_bucket = 0
        self._reducing = False

    def extra_repr(self):
        return f"world_size={self._world_size}, buckets={len(self._buckets)}"
