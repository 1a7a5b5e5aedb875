"""Data augmentation and normalisation on NumPy image batches (torchvision's names).

The contract, simpler than torchvision's per-image PIL pipeline and much faster:

- A transform is called on a float array of shape (N, C, H, W) — a whole batch — or
  (C, H, W) — one image — and returns a NEW array of the same layout (the input is
  never modified). The random transforms draw an independent choice for every image
  of the batch, so transforming a batch equals transforming its images one by one
  with the same random draws.
- Randomness comes from minigrad's generator (minigrad.random, seeded by
  mg.manual_seed), or from `generator=` (a numpy.random.Generator) if given, so a run
  is reproducible. examples/train.py reseeds each epoch from (seed, epoch).

Typical use (Fashion-MNIST, pixels already in [0, 1], as load_fashion_mnist returns)::

    train_tf = Compose([RandomCrop(28, padding=2), RandomHorizontalFlip(),
                        Normalize(0.2860, 0.3530)])
    x = train_tf(x_batch)            # (N, 1, 28, 28) -> (N, 1, 28, 28)
"""
import numbers

import numpy as np

from .. import random as _random
from ..tensor import Tensor


def _images(fn, x):
    """x as a float ndarray (N, C, H, W), and whether it was one (C, H, W) image."""
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}: expected an image (C, H, W) or a batch (N, C, H, W), "
                         f"got shape {x.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: expected a floating-point array, got dtype {x.dtype} "
                        f"(use ToTensor() first for uint8 images)")
    return (x[None], True) if x.ndim == 3 else (x, False)


def _generator(fn, generator):
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{fn}: generator must be a numpy.random.Generator or None, "
                        f"got {type(generator).__name__}")
    return generator


def _size_pair(fn, name, v):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (v, v)
    if (not isinstance(v, (tuple, list)) or len(v) != 2
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in v)):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {v!r}")
    return int(v[0]), int(v[1])


class Compose:
    """Apply transforms one after another: Compose([t1, t2])(x) = t2(t1(x))."""

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise TypeError(f"Compose(): transform {i} is not callable: {t!r}")

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        body = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{body}\n])"


class ToTensor:
    """uint8 pixels 0..255 -> float32 in [0, 1], as stored in IDX files: (H, W) -> (1, H, W)
    and (N, H, W) -> (N, 1, H, W) (greyscale gains its channel axis); a 4-d uint8 batch
    keeps its shape. Floating-point input is returned as a copy, unchanged (so the
    transform is harmless in front of a pipeline whose data is already scaled)."""

    def __call__(self, x):
        x = np.asarray(x.data if isinstance(x, Tensor) else x)
        if x.dtype.kind == "f":
            return x.copy()
        if x.dtype != np.uint8:
            raise TypeError(f"ToTensor: expected uint8 or floating-point images, got {x.dtype}")
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"ToTensor: expected (H, W), (N, H, W) or (N, C, H, W) uint8 "
                             f"images, got shape {x.shape}")
        y = x.astype(np.float32) / np.float32(255)
        return y[..., None, :, :] if x.ndim in (2, 3) else y

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """y[n, c] = (x[n, c] − mean[c]) / std[c].

    mean, std: a number (all channels) or a sequence with one value per channel."""

    def __init__(self, mean, std):
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize(): mean and std must be numbers or 1-d sequences, "
                             f"got shapes {self.mean.shape} and {self.std.shape}")
        if not np.all(self.std > 0):
            raise ValueError(f"Normalize(): std must be positive, got {self.std.tolist()}")

    def __call__(self, x):
        x, single = _images("Normalize", x)
        C = x.shape[1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if len(v) not in (1, C):
                raise ValueError(f"Normalize: {name} has {len(v)} values but the input has "
                                 f"{C} channels (shape {x.shape})")
        mean = self.mean.astype(x.dtype).reshape(1, -1, 1, 1)     # (1, C or 1, 1, 1)
        std = self.std.astype(x.dtype).reshape(1, -1, 1, 1)
        y = (x - mean) / std                                       # (N, C, H, W)
        return y[0] if single else y

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Pad each image by `padding` pixels of value `fill` on every side, then cut out a
    size = (h, w) window at a uniformly random position (chosen per image).

    With size equal to the image and padding p this shifts each image by up to ±p pixels
    in each direction: the usual augmentation of CIFAR / Fashion-MNIST training.

    Shapes: (N, C, H, W) -> (N, C, h, w) with h ≤ H + 2p, w ≤ W + 2p.
    """

    def __init__(self, size, padding=0, fill=0.0, generator=None):
        self.size = _size_pair("RandomCrop()", "size", size)
        if min(self.size) < 1:
            raise ValueError(f"RandomCrop(): size must be positive, got {self.size}")
        if not isinstance(padding, numbers.Integral) or isinstance(padding, bool) or padding < 0:
            raise ValueError(f"RandomCrop(): padding must be an int ≥ 0, got {padding!r}")
        if not isinstance(fill, numbers.Real):
            raise TypeError(f"RandomCrop(): fill must be a number, got {fill!r}")
        self.padding, self.fill = int(padding), float(fill)
        self.generator = _generator("RandomCrop()", generator)

    def __call__(self, x):
        x, single = _images("RandomCrop", x)
        N, C, H, W = x.shape
        h, w, p = self.size[0], self.size[1], self.padding
        if h > H + 2 * p or w > W + 2 * p:
            raise ValueError(f"RandomCrop: crop size {self.size} is larger than the padded "
                             f"image {(H + 2 * p, W + 2 * p)} (input shape {x.shape}, padding {p})")
        rng = self.generator or _random.generator()
        top = rng.integers(0, H + 2 * p - h + 1, size=N)                   # (N,)
        left = rng.integers(0, W + 2 * p - w + 1, size=N)                  # (N,)
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.fill)
        windows = np.lib.stride_tricks.sliding_window_view(padded, (h, w), axis=(2, 3))
        # windows[n, c, i, j] is the (h, w) crop whose top-left corner is (i, j):
        # (N, C, H+2p−h+1, W+2p−w+1, h, w); pick (top[n], left[n]) for image n
        y = windows[np.arange(N), :, top, left]                             # (N, C, h, w)
        y = np.ascontiguousarray(y)
        return y[0] if single else y

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left–right (x[..., ::-1]) with probability p, chosen per image."""

    def __init__(self, p=0.5, generator=None):
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip(): p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.generator = _generator("RandomHorizontalFlip()", generator)

    def __call__(self, x):
        x, single = _images("RandomHorizontalFlip", x)
        rng = self.generator or _random.generator()
        flip = rng.random(x.shape[0]) < self.p                              # (N,) bool
        y = x.copy()
        y[flip] = x[flip][..., ::-1]                                        # (n_flip, C, H, W)
        return y[0] if single else y

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
