"""Products with a small inner dimension and a large result (a Linear layer's weight
gradient ∂L/∂W = Δᵀ X, k = the batch): ext/small_k.h against OpenBLAS, and PyTorch's
torch.mm where importable.

    python benchmarks/small_k.py            # the table
    python benchmarks/small_k.py --quick    # fewer repetitions

float32, the OpenMP threads (mg.get_num_threads()), C = Aᵀ B with A (k, m) and B (k, n)
as Linear's backward has them (Δ (batch, out), X (batch, in)), a new C each call. The
three take turns call by call; ms = median, ratio = median of the per-turn ratios
small_k / OpenBLAS. OpenBLAS: _blas.split_matmul with the small-k rule switched off (one
single-threaded GEMM per block of C on the same threads).
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import minigrad as mg                      # noqa: E402
from minigrad import _blas                 # noqa: E402
from minigrad._ext import gemm             # noqa: E402

try:
    import torch
except ImportError:                        # pragma: no cover
    torch = None

SHAPES = [  # m, k, n: C (m × n) from k rows
    (4096, 32, 25088, "VGG-11 fc1 ∂L/∂W, batch 32"),
    (4096, 32, 4096, "VGG-11 fc2 ∂L/∂W, batch 32"),
    (4096, 64, 4096, "fc2, batch 64"),
    (4096, 128, 4096, "fc2, batch 128"),
    (4096, 16, 4096, "fc2, batch 16"),
    (1000, 32, 2048, "a 2048 → 1000 classifier"),
    (1024, 32, 1024, ""),
    (512, 32, 512, ""),
    (256, 32, 256, ""),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if not gemm.small_k_available():
        sys.exit("this build or CPU has no AVX-512 small-k loop (ext/small_k.h)")
    turns = 3 if args.quick else 9
    nt = mg.get_num_threads()
    if torch is not None:
        torch.set_num_threads(nt)
    rng = np.random.default_rng(0)
    print(f"float32, {nt} threads, C = Aᵀ B, a new C each call; {turns} turns, ms = median")
    print(f"{'m':>6}{'k':>5}{'n':>7}{'small_k':>10}{'OpenBLAS':>10}{'ratio':>7}"
          f"{'torch':>9}  shape")
    saved = _blas.SMALL_K_MAX
    for m, k, n, what in SHAPES:
        a = rng.standard_normal((k, m)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        reps = max(1, int(3e8 // (2 * m * k * n)))

        def ours():
            _blas.SMALL_K_MAX = max(saved, k)
            _blas.split_matmul(a.T, b)

        def openblas():
            _blas.SMALL_K_MAX = 0
            _blas.split_matmul(a.T, b)

        runs = [("small_k", ours), ("openblas", openblas)]
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            runs.append(("torch", lambda: torch.mm(ta.t(), tb)))
        times = {name: [] for name, _ in runs}
        try:
            for turn in range(turns):
                for name, fn in (runs if turn % 2 == 0 else runs[::-1]):
                    fn()
                    t = time.perf_counter()
                    for _ in range(reps):
                        fn()
                    times[name].append((time.perf_counter() - t) / reps * 1e3)
        finally:
            _blas.SMALL_K_MAX = saved
        med = {name: statistics.median(v) for name, v in times.items()}
        ratio = statistics.median(s / o for s, o in zip(times["small_k"], times["openblas"]))
        tt = f"{med['torch']:9.3f}" if "torch" in med else f"{'-':>9}"
        print(f"{m:6d}{k:5d}{n:7d}{med['small_k']:10.3f}{med['openblas']:10.3f}{ratio:7.2f}{tt}  {what}")


if __name__ == "__main__":
    main()
