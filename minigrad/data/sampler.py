"""DistributedSampler: each rank's share of a data set's indices (PyTorch's semantics)."""
import math
import numbers

import numpy as np


def _int(name, v, minimum):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < minimum:
        raise ValueError(f"DistributedSampler(): {name} must be an int ≥ {minimum}, got {v!r}")
    return int(v)


class DistributedSampler:
    """The indices of `dataset` that rank `rank` of `num_replicas` trains on
    (torch.utils.data.DistributedSampler); pass it as DataLoader(..., sampler=).

    Each epoch the indices 0 … n−1 are put in order (a permutation seeded by
    (seed, epoch) when shuffle, else 0, 1, …); then, so that every rank gets the same
    number of samples::

      drop_last=False: the order is padded with its own first indices up to
          total = ⌈n / R⌉ · R (repeating it when the padding is longer than n);
      drop_last=True:  it is cut to total = ⌊n / R⌋ · R (the tail is dropped);

    and rank r takes positions r, r + R, r + 2R, … of it: ⌈n / R⌉ (or ⌊n / R⌋) indices.
    The shards are disjoint and together cover the data set (up to the padding or the
    dropped tail). Call set_epoch(e) before each epoch for a new shuffle.

    The permutation is the one DataLoader(shuffle=True, seed=seed) uses for the same
    epoch, and shards are strided: with per-rank batch b, step k of rank r reads global
    positions kRb + r, kRb + r + R, …, so the R ranks' step-k batches together are the
    one-process batch k of size R·b.

    Parameters
    ----------
    dataset : sized
        Anything with __len__.
    num_replicas, rank : int, optional
        Default: minigrad.distributed's world size and rank (needs init_process_group).
    shuffle : bool
    seed : int
        The same on every rank.
    drop_last : bool
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        from .. import distributed as dist
        if not hasattr(dataset, "__len__"):
            raise TypeError(f"DistributedSampler(): dataset must have __len__, got {type(dataset).__name__}")
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler(): pass num_replicas and rank, or call "
                                   "minigrad.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        self.num_replicas = _int("num_replicas", num_replicas, 1)
        self.rank = _int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"DistributedSampler(): rank {rank} is not in [0, {num_replicas})")
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DistributedSampler(): {name} must be a bool, got {flag!r}")
        self.seed = _int("seed", seed, 0)
        self.dataset, self.shuffle, self.drop_last = dataset, bool(shuffle), bool(drop_last)
        self.epoch = 0
        n, R = len(dataset), self.num_replicas
        if self.drop_last and n % R:
            self.num_samples = math.ceil((n - R) / R)          # = ⌊n / R⌋
        else:
            self.num_samples = math.ceil(n / R)
        self.total_size = self.num_samples * R

    def set_epoch(self, epoch):
        """Use the shuffle of epoch `epoch` (the same on every rank)."""
        self.epoch = _int("epoch", epoch, 0)

    def __len__(self):
        return self.num_samples

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(n)
        else:
            order = np.arange(n)
        if not self.drop_last:
            pad = self.total_size - n
            if pad:
                order = np.concatenate([order, np.resize(order, pad)])    # resize repeats order
        else:
            order = order[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas].tolist())
