"""Pooling speed: minigrad vs a plain-NumPy baseline vs PyTorch (where importable).

    python benchmarks/pool.py                 # the full table
    python benchmarks/pool.py --quick         # fewer repetitions
    python benchmarks/pool.py --threads 1     # both libraries on one thread
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/pool.py   # issue 6's headline setting

Protocol (issue 6): float32, warm up, then run minigrad, PyTorch and NumPy in turn, pair
by pair; report the median time of each and the median of the pairwise ratios (the
machine is shared; drift cancels within a pair). Each timed call follows an untimed call
of the same function (hot, as in a training loop; see benchmarks/conv.py for why).
A second table runs each library in a fresh process of its own, alternating (see
benchmarks/conv.py and common.child_json for why both). Three rows per shape:

  fwd      the forward as training runs it (the input requires grad, so minigrad records
           its mask and PyTorch its indices);
  bwd      the op's backward alone, given δ (minigrad: the Function's backward;
           PyTorch: aten's max_pool2d_with_indices_backward / avg_pool2d_backward);
  fwd+bwd  the public API end to end: y = F.max_pool2d(x); y.backward(δ).

The NumPy baseline is written here: windows from stride tricks, max/argmax or mean over
them; backward adds δ (masked by the argmax) into each of the K·K strided slices of dx.
"""
import argparse
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS_HELP, child_json, paired_hot, record_results  # noqa: E402

if "--child" in sys.argv and sys.argv[sys.argv.index("--child") + 1] == "torch":
    mg = F = None                          # a PyTorch-only process (see common.child_json)
else:
    import minigrad as mg                  # noqa: E402  (before torch: see common.child_json)
    import minigrad.nn.functional as F     # noqa: E402

if "--child" in sys.argv and sys.argv[sys.argv.index("--child") + 1] == "minigrad":
    torch = None
else:
    try:
        import torch
        import torch.nn.functional as TF
    except ImportError:                    # pragma: no cover
        torch = None


# ---- the NumPy baseline ------------------------------------------------------------------

def _windows(xp, k, s):
    """(N, C, Hp, Wp) -> strided view (N, C, OH, OW, kH, kW) of the windows."""
    v = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))
    return v[:, :, ::s[0], ::s[1]]


def np_max_forward(x, k, s, p):
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=-np.inf) if any(p) else x
    w = _windows(xp, k, s)
    flat = w.reshape(w.shape[:4] + (-1,))                  # (N, C, OH, OW, kH·kW), a copy
    arg = flat.argmax(axis=-1)                             # first winner in scan order
    y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return y, arg


def np_max_backward(dy, arg, x_shape, k, s, p):
    N, C, H, W = x_shape
    OH, OW = dy.shape[2:]
    dxp = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dy.dtype)
    for a in range(k[0]):
        for b in range(k[1]):
            sl = dxp[:, :, a:a + s[0] * (OH - 1) + 1:s[0], b:b + s[1] * (OW - 1) + 1:s[1]]
            sl += np.where(arg == a * k[1] + b, dy, 0)
    return dxp[:, :, p[0]:p[0] + H, p[1]:p[1] + W]


def np_avg_forward(x, k, s, p):
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))) if any(p) else x
    return _windows(xp, k, s).mean(axis=(-2, -1), dtype=x.dtype)


def np_avg_backward(dy, x_shape, k, s, p):
    N, C, H, W = x_shape
    OH, OW = dy.shape[2:]
    dxp = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]), dy.dtype)
    g = dy / (k[0] * k[1])
    for a in range(k[0]):
        for b in range(k[1]):
            dxp[:, :, a:a + s[0] * (OH - 1) + 1:s[0], b:b + s[1] * (OW - 1) + 1:s[1]] += g
    return dxp[:, :, p[0]:p[0] + H, p[1]:p[1] + W]


CASES = [
    # name,                     op,    (N, C, H, W),        kernel, stride, padding
    ("LeNet pool1 max",          "max", (64, 6, 28, 28),     2, 2, 0),
    ("LeNet pool2 max",          "max", (64, 16, 10, 10),    2, 2, 0),
    ("LeNet pool1 avg",          "avg", (64, 6, 28, 28),     2, 2, 0),
    ("LeNet pool2 avg",          "avg", (64, 16, 10, 10),    2, 2, 0),
    ("AlexNet 3x3 s2 max",       "max", (64, 64, 55, 55),    3, 2, 0),
    ("AlexNet 3x3 s2 avg",       "avg", (64, 64, 55, 55),    3, 2, 0),
    ("ResNet 3x3 s2 p1 max",     "max", (64, 64, 112, 112),  3, 2, 1),
    ("global avg 7x7",           "gap", (64, 512, 7, 7),     7, 7, 0),
]


