"""conv_norm_chain: a run of Conv2d and BatchNorm2d(+ReLU/ReLU6) modules as one op."""
import numpy as np

from .. import kernels
from ..ops import conv_dispatch as D
from ..ops.chain import ConvNormChain, ConvStage, NormStage
from ..ops.conv_args import conv2d_args
from ..ops.limits import check_output
from ..tensor_base import TensorBase, wrap
from .activation import Hardtanh
from .conv import Conv2d
from .pooling import MaxPool2d
from .layers import _BatchNorm, _hooked, _plain_relu, _plain_relu6, ReLU, run_fusing_bn_relu


def conv_norm_chain(layers, x):
    """The modules `layers` applied to x in turn — Conv2d and BatchNorm2d modules, each
    BatchNorm optionally followed by a ReLU or ReLU6 — as one op (ops/chain.py's
    ConvNormChain) when nothing can tell the difference: the same numbers, gradients and
    running statistics bit for bit, one graph node instead of one per layer, the layers'
    arguments checked as their own forwards check them. DenseNet's layer (BN → ReLU →
    1×1 conv → BN → ReLU → 3×3 conv) calls it; so does nn.Sequential for such runs.

    That is when x is a C-contiguous float32/float64 (N, C, H, W) Tensor, every module is
    one of these types with its own forward and no forward hook or pre-hook, every
    parameter and running statistic has x's dtype and is C-contiguous, the Conv2d layers
    are channels-first, and no `kernels.use('direct')` is in force. Otherwise the modules
    run as nn.Sequential runs them (and report their own errors).

    Shapes: x (N, C, H, W) -> what the last layer returns."""
    spec = _spec(layers, x)
    if spec is None:
        return run_fusing_bn_relu(layers, x)
    params, stages = spec
    return ConvNormChain.apply(x, *params, stages=stages)


def run_modules(mods, x):
    """x -> mods[0](x) -> mods[1](mods[0](x)) -> …: nn.Sequential's forward. Each run of
    two or more Conv2d and BatchNorm2d modules (a BatchNorm's ReLU or ReLU6 included) goes
    to conv_norm_chain, and any other BatchNorm followed by a ReLU or ReLU6 to bn_relu:
    one op each where nothing can tell the difference. A ReLU followed by a MaxPool2d
    (LeNet's, AlexNet's) runs pool first: max(relu(a), relu(b)) = relu(max(a, b)) (ReLU
    never reorders two values), the same numbers and gradients bit for bit (_relu_pool),
    with the ReLU's passes over the pooled activation, a quarter of the size for 2×2."""
    i, n = 0, len(mods)
    while i < n:
        if i + 1 < n and _relu_pool(mods[i], mods[i + 1], x):
            x = mods[i](mods[i + 1](x))
            i += 2
            continue
        j = i
        while j < n and isinstance(mods[j], (Conv2d, _BatchNorm)):
            j += 1
            if j < n and isinstance(mods[j - 1], _BatchNorm) and isinstance(mods[j], (ReLU, Hardtanh)):
                j += 1                                  # the BatchNorm's activation
        if sum(isinstance(m, (Conv2d, _BatchNorm)) for m in mods[i:j]) >= 2:
            x = conv_norm_chain(mods[i:j], x)
            i = j
            continue
        j = max(j, i + 1)
        x = run_fusing_bn_relu(mods[i:j], x)
        i = j
    return x


def _relu_pool(relu, pool, x):
    """Whether relu(·) then pool(·) may run as pool(·) then relu(·) on x: a plain ReLU (no
    hooks, ReLU's forward), a MaxPool2d with its own forward, no hooks, no indices returned
    and dilation 1, and x a float32/float64 tensor. Equal values: max over a window of
    max(v, 0) is max(max over the window, 0) (NaN propagates through both, as does the
    window's winner) — for a window with at least one input in it, which dilation 1 gives
    (padding ≤ half the window); a dilated window can hold padding only, −inf either way
    unless the ReLU comes second. Equal gradients: where the window's maximum is positive
    both orders send δ to the same winner (the first of the ties, which are equal values
    either way); where it is ≤ 0 or NaN both send 0 (the ReLU's mask is 0 there, before or
    after the routing). An integer x: the ReLU makes it float32 first, so it stays first."""
    return (type(relu) is ReLU and not _hooked(relu) and isinstance(pool, MaxPool2d)
            and type(pool).forward is MaxPool2d.forward and not _hooked(pool)
            and not pool.return_indices and pool.dilation in (1, (1, 1))
            and isinstance(x, TensorBase) and x.data.dtype in (np.float32, np.float64))


