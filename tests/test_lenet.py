"""The main job: LeNet-5 on Fashion-MNIST (examples/lenet.py), and exact resumption."""
import os
import pathlib
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = "/usr/share/datasets/fashion-mnist"
sys.path.insert(0, str(ROOT / "examples"))
import lenet  # noqa: E402

needs_data = pytest.mark.skipif(
    not os.path.isdir(DATA) and not os.environ.get("CI"),
    reason="Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist); CI installs it")


@needs_data
def test_one_epoch_of_lenet_reaches_80_percent(tmp_path, capsys):
    args = lenet.parse_args(["--epochs", "1", "--quiet", "--save", str(tmp_path / "ck.npz"),
                             "--data", DATA])
    model, history = lenet.train(args)
    out = capsys.readouterr().out
    assert history["test_acc"][0] >= 0.80, out
    assert "best test accuracy" in out and "images/s" in out
    ck = mg.load(str(tmp_path / "ck.npz"))
    assert int(ck["epoch"]) == 1 and set(ck["model"]) == set(model.state_dict())


def _step(model, opt, x, y):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_checkpoint_resume_gives_the_same_next_step(tmp_path, optimizer):
    rng = np.random.default_rng(0)
    batches = [(mg.tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32)),
                mg.tensor(rng.integers(0, 10, 8))) for _ in range(4)]
    mg.manual_seed(3)
    model = lenet.lenet5()
    opt = lenet.make_optimizer(optimizer, model.parameters(), 1e-2)
    for x, y in batches[:3]:
        _step(model, opt, x, y)
    path = str(tmp_path / "ck.npz")
    mg.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    expected = _step(model, opt, *batches[3])
    expected_w = model.state_dict()

    mg.manual_seed(99)                                   # a different init, overwritten by the load
    fresh = lenet.lenet5()
    fresh_opt = lenet.make_optimizer(optimizer, fresh.parameters(), 1e-2)
    ck = mg.load(path)
    fresh.load_state_dict(ck["model"])
    fresh_opt.load_state_dict(ck["optimizer"])
    assert _step(fresh, fresh_opt, *batches[3]) == expected
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, expected_w[k], err_msg=k)


def test_lenet_shapes_follow_the_notes():
    model = lenet.lenet5()
    x = mg.zeros(2, 1, 28, 28)
    shapes = []
    for layer in model:
        x = layer(x)
        shapes.append(x.shape)
    assert shapes[:6] == [(2, 6, 28, 28), (2, 6, 28, 28), (2, 6, 14, 14),
                          (2, 16, 10, 10), (2, 16, 10, 10), (2, 16, 5, 5)]
    assert shapes[-1] == (2, 10)
    assert sum(p.size for p in model.parameters()) == 61706


def test_handmade_filters_do_what_their_names_say():
    import filters
    img = np.zeros((1, 1, 6, 6), np.float32)
    img[..., 3:] = 1.0                                   # a vertical edge between columns 2 and 3
    out = filters.apply_filters(img)[0]
    names = list(filters.KERNELS)
    np.testing.assert_array_equal(out[names.index("identity")], img[0, 0])
    np.testing.assert_array_equal(out[names.index("shift right")][:, 1:], img[0, 0][:, :-1])
    sobel_x = out[names.index("Sobel x")][1:-1]          # interior rows: no zero padding above/below
    assert np.all(sobel_x[:, 2:4] == 4) and np.all(sobel_x[:, :2] == 0) and np.all(sobel_x[:, 4:5] == 0)
    np.testing.assert_array_equal(out[names.index("Sobel y")][1:-1, 1:-1], 0)


