"""examples/train.py: a zoo model trains on a slice of Fashion-MNIST with augmentation,
resuming reproduces an uninterrupted run, and --time-budget stops on time."""
import os
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad.data.datasets import FASHION_MNIST_ROOT

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "examples"))
pytestmark = pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_ROOT),
                                reason="needs Debian's dataset-fashion-mnist")
import train  # noqa: E402


def _args(*extra):
    return train.parse_args(["--quiet", "--threads", "1", "--limit", "256", "--test-limit", "200",
                             "--batch-size", "64", *extra])


def test_resnet20_trains_on_a_slice(capsys):
    model, history = train.train(_args("--model", "resnet20", "--epochs", "1"))
    out = capsys.readouterr().out
    assert "resnet20: 269,434 parameters" in out and "epoch 1:" in out
    assert history["epoch"] == [1] and 0.0 <= history["test_acc"][0] <= 1.0
    assert np.isfinite(history["train_loss"][0])


def test_resume_equals_an_uninterrupted_run(tmp_path):
    # a constant learning rate, so that stopping after epoch 1 is the same run as going on
    # (the crops, flips and batch order of epoch e come from (seed, e))
    common = ("--model", "lenet5", "--schedule", "none", "--lr", "0.02")
    a, ha = train.train(_args(*common, "--epochs", "2"))
    ck = str(tmp_path / "ck.npz")
    train.train(_args(*common, "--epochs", "1", "--save", ck))
    b, hb = train.train(_args(*common, "--epochs", "2", "--resume", ck))
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
    assert ha["test_acc"] == hb["test_acc"]


def test_resume_with_more_epochs_follows_the_new_runs_cosine(tmp_path, monkeypatch):
    """Trained 1 epoch (a 1-epoch cosine, ending at lr 0) and resumed with --epochs 2: the
    second epoch takes the lrs of an uninterrupted 2-epoch cosine's second half, not the
    old cosine continued past its end (where it climbs back up)."""
    lrs, step = [], mg.optim.SGD.step

    def recording_step(self):
        lrs.append(self.param_groups[0]["lr"])
        return step(self)

    monkeypatch.setattr(mg.optim.SGD, "step", recording_step)
    common = ("--model", "lenet5", "--optimizer", "sgd", "--lr", "0.05", "--schedule", "cosine")
    ck = str(tmp_path / "ck.npz")
    train.train(_args(*common, "--epochs", "1", "--save", ck))
    del lrs[:]
    train.train(_args(*common, "--epochs", "2", "--resume", ck))
    resumed = list(lrs)
    del lrs[:]
    train.train(_args(*common, "--epochs", "2"))
    assert len(resumed) == 4 and len(lrs) == 8                  # 256 images / batch 64
    np.testing.assert_allclose(resumed, lrs[4:], rtol=1e-12)
    assert all(a >= b for a, b in zip(resumed, resumed[1:])), resumed


def test_time_budget_stops_and_anneals(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    model, history = train.train(_args("--model", "lenet5", "--epochs", "1000", "--time-budget", "0.02",
                                       "--plots", str(tmp_path)))
    assert len(history["epoch"]) < 1000
    assert "time budget spent" in capsys.readouterr().out
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_cosine_over_time_schedule():
    p = mg.nn.Parameter(np.zeros(1, np.float32))
    opt = mg.optim.SGD([p], lr=0.1)
    sched = train.CosineOverTime(opt, 100.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    sched.elapsed = 50.0
    sched._t = None
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05, rel=1e-3) and not sched.finished
    sched.elapsed, sched._t = 100.0, None
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12) and sched.finished
    assert "_t" not in sched.state_dict()
