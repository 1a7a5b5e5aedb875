"""Data-parallel training on this machine: 1 rank × 2 threads vs 2 ranks × 1 thread.

    python benchmarks/distributed.py                       # LeNet-5, global batch 64 and 256
    python benchmarks/distributed.py --model lenet5 resnet20 --batch 64 256

One step = forward, cross-entropy, zero_grad, backward, SGD-momentum step, on a fixed
random batch of 1×28×28 images (global batch B: one process takes all of it; each of the
2 ranks of `mpiexec -n 2` takes B/2, under DistributedDataParallel). Per configuration
the median step time over --steps steps, in --rounds rounds alternating the two
configurations (the machine is shared), and images/s = B / step time. "1×1 thr B/2" is
one process, one thread, on half the batch: a rank's compute, what 2×1 would take with
free communication and no contention between the ranks.

Communication share: each rank alternates steps that all-reduce the gradients with
steps under no_sync() (the same compute, no communication); share = 1 − t_no_sync / t_sync,
the step time communication adds (what overlap with backward did not hide). Also the
median time of one blocking MPI_Allreduce of the gradient's bytes.

Then the cost model for N machines (README, "Several machines"): ring all-reduce sends
and receives 2·(N−1)/N × S bytes per machine per step (S = gradient bytes); with no
overlap a step takes t_c + 2·(N−1)/N · S / BW, so scaling efficiency
t_c / (t_c + t_comm) ≥ 90 % needs BW ≥ 9 · 2·(N−1)/N · S / t_c, t_c = the measured
1 process × 2 threads step (one machine's compute for its share B of the batch).

resnet20 needs minigrad.models (examples/train.py's model zoo).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(here)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, here)
from common import print_table  # noqa: E402


def make_model(name):
    import minigrad as mg
    mg.manual_seed(0)
    if name == "lenet5":
        from lenet import lenet5
        return lenet5()
    try:
        from minigrad import models
    except ImportError:
        raise SystemExit(f"--model {name} needs minigrad.models (examples/train.py's model zoo)")
    return getattr(models, name)(num_classes=10, in_channels=1)


def stepper(model_name, n, ddp=False):
    """(step(sync=True), model, gradient bytes) on a fixed batch of n images."""
    import minigrad as mg
    import minigrad.nn.functional as F
    model = make_model(model_name)
    grad_bytes = sum(p.data.nbytes for p in model.parameters())
    net = model
    if ddp:
        from minigrad.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model)
    opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(1)
    x = mg.tensor(rng.standard_normal((n, 1, 28, 28)).astype(np.float32))
    y = mg.tensor(rng.integers(0, 10, n))

    def step(sync=True):
        if ddp and not sync:
            with net.no_sync():
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad()
                loss.backward()
        else:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
        opt.step()
    return step, grad_bytes


def child_single(model_name, batch, steps):
    step, grad_bytes = stepper(model_name, batch)
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"step": statistics.median(times), "grad_bytes": grad_bytes}))


def child_ddp(model_name, batch, steps):
    import minigrad.distributed as dist
    from mpi4py import MPI
    dist.init_process_group()
    R = dist.get_world_size()
    step, grad_bytes = stepper(model_name, batch // R, ddp=True)
    for _ in range(3):
        step()
        step(sync=False)
    sync, nosync = [], []
    for _ in range(steps):                   # paired: a step with and one without all-reduce
        for flag, out in ((True, sync), (False, nosync)):
            dist.barrier()
            t0 = time.perf_counter()
            step(flag)
            out.append(time.perf_counter() - t0)
    buf = np.zeros(grad_bytes // 4, np.float32)
    ar = []
    for _ in range(steps):
        dist.barrier()
        t0 = time.perf_counter()
        MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, buf)
        ar.append(time.perf_counter() - t0)
    mine = np.array([statistics.median(sync), statistics.median(nosync), statistics.median(ar)])
    dist.all_reduce(mine, op="max")          # the slowest rank sets the pace
    if dist.get_rank() == 0:
        print(json.dumps({"step": mine[0], "nosync": mine[1], "allreduce": mine[2],
                          "grad_bytes": grad_bytes}))


def run(cmd, threads):
    env = dict(os.environ, MINIGRAD_NUM_THREADS=str(threads), PYTHONPATH=os.pathsep.join(
        [ROOT] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", default=["lenet5"])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 256], help="global batch sizes")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", choices=["single", "ddp"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        fn = child_single if args.child == "single" else child_ddp
        return fn(args.model[0], args.batch[0], args.steps)
    if shutil.which("mpiexec") is None:
        raise SystemExit('needs mpiexec and mpi4py: pip install "minigrad[distributed]"')
    me = [sys.executable, os.path.abspath(__file__), "--steps", str(args.steps)]
    rows, model_rows = [], []
    for model in args.model:
        for B in args.batch:
            single, half, ddp = [], [], []
            for _ in range(args.rounds):
                single.append(run(me + ["--child", "single", "--model", model, "--batch", str(B)], 2))
                half.append(run(me + ["--child", "single", "--model", model, "--batch", str(B // 2)], 1))
                ddp.append(run(["mpiexec", "-n", "2"] + me + ["--child", "ddp", "--model", model,
                                                              "--batch", str(B)], 1))
            t1 = statistics.median(r["step"] for r in single)
            th = statistics.median(r["step"] for r in half)
            t2 = statistics.median(r["step"] for r in ddp)
            t2n = statistics.median(r["nosync"] for r in ddp)
            ar = statistics.median(r["allreduce"] for r in ddp)
            S = single[0]["grad_bytes"]
            rows.append((model, B, f"{t1 * 1e3:.2f}", f"{B / t1:,.0f}", f"{th * 1e3:.2f}",
                         f"{t2 * 1e3:.2f}", f"{B / t2:,.0f}",
                         f"{t2n * 1e3:.2f}", f"{max(0.0, 1 - t2n / t2):.0%}", f"{ar * 1e3:.3f}"))
            model_rows.append((model, B, t1, S))
    print("Step time and throughput, global batch B (1×28×28 images); medians of "
          f"{args.rounds} rounds × {args.steps} steps")
    head = ["model", "B", "1×2 thr ms", "1×2 img/s", "1×1 thr B/2 ms", "2×1 thr ms", "2×1 img/s", "2×1 no_sync ms",
            "comm share", "allreduce ms"]
    print_table(head, rows)

    print("\nCost model: bandwidth per machine for ≥ 90 % scaling efficiency (no overlap),")
    print("BW ≥ 9 · 2(N−1)/N · S / t_c, t_c = one machine's step (1 × 2 threads) at batch B per machine")
    cost = []
    for model, B, t1, S in model_rows:
        for N in (8, 64, 512):
            bw = 9 * 2 * (N - 1) / N * S / t1
            cost.append((model, B, f"{S / 1e6:.3f}", f"{t1 * 1e3:.2f}", N, f"{bw / 1e9 * 8:.2f}"))
    print_table(["model", "B/machine", "S MB", "t_c ms", "N", "Gbit/s needed"], cost)


if __name__ == "__main__":
    main()
