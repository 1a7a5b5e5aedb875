"""conv2d forward and backward: minigrad vs a plain-NumPy im2col baseline vs PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv.py   # headline: a user's defaults
    python benchmarks/conv.py            # the full table, environment as set
    python benchmarks/conv.py --quick    # fewer repetitions
    python benchmarks/conv.py --no-numpy # skip the (slow) NumPy baseline
    python benchmarks/conv.py --suite mobilenet   # MobileNetV2's 1×1 and depthwise layers

Protocol (issue 6): float32, NCHW; warm up; then, for each repetition, run minigrad
and PyTorch one after the other and record the ratios of that repetition (the machine
is shared; drift cancels within a pair); report medians of the absolute times and of
the pairwise ratios. Every timed forward+backward follows an untimed one of the same
library ("hot", as in a training loop): on this machine a call after ≥ 20 ms of idling
ran ~2× slower, for both libraries (res-14-s1 forward: minigrad 4.6 → 8.7 ms, PyTorch
4.1 → 7.6 ms). The NumPy baseline (and the sgemm peak) run after all the pairs: NumPy's
multithreaded GEMMs leave OpenBLAS's threads spinning for ~0.1 s afterwards, which
slowed whichever library ran next (res-14-s1 forward: 9.3 and 8.0 ms). "bwd" is
backward only (∂L/∂x, ∂L/∂w, ∂L/∂b for a given δ, graph already built, as
`y.backward(δ)`), "f+b" is forward then backward. The NumPy baseline caches its im2col
matrix in forward (as the usual NumPy implementations do) and computes ∂L/∂x by col2im
with one strided add per tap.

Two tables. In the first, both libraries share this process, minigrad imported first;
what minigrad sets up at import then also applies to PyTorch: its GOMP_SPINCOUNT (how
long idle OpenMP threads spin) and its glibc malloc thresholds, under which PyTorch's
large outputs no longer page-fault (measured: PyTorch's stem-7x7 forward 10.5 ms here,
37 ms in a process of its own). The second table runs each library in a fresh process
of its own (nothing of the other loaded), alternating `--rounds` times, as their users
get them. The header names the OpenBLAS kernel NumPy runs and the GEMM minigrad's
kernels call; "%sgemm" compares a layer's GFLOP/s (forward, and forward+backward
counting 3× the forward's FLOPs) with NumPy's multithreaded sgemm measured in the same
run. The load average is printed: the machine may be shared.
"""
import argparse
import json
import math
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS_HELP, blas_info, child_json, record_results, timed  # noqa: E402

mg = F = _blas = torch = None                       # imported by main() or child()


def _import_minigrad():
    global mg, F, _blas
    import minigrad
    import minigrad.nn.functional
    from minigrad import _blas as blas
    mg, F, _blas = minigrad, minigrad.nn.functional, blas


def _import_torch():
    global torch
    try:
        import torch as t
    except ImportError:                             # PyTorch is optional
        t = None
    torch = t

# (name, N, C, H=W, K, kernel, stride, pad)
SHAPES = [
    ("lenet-c1", 64, 1, 28, 6, 5, 1, 2),
    ("lenet-c2", 64, 6, 14, 16, 5, 1, 0),
    ("cifar-3x3", 64, 3, 32, 16, 3, 1, 1),
    ("res-56-s1", 32, 64, 56, 64, 3, 1, 1),
    ("res-56-s2", 32, 64, 56, 128, 3, 2, 1),
    ("res-14-s1", 8, 256, 14, 256, 3, 1, 1),
    ("res-32-s2", 32, 32, 32, 64, 3, 2, 1),
    ("stem-7x7", 16, 3, 224, 64, 7, 2, 3),
]

# MobileNetV2's pair at 64×64 input, batch 32 (benchmarks/networks.py): the pointwise 1×1
# layers (a GEMM each) and the depthwise 3×3 ones (groups = channels, the 9th field).
MOBILENET_SHAPES = [
    ("pw-16-96", 32, 16, 32, 96, 1, 1, 0),
    ("pw-144-24", 32, 144, 16, 24, 1, 1, 0),
    ("pw-24-144", 32, 24, 16, 144, 1, 1, 0),
    ("pw-384-64", 32, 384, 4, 64, 1, 1, 0),
    ("dw-32-s1", 32, 32, 32, 32, 3, 1, 1, 32),
    ("dw-144-s1", 32, 144, 16, 144, 3, 1, 1, 144),
    ("dw-96-s2", 32, 96, 32, 96, 3, 2, 1, 96),
    ("dw-384-s1", 32, 384, 4, 384, 3, 1, 1, 384),
]
SUITES = {"conv": SHAPES, "mobilenet": MOBILENET_SHAPES}


