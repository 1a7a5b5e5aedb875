"""SyncBatchNorm: batch normalisation whose batch statistics span every rank of the job.

With data parallelism each rank sees only its B samples; plain BatchNorm would normalise
with the statistics of those B alone. SyncBatchNorm normalises with the statistics of the
whole global batch of N·B samples, exactly as one process holding all of it would, and
its backward is that process's backward restricted to the local samples.
"""
import numpy as np

from ... import distributed as dist
from ...autograd import Function
from ..layers import _BatchNorm
from ...ops import nn as N
from ...ops.norm import BatchNorm, NormStats, NormWeightGrad, _xhat, normalization_double_backward


class SyncBatchNormFunction(Function):
    """y = γ · x̂ + β, x̂ = (x − μ) / √(σ² + eps), per channel, with μ and σ² (biased)
    over the n = Σ_r n_r values of the channel on all ranks r.

    Forward: each rank sends its count n_r, mean μ_r and M2_r = Σ (x − μ_r)² per channel
    (one MPI_Allgather); the global moments follow from Chan et al.'s merge:
        μ  = Σ_r n_r μ_r / n
        M2 = Σ_r [M2_r + n_r (μ_r − μ)²],   σ² = M2 / n
    (no cancellation, unlike n·E[x²] − n·μ²). running_var gets the unbiased M2 / (n − 1).
    With μ and σ² known, y is BatchNorm's with those statistics held fixed.

    Backward, with g = δ · γ and ⟨·⟩ the mean over all n values of a channel (all ranks):
      ∂L/∂x = (g − ⟨g⟩ − x̂ · ⟨g · x̂⟩) / σ̂
            = g / σ̂                         (BatchNorm with fixed statistics)
              − (⟨g⟩ + x̂ · ⟨g · x̂⟩) / σ̂     (through μ and σ², which depend on every rank's x)
    so the two sums Σ g and Σ g · x̂ are summed over ranks (one MPI_Allreduce). Here L is
    the sum of the ranks' losses: DistributedDataParallel's mean over ranks then gives
    the gradient of the global-batch loss. ∂L/∂γ = Σ δ · x̂ and ∂L/∂β = Σ δ stay local
    sums (DistributedDataParallel reduces them with the other gradients).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, momentum, eps, running_mean=None, running_var=None):
        MPI, comm = dist._mpi()
        C = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))                      # every axis but the channels
        bshape = (1, -1) + (1,) * (x.ndim - 2)                     # (C,) -> (1, C, 1, ...)
        n_r = x.size // C
        mine = np.zeros(2 * C + 1)                                 # [μ_r (C), M2_r (C), n_r]
        if n_r:
            mu_r = x.mean(axis=axes, dtype=np.float64)             # (C,)
            mine[:C] = mu_r
            mine[C:2 * C] = ((x - mu_r.reshape(bshape)) ** 2).sum(axis=axes)
        mine[-1] = n_r
        stats = np.empty((comm.Get_size(), 2 * C + 1))             # (ranks, 2C + 1)
        comm.Allgather(mine, stats)
        mu_rs, m2_rs, n_rs = stats[:, :C], stats[:, C:2 * C], stats[:, -1:]   # (R, C) (R, C) (R, 1)
        n = n_rs.sum()
        mean = (n_rs * mu_rs).sum(axis=0) / n                      # (C,)
        m2 = (m2_rs + n_rs * (mu_rs - mean) ** 2).sum(axis=0)      # (C,)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * m2 / (n - 1)
        y = BatchNorm.forward(ctx, x, weight, bias, False, 0.0, eps,
                              running_mean=mean, running_var=m2 / n)
        ctx.stats = SyncStats(x.shape, eps, n)                     # μ, σ² are the batch's, all ranks
        return y

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x by SyncBatchNormBackward, ∂L/∂γ = Σ δ · x̂ by NormWeightGrad (local sums;
        ops of their own, so that they are differentiated again), ∂L/∂β = Σ δ (local)."""
        x, weight = ctx.inputs[:2]
        mean, inv_std = ctx.saved[:2]                              # BatchNorm.forward keeps x, μ, 1/σ̂
        xhat = _xhat(x.data, mean, inv_std)                        # (N, C, ...)
        stats = ctx.stats
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = SyncBatchNormBackward.apply(δ, x, weight, xhat, inv_std, stats)
        if ctx.needs_input_grad[1]:
            dw = NormWeightGrad.apply(δ, x, xhat, inv_std, None, stats)
        if ctx.needs_input_grad[2]:
            db = δ.sum(stats.axes)                                           # (C,)
        return dx, dw, db, None, None


