"""data: the IDX reader (valid files and each corruption), the dataset loaders, DataLoader."""
import gzip
import os
import struct

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import (DataLoader, TensorDataset, load_fashion_mnist, load_mnist, read_idx,
                           write_idx)

REAL_ROOT = "/usr/share/datasets/fashion-mnist"


def idx_bytes(array, code, ndim=None, dims=None):
    """IDX bytes written by hand from the format's definition (not by write_idx)."""
    array = np.asarray(array)
    dims = array.shape if dims is None else dims
    ndim = len(dims) if ndim is None else ndim
    header = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", d) for d in dims)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


CASES = [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C),
         (np.float32, 0x0D), (np.float64, 0x0E)]


@pytest.mark.parametrize("dtype,code", CASES)
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_valid(tmp_path, dtype, code, compress):
    a = (np.arange(24).reshape(2, 3, 4) * 7 - 50).astype(dtype)
    raw = idx_bytes(a, code)
    path = tmp_path / "data.bin"                        # the suffix says nothing: content decides
    path.write_bytes(gzip.compress(raw) if compress else raw)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, a)
    got[0, 0, 0] = 1                                    # writable


def test_write_idx_round_trip(tmp_path):
    a = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    write_idx(tmp_path / "x.idx.gz", a)
    assert (tmp_path / "x.idx.gz").read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(tmp_path / "x.idx.gz"), a)
    write_idx(tmp_path / "y", a.astype(np.int16))
    assert (tmp_path / "y").read_bytes() == idx_bytes(a.astype(np.int16), 0x0B)


@pytest.mark.parametrize("raw,message", [
    (b"", "too short"),
    (b"\x00\x00", "too short"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x05", "bad magic number: first bytes are 0x01 0x00"),
    (b"PK\x03\x04abcdefgh", "bad magic"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x05", "unknown data type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated header: 3 dimensions need 16 bytes"),
    (b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + b"\x00" * 5, "truncated: .*need 6 bytes of data, got 5"),
    (b"\x00\x00\x0c\x01" + struct.pack(">I", 2) + b"\x00" * 7, "truncated: .*int32 need 8 bytes of data, got 7"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"\x00" * 5, "3 trailing bytes"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_corrupt(tmp_path, raw, message, compress):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(gzip.compress(raw) if compress else raw)
    with pytest.raises(ValueError, match=message) as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_read_idx_corrupt_gzip(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((100, 10), np.uint8), 0x08))
    path = tmp_path / "t.gz"
    path.write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match="gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing")


# ---- loaders on a fake dataset --------------------------------------------------------------
def write_fake(root, n_train=12, n_test=5, compress=True, seed=0):
    r = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    ext = ".gz" if compress else ""
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs = r.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = r.integers(0, 10, n).astype(np.uint8)
        for name, arr, code in ((f"{split}-images-idx3-ubyte", imgs, 0x08),
                                (f"{split}-labels-idx1-ubyte", labels, 0x08)):
            raw = idx_bytes(arr, code)
            with open(os.path.join(root, name + ext), "wb") as f:
                f.write(gzip.compress(raw) if compress else raw)
        out[split] = (imgs, labels)
    return out


@pytest.mark.parametrize("compress", [True, False])
def test_load_fake_fashion_mnist(tmp_path, compress):
    truth = write_fake(tmp_path, compress=compress)
    for train, split in ((True, "train"), (False, "t10k")):
        x, y = load_fashion_mnist(root=tmp_path, train=train)
        imgs, labels = truth[split]
        assert x.shape == (len(imgs), 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (len(imgs),) and y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], imgs.astype(np.float32) / 255)
        np.testing.assert_array_equal(y, labels)
    x, y = load_mnist(root=tmp_path, train=False)
    assert x.shape == (5, 1, 28, 28)


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(root=tmp_path / "nowhere")
    write_fake(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(FileNotFoundError, match="t10k labels not found.*apt-get install"):
        load_fashion_mnist(root=tmp_path, train=False)
    with pytest.raises(FileNotFoundError, match="root="):
        load_mnist(root=tmp_path / "nowhere")
    bad = tmp_path / "bad"
    write_fake(bad, n_train=4, compress=False)
    (bad / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8), 0x08))
    with pytest.raises(ValueError, match="4 images but .* 3 labels"):
        load_fashion_mnist(root=bad)
    (bad / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 10, 2], np.uint8), 0x08))
    with pytest.raises(ValueError, match="label 10"):
        load_fashion_mnist(root=bad)