def unpack(shape):
    """(name, N, C, H, K, k, s, p, groups) of a shape entry (groups 1 unless a 9th field)."""
    return tuple(shape) + (1,) * (9 - len(shape))


def make_inputs(shape):
    """x (N, C, H, H), w (K, C/groups, k, k), b (K,): float32, seeded."""
    name, N, C, H, K, k, s, p, g = unpack(shape)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, H), dtype=np.float32)
    w = (rng.standard_normal((K, C // g, k, k), dtype=np.float32) / math.sqrt(C // g * k * k)).astype(np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    return rng, x, w, b


# ---- plain NumPy baseline ------------------------------------------------------------

class NumpyConv:
    """im2col with sliding_window_view + one GEMM; backward: GEMMs + col2im by taps."""

    def __init__(self, x, w, b, stride, pad):
        self.x, self.w, self.b, self.s, self.p = x, w, b, stride, pad

    def forward(self):
        x, w, s, p = self.x, self.w, self.s, self.p
        N, C, H, W = x.shape
        K, _, kh, kw = w.shape
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]
        N, C, OH, OW = win.shape[:4]
        self.cols = win.transpose(1, 4, 5, 0, 2, 3).reshape(C * kh * kw, N * OH * OW)
        y = w.reshape(K, -1) @ self.cols                  # (K, C·kh·kw) @ (C·kh·kw, N·OH·OW)
        self.out_shape = (N, K, OH, OW)
        return y.reshape(K, N, OH, OW).transpose(1, 0, 2, 3) + self.b.reshape(1, K, 1, 1)

    def backward(self, δ):
        x, w, s, p = self.x, self.w, self.s, self.p
        N, C, H, W = x.shape
        K, _, kh, kw = w.shape
        _, _, OH, OW = δ.shape
        db = δ.sum(axis=(0, 2, 3))
        δt = δ.transpose(1, 0, 2, 3).reshape(K, -1)      # (K, N·OH·OW)
        dw = (δt @ self.cols.T).reshape(w.shape)         # (K, N·OH·OW) @ (N·OH·OW, C·kh·kw)
        dcols = (w.reshape(K, -1).T @ δt).reshape(C, kh, kw, N, OH, OW)
        dxp = np.zeros((N, C, H + 2 * p, W + 2 * p), x.dtype)
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i:i + s * OH:s, j:j + s * OW:s] += dcols[:, i, j].transpose(1, 0, 2, 3)
        return dxp[:, :, p:p + H, p:p + W], dw, db


# ---- timing (common.timed; the hot step as in common's protocol) ----------------------

def bench_shape(shape, reps, warmup, part):
    """part 'pairs': minigrad and PyTorch in turn; part 'numpy': the NumPy baseline."""
    name, N, C, H, K, k, s, p, g = unpack(shape)
    rng, x, w, b = make_inputs(shape)

    # minigrad
    mx, mw, mb = (mg.tensor(a, requires_grad=True) for a in (x, w, b))
    def mg_fwd():
        return F.conv2d(mx, mw, mb, stride=s, padding=p, groups=g)
    y = mg_fwd()
    δ = rng.standard_normal(y.shape, dtype=np.float32)
    def mg_bwd(y):
        mx.grad = mw.grad = mb.grad = None
        y.backward(δ, retain_graph=True)

    # NumPy baseline
    def np_fwd():
        c = NumpyConv(x, w, b, s, p)
        c.forward()
        return c

    # PyTorch
    if torch is not None:
        tx, tw, tb = (torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b))
        tδ = torch.from_numpy(δ)
        def th_fwd():
            return torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p, groups=g)
        def th_bwd(y):
            tx.grad = tw.grad = tb.grad = None
            y.backward(tδ, retain_graph=True)

    rows = {key: [] for key in ("mg_f", "mg_b", "np_f", "np_b", "th_f", "th_b")}

    def step(fwd, bwd, fk, bk, r):
        """One untimed forward+backward, then the timed one (hot, as in a training loop)."""
        bwd(fwd())
        r[fk], y = timed(fwd)
        r[bk], _ = timed(bwd, y)

    for it in range(warmup + reps if part == "pairs" else 0):    # minigrad, then PyTorch
        r = {}
        step(mg_fwd, mg_bwd, "mg_f", "mg_b", r)
        if torch is not None:
            step(th_fwd, th_bwd, "th_f", "th_b", r)
        if it >= warmup:
            for key, v in r.items():
                rows[key].append(v)
    if part == "numpy" and g == 1:                   # (the baseline has no groups)
        for it in range(warmup + reps):
            r = {}
            step(np_fwd, lambda c: c.backward(δ), "np_f", "np_b", r)
            if it >= warmup:
                for key, v in r.items():
                    rows[key].append(v)
    return {k: np.array(v) for k, v in rows.items() if v}