def ref_out_shape(shape, op, k, s, p):
    N, C, H, W = shape
    if op == "gap":
        return (N, C, 1, 1)
    return (N, C, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)


def child(lib, reps, only):
    """This process holds only `lib`: print [[case, what, median seconds], ...]."""
    cases = [c for c in CASES if not only or only in c[0]]
    for name, op, shape, k, s, p in cases:       # a short untimed pass warms the process up
        bench_case(name, op, shape, k, s, p, 1, False)
    out = []
    for name, op, shape, k, s, p in cases:
        out += [[r["case"], r["what"], r["t"]] for r in bench_case(name, op, shape, k, s, p, reps, False)]
    print(json.dumps(out))


def own_processes(reps, only, rounds):
    """Each library in a fresh process of its own, alternating `rounds` times; per row the
    median over rounds of the ratio of the two processes' medians."""
    script = os.path.abspath(__file__)
    runs = {"minigrad": [], "torch": []}
    for _ in range(rounds):
        for lib in runs:
            runs[lib].append(child_json(script, ["--child", lib, "--reps", reps, "--only", only]))
    print(f"{'case':<24} {'':8} {'minigrad ms':>11} {'torch ms':>9} {'mg/torch':>9}")
    ratios = {"fwd": [], "bwd": [], "fwd+bwd": []}
    for i, (name, what, _) in enumerate(runs["minigrad"][0]):
        m = [r[i][2] for r in runs["minigrad"]]
        t = [r[i][2] for r in runs["torch"]]
        ratio = statistics.median(a / b for a, b in zip(m, t))
        ratios[what].append(ratio)
        print(f"{name if what == 'fwd' else '':<24} {what:8} {statistics.median(m) * 1e3:11.3f} "
              f"{statistics.median(t) * 1e3:9.3f} {ratio:9.2f}")
    gm = {w: float(np.exp(np.mean(np.log(r)))) for w, r in ratios.items()}
    print(f"geometric mean minigrad/torch (own processes): fwd {gm['fwd']:.2f}, bwd {gm['bwd']:.2f}, "
          f"fwd+bwd {gm['fwd+bwd']:.2f}; worst fwd {max(ratios['fwd']):.2f}, "
          f"worst bwd {max(ratios['bwd']):.2f}")


