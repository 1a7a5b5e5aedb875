"""Checks that run on every rank of `mpiexec -n N python tests/mpi_worker.py CHECK...`
(launched by tests/test_distributed.py). A failed check raises; init_process_group's
excepthook then aborts the job, so mpiexec exits non-zero with the rank's traceback.
Each check prints "ok CHECK" on rank 0 when it passed on every rank.

The reference for every data-parallel result is one process training on the global
batch, computed on each rank from the same seeds (float64, relative tolerance 1e-10).
"""
import sys
import time

import numpy as np

import minigrad as mg
import minigrad.distributed as dist
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.nn.parallel import DistributedDataParallel as DDP

RTOL = 1e-10


def to_double(module):
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    for m in module.modules():
        for name, b in m._buffers.items():
            if b is not None and b.dtype.kind == "f":
                m._buffers[name] = b.astype(np.float64)
    return module


def close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)
    assert err <= RTOL, f"{what}: relative error {err:.3g} > {RTOL} (rank {dist.get_rank()})"


def same_on_every_rank(arrays, what):
    """Bitwise equality with rank 0's arrays."""
    for i, a in enumerate(arrays):
        theirs = np.array(a, copy=True)
        dist.broadcast(theirs, src=0)
        assert np.array_equal(theirs, a), f"{what}[{i}] differs between rank 0 and rank {dist.get_rank()}"


class Net(nn.Module):
    """conv → (Sync)BatchNorm → ReLU → max pool → linear, plus a second head that the
    forward uses only when asked (for the unused-parameter check)."""

    def __init__(self, norm=None):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, bias=norm is None)   # BN makes a bias moot
        self.norm = norm(4) if norm is not None else None
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 3 * 3, 5)
        self.extra = nn.Linear(4 * 3 * 3, 5)
        self.use_extra = False

    def forward(self, x):
        h = self.conv(x)
        if self.norm is not None:
            h = self.norm(h)
        h = self.pool(h.relu()).flatten(1)
        out = self.fc(h)
        if self.use_extra:
            out = out + self.extra(h)
        return out


def make(seed, norm=None):
    mg.manual_seed(seed)
    return to_double(Net(norm))


def global_batches(steps, n, seed=7):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 2, 6, 6)), rng.integers(0, 5, n)) for _ in range(steps)]


def my_slice(n_global):
    R, r = dist.get_world_size(), dist.get_rank()
    b = n_global // R
    return slice(r * b, (r + 1) * b)


# ---- checks -------------------------------------------------------------------------------------
def check_collectives():
    r, R = dist.get_rank(), dist.get_world_size()
    t = mg.tensor(np.full((2, 3), r + 1.0))
    dist.all_reduce(t)
    assert np.all(t.numpy() == R * (R + 1) / 2)
    for op, want in (("max", R), ("min", 1), ("avg", (R + 1) / 2), ("product", float(np.prod(np.arange(1, R + 1))))):
        a = np.array([r + 1.0])
        dist.all_reduce(a, op=op)
        assert a[0] == want, (op, a, want)
    base = np.arange(12.0).reshape(3, 4) * (r + 1)
    view = base[:, ::2]                                   # non-contiguous, written in place
    dist.all_reduce(view)
    assert np.array_equal(base[:, ::2], np.arange(12.0).reshape(3, 4)[:, ::2] * R * (R + 1) / 2)
    work = dist.all_reduce(np.array([float(r)]), async_op=True)
    assert work.wait()
    b = np.array([r * 10, r * 10 + 1], dtype=np.int64)
    dist.broadcast(b, src=R - 1)
    assert b.tolist() == [(R - 1) * 10, (R - 1) * 10 + 1]
    out = [np.empty(3) for _ in range(R)]
    dist.all_gather(out, mg.tensor(np.full(3, float(r))))
    assert [o[0] for o in out] == [float(i) for i in range(R)]
    objs = [{"rank": r}, "x"]
    dist.broadcast_object_list(objs, src=0)
    assert objs == [{"rank": 0}, "x"]
    dist.barrier()
    for bad in (lambda: dist.all_reduce(np.zeros(2), op="mean"), lambda: dist.broadcast(np.zeros(2), src=R)):
        try:
            bad()
        except ValueError:
            pass
        else:
            raise AssertionError("a bad collective argument did not raise ValueError")


