"""Writes the fuzz targets' seed corpora (small valid files) into fuzz/corpus/<target>/.

    python fuzz/make_corpus.py

The seeds are committed; rerun this only to change them. No file is larger than 4 KiB,
so the fuzzers mutate structure, not bulk.
"""
import gzip
import os
import shutil
import sys
from collections import OrderedDict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import minigrad as mg  # noqa: E402
from minigrad.data import write_idx  # noqa: E402


def main():
    corpus = os.path.join(HERE, "corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    for d in ("load", "idx", "datasets"):
        os.makedirs(os.path.join(corpus, d))
    rng = np.random.default_rng(0)

    def ckpt(name, obj):
        mg.save(obj, os.path.join(corpus, "load", name))

    ckpt("state-dict", {"0.weight": rng.standard_normal((2, 3)).astype(np.float32),
                        "0.bias": np.zeros(2, np.float32)})
    ckpt("all-node-types", OrderedDict([("i", 3), ("f", 0.5), ("b", True), ("s", "text"), ("n", None),
                                        ("l", [1, (2.5, "x")]), ("np", np.int16(7)),
                                        ("u", np.array(["ab", "c"])), (4, np.array([[1, 2]], np.uint8))]))
    ckpt("fortran-empty-0d", {"f": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
                              "e": np.zeros((0, 2)), "z": np.array(1.5)})
    ckpt("empty-dict", {})

    def idx(name, array, compress):
        write_idx(os.path.join(corpus, "idx", name), array, compress=compress)

    for code, dtype in ((8, np.uint8), (9, np.int8), (11, np.int16), (12, np.int32), (13, np.float32),
                        (14, np.float64)):
        a = (np.arange(12) - 4).astype(dtype).reshape(3, 4)
        idx(f"type-{code:02x}", a, False)
        idx(f"type-{code:02x}.gz", a, True)
    idx("images-3d.gz", rng.integers(0, 256, (2, 5, 5)).astype(np.uint8), True)
    idx("labels-1d", np.arange(10, dtype=np.uint8), False)

    for name, compress in (("raw", False), ("gz", True)):
        images = np.zeros((2, 28, 28), np.uint8)
        images[:, 10:18, 10:18] = 200
        labels = np.array([3, 7], np.uint8)
        parts = []
        for a in (images, labels):
            tmp = os.path.join(corpus, "datasets", "part")
            write_idx(tmp, a, compress=compress)
            with open(tmp, "rb") as f:
                parts.append(f.read())
            os.unlink(tmp)
        with open(os.path.join(corpus, "datasets", f"pair-{name}"), "wb") as f:
            f.write(parts[0] + b"\xde\xad\xbe\xef" + parts[1])
    for root, _, files in os.walk(corpus):
        for n in files:
            assert os.path.getsize(os.path.join(root, n)) <= 4096, n
    print(f"seed corpora written to {corpus}: "
          + ", ".join(f"{d} {len(os.listdir(os.path.join(corpus, d)))}" for d in sorted(os.listdir(corpus))))


if __name__ == "__main__":
    main()
