"""Batching: TensorDataset (arrays paired along their first axis) and DataLoader."""
import numbers

import numpy as np

from ..tensor import Tensor


def _short(value):
    """A bad argument as an error message shows it: an array by its type and shape, never
    its contents; anything else by a repr cut to 60 characters."""
    if isinstance(value, (np.ndarray, Tensor)):
        return f"{type(value).__name__} of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"{type(value).__name__} of length {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class TensorDataset:
    """Arrays (or Tensors) of equal length N, indexed together: ds[i] = (a[i], b[i], ...)."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset(): needs at least one array")
        self.arrays = tuple(np.asarray(a.data if isinstance(a, Tensor) else a) for a in arrays)
        for i, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset(): array {i} is 0-d; each needs a first (sample) axis")
            if a.dtype.kind not in "biuf":
                raise TypeError(f"TensorDataset(): array {i} has non-numeric dtype {a.dtype}")
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"TensorDataset(): arrays must have the same length along axis 0, "
                             f"got shapes {[a.shape for a in self.arrays]}")

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


class DataLoader:
    """Batches of a dataset as tuples of Tensors, e.g. `for x, y in DataLoader((X, Y), 64)`.

    dataset: a TensorDataset, a tuple/list of equal-length arrays, a single array, or any
    object with __len__ and __getitem__ returning a tuple of arrays (stacked per batch).
    shuffle: a fresh permutation each epoch. The order of epoch e depends only on
    (seed, e): iterating again moves to the next epoch, and set_epoch(e) jumps to epoch
    e, so a run resumed from a checkpoint sees the same batches as one that never
    stopped. When seed is None it is drawn from minigrad's global generator at
    construction (so mg.manual_seed makes it reproducible too).
    sampler: an iterable of dataset indices with __len__ (e.g. DistributedSampler) that
    decides the order instead of shuffle; set_epoch(e) also calls sampler.set_epoch(e).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, sampler=None):
        from ..random import generator
        if isinstance(dataset, (tuple, list)):
            dataset = TensorDataset(*dataset)
        elif isinstance(dataset, (np.ndarray, Tensor)):
            dataset = TensorDataset(dataset)
        elif not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader(): dataset must be arrays or have __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        if isinstance(batch_size, (np.ndarray, Tensor, list, tuple)):
            raise TypeError(f"DataLoader(): batch_size must be a positive int, got {_short(batch_size)}; "
                            f"to batch several arrays pass them as one tuple: "
                            f"DataLoader((X, Y), batch_size=64)")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader(): batch_size must be a positive int, got {_short(batch_size)}")
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)):
            raise TypeError(f"DataLoader(): seed must be an int or None, got {_short(seed)}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        for name, flag in (("shuffle", shuffle), ("drop_last", drop_last)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"DataLoader(): {name} must be a bool, got {_short(flag)}")
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        if sampler is not None and (self.shuffle or not hasattr(sampler, "__len__")
                                    or not hasattr(sampler, "__iter__")):
            raise ValueError("DataLoader(): sampler must be an iterable of indices with __len__, "
                             "and is mutually exclusive with shuffle=True")
        self.sampler = sampler
        if seed is None:
            seed = int(generator().integers(2**63))
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch):
        """The next iteration yields the batches of epoch `epoch` (0-based)."""
        if not isinstance(epoch, numbers.Integral) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(f"DataLoader.set_epoch(): epoch must be an int ≥ 0, got {epoch!r}")
        self.epoch = int(epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batch(self, idx):
        ds = self.dataset
        if isinstance(ds, TensorDataset):
            parts = [a[idx] for a in ds.arrays]
        else:
            items = [ds[int(i)] for i in idx]
            if not items or not isinstance(items[0], tuple):
                items = [(it,) for it in items]
            parts = [np.stack([np.asarray(it[k]) for it in items]) for k in range(len(items[0]))]
        return tuple(Tensor._wrap(np.ascontiguousarray(p), False) for p in parts)

    def __iter__(self):
        n = len(self.dataset)
        epoch, self.epoch = self.epoch, self.epoch + 1
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
            n = len(order)
        elif self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
        else:
            order = np.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            yield self._batch(order[start:start + self.batch_size])