def train_and_compare(norm=None, bucket_cap_mb=25, steps=3, per_rank=4, accumulate=1):
    """N ranks × `steps` steps × per-rank batch vs one process on the global batch."""
    R, r = dist.get_world_size(), dist.get_rank()
    ddp = DDP(make(100 + r, norm and nn.SyncBatchNorm), bucket_cap_mb=bucket_cap_mb)
    ref = make(100, norm and nn.BatchNorm2d)                  # rank 0's initial weights
    opt = mg.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    ref_opt = mg.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    same_on_every_rank([p.numpy() for p in ddp.parameters()], "parameters after the broadcast")
    batches = global_batches(steps * accumulate, R * per_rank)
    mine = my_slice(R * per_rank)
    for k in range(steps):
        opt.zero_grad()
        ref_opt.zero_grad()
        for j in range(accumulate):
            x, y = batches[k * accumulate + j]
            ctx = ddp.no_sync() if j < accumulate - 1 else _nullcontext()
            with ctx:
                F.cross_entropy(ddp(mg.tensor(x[mine])), mg.tensor(y[mine])).backward()
            F.cross_entropy(ref(mg.tensor(x)), mg.tensor(y)).backward()
        for (name, p), q in zip(ddp.module.named_parameters(), ref.parameters()):
            if q.grad is None:                                # the unused head
                assert p.grad is None, f"{name} has a gradient but no rank used it"
                continue
            close(p.grad.numpy(), q.grad.numpy(), f"step {k} gradient of {name}")
        opt.step()
        ref_opt.step()
        same_on_every_rank([p.numpy() for p in ddp.parameters()], f"weights after step {k}")
        for (name, p), q in zip(ddp.module.named_parameters(), ref.parameters()):
            close(p.numpy(), q.numpy(), f"step {k} weight {name}")
    if norm:
        close(ddp.module.norm.running_mean, ref.norm.running_mean, "running_mean")
        close(ddp.module.norm.running_var, ref.norm.running_var, "running_var")
    return ddp


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def check_ddp_equivalence():
    ddp = train_and_compare()
    assert len(ddp._buckets) == 1


def check_ddp_buckets():
    ddp = train_and_compare(bucket_cap_mb=30 / 2**20)        # 30 bytes: one bucket per tensor
    names = {id(p): n for n, p in ddp.module.named_parameters()}
    order = [[names[id(p)] for p in b.params] for b in ddp._buckets]
    assert order == [[n] for n in reversed(list(names.values()))], order   # reverse registration
    # overlap: when backward reaches the first layer, the later layers' buckets are in flight
    started = []
    ddp.module.conv.weight.register_hook(lambda g: started.append(ddp._next_bucket))
    x, y = global_batches(1, 8)[0]
    ddp.module.use_extra = True                  # (an unused head would hold back its bucket)
    F.cross_entropy(ddp(mg.tensor(x)), mg.tensor(y)).backward()
    ddp.module.use_extra = False
    assert len(started) == 1 and started[0] >= 4, started   # extra.*, fc.* (conv.bias) started
    assert ddp._next_bucket == 0 and all(b.request is None for b in ddp._buckets)


def check_ddp_no_sync():
    train_and_compare(accumulate=2, bucket_cap_mb=300 / 2**20)


def check_ddp_sync_batchnorm():
    train_and_compare(norm=True)


def check_ddp_unused_parameters():
    """A head used on rank 0 only: its gradient is the mean of rank 0's and zero."""
    R, r = dist.get_world_size(), dist.get_rank()
    model = make(5)
    ddp = DDP(model, bucket_cap_mb=300 / 2**20)
    x, y = global_batches(1, R * 3)[0]
    mine = my_slice(R * 3)
    model.use_extra = r == 0
    F.cross_entropy(ddp(mg.tensor(x[mine])), mg.tensor(y[mine])).backward()
    local = make(5)                                           # this rank's own gradient
    local.use_extra = r == 0
    F.cross_entropy(local(mg.tensor(x[mine])), mg.tensor(y[mine])).backward()
    for (name, p), q in zip(model.named_parameters(), local.parameters()):
        g = np.zeros_like(q.numpy()) if q.grad is None else q.grad.numpy().copy()
        dist.all_reduce(g)
        close(p.grad.numpy(), g / R, f"gradient of {name}")
    assert (r == 0) == (local.extra.weight.grad is not None)   # the head is used on rank 0 only


def check_ddp_buffers():
    """broadcast_buffers: each training forward starts from rank 0's running statistics."""
    R, r = dist.get_world_size(), dist.get_rank()
    model = make(1, nn.BatchNorm2d)
    ddp = DDP(model)
    x, _ = global_batches(1, R * 3)[0]
    xr = x[my_slice(R * 3)]
    model.norm.running_mean[...] = r + 1.0                    # ranks disagree before the forward
    ddp(mg.tensor(xr))
    h = model.conv(mg.tensor(xr)).numpy()
    expect = 0.9 * 1.0 + 0.1 * h.mean(axis=(0, 2, 3))        # rank 0's value, then this batch
    close(model.norm.running_mean, expect, "running_mean after a DDP forward")
    model.norm.running_mean[...] = r + 1.0
    with mg.no_grad():
        ddp(mg.tensor(xr))                                    # no graph: no broadcast
    close(model.norm.running_mean, 0.9 * (r + 1.0) + 0.1 * h.mean(axis=(0, 2, 3)),
          "running_mean after a forward under no_grad")


