"""mg.save / mg.load: bit-exact round trips without pickle, atomic saves, clear errors."""
import os
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.serialization as ser


def assert_same(a, b):
    """Equal structure, types, key order, dtypes and bytes."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys())
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            assert_same(u, v)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    elif isinstance(a, mg.Tensor):
        assert not b.requires_grad
        assert_same(a.numpy(), b.numpy())
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_round_trip_is_bit_exact(tmp_path):
    r = np.random.default_rng(0)
    nan_payload = np.array([0x7FF8000000000123], dtype=np.uint64).view(np.float64)
    obj = {
        "zeta": 1,                                   # key order is kept, not sorted
        "alpha": {
            "f16": r.standard_normal(3).astype(np.float16),
            "f32": r.standard_normal((2, 3)).astype(np.float32),
            "f64": np.concatenate([r.standard_normal(2), [np.inf, -np.inf, -0.0], nan_payload]),
            "ints": [np.arange(3, dtype=t) for t in (np.int8, np.uint8, np.int16, np.int32,
                                                     np.int64, np.uint64)],
            "bool": np.array([True, False]),
            "strings": np.array(["conv", "pool"]),
            "zero_d": np.array(3.5, np.float32),
            "empty": np.zeros((0, 4), np.float32),
            "fortran": np.asfortranarray(r.standard_normal((3, 4))),
            "strided": r.standard_normal((4, 6))[::2, ::-3],
        },
        3: "an int key",
        "py": [1, -2**62, 0.1, float("nan"), True, False, None, "text ✓", (1, 2.5), []],
        "np_scalars": (np.float32(1.25), np.int64(7), np.bool_(True)),
        "tensor": mg.tensor([[1.0, 2.0]]),
    }
    mg.save(obj, tmp_path / "ck.npz")
    back = mg.load(tmp_path / "ck.npz")
    assert_same(obj, back)                            # Tensors come back as Tensors
    assert back["alpha"]["fortran"].flags.writeable
    assert type(back["np_scalars"][0]) is np.float32


def test_model_and_optimizer_state_round_trip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    opt = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(mg.randn(5, 3)).sum().backward()
    opt.step()
    ck = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}
    path = tmp_path / "lenet.ckpt"                    # any suffix: the path is used as given
    mg.save(ck, path)
    assert os.listdir(tmp_path) == ["lenet.ckpt"]     # no temporary left behind
    back = mg.load(path)
    assert_same(ck, back)
    model2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model2.load_state_dict(back["model"])
    assert_same(model.state_dict(), model2.state_dict())


def test_save_keeps_the_replaced_files_mode(tmp_path):
    path = tmp_path / "ck.npz"
    mg.save({"a": 1}, path)
    (tmp_path / "plain").write_bytes(b"")                    # what open() gives a new file
    assert os.stat(path).st_mode & 0o777 == os.stat(tmp_path / "plain").st_mode & 0o777
    os.chmod(path, 0o640)
    mg.save({"a": 2}, path)
    assert os.stat(path).st_mode & 0o777 == 0o640 and mg.load(path)["a"] == 2


def test_no_pickle_is_ever_used(tmp_path):
    mg.save({"a": np.ones(2)}, tmp_path / "x.npz")
    with zipfile.ZipFile(tmp_path / "x.npz") as z:
        for name in z.namelist():
            header = z.read(name)[:128]
            assert b"'descr': '|O'" not in header     # no object arrays
    with pytest.raises(TypeError, match=r"obj\['bad'\].*pickle"):
        mg.save({"bad": np.array([{}, 1], dtype=object)}, tmp_path / "y.npz")
    with pytest.raises(TypeError, match=r"cannot save set at obj\['s'\]"):
        mg.save({"s": {1, 2}}, tmp_path / "y.npz")
    with pytest.raises(TypeError, match="keys must be str or int"):
        mg.save({(1, 2): 3}, tmp_path / "y.npz")
    with pytest.raises(ValueError, match="int64"):
        mg.save({"big": 2**70}, tmp_path / "y.npz")
    assert not (tmp_path / "y.npz").exists()


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ck.npz"
    mg.save({"w": np.arange(4.0)}, path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")
    monkeypatch.setattr(ser.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        mg.save({"w": np.zeros(4)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ck.npz"]         # the temporary was removed
    monkeypatch.undo()
    np.testing.assert_array_equal(mg.load(path)["w"], np.arange(4.0))


CHILD = """
import sys, numpy as np, minigrad as mg
path = sys.argv[1]
big = np.random.default_rng(0).standard_normal(3_000_000)
print("ready", flush=True)
i = 0
while True:
    i += 1
    mg.save({"i": i, "w": big + i}, path)
"""


def test_killed_save_leaves_a_loadable_checkpoint(tmp_path, monkeypatch):
    """kill -9 a process in the middle of saving, repeatedly: the file stays whole, and the
    next save removes the temporaries the killed ones left (once they count as stale)."""
    path = tmp_path / "ck.npz"
    mg.save({"i": 0, "w": np.zeros(3)}, path)
    for delay in (0.05, 0.2, 0.37):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        ck = mg.load(path)                            # the previous (or a newer) whole checkpoint
        i = ck["i"]
        if i:
            np.testing.assert_array_equal(ck["w"][:5], np.random.default_rng(0).standard_normal(5) + i)
    for attempt in range(20):                        # once more, killed while its temporary exists
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        while not any(f"-{child.pid}-" in n for n in os.listdir(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        if len(os.listdir(tmp_path)) > 1:
            break
    assert len(os.listdir(tmp_path)) > 1, "no kill ever landed during a save"
    monkeypatch.setattr(ser, "STALE_DEAD_WRITER", -1.0)   # their writers are dead: stale at once
    mg.save({"i": -1, "w": np.zeros(3)}, path)
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_corrupt_empty_and_foreign_files(tmp_path):
    path = tmp_path / "ck.npz"
    mg.save({"w": np.arange(10000.0), "n": 1}, path)
    good = path.read_bytes()

    def expect_error(data, match):
        p = tmp_path / "bad.npz"
        p.write_bytes(data)
        with pytest.raises(ValueError, match=match) as e:
            mg.load(p)
        assert str(p) in str(e.value)

    expect_error(b"", "empty")
    expect_error(good[: len(good) // 2], "truncated|corrupt|not a minigrad")
    expect_error(good[:-10], "truncated|corrupt|not a minigrad")
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF                   # inside the array data: the CRC catches it
    expect_error(bytes(flipped), "corrupt|truncated")
    expect_error(b"hello, I am a text file\n", "not a minigrad checkpoint")

    npy = tmp_path / "plain.npy"
    np.save(npy, np.ones(3))
    expect_error(npy.read_bytes(), r"\.npy array")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    expect_error(foreign.read_bytes(), "not written by mg.save")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __minigrad__=np.array([{"x": 1}], dtype=object))
    expect_error(pickled.read_bytes(), "corrupt|pickle")
    with pytest.raises(FileNotFoundError, match="no such file"):
        mg.load(tmp_path / "nope.npz")