def child(lib, shapes, reps, warmup):
    """Time one library alone in this process (hot forward, then backward, as in the
    pairs) and print {shape: [forward medians, backward, forward+backward]} in seconds."""
    (_import_minigrad if lib == "minigrad" else _import_torch)()
    out = {}
    # a first, short untimed pass over the shapes warms the fresh process up
    for warm, shape in [(True, sh) for sh in shapes] + [(False, sh) for sh in shapes]:
        name, N, C, H, K, k, s, p, g = unpack(shape)
        rng, x, w, b = make_inputs(shape)
        if lib == "minigrad":
            ts = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
            fwd = lambda: F.conv2d(*ts, stride=s, padding=p, groups=g)                    # noqa: E731
        else:
            ts = [torch.from_numpy(a.copy()).requires_grad_() for a in (x, w, b)]
            fwd = lambda: torch.nn.functional.conv2d(*ts, stride=s, padding=p, groups=g)  # noqa: E731
        y = fwd()
        δ = rng.standard_normal(tuple(y.shape), dtype=np.float32)
        δ = δ if lib == "minigrad" else torch.from_numpy(δ)

        def bwd(y):
            for t in ts:
                t.grad = None
            y.backward(δ, retain_graph=True)
        tf, tb = [], []
        for it in range(2 if warm else warmup + reps):
            bwd(fwd())
            f, y = timed(fwd)
            b_, _ = timed(bwd, y)
            if it >= warmup:
                tf.append(f)
                tb.append(b_)
        if not warm:
            out[name] = [statistics.median(tf), statistics.median(tb),
                         statistics.median(a + c for a, c in zip(tf, tb))]
    print(json.dumps(out))


def own_processes(shapes, reps, warmup, rounds):
    """minigrad and PyTorch each in a fresh process of its own, alternating, `rounds`
    times; per shape the median over rounds of the ratio of the two processes' medians."""
    script = os.path.abspath(__file__)
    only = ",".join(s[0] for s in shapes)
    suite = next(k for k, v in SUITES.items() if shapes[0] in v)
    runs = {"minigrad": [], "torch": []}
    for _ in range(rounds):
        for lib in runs:
            runs[lib].append(child_json(script, ["--child", lib, "--only", only, "--suite", suite,
                                                 "--reps", reps, "--warmup", warmup]))
    hdr = (f"{'shape':<10} | {'mg fwd':>7} {'th fwd':>7} {'mg/th':>6} | {'mg bwd':>7} {'th bwd':>7} "
           f"{'mg/th':>6} | {'mg f+b':>7} {'th f+b':>7} {'mg/th':>6}")
    print(hdr)
    print("-" * len(hdr))
    geo = [[], [], []]
    for shape in shapes:
        name = shape[0]
        cells = []
        for i in range(3):
            m = [r[name][i] for r in runs["minigrad"]]
            t = [r[name][i] for r in runs["torch"]]
            ratio = statistics.median(a / b for a, b in zip(m, t))
            geo[i].append(ratio)
            cells.append(f"{statistics.median(m) * 1e3:7.2f} {statistics.median(t) * 1e3:7.2f} {ratio:6.2f}")
        print(f"{name:<10} | " + " | ".join(cells), flush=True)
    g = [math.exp(np.mean(np.log(v))) for v in geo]
    print(f"\ngeomean minigrad/PyTorch (own processes): forward {g[0]:.2f}, backward {g[1]:.2f}, "
          f"forward+backward {g[2]:.2f}; worst f+b {max(geo[2]):.2f}")


