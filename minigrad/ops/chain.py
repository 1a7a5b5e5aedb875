"""A run of BatchNorm(+ReLU) and conv2d layers as one op: the same numbers, bit for bit,
and one graph node with its arguments checked once per shape.

A pre-activation unit BN → ReLU → conv (DenseNet's layer is two of them back to back) or a
post-activation one conv → BN → ReLU (GoogLeNet's, VGG's) is, unfused, a BatchNormReLU op
and a Conv2dFunction op: two graph nodes, two rounds of argument checks, two tensors
wrapped, and in the backward two engine steps. On the small planes of a DenseNet's later
blocks that bookkeeping costs as much as the arithmetic (benchmarks/stack_overhead.py).
`ConvNormChain` runs the stages in one forward and one backward, calling the very kernels
the unfused ops call, in the same order, with the same paths:

    stage 'norm':  r = act(γ · (x − μ) / σ̂ + β)        ops/norm.py _forward_fused
                   ∂L/∂x, ∂L/∂γ, ∂L/∂β from δ · act'(r)  ops/norm.py _backward_fused (mask r)
    stage 'conv':  y = x ⋆ w + b                        ops/conv_dispatch.py correlate
                   ∂L/∂x = δ ⋆ᵀ w, ∂L/∂w = x ⊛ δ, ∂L/∂b   ops/conv_dispatch.py backward

(act: ReLU, ReLU6 or none; the formulas are derived in ops/norm.py and ops/conv.py). The
backward walks the stages last to first, each stage's ∂L/∂(input) the previous stage's δ.

A backward that records a graph (create_graph=True) replays the stages as the unfused ops
on the saved inputs and differentiates those, so gradients of gradients are the unfused
ops' own.
"""
import numpy as np

from .. import kernels
from ..autograd import Function, _run_backward, enable_grad, is_grad_enabled
from ..tensor_base import wrap
from . import conv_dispatch as _dispatch
from . import norm as B
from .conv import Conv2dFunction


class NormStage:
    """A BatchNorm stage of a chain, as it runs: the running statistics (ndarrays or None),
    whether it normalises with the batch statistics, momentum and eps, and the activation
    after it: relu True/False, hi (ReLU6's max_val) or None."""
    kind = "norm"
    __slots__ = ("running_mean", "running_var", "training", "momentum", "eps", "relu", "hi")

    def __init__(self, running_mean, running_var, training, momentum, eps, relu, hi):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps
        self.relu, self.hi = relu, hi


class ConvStage:
    """A conv2d stage of a chain: its geometry (conv_dispatch.Geom), output size and bias
    presence, checked by conv2d_args for the input shape it will see."""
    kind = "conv"
    __slots__ = ("geom", "out_hw", "has_bias")

    def __init__(self, geom, out_hw, has_bias):
        self.geom, self.out_hw, self.has_bias = geom, out_hw, has_bias


