"""Layers: Linear, the activations, Flatten, Dropout, BatchNorm1d/2d and the losses."""
import math
import numbers

import numpy as np

from ..ops import activation as A
from ..ops import elementwise as E
from ..ops import loss as L
from ..ops import nn as N
from ..ops import norm as B
from ..ops.shape import flatten
from ..tensor_base import TensorBase
from . import init
from .module import Module, Parameter


def _int_arg(cls, name, v, minimum=0):
    if not isinstance(v, numbers.Integral) or isinstance(v, bool):
        raise TypeError(f"{cls}(): {name} must be an int, got {v!r}")
    if v < minimum:
        raise ValueError(f"{cls}(): {name} must be ≥ {minimum}, got {v}")
    return int(v)


def _float_dtype(cls, dtype):
    dtype = np.dtype(np.float32 if dtype is None else dtype)
    if dtype.kind != "f":
        raise TypeError(f"{cls}(): dtype must be a floating-point dtype, got {dtype}")
    return dtype


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out_features, in_features).

    PyTorch's initialisation: W ~ kaiming_uniform(a=√5) = U(±1/√in_features),
    b ~ U(±1/√in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = _int_arg("Linear", "in_features", in_features)
        self.out_features = _int_arg("Linear", "out_features", out_features)
        dtype = _float_dtype("Linear", dtype)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight.size:
            init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return N.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class ReLU(Module):
    """y = max(x, 0). inplace=True is accepted (PyTorch's memory hint) and gives the same
    numbers; minigrad computes out of place (see minigrad/ops/activation.py)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = A._inplace_arg("ReLU", inplace)

    def forward(self, x):
        return E.relu(x)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    def forward(self, x):
        return E.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return E.tanh(x)


class Softmax(Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = _int_arg(type(self).__name__, "dim", dim, minimum=-2**62)

    def forward(self, x):
        return N.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, x):
        return N.log_softmax(x, self.dim)


class Flatten(Module):
    """Merge dims start_dim..end_dim (by default everything but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = _int_arg("Flatten", "start_dim", start_dim, minimum=-2**62)
        self.end_dim = _int_arg("Flatten", "end_dim", end_dim, minimum=-2**62)

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout in training mode, the identity in eval mode."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        self.p = N.check_probability(type(self).__name__, p)
        self.inplace = A._inplace_arg(type(self).__name__, inplace)

    def forward(self, x):
        return N.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}" + (", inplace=True" if self.inplace else "")


class _BatchNorm(Module):
    """Shared by BatchNorm1d/2d: affine weight (γ = 1) and bias (β = 0); buffers
    running_mean (0), running_var (1) and num_batches_tracked (int64), PyTorch's names.

    momentum=None uses the cumulative average (factor 1/num_batches_tracked), as PyTorch."""

    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None):
        super().__init__()
        cls = type(self).__name__
        self.num_features = _int_arg(cls, "num_features", num_features, minimum=1)
        if not isinstance(eps, numbers.Real) or not eps >= 0:
            raise ValueError(f"{cls}(): eps must be a non-negative number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, numbers.Real)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{cls}(): momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = _float_dtype(cls, dtype)
        C = self.num_features
        if self.affine:
            self.weight = Parameter(np.ones(C, dtype))
            self.bias = Parameter(np.zeros(C, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(C, dtype))
            self.register_buffer("running_var", np.ones(C, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked = np.array(0, dtype=np.int64)

    def forward(self, x):
        return B.batch_norm(*self._norm_args(x))

    def _norm_args(self, x):
        """batch_norm's arguments for input x, checked; counts the batch (num_batches_tracked)."""
        x = N.as_float_tensor(x, type(self).__name__, "input")
        if x.ndim not in self._ndims:
            raise ValueError(f"{type(self).__name__}: expected a {' or '.join(map(str, self._ndims))}-d "
                             f"input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: input has {x.shape[1]} channels (shape "
                             f"{x.shape}) but num_features={self.num_features}")
        if self.training and x.size // x.shape[1] <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when "
                             f"training, got input of shape {x.shape}")
        return (x,) + self._stat_args()

    def _stat_args(self, count=True):
        """batch_norm's arguments after the input, for one forward: (running_mean,
        running_var, weight, bias, training, momentum, eps) — the batch statistics when
        training or not tracking, the momentum factor (1/count for momentum=None) —; counts
        the batch (num_batches_tracked) unless count is False (then momentum=None's factor
        is left for _momentum_factor()). The caller has checked the input."""
        factor = self._momentum_factor() if count else 0.0
        use_batch_stats = self.training or not self.track_running_stats
        stats = not self.training or self.track_running_stats
        m = self._member
        return (m("_buffers", "running_mean") if stats else None,
                m("_buffers", "running_var") if stats else None,
                m("_parameters", "weight"), m("_parameters", "bias"), use_batch_stats, factor,
                self.eps)

    def _momentum_factor(self):
        """Counts the batch (num_batches_tracked, when training and tracking) and returns
        the running statistics' momentum factor: momentum, or 1/count for momentum=None."""
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            count = self._member("_buffers", "num_batches_tracked")
            count += 1              # a 0-d int64 array, in place (no Module.__setattr__ needed)
            if self.momentum is None:
                factor = 1.0 / float(count)
        return factor

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


def bn_relu(bn, relu, x):
    """relu(bn(x)) — a BatchNorm1d/2d module `bn`, then a ReLU module `relu` (None: F.relu),
    or a ReLU6 (any Hardtanh with min_val 0 and a positive, finite max_val) —
    as one op when nothing can tell the difference: ops/norm.py's BatchNormReLU, the same
    numbers and gradients bit for bit, with max(y, 0) (min(max(y, 0), max_val)) written in
    the pass that computes y (one pass over the activation and one graph node less). That
    is when neither module has a forward hook or pre-hook and neither is a subclass with a
    forward of its own; otherwise the two calls are made as written. nn.Sequential applies
    it to every BatchNorm followed by a ReLU or a ReLU6; models call it where their forward
    does the same.

    Shapes: x (N, C) / (N, C, L) for BatchNorm1d, (N, C, H, W) for BatchNorm2d; out as x."""
    if _fusable(bn, relu, clamp=True):
        return _fused(bn, x, relu)
    y = bn(x)
    return E.relu(y) if relu is None else relu(y)


def bn_add_relu(bn, relu, x, z):
    """relu(bn(x) + z) — a BatchNorm1d/2d module `bn`, a residual z of its output's shape
    and dtype, then a ReLU module `relu` (None: F.relu): a residual block's end, as one op
    when nothing can tell the difference (the rule of bn_relu: no hooks, no overridden
    forward): ops/norm.py's BatchNormAddReLU, the same numbers and gradients bit for bit,
    with max(bn(x) + z, 0) written in the pass that computes bn(x) (neither it nor the sum is
    stored). Otherwise bn is called as written, then add_relu(relu, ·, z).

    Shapes: x and z (N, C, H, W) for BatchNorm2d ((N, C) / (N, C, L) for BatchNorm1d);
    out as x."""
    if (_fusable(bn, relu) and isinstance(z, TensorBase) and isinstance(x, TensorBase)
            and z.shape == x.shape and z.dtype == x.dtype):
        x, *args = bn._norm_args(x)
        return B.batch_norm_add_relu(x, z, *args)
    return add_relu(relu, bn(x), z)


def add_relu(relu, a, b):
    """relu(a + b) — a ReLU module `relu` (None: F.relu) after a sum, ResNet's
    y = relu(F(x) + x) — as one op when nothing can tell the difference: ops/elementwise.py's
    AddReLU, the same numbers and gradients bit for bit, with the sum never stored (one pass
    over the activation and one graph node less). That is when `relu` has no forward hook or
    pre-hook and is not a subclass with a forward of its own; otherwise the two calls are
    made as written. a and b broadcast as in `+`; out has their broadcast shape."""
    if _plain_relu(relu):
        return E.add_relu(a, b)
    return relu(a + b)


def run_fusing_bn_relu(mods, x):
    """x -> mods[0](x) -> mods[1](mods[0](x)) -> …, a BatchNorm followed by a ReLU or a
    ReLU6 as one op where nothing can tell the difference (bn_relu)."""
    i = 0
    while i < len(mods):
        if i + 1 < len(mods) and _fusable(mods[i], mods[i + 1], clamp=True):
            x = _fused(mods[i], x, mods[i + 1])
            i += 2
        else:
            x = mods[i](x)
            i += 1
    return x


def _fusable(bn, relu, clamp=False):
    """Whether bn_relu may run bn then relu as one op (see there); clamp: a plain ReLU6
    (Hardtanh with min_val 0) counts as well."""
    return (isinstance(bn, _BatchNorm) and type(bn).forward is _BatchNorm.forward
            and (_plain_relu(relu) or (clamp and _plain_relu6(relu) is not None))
            and not _hooked(bn))


def _plain_relu6(act):
    """max_val of a Hardtanh module (ReLU6 among them) nothing could tell apart from
    F.hardtanh(·, 0, max_val) — min_val 0, a positive finite max_val, Hardtanh's own
    forward, no hooks —; None for anything else."""
    from .activation import Hardtanh
    if (isinstance(act, Hardtanh) and type(act).forward is Hardtanh.forward and not _hooked(act)
            and act.min_val == 0 and 0 < act.max_val < math.inf):
        return float(act.max_val)
    return None


def _plain_relu(relu):
    """None, or a ReLU module nothing could tell apart from F.relu (no hooks, ReLU's own
    forward): the condition on the ReLU of every fusion here."""
    return relu is None or (isinstance(relu, ReLU) and type(relu).forward is ReLU.forward
                            and not _hooked(relu))


def _fused(bn, x, act=None):
    """bn's forward with the ReLU (or ReLU6) `act` after it, as one op (the caller checked
    _fusable)."""
    return B.batch_norm_relu(*bn._norm_args(x),
                             max_val=None if _plain_relu(act) else _plain_relu6(act))


def _hooked(m):
    return bool(m.__dict__.get("_forward_pre_hooks") or m.__dict__.get("_forward_hooks"))


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over all axes but C."""
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs over N, H and W."""
    _ndims = (4,)


class CrossEntropyLoss(Module):
    def __init__(self, weight=None, reduction="mean", label_smoothing=0.0):
        super().__init__()
        L.check_reduction("CrossEntropyLoss", reduction)
        if (not isinstance(label_smoothing, numbers.Real) or isinstance(label_smoothing, bool)
                or not 0.0 <= label_smoothing <= 1.0):
            raise ValueError(f"CrossEntropyLoss(): label_smoothing must be a number in [0, 1], "
                             f"got {label_smoothing!r}")
        self.weight = None if weight is None else np.asarray(getattr(weight, "data", weight))
        if self.weight is not None and (self.weight.ndim != 1 or self.weight.dtype.kind not in "fiu"):
            raise TypeError(f"CrossEntropyLoss(): weight must be a 1-d numeric array (one per class), "
                            f"got dtype {self.weight.dtype} and shape {self.weight.shape}")
        self.reduction, self.label_smoothing = reduction, label_smoothing

    def forward(self, input, target):
        return L.cross_entropy(input, target, self.weight, self.reduction, self.label_smoothing)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction}"


class NLLLoss(Module):
    """ℓ_n = −weight[y_n] · input[n, y_n] over log-probabilities, reduced (see F.nll_loss);
    NLLLoss()(log_softmax(z, 1), y) equals CrossEntropyLoss()(z, y)."""

    def __init__(self, weight=None, ignore_index=-100, reduction="mean"):
        super().__init__()
        L.check_reduction("NLLLoss", reduction)
        self.weight, self.ignore_index, self.reduction = weight, ignore_index, reduction

    def forward(self, input, target):
        return L.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        L.check_reduction("MSELoss", reduction)
        self.reduction = reduction

    def forward(self, input, target):
        return L.mse_loss(input, target, self.reduction)

    def extra_repr(self):
        return "" if self.reduction == "mean" else f"reduction={self.reduction}"