def sgemm_gflops():
    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    a @ a
    ts = [timed(np.matmul, a, a)[0] for _ in range(5)]
    return 2 * 2048 ** 3 / min(ts) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 repetitions instead of 11")
    ap.add_argument("--only", default="", help="comma-separated shape names")
    ap.add_argument("--suite", choices=sorted(SUITES), default="conv",
                    help="conv: the layers of issue 6 (default); mobilenet: MobileNetV2's 1×1 and depthwise layers")
    ap.add_argument("--no-numpy", action="store_true", help="skip the plain-NumPy baseline")
    ap.add_argument("--rounds", type=int, default=3,
                    help="own-process rounds per library (0: skip that table)")
    ap.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--results", action="store_true", help=RESULTS_HELP)
    args = ap.parse_args()
    if args.results and not args.child:
        record_results("conv.py")
    reps, warmup = (3, 1) if args.quick else (11, 2)
    shapes = [s for s in SUITES[args.suite] if not args.only or s[0] in args.only.split(",")]
    if args.child:
        return child(args.child, shapes, args.reps, args.warmup)
    _import_minigrad()                              # before torch (see common.child_json)
    _import_torch()

    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"minigrad threads {mg.get_num_threads()}, "
          f"torch {torch.__version__ + ' threads ' + str(torch.get_num_threads()) if torch else 'not installed'}, "
          f"numpy {np.__version__}, {env}")
    print(f"NumPy: {blas_info()}; minigrad's kernels call: {_blas.info()}")
    print("load average at start: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    # First every pair, then everything that runs NumPy's multithreaded GEMM (the baseline,
    # the sgemm peak): OpenBLAS's threads spin ~0.1 s after each, slowing whatever follows.
    results = {shape: bench_shape(shape, reps, warmup, "pairs") for shape in shapes}
    if not args.no_numpy:
        for shape in shapes:
            results[shape].update(bench_shape(shape, reps, warmup, "numpy"))
    peak = sgemm_gflops()
    print(f"NumPy sgemm 2048³: {peak:.0f} GFLOP/s; {reps} paired repetitions, medians; times in ms\n")

    hdr = (f"{'shape':<10} {'N,C,H,K,k,s,p':<22} | {'mg fwd':>7} {'np fwd':>7} {'th fwd':>7} "
           f"{'mg/np':>6} {'mg/th':>6} | {'mg bwd':>7} {'np bwd':>7} {'th bwd':>7} {'mg/np':>6} "
           f"{'mg/th':>6} | {'f+b mg/th':>9} {'fwd GF/s':>8} {'%sgemm':>6} {'f+b GF/s':>8} {'%sgemm':>6}")
    print(hdr)
    print("-" * len(hdr))
    geo = {"f": [], "b": [], "fb": []}
    big = []                                        # (name, % fwd, % f+b) of large stride-1 layers
    nan = float("nan")
    for shape in shapes:
        name, N, C, H, K, k, s, p, g = unpack(shape)
        r = results[shape]
        med = {key: float(np.median(v)) * 1e3 for key, v in r.items()}
        ratio = lambda a, b: float(np.median(r[a] / r[b])) if a in r and b in r else nan
        OH = (H + 2 * p - k) // s + 1
        flops = 2 * N * K * OH * OH * (C // g) * k * k
        gf = flops / (med["mg_f"] / 1e3) / 1e9
        gfb = 3 * flops / float(np.median(r["mg_f"] + r["mg_b"])) / 1e9
        if s == 1 and flops > 1e9:
            big.append((name, 100 * gf / peak, 100 * gfb / peak))
        th = torch is not None
        fth = ratio("mg_f", "th_f") if th else float("nan")
        bth = ratio("mg_b", "th_b") if th else float("nan")
        fbth = float(np.median((r["mg_f"] + r["mg_b"]) / (r["th_f"] + r["th_b"]))) if th else float("nan")
        if th:
            geo["f"].append(fth)
            geo["b"].append(bth)
            geo["fb"].append(fbth)
        print(f"{name:<10} {f'{N},{C},{H},{K},{k},{s},{p}' + (f',g{g}' if g > 1 else ''):<22} | {med['mg_f']:7.2f} {med.get('np_f', nan):7.2f} "
              f"{med.get('th_f', nan):7.2f} {ratio('mg_f', 'np_f'):6.2f} {fth:6.2f} | "
              f"{med['mg_b']:7.2f} {med.get('np_b', nan):7.2f} {med.get('th_b', nan):7.2f} "
              f"{ratio('mg_b', 'np_b'):6.2f} {bth:6.2f} | {fbth:9.2f} {gf:8.0f} {100 * gf / peak:5.0f}% "
              f"{gfb:8.0f} {100 * gfb / peak:5.0f}%",
              flush=True)
    if geo["f"]:
        g = {k: math.exp(np.mean(np.log(v))) for k, v in geo.items()}
        print(f"\ngeomean minigrad/PyTorch: forward {g['f']:.2f}, backward {g['b']:.2f}, "
              f"forward+backward {g['fb']:.2f}; worst f+b {max(geo['fb']):.2f}")
    for name, pf, pfb in big:
        print(f"large stride-1 layer {name}: {pf:.0f}% (forward), {pfb:.0f}% (forward+backward) "
              f"of NumPy's sgemm GFLOP/s")
    if torch is not None and args.rounds > 0:
        print(f"\n== each library in a process of its own, {args.rounds} rounds ==")
        own_processes(shapes, reps, warmup, args.rounds)
    print("load average at end: " + " ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
