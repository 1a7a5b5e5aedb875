"""The convolution paths on the networks' own layers: every stride-1 layer of the networks
of benchmarks/networks.py, its ∂L/∂w (and ∂L/∂b) by each path that can run it, side by
side (the measurements behind kernels.Tuning's w16_wgrad_* fields).

    python benchmarks/conv_paths.py                      # all networks
    python benchmarks/conv_paths.py --nets resnet20 densenet121
    python benchmarks/conv_paths.py --results            # also append to RESULTS.md

The layers are found by running one forward of each network with a pre-hook on every
Conv2d (input shape, weight shape, stride, padding, dilation, groups). Each layer's
weight gradient (and bias gradient, if it has a bias) is then timed through
ops/conv_dispatch.backward with the paths forced —
'blas' (im2col + GEMM, ∂L/∂wᵀ or ∂L/∂w rows as kernels._blas_dw_rows says) and 'w16'
(ext/direct16.h's streams) —, alternating, hot, in one process, medians in ms; `chosen`
is what kernels._plan picks by default. A row per distinct layer, with how often the
network has it; the totals weigh each layer by its count.
"""
import argparse
import collections
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common                                  # noqa: E402
import networks                                # noqa: E402


def layers(net):
    """{(x shape, w shape, padding, dilation, has a bias): count} of the network's stride-1,
    one-group Conv2d layers that are not 1×1 (those take the pointwise GEMM)."""
    import minigrad as mg
    from minigrad import nn
    mg.manual_seed(0)
    model = networks.minigrad_model(net)
    found = collections.Counter()

    def hook(m, args):
        if tuple(m.stride) == (1, 1) and m.groups == 1 and tuple(m.weight.shape[2:]) != (1, 1):
            found[(tuple(args[0].shape), tuple(m.weight.shape), m.padding, tuple(m.dilation),
                   m.bias is not None)] += 1
    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    x, _ = networks.batch(net)
    with mg.no_grad():
        model(mg.tensor(x))
    for h in handles:
        h.remove()
    return found


def time_layer(xs, ws, padding, dilation, bias, reps):
    """(chosen path, {path: median ms}) of ∂L/∂w (+ ∂L/∂b if the layer has a bias)."""
    from minigrad import kernels
    from minigrad.ops import conv_args, conv_dispatch
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    _, _, _, S, P, D, G, out_shape = conv_args.conv2d_args("conv2d", x, w, None, 1, padding,
                                                           dilation, 1)
    g = conv_dispatch.Geom(S, (P[0], P[2]), D, G)
    δ = rng.standard_normal(out_shape).astype(np.float32)
    chosen = kernels._plan("conv2d", xs, ws, np.dtype(np.float32), g, out_shape[2:]).weight_grad
    fns = {}
    for path in ("blas", "w16"):
        paths = kernels.Paths(path, "direct", path)
        fns[path] = (lambda p=paths: conv_dispatch.backward(x, xs, δ, w, g, False, True, bias, p))
    times = common.paired_hot(fns, reps)
    return chosen, {p: statistics.median(t) * 1e3 for p, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", choices=networks.NETS, default=None,
                    help="networks (default: all but LeNet-5-256)")
    ap.add_argument("--reps", type=int, default=9, help="timed calls per path and layer")
    ap.add_argument("--results", action="store_true", help=common.RESULTS_HELP)
    args = ap.parse_args()
    if args.results:
        common.record_results("conv_paths.py")
    import minigrad as mg
    mg.set_num_threads(networks.THREADS)
    print(common.blas_info())
    print(f"∂L/∂w (+ ∂L/∂b where the layer has a bias: +b) of every stride-1 layer (not 1×1), float32, {networks.THREADS} "
          f"threads, hot, alternating, median of {args.reps}; ms")
    for net in args.nets or [n for n in networks.NETS if n != "lenet5-256"]:
        rows, tot = [], collections.Counter()
        for (xs, ws, padding, dilation, bias), n in sorted(layers(net).items(),
                                                           key=lambda kv: kv[0][0][2:]):
            chosen, t = time_layer(xs, ws, padding, dilation, bias, args.reps)
            for p in t:
                tot[p] += n * t[p]
            tot["chosen"] += n * t[chosen]
            N, C, H, W = xs
            rows.append([f"{N}×{C}×{H}×{W}", f"{ws[0]}, {ws[2]}×{ws[3]}" + (" +b" if bias else ""),
                         n, f"{t['blas']:.3f}",
                         f"{t['w16']:.3f}", f"{t['w16'] / t['blas']:.2f}", chosen])
        if not rows:
            continue
        print(f"\n{net}: total {tot['blas']:.2f} ms all blas, {tot['w16']:.2f} all w16, "
              f"{tot['chosen']:.2f} as chosen")
        common.print_table(["input N×C×H×W", "K, kernel", "count", "blas", "w16", "w16/blas",
                            "chosen"], rows)


if __name__ == "__main__":
    main()
