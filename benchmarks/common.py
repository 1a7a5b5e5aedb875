"""Shared helpers for the benchmark scripts: the one timing protocol, table printing,
child processes, and benchmarks/RESULTS.md.

Protocol (issue 6), used by conv.py, pool.py, lenet_step.py and lenet_epoch.py:
  - `timed(fn, *args)` times one call with time.perf_counter;
  - warm up, then time minigrad and the comparison in turn, pair by pair (`paired`,
    `paired_hot`), and report the median of the pairwise ratios (the machine is shared;
    drift cancels in a pair) next to the median absolute times;
  - "hot": a timed call follows an untimed one of the same work (`paired_hot`, and the
    scripts' forward+backward steps), as in a training loop — on this machine a call after
    ≥ 20 ms of idling ran ~2× slower, for every library.
"""
import atexit
import io
import json
import os
import statistics
import subprocess
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


def try_torch():
    """torch if importable (an optional extra: pip install -e '.[bench]'), else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def blas_info():
    """Which OpenBLAS kernel NumPy runs, and whether the OPENBLAS_* overrides are set."""
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    core = "?"
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            if pool.get("internal_api") == "openblas":
                core = pool.get("architecture", "?")
                break
    except ImportError:
        pass
    return f"OpenBLAS core: {core}; env overrides: {env or 'none'}"


def timed(fn, *args):
    """(seconds, result) of one call fn(*args)."""
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def timeit(fn, repeat):
    """[seconds] of `repeat` back-to-back calls (warm up first)."""
    return [timed(fn)[0] for _ in range(repeat)]


def paired(fn_a, fn_b, repeat=7, warmup=2):
    """Run a, b alternately `repeat` times after `warmup` rounds.

    Returns (median time a, median time b, median of the pairwise ratios a/b); b may be None."""
    for _ in range(warmup):
        fn_a()
        if fn_b is not None:
            fn_b()
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(timed(fn_a)[0])
        if fn_b is not None:
            tb.append(timed(fn_b)[0])
    if fn_b is None:
        return statistics.median(ta), None, None
    ratios = [a / b for a, b in zip(ta, tb)]
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def paired_hot(fns, reps, warmup=2):
    """Run fns (name -> callable) in turn `reps` times, each timed call right after an
    untimed one of the same function (hot); return {name: [seconds, ...]}."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, f in fns.items():
            f()
            times[name].append(timed(f)[0])
    return times


def geomean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    prod = 1.0
    for v in values:
        prod *= v
    return prod ** (1 / len(values))


def fmt_ms(t):
    return "—" if t is None else f"{t * 1e3:8.2f}"


def fmt_ratio(r):
    return "—" if r is None else f"{r:5.2f}×"


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))


def child_json(script, args):
    """Run `python script *args` in a fresh process and return the JSON it prints last.

    For comparisons in separate processes: OpenMP runtimes read their settings from the
    environment when they load, and minigrad sets GOMP_SPINCOUNT at import (see
    minigrad/__init__.py), so in one process whichever library is imported first also
    decides the other's OpenMP behaviour. A child that imports only one library runs it
    exactly as its users get it."""
    out = subprocess.run([sys.executable, script, *map(str, args)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def torch_lenet5(torch):
    """examples/lenet.py's LeNet-5 (ReLU, max pooling) in PyTorch, for the comparisons."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def torch_train_step(torch, model, x, y):
    """A closure running one PyTorch training step of `model` on the arrays (x, y): forward,
    cross-entropy, zero_grad, backward, SGD with momentum 0.9 at lr 0.01 (the step every
    benchmark times for minigrad too)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.tensor(x), torch.tensor(y)

    def step():
        loss = torch.nn.functional.cross_entropy(model(tx), ty)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def peak_rss_mib():
    """This process's peak resident memory so far, in MiB (Linux: ru_maxrss is in KiB)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2 ** 20


def _all_functions(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_functions(sub)


def instrument_functions(totals):
    """Wrap every minigrad Function's forward and backward with a timer: afterwards each call
    adds its own seconds to totals["<Function name>.forward"] (a Counter). Own: the time of
    the ops it runs inside itself (a backward that applies backward ops, Linear's matmuls)
    is counted to those ops, not again to it, so the totals add up to the time spent in
    ops. For the profiles of profile_lenet.py and networks.py --profile; the wrappers stay
    for the process's life."""
    from minigrad.autograd import Function
    nested = [0.0]                  # per open call: the seconds of the timed calls inside it

    def timed_part(name, fn):
        def wrapper(*args, **kwargs):
            nested.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - t0
                totals[name] += took - nested.pop()
                nested[-1] += took
        return staticmethod(wrapper)

    for cls in set(_all_functions(Function)):
        for part in ("forward", "backward"):
            if part in cls.__dict__:
                setattr(cls, part, timed_part(f"{cls.__name__}.{part}", cls.__dict__[part].__func__))


RESULTS_HELP = "also append this run's output to benchmarks/RESULTS.md (Part 2: Runs)"


class _Tee(io.TextIOBase):
    def __init__(self, out, copy):
        self.out, self.copy = out, copy

    def write(self, s):
        self.copy.write(s)
        return self.out.write(s)

    def flush(self):
        self.out.flush()


def record_results(script):
    """From now on, copy everything printed; at exit, append it to benchmarks/RESULTS.md
    under a heading with the script, the UTC date, the command line, the OPENBLAS_*
    overrides and the load average (the machine may be shared)."""
    copy = io.StringIO()
    sys.stdout = _Tee(sys.stdout, copy)
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    load = os.getloadavg() if hasattr(os, "getloadavg") else None

    def append():
        end = os.getloadavg() if hasattr(os, "getloadavg") else None
        with open(RESULTS, "a") as f:
            f.write(f"\n### {script}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC\n\n"
                    f"`python benchmarks/{script} {' '.join(sys.argv[1:])}`; OPENBLAS_* overrides: "
                    f"{env or 'none'}; load average at start {load and round(load[0], 1)}, "
                    f"at end {end and round(end[0], 1)}\n\n```\n{copy.getvalue().rstrip()}\n```\n")
    atexit.register(append)
