"""Products with one thin dimension (a batch), as a Linear layer has them:
ext/thin_gemm.h's loops against OpenBLAS, and PyTorch's torch.mm where importable.

    python benchmarks/thin_gemm.py            # the table
    python benchmarks/thin_gemm.py --quick    # fewer repetitions

float32, the OpenMP threads (mg.get_num_threads()), a new C each call, through
_blas.split_matmul with the operands laid out as Linear's forward and backward pass them:
  small_k  ∂L/∂W = Δᵀ X     A = Δᵀ (a transposed view of Δ (k, m)), B = X (k, n)
  small_m  ∂L/∂x = δ W      A = δ (m, k), B = W (k, n)
  small_n  yᵀ = W Xᵀ        A = W (m, k), B = Xᵀ (a transposed view of X (n, k))
"ours" forces the row's loop (its size limits lifted for the rows past them), "OpenBLAS"
switches the loops off (one single-threaded GEMM per block of C on the same threads). The
libraries take turns call by call; ms = median, ratio = median of the per-turn ratios
ours / OpenBLAS.
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

SHAPES = [  # loop, m, k, n: C (m × n) = A (m × k) · B (k × n)
    ("small_k", 4096, 32, 25088, "VGG-11 fc1 ∂L/∂W, batch 32"),
    ("small_k", 4096, 32, 4096, "VGG-11 fc2 ∂L/∂W, batch 32"),
    ("small_k", 4096, 64, 4096, "fc2, batch 64"),
    ("small_k", 4096, 128, 4096, "fc2, batch 128"),
    ("small_k", 4096, 16, 4096, "fc2, batch 16"),
    ("small_k", 1000, 32, 2048, "a 2048 → 1000 classifier"),
    ("small_k", 1024, 32, 1024, ""),
    ("small_k", 512, 32, 512, ""),
    ("small_m", 32, 4096, 25088, "VGG-11 fc1 ∂L/∂x, batch 32"),
    ("small_m", 32, 4096, 4096, "fc2 ∂L/∂x"),
    ("small_m", 64, 4096, 4096, "fc2 ∂L/∂x, batch 64"),
    ("small_m", 128, 4096, 4096, "fc2 ∂L/∂x, batch 128"),
    ("small_m", 32, 1024, 4096, "k·n = 2²²"),
    ("small_n", 4096, 25088, 32, "VGG-11 fc1 forward, batch 32"),
    ("small_n", 4096, 4096, 32, "fc2 forward"),
    ("small_n", 4096, 4096, 64, "fc2 forward, batch 64"),
    ("small_n", 4096, 4096, 128, "fc2 forward, batch 128"),
    ("small_n", 1024, 4096, 32, "m·k = 2²²"),
]
LIMITS = ("SMALL_K_MAX", "SMALL_K_MIN_OUTPUT", "SMALL_M_MAX", "SMALL_N_MAX", "THIN_MIN_OPERAND")


def operands(rng, loop, m, k, n):
    """(A, B) laid out as Linear passes them (see above)."""
    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)
    if loop == "small_k":
        return r(k, m).T, r(k, n)
    if loop == "small_m":
        return r(m, k), r(k, n)
    return r(m, k), r(n, k).T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if not gemm.thin_available():
        sys.exit("this build or CPU has no AVX-512 loops (ext/thin_gemm.h)")
    turns = 3 if args.quick else 9
    nt = mg.get_num_threads()
    if torch is not None:
        torch.set_num_threads(nt)
    rng = np.random.default_rng(0)
    print(f"float32, {nt} threads, a new C each call; {turns} turns, ms = median")
    print(f"{'loop':>8}{'m':>6}{'k':>7}{'n':>7}{'ours':>9}{'OpenBLAS':>10}{'ratio':>7}"
          f"{'torch':>9}  shape")
    saved = {name: getattr(_blas, name) for name in LIMITS}
    for loop, m, k, n, what in SHAPES:
        a, b = operands(rng, loop, m, k, n)
        reps = max(1, int(3e8 // (2 * m * k * n)))

        def ours():
            _blas._thin_loops = True
            _blas.SMALL_K_MAX = max(saved["SMALL_K_MAX"], k)
            _blas.SMALL_M_MAX, _blas.SMALL_N_MAX = max(saved["SMALL_M_MAX"], m), max(saved["SMALL_N_MAX"], n)
            _blas.SMALL_K_MIN_OUTPUT = _blas.THIN_MIN_OPERAND = 0
            if loop != "small_k":
                _blas.SMALL_K_MAX = 0
            assert _blas.thin(m, k, n, a.dtype, not a.flags.c_contiguous, not b.flags.c_contiguous) == loop
            _blas.split_matmul(a, b)

        def openblas():
            _blas._thin_loops = False
            _blas.split_matmul(a, b)

        runs = [("ours", ours), ("openblas", openblas)]
        if torch is not None:
            ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
            ta, tb = (ta if a.flags.c_contiguous else torch.from_numpy(a.T).t(),
                      tb if b.flags.c_contiguous else torch.from_numpy(b.T).t())
            runs.append(("torch", lambda: torch.mm(ta, tb)))
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
            for name, value in saved.items():
                setattr(_blas, name, value)
            _blas._thin_loops = None
        med = {name: statistics.median(v) for name, v in times.items()}
        ratio = statistics.median(s / o for s, o in zip(times["ours"], times["openblas"]))
        tt = f"{med['torch']:9.3f}" if "torch" in med else f"{'-':>9}"
        print(f"{loop:>8}{m:6d}{k:7d}{n:7d}{med['ours']:9.3f}{med['openblas']:10.3f}{ratio:7.2f}{tt}  {what}")


if __name__ == "__main__":
    main()