def _plain_array(t, dtype):
    return t is None or (isinstance(t, TensorBase) and t.data.dtype == dtype
                         and t.data.flags.c_contiguous)


_CONV_STAGES = {}       # conv2d_args' answers for the stages, by _conv_stage's key
_CONV_STAGES_MAX = 4096


def _conv_stage(m, w, b, shape, dtype):
    """(ConvStage, output shape) of Conv2d m on an input of `shape` and `dtype`: conv2d_args'
    checks and results (its errors for arguments it rejects), remembered per key as
    conv2d_args remembers them, the memory budget asked again on every call."""
    key = (shape, dtype, w.data.shape, None if b is None else b.data.shape, m.stride, m.padding,
           m.dilation, m.groups)
    hit = _CONV_STAGES.get(key)
    if hit is None:
        probe = wrap(np.broadcast_to(np.zeros((), dtype), shape))     # shape and dtype only
        *_, stride, padding, dilation, groups, out_shape = conv2d_args(
            "conv2d", probe, w, b, m.stride, m.padding, m.dilation, m.groups)
        hit = (ConvStage(D.Geom(stride, (padding[0], padding[2]), dilation, groups),
                         out_shape[-2:], b is not None), out_shape)
        if len(_CONV_STAGES) >= _CONV_STAGES_MAX:
            _CONV_STAGES.clear()
        _CONV_STAGES[key] = hit
    check_output("conv2d", "padding and stride", hit[1], dtype.itemsize)
    return hit


def _spec(layers, x):
    """(params, stages) for ConvNormChain.apply, or None when the layers must run as
    written (conv_norm_chain's conditions). Counts the BatchNorms' batches only when it
    returns a spec (after every check passed), as their forwards would."""
    if not isinstance(x, TensorBase):
        return None
    a = x.data
    dt = a.dtype
    if a.ndim != 4 or not a.flags.c_contiguous or kernels._norm_path(a) != "fused":
        return None
    shape, params, stages, norms, i, n = a.shape, [], [], [], 0, len(layers)
    while i < n:
        m = layers[i]
        if isinstance(m, Conv2d):
            w, b = m._member("_parameters", "weight"), m._member("_parameters", "bias")
            if (type(m).forward is not Conv2d.forward or _hooked(m)
                    or m.data_format != "channels_first" or w is None
                    or not (_plain_array(w, dt) and _plain_array(b, dt))):
                return None
            stage, shape = _conv_stage(m, w, b, shape, dt)
            stages.append(stage)
            params += (w, b)
            i += 1
            continue
        if not (isinstance(m, _BatchNorm) and type(m).forward is _BatchNorm.forward
                and not _hooked(m) and 4 in m._ndims and shape[1] == m.num_features
                and (not m.training or shape[0] * shape[2] * shape[3] > 1)):
            return None
        rm, rv, w, b, training, _, eps = m._stat_args(count=False)
        if not (_plain_array(w, dt) and _plain_array(b, dt)
                and (rm is None or (rm.dtype == dt and rm.flags.c_contiguous))
                and (rv is None or (rv.dtype == dt and rv.flags.c_contiguous))):
            return None
        act = layers[i + 1] if i + 1 < n else None
        hi = None
        relu = isinstance(act, ReLU) and _plain_relu(act)
        if not relu and act is not None:
            hi = _plain_relu6(act)
            relu = hi is not None
        norms.append((m, len(stages)))
        stages.append(NormStage(rm, rv, training, 0.0, eps, relu, hi))
        params += (w, b)
        i += 2 if relu else 1
    for m, k in norms:                  # every check passed: count the batches, as forward does
        stages[k].momentum = m._momentum_factor()
    return params, stages
