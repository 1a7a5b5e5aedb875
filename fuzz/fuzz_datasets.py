"""Fuzz target: load_fashion_mnist on a directory of two arbitrary files (atheris target).

    python fuzz/fuzz_datasets.py -max_total_time=60 fuzz/corpus/datasets

An input is split at its first 4-byte separator b"\\xde\\xad\\xbe\\xef" (absent: all images,
no labels) into the bytes of train-images-idx3-ubyte and train-labels-idx1-ubyte. The loader
must return (images, labels) of matching lengths, or raise ValueError/OSError whose message
starts with "load_fashion_mnist(): "; anything else is a crash.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

import minigrad._safeio  # noqa: E402
import minigrad.data.datasets  # noqa: E402
import minigrad.data.idx  # noqa: E402
from minigrad.data import load_fashion_mnist  # noqa: E402

_harness.instrument([minigrad.data.datasets, minigrad.data.idx, minigrad._safeio])

ROOT = _harness.scratch_dir()
SEPARATOR = b"\xde\xad\xbe\xef"
IMAGES = os.path.join(ROOT, "train-images-idx3-ubyte")
LABELS = os.path.join(ROOT, "train-labels-idx1-ubyte")


def test_one_input(data):
    images, sep, labels = data.partition(SEPARATOR)
    _harness.write(IMAGES, images)
    if sep:
        _harness.write(LABELS, labels)
    elif os.path.exists(LABELS):
        os.unlink(LABELS)
    try:
        x, y = load_fashion_mnist(ROOT)
    except Exception as e:
        _harness.check_error(e, "load_fashion_mnist(): ", ROOT)
        return
    if x.shape[0] != y.shape[0] or x.ndim != 4:
        raise AssertionError(f"load_fashion_mnist returned images {x.shape} and labels {y.shape}")


if __name__ == "__main__":
    _harness.main(test_one_input)