class ConvNormChain(Function):
    """y = stage_L(… stage_1(x)): BatchNorm(+ReLU/ReLU6) and conv2d stages as one op.

    apply(x, *params, stages=…): params are, stage by stage, (γ, β) for a norm stage and
    (w, b) for a conv stage (None where a layer has none); stages the NormStage/ConvStage
    list. Shapes as the layers': x (N, C, H, W), each stage's output its next input."""

    @staticmethod
    def forward(ctx, x, *params, stages):
        ctx.stages = stages
        needs = ctx.needs_input_grad
        # stage i's backward runs when x or a parameter up to stage i needs a gradient (and a
        # graph is recorded): only those stages keep what their backward reads, and no
        # stage keeps anything under no_grad, so an inference holds one activation at a time
        # as the unfused ops do
        record = is_grad_enabled() and True in needs
        runs = [record and need for need in _needed_up_to(needs, len(stages))[1:]]
        kept = []                                   # per stage: what its backward reads
        # evaluation: the statistics each BatchNorm used, for a replay (create_graph=True),
        # which runs every stage, whether or not its own backward runs
        ctx.frozen = [None] * len(stages)
        a = x
        for i, st in enumerate(stages):
            p, q = params[2 * i], params[2 * i + 1]
            if st.kind == "norm":
                if record and not st.training:
                    ctx.frozen[i] = (np.array(st.running_mean), np.array(st.running_var))
                kernels._ran("batch_norm", "forward", "fused", a.shape)
                r, mean, inv_std = B._forward_fused(a, p, q, st.training, st.momentum, st.eps,
                                                    st.running_mean, st.running_var,
                                                    relu=st.relu, hi=st.hi)
                kept.append((a, mean, inv_std, r if st.relu else None) if runs[i] else None)
                a = r
            else:
                plan = kernels._plan("conv2d", a.shape, p.shape, a.dtype, st.geom, st.out_hw)
                u = None                    # F(2×2)'s U, read again by ∂L/∂x (Conv2dFunction's)
                if (plan.forward == plan.input_grad == "winograd" and record
                        and (needs[0] or any(needs[1:1 + 2 * i]))):
                    u = _dispatch.winograd_weights(p)
                kept.append((a, p, u) if runs[i] else None)      # p: w as the forward read it
                a = _dispatch.correlate(a, p, q, st.out_hw, st.geom, plan.forward, u=u)
        ctx.save_for_backward(*kept)                # (dropped after the backward)
        return a

    @staticmethod
    def backward(ctx, δ):
        if is_grad_enabled():
            return _replayed_gradients(ctx, δ)
        stages, kept, needs = ctx.stages, ctx.saved, ctx.needs_input_grad
        params = ctx.inputs[1:]
        grads = [None] * len(ctx.inputs)
        before = _needed_up_to(needs, len(stages))     # ∂L/∂(input of stage i) needed
        d = δ.data
        for i in range(len(stages) - 1, -1, -1):
            st, need_in = stages[i], before[i]
            need_p, need_q = needs[1 + 2 * i], needs[2 + 2 * i]
            if st.kind == "norm":                   # as BatchNormReLU's first-order backward
                a, mean, inv_std, r = kept[i]
                w = params[2 * i]
                kernels._ran("batch_norm", "backward", "fused", d.shape)
                dx, dw, db = B._backward_fused(a, d, mean, inv_std, None if w is None else w.data,
                                               st.training, (need_in, need_p, need_q),
                                               r, st.hi)
            else:                                   # as Conv2dFunction's (_fused_gradients)
                a, w, u = kept[i]
                plan = kernels._plan("conv2d", a.shape, w.shape, a.dtype, st.geom, st.out_hw)
                dx, dw, db = _dispatch.backward(a, a.shape, np.ascontiguousarray(d, dtype=a.dtype),
                                                w, st.geom, need_in, need_p, need_q, plan, u=u)
            grads[1 + 2 * i], grads[2 + 2 * i] = dw, db
            if not need_in:
                break
            d = dx
        grads[0] = d if needs[0] else None
        return tuple(None if g is None else wrap(g) for g in grads)


def _needed_up_to(needs, n):
    """[b_0, …, b_n]: b_i whether x or a parameter of a stage before stage i needs a
    gradient (so ∂L/∂(input of stage i) is needed), b_n the same over every stage. needs:
    apply's needs_input_grad, (x, then (p, q) per stage)."""
    out = [needs[0]]
    for i in range(n):
        out.append(out[-1] or needs[1 + 2 * i] or needs[2 + 2 * i])
    return out


def _replayed_gradients(ctx, δ):
    """The gradients under create_graph=True, as the unfused ops give them: the stages run
    again as those ops (BatchNormReLU / BatchNorm with the statistics the forward used, and
    Conv2dFunction: the same kernels, so the same values) on the saved inputs, and their
    recorded backwards run last stage first, each stage's ∂L/∂(input) the previous one's δ —
    the engine's own steps on that chain, without a traversal of what lies before it (and
    without running the inputs' gradient hooks, which the engine runs once, afterwards)."""
    inputs, stages = ctx.inputs, ctx.stages
    with enable_grad():
        a, nodes = inputs[0], []
        for i, st in enumerate(stages):
            p, q = inputs[1 + 2 * i], inputs[2 + 2 * i]
            if st.kind == "norm":
                rm, rv = (None, None) if st.training else ctx.frozen[i]
                fn = B.BatchNormReLU if st.relu else B.BatchNorm
                extra = {"max_val": st.hi} if st.relu else {}
                a = fn.apply(a, p, q, st.training, st.momentum, st.eps, running_mean=rm,
                             running_var=rv, **extra)
            else:
                a = Conv2dFunction.apply(a, p, q, st.geom, st.out_hw)
            nodes.append(a._ctx)
        grads = [None] * len(inputs)
        d = δ
        for i in range(len(stages) - 1, -1, -1):
            node = nodes[i]
            if node is None:                        # nothing up to this stage needs a gradient
                break
            local = _run_backward(node, d, True)
            grads[1 + 2 * i], grads[2 + 2 * i] = local[1], local[2]
            d = local[0]
            if d is None:
                break
        grads[0] = d if ctx.needs_input_grad[0] else None
    return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))
