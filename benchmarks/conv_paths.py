"""The convolution paths on the networks' own layers: every stride-1 layer of the networks
of benchmarks/networks.py, one pass of it (∂L/∂w and ∂L/∂b by default; the forward or
∂L/∂x) by each path that can run it, side by side (the measurements behind
kernels.Tuning's w16_* fields); with --strided, every strided layer instead (the forward
and ∂L/∂w: those behind the k32_* fields).

    python benchmarks/conv_paths.py                      # all networks
    python benchmarks/conv_paths.py --nets resnet20 densenet121
    python benchmarks/conv_paths.py --pass forward       # or input_grad (∂L/∂x)
    python benchmarks/conv_paths.py --strided --pass forward   # the strided layers
    python benchmarks/conv_paths.py --results            # also append to RESULTS.md

The layers are found by running one forward of each network with a pre-hook on every
Conv2d (input shape, weight shape, stride, padding, dilation, groups). Each layer's
pass is then timed through ops/conv_dispatch with the paths forced — 'blas' (im2col +
GEMM), 'w16' (ext/direct16.h's flat streams at stride 1), 'winograd' and 'winograd4'
(F(2×2, 3×3) and F(4×4, 3×3); for ∂L/∂w
only when forced), 'k16' and 'k32' (the
forward of K a multiple of 16 or of 32) —, alternating, hot, in one process, medians in ms;
`chosen` is what kernels._plan picks by default. A row per distinct layer, with how often the
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


def convs(net, key):
    """{key(conv, input shape): count} over every Conv2d a forward of the network runs
    (a pre-hook on each; key returns None for a layer to leave out)."""
    import minigrad as mg
    from minigrad import nn
    mg.manual_seed(0)
    model = networks.minigrad_model(net)
    found = collections.Counter()

    def hook(m, args):
        k = key(m, tuple(args[0].shape))
        if k is not None:
            found[k] += 1
    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    x, _ = networks.batch(net)
    with mg.no_grad():
        model(mg.tensor(x))
    for h in handles:
        h.remove()
    return found


def layers(net, strided=False):
    """{(x shape, w shape, padding, dilation, has a bias, stride): count} of the network's
    stride-1 (strided: stride > 1), one-group Conv2d layers that are not 1×1 (at stride 1
    those take the pointwise GEMM)."""
    def key(m, xs):
        if ((tuple(m.stride) != (1, 1)) == strided and m.groups == 1
                and tuple(m.weight.shape[2:]) != (1, 1)):
            return (xs, tuple(m.weight.shape), m.padding, tuple(m.dilation),
                    m.bias is not None, tuple(m.stride))
    return convs(net, key)


def time_layer(xs, ws, padding, dilation, bias, reps, which, stride=1):
    """(chosen path, {path: median ms}) of one pass of one layer: 'forward', 'input_grad',
    or 'weight_grad' (∂L/∂w, + ∂L/∂b if the layer has a bias), by each path that runs it."""
    from minigrad import kernels
    from minigrad.ops import conv_args, conv_dispatch
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    _, _, _, S, P, D, G, out_shape = conv_args.conv2d_args("conv2d", x, w, None, stride, padding,
                                                           dilation, 1)
    g = conv_dispatch.Geom(S, (P[0], P[2]), D, G)
    δ = rng.standard_normal(out_shape).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32) if bias else None
    chosen = getattr(kernels._plan("conv2d", xs, ws, np.dtype(np.float32), g, out_shape[2:]), which)
    paths = ["blas", "w16", "hwnc"] + (["winograd", "winograd4"] if ws[2:] == (3, 3) and D == (1, 1)
                                       and (which != "weight_grad" or "winograd4" in
                                            conv_dispatch._WEIGHT_GRAD) else [])
    if which == "forward" and ws[0] % 16 == 0:
        paths.append("k16")
    if which in ("forward", "weight_grad") and ws[0] % 32 == 0:
        paths.append("k32")
    if S != (1, 1):                           # (stride > 1: Winograd, hwnc and ∂L/∂x by w16 do not)
        paths = [p for p in paths if p not in ("winograd", "winograd4", "hwnc")]
    fns = {}
    for path in paths:
        if which == "forward":
            fns[path] = (lambda p=path: conv_dispatch.correlate(x, w, b, out_shape[2:], g, p))
        elif which == "input_grad":
            ps = kernels.Paths("blas", path, "blas")
            fns[path] = (lambda p=ps: conv_dispatch.backward(x, xs, δ, w, g, True, False, False, p))
        else:
            ps = kernels.Paths("blas", "blas", path)
            fns[path] = (lambda p=ps: conv_dispatch.backward(x, xs, δ, w, g, False, True, bias, p))
    if which == "input_grad" and D != (1, 1):
        fns.pop("w16")                        # (∂L/∂x by w16: dilation 1 only)
    times = common.paired_hot(fns, reps)
    return chosen, {p: statistics.median(t) * 1e3 for p, t in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nets", nargs="+", choices=networks.NETS, default=None,
                    help="networks (default: all but LeNet-5-256)")
    ap.add_argument("--pass", dest="which", choices=["forward", "input_grad", "weight_grad"],
                    default="weight_grad", help="which pass to time (default: weight_grad)")
    ap.add_argument("--strided", action="store_true",
                    help="the strided layers instead of the stride-1 ones")
    ap.add_argument("--reps", type=int, default=9, help="timed calls per path and layer")
    ap.add_argument("--results", action="store_true", help=common.RESULTS_HELP)
    args = ap.parse_args()
    if args.strided and args.which == "input_grad":
        ap.error("--strided: the forward or weight_grad (∂L/∂x of a strided layer is 'blas' only)")
    if args.results:
        common.record_results("conv_paths.py")
    import minigrad as mg
    mg.set_num_threads(networks.THREADS)
    print(common.blas_info())
    what = {"forward": "y = b + x ⋆ w", "input_grad": "∂L/∂x",
            "weight_grad": "∂L/∂w (+ ∂L/∂b where the layer has a bias: +b)"}[args.which]
    print(f"{what} of every {'strided' if args.strided else 'stride-1'} layer (not 1×1), float32, "
          f"{networks.THREADS} threads, "
          f"hot, alternating, median of {args.reps}; ms")
    for net in args.nets or [n for n in networks.NETS if n != "lenet5-256"]:
        found, tot, names = [], collections.Counter(), []
        for (xs, ws, padding, dilation, bias, stride), n in sorted(
                layers(net, args.strided).items(), key=lambda kv: kv[0][0][2:]):
            if args.which == "input_grad" and xs[1] < 4:
                continue                      # (a first layer: its input needs no gradient)
            chosen, t = time_layer(xs, ws, padding, dilation, bias, args.reps, args.which, stride)
            names += [p for p in t if p not in names]
            for p in t:
                tot[p] += n * t[p]
            tot["chosen"] += n * t[chosen]
            found.append((xs, ws, bias, stride, n, t, chosen))
        if not found:
            continue
        print(f"\n{net}: total ms " + ", ".join(f"all {p} {tot[p]:.2f}" for p in names)
              + f" (where it runs); as chosen {tot['chosen']:.2f}")
        rows = [["×".join(map(str, xs)), f"{ws[0]}, {ws[2]}×{ws[3]}" + (" +b" if bias else "")
                 + (f" /{stride[0]}" if stride[0] == stride[1] != 1 else
                    f" /{stride}" if stride != (1, 1) else ""), n]
                + [f"{t[p]:.3f}" if p in t else "—" for p in names] + [min(t, key=t.get), chosen]
                for xs, ws, bias, stride, n, t, chosen in found]
        common.print_table(["input N×C×H×W", "K, kernel", "count"] + names + ["fastest", "chosen"],
                           rows)

if __name__ == "__main__":
    main()