def check_sync_batchnorm():
    """SyncBatchNorm alone, uneven local batches, against BatchNorm2d on the global batch."""
    R, r = dist.get_world_size(), dist.get_rank()
    rng = np.random.default_rng(3)
    sizes = [2 + i for i in range(R)]                          # 2, 3, ... samples per rank
    lo, hi = sum(sizes[:r]), sum(sizes[:r + 1])
    x = rng.standard_normal((sum(sizes), 3, 4, 5)) * 2 + 1.5
    c = rng.standard_normal(x.shape)                           # loss = Σ y · c
    w, b = rng.standard_normal(3), rng.standard_normal(3)

    def layer(cls):
        m = cls(3, momentum=0.3, dtype=np.float64)
        m.weight.data[...], m.bias.data[...] = w, b
        return m
    sync, bn = layer(nn.SyncBatchNorm), layer(nn.BatchNorm2d)
    xs, xg = mg.tensor(x[lo:hi], requires_grad=True), mg.tensor(x, requires_grad=True)
    ys, yg = sync(xs), bn(xg)
    close(ys.numpy(), yg.numpy()[lo:hi], "SyncBatchNorm forward")
    (ys * mg.tensor(c[lo:hi])).sum().backward()
    (yg * mg.tensor(c)).sum().backward()
    close(xs.grad.numpy(), xg.grad.numpy()[lo:hi], "SyncBatchNorm input gradient")
    for name in ("weight", "bias"):
        g = getattr(sync, name).grad.numpy().copy()
        dist.all_reduce(g)
        close(g, getattr(bn, name).grad.numpy(), f"SyncBatchNorm {name} gradient (summed over ranks)")
    close(sync.running_mean, bn.running_mean, "running_mean")
    close(sync.running_var, bn.running_var, "running_var")
    sync.eval()
    bn.eval()
    close(sync(mg.tensor(x[lo:hi])).numpy(), bn(mg.tensor(x)).numpy()[lo:hi], "eval forward")
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)))
    assert type(converted[1]) is nn.SyncBatchNorm


def check_training_helpers():
    """minigrad.distributed.training: what examples/lenet.py --distributed is built on."""
    from minigrad.distributed import training as dt
    R, r = dist.get_world_size(), dist.get_rank()
    assert dt.rank_and_world_size() == (r, R) and dt.is_main_process() == (r == 0)
    assert dt.reduce_sum(r, 1.5) == (R * (R - 1) / 2, 1.5 * R)
    assert dt.broadcast_value({"from": r}) == {"from": 0}
    x = np.arange(40.0)
    loader = dt.data_loader((x,), 4 * R, shuffle=True, seed=2)
    steps = [np.sort(np.concatenate([b[0].numpy() for b in dist_all(batch)])) for batch in loader]
    one = mg.data.DataLoader((x,), 4 * R, shuffle=True, drop_last=True, seed=2)
    assert len(steps) == len(one) and all(np.array_equal(s, np.sort(b.numpy())) for s, (b,) in zip(steps, one))
    try:
        dt.data_loader((x,), 4 * R + 1)
    except ValueError as e:
        assert "divisible" in str(e)
    else:
        raise AssertionError("an indivisible global batch did not raise")
    assert isinstance(dt.wrap_model(nn.Linear(2, 2)), DDP)
    try:
        DDP(nn.Linear(2, 2 + (r == 1)))                     # rank 1 built another model
    except ValueError as e:
        assert "differs between ranks" in str(e) and "(3, 2)" in str(e), e
    else:
        raise AssertionError("DDP accepted models that differ between ranks")


def dist_all(batch):
    """Every rank's batch (a tuple of Tensors), gathered on every rank."""
    (t,) = batch
    out = [np.empty_like(t.numpy()) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return [(mg.tensor(o),) for o in out]


def check_raise():
    """Rank 1 raises while rank 0 waits in a collective it will never complete."""
    if dist.get_rank() == 1:
        time.sleep(0.5)
        raise ValueError("boom on rank 1")
    dist.barrier()
    time.sleep(120)


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


def main(names):
    dist.init_process_group(backend="mpi")
    for name in names:
        CHECKS[name]()
        dist.barrier()
        if dist.get_rank() == 0:
            print(f"ok {name}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:] or [n for n in CHECKS if n != "raise"])
