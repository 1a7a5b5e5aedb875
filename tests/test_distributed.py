"""minigrad.distributed, DistributedDataParallel, SyncBatchNorm, DistributedSampler.

The multi-rank tests launch `mpiexec -n N python tests/mpi_worker.py CHECK...` (the checks
and their reference computations are in that file); they are skipped when mpi4py or
mpiexec is missing (`pip install "minigrad[distributed]"`; CI installs them).
"""
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import minigrad as mg
import minigrad.distributed as dist
from minigrad.data import DataLoader, DistributedSampler

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKER = str(ROOT / "tests" / "mpi_worker.py")

needs_mpi = pytest.mark.skipif(
    not dist.is_available() or shutil.which("mpiexec") is None,
    reason='needs mpi4py and mpiexec: pip install "minigrad[distributed]" (or: pip install mpi4py mpich)')


def mpiexec(n, *args, timeout=180):
    """Run `mpiexec -n n python args...` with this checkout's minigrad; (rc, stdout, stderr, s)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    env.setdefault("MINIGRAD_NUM_THREADS", "1")
    t0 = time.perf_counter()
    p = subprocess.run(["mpiexec", "-n", str(n), sys.executable, *map(str, args)], env=env,
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0


# ---- several ranks (mpiexec) -------------------------------------------------------------
@needs_mpi
def test_two_ranks_match_one_process_on_the_global_batch():
    """Every check of mpi_worker.py on 2 ranks: collectives; DDP (one bucket, one bucket per
    tensor, no_sync accumulation, SyncBatchNorm inside, a head one rank does not use)
    against one process on the global batch after every step (float64, relative 1e-10),
    with different initial weights per rank and weights bitwise equal across ranks;
    buffer broadcasting; SyncBatchNorm against BatchNorm2d on the global batch; the
    helpers of minigrad.distributed.training."""
    rc, out, err, _ = mpiexec(2, WORKER)
    assert rc == 0, out + err
    for check in ("collectives", "ddp_equivalence", "ddp_buckets", "ddp_no_sync",
                  "ddp_sync_batchnorm", "ddp_unused_parameters", "ddp_buffers", "sync_batchnorm",
                  "training_helpers"):
        assert f"ok {check}\n" in out, out + err
    assert out.count("ok ") == 9, out                   # rank 0 alone prints


@needs_mpi
def test_three_ranks_match_one_process():
    rc, out, err, _ = mpiexec(3, WORKER, "ddp_equivalence", "ddp_buckets", "sync_batchnorm")
    assert rc == 0, out + err
    assert out.count("ok ") == 3, out + err


@needs_mpi
def test_a_rank_that_raises_ends_the_whole_job_quickly():
    """Rank 1 raises while rank 0 waits in a barrier: mpiexec exits non-zero, with rank 1's
    traceback, in well under 30 s (rank 0 would otherwise wait forever)."""
    rc, out, err, seconds = mpiexec(2, WORKER, "raise", timeout=90)
    assert rc != 0
    assert seconds < 30, seconds
    assert "[rank 1/2] uncaught exception" in err and "ValueError: boom on rank 1" in err, err


# ---- one process ---------------------------------------------------------------------------
def test_importing_minigrad_does_not_need_mpi4py_and_init_says_what_to_install():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import minigrad, minigrad.distributed as d, minigrad.nn as nn\n"
            "assert not d.is_available() and not d.is_initialized()\n"
            "try:\n    d.init_process_group()\nexcept ImportError as e:\n    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert p.returncode == 0, p.stderr
    assert "pip install" in p.stdout and "mpi4py" in p.stdout, p.stdout


def test_using_the_group_before_init_raises():
    assert not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier, lambda: dist.all_reduce(np.zeros(2))):
        with pytest.raises(RuntimeError, match="init_process_group"):
            fn()
    with pytest.raises(RuntimeError, match="init_process_group"):
        mg.nn.parallel.DistributedDataParallel(mg.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="num_replicas"):
        DistributedSampler(range(4))
    with pytest.raises(ValueError, match="backend"):
        dist.init_process_group(backend="nccl")


def test_sync_batchnorm_is_batchnorm_without_a_process_group(rng):
    x = rng.standard_normal((4, 3, 5, 5))
    sync, bn = mg.nn.SyncBatchNorm(3, dtype=np.float64), mg.nn.BatchNorm2d(3, dtype=np.float64)
    np.testing.assert_array_equal(sync(mg.tensor(x)).numpy(), bn(mg.tensor(x)).numpy())
    model = mg.nn.Sequential(mg.nn.Conv2d(3, 3, 1), mg.nn.BatchNorm2d(3), mg.nn.ReLU())
    bn_layer = model[1]
    converted = mg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[1]) is mg.nn.SyncBatchNorm
    assert converted[1].weight is bn_layer.weight and converted[1].running_var is bn_layer.running_var
    assert list(converted.state_dict()) == list(model.state_dict())


# ---- DistributedSampler -------------------------------------------------------------------
def shards(n, R, **kw):
    return [list(DistributedSampler(range(n), num_replicas=R, rank=r, **kw)) for r in range(R)]


@pytest.mark.parametrize("n", [0, 1, 5, 10, 12, 13])
@pytest.mark.parametrize("R", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("shuffle", [False, True])
def test_sampler_shards_are_disjoint_equal_sized_and_cover_the_data(n, R, shuffle):
    s = shards(n, R, shuffle=shuffle, seed=3)
    assert len({len(x) for x in s}) == 1
    assert len(s[0]) == math.ceil(n / R) == len(DistributedSampler(range(n), R, 0))
    flat = [i for x in s for i in x]
    assert set(flat) == set(range(n))                       # covering
    if n % R == 0:
        assert sorted(flat) == list(range(n))               # disjoint: no padding needed
    else:
        assert len(flat) - n == R * math.ceil(n / R) - n    # only the padding repeats

    d = shards(n, R, shuffle=shuffle, seed=3, drop_last=True)
    dropped = [i for x in d for i in x]
    assert all(len(x) == n // R for x in d)
    assert len(set(dropped)) == len(dropped) == (n // R) * R   # disjoint, the tail dropped


def test_sampler_pads_with_the_first_indices_as_pytorch_does():
    assert shards(10, 4, shuffle=False) == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    assert shards(2, 5, shuffle=False) == [[0], [1], [0], [1], [0]]      # padding longer than n
    assert shards(10, 4, shuffle=False, drop_last=True) == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_sampler_matches_torch_for_unshuffled_data():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DistributedSampler as TorchSampler
    for n, R, drop_last in [(10, 4, False), (2, 5, False), (13, 3, True), (9, 3, False)]:
        for r in range(R):
            want = list(TorchSampler(range(n), num_replicas=R, rank=r, shuffle=False, drop_last=drop_last))
            got = list(DistributedSampler(range(n), R, r, shuffle=False, drop_last=drop_last))
            assert got == want, (n, R, r, drop_last)
    del torch


def test_sampler_epochs_shuffle_alike_on_every_rank_and_differ_between_epochs():
    a = shards(20, 2, seed=5)
    b = shards(20, 2, seed=5)
    assert a == b
    samplers = [DistributedSampler(range(20), 2, r, seed=5) for r in range(2)]
    for s in samplers:
        s.set_epoch(1)
    c = [list(s) for s in samplers]
    assert c != a and sorted(c[0] + c[1]) == list(range(20))
    assert list(DistributedSampler(range(20), 2, 0, seed=6)) != a[0]


def test_ranks_batches_together_are_the_one_process_batches():
    """DistributedSampler uses DataLoader's permutation, strided: step k's batches of the
    R ranks (b each) together are the one-process batch k of size R·b."""
    x = np.arange(48.0)
    R, b = 3, 4
    one = DataLoader((x,), batch_size=R * b, shuffle=True, seed=9, drop_last=True)
    ranks = [DataLoader((x,), batch_size=b, drop_last=True, sampler=DistributedSampler(x, R, r, seed=9))
             for r in range(R)]
    for epoch in (0, 2):
        one.set_epoch(epoch)
        for loader in ranks:
            loader.set_epoch(epoch)                          # forwards to the sampler
        together = [np.sort(np.concatenate([batch[0].numpy() for batch in step]))
                    for step in zip(*ranks)]
        assert len(together) == len(one) == len(ranks[0]) == 48 // (R * b)
        for got, (want,) in zip(together, one):
            np.testing.assert_array_equal(got, np.sort(want.numpy()))


def test_sampler_and_dataloader_arguments_are_checked():
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas"):
        DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="__len__"):
        DistributedSampler(iter(range(4)), 1, 0)
    with pytest.raises(ValueError, match="epoch"):
        DistributedSampler(range(4), 1, 0).set_epoch(-1)
    s = DistributedSampler(range(4), 1, 0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader((np.zeros(4),), 2, shuffle=True, sampler=s)
    with pytest.raises(ValueError, match="sampler"):
        DataLoader((np.zeros(4),), 2, sampler=5)


# ---- examples/lenet.py --distributed ----------------------------------------------------------
DATA = "/usr/share/datasets/fashion-mnist"
needs_data = pytest.mark.skipif(
    not os.path.isdir(DATA) and not os.environ.get("CI"),
    reason="Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist); CI installs it")


def epoch_lines(out):
    return [line for line in out.splitlines() if line.startswith("epoch ") and ": train loss" in line]


def lenet_numbers(line):
    """(train loss, train acc, test loss, test acc) of an "epoch k: ..." line."""
    m = re.search(r"train loss ([\d.]+) acc ([\d.]+) \| test loss ([\d.]+) acc ([\d.]+)", line)
    return tuple(float(v) for v in m.groups())


@needs_mpi
@needs_data
def test_lenet_distributed_trains_like_one_process_and_resumes_with_any_n(tmp_path):
    """2 ranks × 32 images per step give the epoch that 1 process gives with batches of 64
    (same batches, float32 rounding apart); rank 0 alone prints and saves; a checkpoint
    from 2 ranks resumes in 1 process and vice versa."""
    common = ["--limit", "1024", "--quiet", "--data", DATA, "--batch-size", "64"]
    lenet = str(ROOT / "examples" / "lenet.py")
    rc, out2, err, _ = mpiexec(2, lenet, "--distributed", "--epochs", "1", "--save", tmp_path / "two.npz", *common)
    assert rc == 0, out2 + err
    assert len(epoch_lines(out2)) == 1 and out2.count("best test accuracy") == 1, out2
    assert "× 2 ranks" in out2
    one = subprocess.run([sys.executable, lenet, "--epochs", "1", "--threads", "1", *common],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert one.returncode == 0, one.stderr
    a, b = lenet_numbers(epoch_lines(out2)[0]), lenet_numbers(epoch_lines(one.stdout)[0])
    np.testing.assert_allclose(a, b, atol=2e-3, err_msg=f"2 ranks: {a}, 1 process: {b}")

    resumed = subprocess.run([sys.executable, lenet, "--epochs", "2", "--resume", str(tmp_path / "two.npz"),
                              "--save", str(tmp_path / "one.npz"), "--threads", "1", *common],
                             capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "after epoch 1" in resumed.stdout and [l.split(":")[0] for l in epoch_lines(resumed.stdout)] == ["epoch 2"]
    rc, out3, err, _ = mpiexec(2, lenet, "--distributed", "--epochs", "3", "--resume", tmp_path / "one.npz", *common)
    assert rc == 0, out3 + err
    assert [l.split(":")[0] for l in epoch_lines(out3)] == ["epoch 3"], out3
    assert int(mg.load(str(tmp_path / "one.npz"))["epoch"]) == 2