def _fake_fashion_mnist(root, n_train=256, n_test=32):
    """A tiny random dataset in Fashion-MNIST's file layout (no download, no Debian package)."""
    from minigrad.data.idx import write_idx
    r = np.random.default_rng(0)
    root.mkdir()
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(str(root / f"{split}-images-idx3-ubyte.gz"), r.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(str(root / f"{split}-labels-idx1-ubyte.gz"), r.integers(0, 10, n).astype(np.uint8))
    return str(root)


class _Interrupted(Exception):
    pass


def _lrs_of_run(monkeypatch, argv, stop_after=None):
    """The learning rate of every optimizer step of `lenet.py argv` (read as Adam.step
    runs); with stop_after=n the run is interrupted when step n + 1 begins."""
    lrs = []
    step = mg.optim.Adam.step

    def recording_step(self):
        if len(lrs) == stop_after:
            raise _Interrupted
        lrs.append(self.param_groups[0]["lr"])
        return step(self)

    monkeypatch.setattr(mg.optim.Adam, "step", recording_step)
    try:
        lenet.train(lenet.parse_args(argv + ["--quiet"]))
    except _Interrupted:
        pass
    monkeypatch.setattr(mg.optim.Adam, "step", step)
    return lrs


@pytest.mark.parametrize("schedule", ["cosine", "step"])
@pytest.mark.parametrize("first_epochs, more_epochs", [(2, 4), (2, 3), (6, 3)])
def test_resume_with_more_epochs_follows_the_new_runs_schedule(tmp_path, monkeypatch, schedule,
                                                              first_epochs, more_epochs):
    # issue 16: `--epochs 2 --save`, then `--resume --epochs 4` must not restart or reuse the
    # 2-epoch cosine (whose end it would pass, the lr climbing back up) but continue the
    # 4-epoch one from the step reached: 256 images / batch 64 = 4 steps an epoch. Also a
    # 6-epoch run stopped after epoch 2 and resumed with fewer epochs (3) in all.
    common = ["--data", _fake_fashion_mnist(tmp_path / "data"), "--limit", "256",
              "--batch-size", "64", "--schedule", schedule]
    ck = str(tmp_path / "ck.npz")
    first = _lrs_of_run(monkeypatch, common + ["--epochs", str(first_epochs), "--save", ck], stop_after=8)
    resumed = _lrs_of_run(monkeypatch, common + ["--epochs", str(more_epochs), "--resume", ck])
    whole = _lrs_of_run(monkeypatch, common + ["--epochs", str(more_epochs)])
    assert len(first) == 8 and len(resumed) == 4 * (more_epochs - 2) and len(whole) == 4 * more_epochs
    np.testing.assert_allclose(resumed, whole[8:], rtol=1e-12)
    assert all(a >= b for a, b in zip(resumed, resumed[1:])), resumed   # never climbs back up
    assert resumed[0] < 2e-3                                            # not restarted either


# ---- --save-every: mid-epoch checkpoints, and a resumed run equals the uninterrupted one ----------

def _run(data, ckpt, *extra):
    """examples/lenet.py on the fake data: 3 epochs of 6 steps (batch 16), Adam, cosine schedule."""
    args = lenet.parse_args(["--epochs", "3", "--batch-size", "16", "--quiet", "--threads", "1",
                             "--data", data, "--save", ckpt, *extra])
    model, history = lenet.train(args)
    return model, {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}


def _assert_bitwise_equal(a, b, where=""):
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_bitwise_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_bitwise_equal(u, v, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, mg.Tensor)):            # state_dict() values are Tensors
        assert type(a) is type(b), where
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    else:
        assert a == b, where


@pytest.mark.parametrize("stop_after", [5, 8, 12])
def test_mid_epoch_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path, capsys, stop_after):
    """Stop after `stop_after` steps (the last checkpoint: --save-every 4 writes after steps 4
    and 8, mid-epoch in epochs 1 and 2; step 12 ends epoch 2), resume, and finish: the
    model, optimizer, schedule and history are bitwise those of a run never stopped."""
    data = _fake_fashion_mnist(tmp_path / "data", n_train=96, n_test=40)
    whole = str(tmp_path / "whole.ckpt")
    model, history = _run(data, whole, "--save-every", "4")
    ck_whole = mg.load(whole)
    assert (int(ck_whole["epoch"]), int(ck_whole["step"])) == (3, 0)

    part = str(tmp_path / "part.ckpt")
    _run(data, part, "--save-every", "4", "--max-steps", str(stop_after))
    ck = mg.load(part)
    last = stop_after - stop_after % 4
    assert (int(ck["epoch"]), int(ck["step"])) == (last // 6, last % 6)
    assert len(ck["history"]["epoch"]) == last // 6
    capsys.readouterr()
    resumed, resumed_history = _run(data, part, "--save-every", "4", "--resume", part)
    out = capsys.readouterr().out
    assert f"resumed from {part} after epoch {last // 6}" in out
    if last % 6:
        assert f"and {last % 6} steps of epoch {last // 6 + 1}" in out
    _assert_bitwise_equal(model.state_dict(), resumed.state_dict())
    _assert_bitwise_equal(history, resumed_history)
    _assert_bitwise_equal(ck_whole, mg.load(part))          # optimizer and scheduler state too


def test_save_every_needs_save(capsys):
    with pytest.raises(SystemExit):
        lenet.parse_args(["--save-every", "10"])
    assert "--save-every needs --save" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        lenet.parse_args(["--save", "x", "--save-every", "0"])
