"""Every convolution of a network, alone: minigrad against PyTorch, forward and backward.

    python benchmarks/net_layers.py                         # ResNet-18
    python benchmarks/net_layers.py --nets resnet20 googlenet
    python benchmarks/net_layers.py --results               # also append to RESULTS.md

The layers are found as benchmarks/conv_paths.py finds them (a pre-hook on every Conv2d
during one forward of the network of benchmarks/networks.py), here every one: any stride,
1×1, grouped. Each distinct layer is timed through the public API on random float32
data (the input needs its gradient unless it is the image): y = conv2d(x, w) (forward),
and y.backward(δ) after an untimed forward (backward: ∂L/∂x and ∂L/∂w, whatever paths
each library chooses), minigrad and PyTorch in turn, each timed call right after an
untimed one (hot), 2 threads; ms = median of --reps. The totals weigh each layer by how
often the network has it: the convolutions' share of a step if every layer ran hot —
in a training step they meet colder caches (benchmarks/RESULTS.md, session 21).
"""
import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common                                  # noqa: E402
import conv_paths                              # noqa: E402
import networks                                # noqa: E402


def conv_layers(net):
    """{(x shape, w shape, stride, padding, dilation, groups): count} of every Conv2d."""
    return conv_paths.convs(net, lambda m, xs: (xs, tuple(m.weight.shape), tuple(m.stride), m.padding,
                                                tuple(m.dilation), m.groups))


def time_layer(mg, torch, xs, ws, stride, padding, dilation, groups, reps, rng):
    """{'mg fwd', 'torch fwd', 'mg bwd', 'torch bwd': median seconds}."""
    import minigrad.nn.functional as F
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.1).astype(np.float32)
    grad_x = xs[1] > 3                                     # the image needs no gradient
    args = (None, stride, padding, dilation, groups)
    xm, wm = mg.tensor(x, requires_grad=grad_x), mg.tensor(w, requires_grad=True)
    xt, wt = torch.tensor(x, requires_grad=grad_x), torch.tensor(w, requires_grad=True)
    δ = rng.standard_normal(F.conv2d(xm, wm, *args).shape).astype(np.float32)
    δm, δt = mg.tensor(δ), torch.tensor(δ)

    def backward(conv, xx, ww, d):
        def run():
            y = conv(xx, ww, *args)
            t0 = time.perf_counter()
            y.backward(d)
            return time.perf_counter() - t0
        return run

    def forward(conv, xx, ww):
        def run():
            t0 = time.perf_counter()
            conv(xx, ww, *args)
            return time.perf_counter() - t0
        return run
    runs = {"mg fwd": forward(F.conv2d, xm, wm),
            "torch fwd": forward(torch.nn.functional.conv2d, xt, wt),
            "mg bwd": backward(F.conv2d, xm, wm, δm),
            "torch bwd": backward(torch.nn.functional.conv2d, xt, wt, δt)}
    times = {k: [] for k in runs}
    for _ in range(reps):
        for k, run in runs.items():
            run()
            times[k].append(run())
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nets", nargs="+", default=["resnet18"], choices=list(networks.NETS))
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--results", action="store_true", help=common.RESULTS_HELP)
    args = p.parse_args(argv)
    torch = common.try_torch()
    if torch is None:
        sys.exit("net_layers.py compares with PyTorch: pip install torch")
    if args.results:
        common.record_results("net_layers.py")
    import minigrad as mg
    mg.set_num_threads(networks.THREADS)
    torch.set_num_threads(networks.THREADS)
    print(common.blas_info())
    rng = np.random.default_rng(0)
    for net in args.nets:
        found = conv_layers(net)
        rows, total = [], collections.Counter()
        for (xs, ws, stride, padding, dilation, groups), n in sorted(
                found.items(), key=lambda kv: (-kv[0][0][2], kv[0][1])):
            t = time_layer(mg, torch, xs, ws, stride, padding, dilation, groups, args.reps, rng)
            for k, v in t.items():
                total[k] += n * v
            rows.append(["×".join(map(str, xs)), "×".join(map(str, ws)), f"{stride[0]}", f"{groups}",
                         f"{n}", *(f"{t[k] * 1e3:.2f}" for k in ("mg fwd", "torch fwd", "mg bwd", "torch bwd")),
                         f"{(t['mg fwd'] + t['mg bwd']) / (t['torch fwd'] + t['torch bwd']):.2f}"])
        rows.append(["total (× count)", "", "", "", "", *(f"{total[k] * 1e3:.1f}" for k in
                     ("mg fwd", "torch fwd", "mg bwd", "torch bwd")),
                     f"{(total['mg fwd'] + total['mg bwd']) / (total['torch fwd'] + total['torch bwd']):.2f}"])
        print(f"\n{net}, batch {networks.NETS[net][0]}, {networks.THREADS} threads, hot, "
              f"median of {args.reps}; ms")
        common.print_table(["input", "weight", "stride", "groups", "count", "mg fwd", "torch fwd",
                            "mg bwd", "torch bwd", "mg/torch f+b"], rows)


if __name__ == "__main__":
    main()
