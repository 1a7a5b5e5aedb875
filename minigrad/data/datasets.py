"""MNIST and Fashion-MNIST from their IDX files.

Debian's `dataset-fashion-mnist` package installs /usr/share/datasets/fashion-mnist/
{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz; the uncompressed names (and the
`train-images.idx3-ubyte` spelling of some MNIST mirrors) are found too.

The files are read with read_idx, so its bounds hold (regular files only; a gzip file's
data at most 64 × its size + 1 MiB); the float32 images returned take 4 bytes per pixel.
Every error names the loader, the file and the problem.
"""
import os

import numpy as np

from .idx import read_idx

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
MNIST_ROOT = "/usr/share/datasets/mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def _find(root, split, kind, hint, fn):
    """The first existing path among the usual names of `split` ('train'/'t10k') `kind`
    (read_idx then refuses it if it is not a regular file)."""
    idx = "idx3" if kind == "images" else "idx1"
    names = [f"{split}-{kind}-{idx}-ubyte{ext}" for ext in (".gz", "")]
    names += [f"{split}-{kind}.{idx}-ubyte{ext}" for ext in (".gz", "")]
    for n in names:
        p = os.path.join(root, n)
        if os.path.lexists(p):
            return p
    raise FileNotFoundError(f"{fn}: {split} {kind} not found in {root}: looked for "
                            f"{', '.join(names)}. {hint}")


def load_idx_dataset(root, train=True, hint="", num_classes=10, fn="load_idx_dataset()"):
    """(images float32 (N, 1, H, W) in [0, 1], labels int64 (N,)) from an MNIST-style directory.

    Errors: FileNotFoundError if `root` or a file is missing, ValueError (content) or
    OSError (unreadable file) from read_idx, and ValueError if the two files do not form
    a dataset; every message starts with `fn` (the public loader's name)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{fn}: dataset directory {root} does not exist. {hint}")
    split = "train" if train else "t10k"
    images_path = _find(root, split, "images", hint, fn)
    labels_path = _find(root, split, "labels", hint, fn)
    try:
        images, labels = read_idx(images_path), read_idx(labels_path)
    except ValueError as e:
        raise ValueError(f"{fn}: {e}") from None
    except OSError as e:
        raise type(e)(f"{fn}: {e}") from None
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{fn}: {images_path}: expected uint8 images of shape (N, H, W), got "
                         f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{fn}: {labels_path}: expected uint8 labels of shape (N,), got "
                         f"{labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{fn}: {images_path} has {len(images)} images but {labels_path} has "
                         f"{len(labels)} labels")
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"{fn}: {labels_path}: label {int(labels.max())} is not in [0, {num_classes})")
    x = images.astype(np.float32)[:, None] / np.float32(255)          # (N, H, W) -> (N, 1, H, W)
    return x, labels.astype(np.int64)


def load_fashion_mnist(root=FASHION_MNIST_ROOT, train=True):
    """Fashion-MNIST: 60,000 training or 10,000 test images, (N, 1, 28, 28) float32 in
    [0, 1], and their labels (N,) int64 (FASHION_MNIST_CLASSES names them)."""
    return load_idx_dataset(root, train, hint=(
        "Install the data with `apt-get install dataset-fashion-mnist` (Debian), or pass "
        "root= a directory holding the IDX files."), fn="load_fashion_mnist()")


def load_mnist(root=MNIST_ROOT, train=True):
    """MNIST digits from the IDX files in `root` (same layout and return values as
    load_fashion_mnist)."""
    return load_idx_dataset(root, train, hint=(
        "Pass root= a directory holding the MNIST IDX files (train-images-idx3-ubyte.gz, ...)."),
        fn="load_mnist()")