class SyncBatchNormBackward(Function):
    """SyncBatchNorm's ∂L/∂x (class docstring of SyncBatchNormFunction) as an op: forward
    over the saved x̂ and 1/σ̂ with one MPI_Allreduce of Σ g and Σ g · x̂; backward (the
    double backward) over tensors, BatchNormBackward's formulas with ⟨·⟩ the mean over
    all ranks (SyncStats: every ⟨·⟩ is one differentiable all-reduce, so every rank must
    take the double backward in step, as it takes the first)."""

    @staticmethod
    def forward(ctx, δ, x, weight, xhat, inv_std, stats):
        ctx.save_for_backward(inv_std)
        ctx.stats = stats
        axes, bshape = stats.axes, stats.bshape
        MPI, comm = dist._mpi()
        g = δ if weight is None else δ * weight.reshape(bshape)          # (N, C, ...)
        dx = g * inv_std.reshape(bshape)                                 # fixed statistics
        sums = np.stack([g.sum(axis=axes, dtype=np.float64),
                         (g * xhat).sum(axis=axes, dtype=np.float64)])   # (2, C) Σg, Σg·x̂
        comm.Allreduce(MPI.IN_PLACE, sums, op=MPI.SUM)
        g_mean = (sums[0] / stats.n).astype(g.dtype).reshape(bshape)     # ⟨g⟩      (1, C, 1..)
        gx_mean = (sums[1] / stats.n).astype(g.dtype).reshape(bshape)    # ⟨g · x̂⟩  (1, C, 1..)
        dx = dx - (g_mean + xhat * gx_mean) * inv_std.reshape(bshape)
        return dx

    @staticmethod
    def backward(ctx, ε):
        δ, x, weight = ctx.inputs[:3]
        return normalization_double_backward(ctx, ε, δ, x, weight, ctx.stats, ctx.saved[0])


class SyncStats(NormStats):
    """BatchNorm's statistics taken over all ranks: ⟨t⟩ = (Σ over every rank's values) / n."""

    def __init__(self, shape, eps, n):
        axes = (0,) + tuple(range(2, len(shape)))
        super().__init__(shape, shape, axes, axes, (1, -1) + (1,) * (len(shape) - 2), True, eps)
        self.n = n

    def mean(self, t):
        return AllReduceSum.apply(t.sum(self.dims, keepdim=True)) / self.n


class AllReduceSum(Function):
    """y = Σ_r t_r, the same on every rank (MPI_Allreduce), differentiably: with L the sum
    of the ranks' losses, ∂L/∂t_r = Σ_s δ_s, so the backward is the same all-reduce of δ."""

    @staticmethod
    def forward(ctx, t):
        MPI, comm = dist._mpi()
        out = np.array(t, copy=True, order="C")
        comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return out

    @staticmethod
    def backward(ctx, δ):
        return AllReduceSum.apply(δ)


class SyncBatchNorm(_BatchNorm):
    """Batch normalisation over axis 1 of (N, C), (N, C, L) or (N, C, H, W) inputs whose
    training statistics are those of the global batch, all ranks together
    (torch.nn.SyncBatchNorm). Formulas: SyncBatchNormFunction.

    Arguments as BatchNorm2d (num_features, eps, momentum, affine, track_running_stats,
    dtype); process_group is accepted for compatibility (the default group only).
    In evaluation, or when minigrad.distributed is not initialized or has one rank, it
    is plain BatchNorm. Every rank must call it in step (it communicates in forward and
    in backward). `SyncBatchNorm.convert_sync_batchnorm(model)` swaps a model's
    BatchNorm layers for SyncBatchNorm, keeping their parameters and statistics.
    """
    _ndims = (2, 3, 4)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None, dtype=None):
        if process_group is not None:
            raise ValueError("SyncBatchNorm(): only the default process group is supported")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)

    def forward(self, x):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        x = N.as_float_tensor(x, "SyncBatchNorm", "input")
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected a 2-d to 4-d input with {self.num_features} "
                             f"channels (axis 1), got shape {x.shape}")
        N.check_same_dtype("SyncBatchNorm", x, weight=self.weight, bias=self.bias)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.track_running_stats:
            self.num_batches_tracked += 1                     # a 0-d int64 array, in place
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        rm = self.running_mean if self.track_running_stats else None
        rv = self.running_var if self.track_running_stats else None
        return SyncBatchNormFunction.apply(x, self.weight, self.bias, float(factor), float(self.eps),
                                           running_mean=rm, running_var=rv)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """`module` with every BatchNorm1d/2d (at any depth) replaced by a SyncBatchNorm
        that shares its weight, bias and running statistics; returns the new root."""
        if isinstance(module, _BatchNorm) and not isinstance(module, cls):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine,
                       module.track_running_stats, process_group)
            for store in ("_parameters", "_buffers"):
                getattr(sync, store).update(getattr(module, store))
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module
