"""examples/train.py --distributed under `mpiexec -n 2`, on a tiny fake Fashion-MNIST (random
IDX files), so that it runs without the Debian package; skipped without mpi4py/mpiexec."""
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.models
from test_distributed import ROOT, mpiexec, needs_mpi
from test_lenet import _fake_fashion_mnist

TRAIN = str(ROOT / "examples" / "train.py")
sys.path.insert(0, str(ROOT / "examples"))
import train  # noqa: E402


@needs_mpi
def test_resnet20_trains_on_two_ranks_rank0_prints_and_saves(tmp_path):
    """One epoch of ResNet-20 (BatchNorm → SyncBatchNorm inside DDP) on 2 ranks × 16 images per
    step: exit code 0, every line printed once (by rank 0), and a checkpoint whose keys are
    those of a plain resnet20 (the unwrapped model is saved)."""
    data = _fake_fashion_mnist(tmp_path / "data", n_train=64, n_test=32)
    ck = tmp_path / "r20.npz"
    rc, out, err, _ = mpiexec(2, TRAIN, "--distributed", "--model", "resnet20", "--epochs", "1",
                              "--batch-size", "32", "--data", data, "--quiet", "--threads", "1",
                              "--save", ck, timeout=120)
    assert rc == 0, out + err
    assert out.count("resnet20: 269,434 parameters") == 1 and "× 2 ranks" in out, out
    assert out.count("epoch 1: train loss") == 1 and out.count("final test accuracy") == 1, out
    saved = mg.load(str(ck))
    assert int(saved["epoch"]) == 1
    assert set(saved["model"]) == set(minigrad.models.resnet20(num_classes=10, in_channels=1).state_dict())
    assert all(np.all(np.isfinite(v)) for v in saved["model"].values())


@needs_mpi
def test_time_budget_stops_every_rank_at_the_same_step(tmp_path):
    """--time-budget with 1000 epochs: the ranks follow rank 0's clock, so they stop together
    (a rank stopping alone would leave the other waiting in a collective until the timeout;
    the clocks rarely straddle the budget, so the wiring itself is checked in one process
    by test_cosine_over_time_follows_the_broadcast_clock)."""
    data = _fake_fashion_mnist(tmp_path / "data", n_train=64, n_test=32)
    rc, out, err, _ = mpiexec(2, TRAIN, "--distributed", "--model", "lenet5", "--epochs", "1000",
                              "--time-budget", "0.02", "--batch-size", "16", "--data", data,
                              "--quiet", "--threads", "1", timeout=120)
    assert rc == 0, out + err
    assert out.count("time budget spent") == 1 and out.count("final test accuracy") == 1, out


def test_cosine_over_time_follows_the_broadcast_clock(monkeypatch):
    """CosineOverTime takes its elapsed time from dt.broadcast_value (rank 0's clock under MPI):
    with a broadcast that answers "half the budget", the lr is half the peak whatever this
    process's own clock says, and "the whole budget" finishes it."""
    p = mg.nn.Parameter(np.zeros(1, np.float32))
    opt = mg.optim.SGD([p], lr=0.1)
    sched = train.CosineOverTime(opt, 100.0)
    monkeypatch.setattr(train.dt, "broadcast_value", lambda value: 50.0)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05) and not sched.finished
    monkeypatch.setattr(train.dt, "broadcast_value", lambda value: 100.0)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12) and sched.finished