def bench_case(name, op, shape, k, s, p, reps, with_numpy):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(shape, dtype=np.float32)
    kk, ss, pp = (k, k), (s, s), (p, p)
    rows = []

    fwd, bwd, both = {}, {}, {}
    dy = rng.standard_normal(ref_out_shape(shape, op, k, s, p), dtype=np.float32)

    # -- minigrad
    if mg is not None:
        x_mg = mg.tensor(x_np, requires_grad=True)
    if mg is None:
        pass
    elif op == "max":
        mg_fwd = lambda: F.max_pool2d(x_mg, k, s, p)                       # noqa: E731
    elif op == "avg":
        mg_fwd = lambda: F.avg_pool2d(x_mg, k, s, p)                       # noqa: E731
    else:
        mg_fwd = lambda: F.adaptive_avg_pool2d(x_mg, 1)                    # noqa: E731
    if mg is not None:
        y_mg = mg_fwd()
        assert y_mg.shape == dy.shape, name
        ctx = y_mg._ctx
        mg_bwd = lambda: ctx.backward(ctx, dy)                            # noqa: E731

        def mg_both():
            x_mg.grad = None
            mg_fwd().backward(dy)

        fwd["minigrad"], bwd["minigrad"], both["minigrad"] = mg_fwd, mg_bwd, mg_both

    # -- PyTorch
    if torch is not None:
        x_t = torch.from_numpy(x_np.copy()).requires_grad_(True)
        dy_t = torch.from_numpy(dy.copy())
        if op == "max":
            t_fwd = lambda: TF.max_pool2d(x_t, k, s, p)                    # noqa: E731
            with torch.no_grad():
                _, idx = TF.max_pool2d(x_t, k, s, p, return_indices=True)
            t_bwd = lambda: torch.ops.aten.max_pool2d_with_indices_backward(   # noqa: E731
                dy_t, x_t.detach(), kk, ss, pp, (1, 1), False, idx)
        elif op == "avg":
            t_fwd = lambda: TF.avg_pool2d(x_t, k, s, p)                    # noqa: E731
            t_bwd = lambda: torch.ops.aten.avg_pool2d_backward(            # noqa: E731
                dy_t, x_t.detach(), kk, ss, pp, False, True, None)
        else:
            t_fwd = lambda: TF.adaptive_avg_pool2d(x_t, 1)                 # noqa: E731
            t_bwd = lambda: torch.ops.aten._adaptive_avg_pool2d_backward(dy_t, x_t.detach())  # noqa: E731

        def t_both():
            x_t.grad = None
            t_fwd().backward(dy_t)

        fwd["torch"], bwd["torch"], both["torch"] = t_fwd, t_bwd, t_both
        if mg is not None:  # the numbers must agree before their times mean anything
            assert np.allclose(mg_fwd().data, t_fwd().detach().numpy(), rtol=1e-5, atol=1e-6), name
            assert np.allclose(mg_bwd()[0], t_bwd().numpy(), rtol=1e-5, atol=1e-6), name

    # -- NumPy baseline
    if with_numpy and op != "gap" and mg is not None:
        if op == "max":
            y_np, arg = np_max_forward(x_np, kk, ss, pp)
            fwd["numpy"] = lambda: np_max_forward(x_np, kk, ss, pp)
            bwd["numpy"] = lambda: np_max_backward(dy, arg, shape, kk, ss, pp)
            both["numpy"] = lambda: np_max_backward(dy, np_max_forward(x_np, kk, ss, pp)[1], shape, kk, ss, pp)
            assert np.array_equal(y_np, y_mg.data), name
        else:
            fwd["numpy"] = lambda: np_avg_forward(x_np, kk, ss, pp)
            bwd["numpy"] = lambda: np_avg_backward(dy, shape, kk, ss, pp)
            both["numpy"] = lambda: (np_avg_forward(x_np, kk, ss, pp), np_avg_backward(dy, shape, kk, ss, pp))
            assert np.allclose(np_avg_forward(x_np, kk, ss, pp), y_mg.data, rtol=1e-5, atol=1e-6), name

    for what, fns in (("fwd", fwd), ("bwd", bwd), ("fwd+bwd", both)):
        t = paired_hot(fns, reps)
        if mg is None or torch is None:                 # a child: raw medians only
            rows.append({"case": name, "what": what,
                         "t": statistics.median(next(iter(t.values())))})
            continue
        row = {"case": name, "what": what, "mg": statistics.median(t["minigrad"])}
        if "torch" in t:
            row["torch"] = statistics.median(t["torch"])
            row["ratio"] = statistics.median(a / b for a, b in zip(t["minigrad"], t["torch"]))
        if "numpy" in t:
            row["numpy"] = statistics.median(t["numpy"])
        rows.append(row)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--no-numpy", action="store_true", help="skip the NumPy baseline")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--threads", type=int, default=0,
                    help="threads for both minigrad and PyTorch (default: each library's default)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="own-process rounds per library (0: skip that table)")
    ap.add_argument("--child", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--results", action="store_true", help=RESULTS_HELP)
    args = ap.parse_args()
    if args.results and not args.child:
        record_results("pool.py")
    reps = 7 if args.quick else 25
    if args.child:
        return child(args.child, args.reps, args.only)
    if args.threads:
        mg.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)

    print(f"minigrad threads: {mg.get_num_threads()}, OpenMP: {mg.threads.openmp_enabled()}; "
          + (f"torch {torch.__version__}, threads: {torch.get_num_threads()}" if torch else "torch: not installed"))
    print("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s" % (os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
                                                        os.environ.get("OPENBLAS_L2_SIZE", "(unset)")))
    head = f"{'case':<24} {'shape':<20} {'':8} {'minigrad ms':>11} {'torch ms':>9} {'mg/torch':>9} {'numpy ms':>9}"
    print(head)
    print("-" * len(head))
    ratios = {"fwd": [], "bwd": [], "fwd+bwd": []}
    for name, op, shape, k, s, p in CASES:
        if args.only and args.only not in name:
            continue
        for row in bench_case(name, op, shape, k, s, p, reps, not args.no_numpy):
            print(f"{row['case'] if row['what'] == 'fwd' else '':<24} "
                  f"{'x'.join(map(str, shape)) if row['what'] == 'fwd' else '':<20} {row['what']:8} "
                  f"{row['mg'] * 1e3:11.3f} "
                  f"{row['torch'] * 1e3 if 'torch' in row else float('nan'):9.3f} "
                  f"{row.get('ratio', float('nan')):9.2f} "
                  f"{row['numpy'] * 1e3 if 'numpy' in row else float('nan'):9.2f}")
            if "ratio" in row:
                ratios[row["what"]].append(row["ratio"])
    if ratios["fwd"]:
        gm = {w: float(np.exp(np.mean(np.log(r)))) for w, r in ratios.items()}
        print(f"geometric mean minigrad/torch: fwd {gm['fwd']:.2f}, bwd {gm['bwd']:.2f}, "
              f"fwd+bwd {gm['fwd+bwd']:.2f}; worst fwd {max(ratios['fwd']):.2f}, "
              f"worst bwd {max(ratios['bwd']):.2f}")
    if torch is not None and args.rounds > 0 and not args.threads:
        print(f"\n== each library in a process of its own, {args.rounds} rounds ==")
        own_processes(reps, args.only, args.rounds)


if __name__ == "__main__":
    main()