@pytest.mark.skipif(not os.path.isdir(REAL_ROOT), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_test_split():
    x, y = load_fashion_mnist(train=False)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (10000,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.array_equal(np.bincount(y), np.full(10, 1000))       # balanced classes


# ---- DataLoader -----------------------------------------------------------------------------
def test_dataloader_batches_in_order():
    X = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    Y = np.arange(10)
    dl = DataLoader((X, Y), batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 == len(batches)
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert all(isinstance(t, mg.Tensor) for b in batches for t in b)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), Y)
    dl = DataLoader(TensorDataset(X, Y), batch_size=4, drop_last=True)
    assert len(dl) == 2 and [b[1].numpy().tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_dataloader_shuffle_is_seeded_and_fresh_each_epoch():
    X = np.arange(50, dtype=np.float32)[:, None]
    Y = np.arange(50)

    def epochs(dl, n=3):
        return [np.concatenate([y.numpy() for _, y in dl]) for _ in range(n)]

    a = epochs(DataLoader((X, Y), batch_size=8, shuffle=True, seed=7))
    b = epochs(DataLoader((X, Y), batch_size=8, shuffle=True, seed=7))
    c = epochs(DataLoader((X, Y), batch_size=8, shuffle=True, seed=8))
    for e in a:
        assert sorted(e.tolist()) == list(range(50))              # a permutation
    assert all(np.array_equal(u, v) for u, v in zip(a, b))         # same seed, same order
    assert not np.array_equal(a[0], a[1])                          # a fresh order every epoch
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], np.arange(50))
    for xb, yb in DataLoader((X, Y), batch_size=8, shuffle=True, seed=1):
        np.testing.assert_array_equal(xb.numpy()[:, 0], yb.numpy())   # pairs stay together
    dl = DataLoader((X, Y), batch_size=8, shuffle=True, seed=7)
    dl.set_epoch(2)                                                # resume: epoch 2's order
    assert np.array_equal(epochs(dl, 1)[0], a[2])
    four = epochs(DataLoader((X, Y), batch_size=8, shuffle=True, seed=7), 4)
    assert np.array_equal(epochs(dl, 1)[0], four[3])               # then on to epoch 3
    with pytest.raises(ValueError, match="epoch"):
        dl.set_epoch(-1)
    mg.manual_seed(3)
    d1 = epochs(DataLoader((X, Y), batch_size=8, shuffle=True), 1)
    mg.manual_seed(3)
    d2 = epochs(DataLoader((X, Y), batch_size=8, shuffle=True), 1)
    assert np.array_equal(d1[0], d2[0])                            # mg.manual_seed decides


def test_dataloader_generic_dataset_and_validation():
    class Squares:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], np.float32), i

    xb, yb = next(iter(DataLoader(Squares(), batch_size=3)))
    np.testing.assert_array_equal(xb.numpy(), [[0, 0], [1, 1], [2, 4]])
    np.testing.assert_array_equal(yb.numpy(), [0, 1, 2])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader((np.zeros(3),), batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        DataLoader((np.zeros(3), np.zeros(4)))
    with pytest.raises(TypeError, match="dataset"):
        DataLoader(5)
    assert len(DataLoader((np.zeros((0, 2)),), batch_size=4)) == 0
    assert list(DataLoader((np.zeros((0, 2)),), batch_size=4)) == []
