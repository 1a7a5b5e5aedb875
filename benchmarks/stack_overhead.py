"""Where a layer's fixed cost goes: a chain of DenseNet layers (BN → ReLU → 1×1 conv → BN →
ReLU → 3×3 conv, models/densenet.py's DenseLayer) on an input so small that the arithmetic
is nothing, forward and one backward, three ways in one process, alternating:

    modules     DenseLayer(x), then y.backward(δ): the Module calls, the layer as one op
                (nn.conv_norm_chain: ops/chain.py ConvNormChain), the graph, the engine
    ops         ops/norm.py's batch_norm_relu and F.conv2d on tensors, the engine's backward:
                the same without the Modules
    calls       the calls the ops make underneath, on ndarrays — the fused BatchNorm
                functions (ops/norm.py _forward_fused, _backward_fused) and the convolution
                paths (ops/conv_dispatch.py correlate, backward) —: no Tensors, no graph

    python benchmarks/stack_overhead.py              # the table
    python benchmarks/stack_overhead.py --results    # also append to RESULTS.md

"ops − calls" is what the Tensors, the graph, the argument checks and the engine cost a
layer run as four ops; "modules − calls" what they cost the layer as one op, with the
Modules. A
DenseNet-121 training step runs 58 of these layers (and GoogLeNet's 57 conv → BatchNorm →
ReLU units are the same pieces). µs per layer: the median over rounds of each way's
best-of-5 timing of `--number` chains, divided by the layers (every parameter's .grad
cleared first, as zero_grad does).
"""
import argparse
import os
import statistics
import sys
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS_HELP, print_table, record_results  # noqa: E402


def ways(layers=8, N=2, C=68, growth=4, bn_size=2, HW=2):
    """{way: function running a chain of `layers` DenseLayers forward, then one backward}
    (the first layer C → growth channels, the others growth → growth: one backward() call
    for the chain, as a training step makes one)."""
    import numpy as np
    import minigrad as mg
    import minigrad.nn.functional as F
    from minigrad import kernels
    from minigrad.models.densenet import DenseLayer
    from minigrad.ops import conv_dispatch as D, norm as B
    mg.set_num_threads(2)
    rng = np.random.default_rng(0)
    chain = [DenseLayer(C if i == 0 else growth, growth, bn_size) for i in range(layers)]
    x = mg.tensor(rng.standard_normal((N, C, HW, HW)).astype(np.float32), requires_grad=True)
    δ = mg.tensor(rng.standard_normal((N, growth, HW, HW)).astype(np.float32))
    params = [x] + [p for layer in chain for p in layer.parameters()]
    stats = [[a.copy() for a in (m.running_mean, m.running_var)]
             for layer in chain for m in (layer.norm1, layer.norm2)]
    g1, g3 = D.Geom((1, 1), (0, 0), (1, 1), 1), D.Geom((1, 1), (1, 1), (1, 1), 1)
    hw = (HW, HW)

    def zero():
        for p in params:
            p.grad = None

    def modules():
        zero()
        y = x
        for layer in chain:
            y = layer(y)
        y.backward(δ)

    def ops():
        zero()
        y = x
        for i, layer in enumerate(chain):
            (m1, v1), (m2, v2) = stats[2 * i], stats[2 * i + 1]
            n1, n2 = layer.norm1, layer.norm2
            h1 = B.batch_norm_relu(y, m1, v1, n1.weight, n1.bias, True, 0.1, 1e-5)
            y1 = F.conv2d(h1, layer.conv1.weight)
            h2 = B.batch_norm_relu(y1, m2, v2, n2.weight, n2.bias, True, 0.1, 1e-5)
            y = F.conv2d(h2, layer.conv2.weight, padding=1)
        y.backward(δ)

    def calls():
        y, kept = x.data, []
        for i, layer in enumerate(chain):
            (m1, v1), (m2, v2) = stats[2 * i], stats[2 * i + 1]
            n1, n2 = layer.norm1, layer.norm2
            w1, w2 = layer.conv1.weight.data, layer.conv2.weight.data
            h1, μ1, s1 = B._forward_fused(y, n1.weight.data, n1.bias.data, True, 0.1, 1e-5,
                                          m1, v1, relu=True)
            p1 = kernels._plan("conv2d", h1.shape, w1.shape, h1.dtype, g1, hw)
            y1 = D.correlate(h1, w1, None, hw, g1, p1.forward)
            h2, μ2, s2 = B._forward_fused(y1, n2.weight.data, n2.bias.data, True, 0.1, 1e-5,
                                          m2, v2, relu=True)
            p2 = kernels._plan("conv2d", h2.shape, w2.shape, h2.dtype, g3, hw)
            kept.append((y, h1, μ1, s1, p1, y1, h2, μ2, s2, p2, layer))
            y = D.correlate(h2, w2, None, hw, g3, p2.forward)
        d = δ.data
        for y, h1, μ1, s1, p1, y1, h2, μ2, s2, p2, layer in reversed(kept):
            n1, n2 = layer.norm1, layer.norm2
            w1, w2 = layer.conv1.weight.data, layer.conv2.weight.data
            dh2 = D.backward(h2, h2.shape, d, w2, g3, True, True, False, p2)[0]
            dy1 = B._backward_fused(y1, dh2, μ2, s2, n2.weight.data, True, (True, True, True),
                                    mask=h2)[0]
            dh1 = D.backward(h1, h1.shape, dy1, w1, g1, True, True, False, p1)[0]
            d = B._backward_fused(y, dh1, μ1, s1, n1.weight.data, True, (True, True, True),
                                  mask=h1)[0]

    return {"modules": modules, "ops": ops, "calls": calls}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9, help="rounds alternating the three ways")
    ap.add_argument("--layers", type=int, default=8, help="DenseLayers in the chain")
    ap.add_argument("--number", type=int, default=50, help="chains per timing")
    ap.add_argument("--results", action="store_true", help=RESULTS_HELP)
    args = ap.parse_args()
    if min(args.rounds, args.number, args.layers) < 1:
        ap.error("--rounds, --number and --layers must be at least 1")
    if args.results:
        record_results("stack_overhead.py")
    fns = ways(args.layers)
    for fn in fns.values():                 # warm: plans, workspaces, memos
        fn()
    got = {k: [] for k in fns}
    for r in range(args.rounds):
        for k in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            got[k].append(min(timeit.repeat(fns[k], number=args.number, repeat=5))
                          / args.number / args.layers * 1e6)
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"a chain of {args.layers} DenseNet layers (BN-ReLU-conv 1×1-BN-ReLU-conv 3×3; "
          f"68 → 4 channels, then 4 → 4) on 2×·×2×2, forward + one backward, 2 threads, "
          f"{args.rounds} rounds alternating; µs per layer")
    print_table(["way", "µs", "range", "share of modules"],
                [[k, f"{med[k]:.1f}", f"{min(got[k]):.1f}–{max(got[k]):.1f}",
                  f"{med[k] / med['modules']:.2f}"] for k in fns])
    print(f"ops − calls (four ops: Tensors, graph, checks, engine): "
          f"{med['ops'] - med['calls']:.1f} µs; modules − calls (one op, and the Modules): "
          f"{med['modules'] - med['calls']:.1f} µs")


if __name__ == "__main__":
    main()
