"""Weight initialisation (torch.nn.init's names, formulas and fan computations): uniform_,
normal_, constant_, zeros_, ones_, eye_, dirac_, xavier_uniform_/normal_, kaiming_uniform_/normal_,
trunc_normal_, orthogonal_, sparse_ and calculate_gain.

Every function fills a Tensor (or Parameter) in place, keeping its dtype, draws from
minigrad's global generator (seeded by mg.manual_seed) and returns the tensor.
"""
import math
import numbers

import numpy as np

from ..random import generator
from ..tensor import Tensor


def _target(tensor, fn):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init.{fn}(): expected a Tensor or Parameter, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"init.{fn}(): the tensor must be floating point, got dtype {tensor.dtype}")
    return tensor


def _fill(tensor, values):
    tensor.data[...] = values                  # in place; the dtype stays the tensor's
    return tensor


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain):
    linear/conv/sigmoid 1, tanh 5/3, relu √2, leaky_relu √(2/(1 + slope²)) (slope 0.01
    by default), selu 3/4."""
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d")
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain(): negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain(): unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """fan_in = shape[1] · receptive field, fan_out = shape[0] · receptive field, where the
    receptive field is the product of shape[2:] (1 for a Linear weight)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out cannot be computed for a tensor with fewer than "
                         f"2 dims (shape {shape})")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialise a tensor with a zero {mode} (shape {tensor.shape})")
    return fan


def uniform_(tensor, a=0.0, b=1.0):
    """Fill with U(a, b)."""
    _target(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"init.uniform_(): a ({a}) must not exceed b ({b})")
    return _fill(tensor, generator().uniform(a, b, tensor.shape))


def normal_(tensor, mean=0.0, std=1.0):
    """Fill with N(mean, std²)."""
    _target(tensor, "normal_")
    if not std >= 0:
        raise ValueError(f"init.normal_(): std must be non-negative, got {std}")
    return _fill(tensor, generator().normal(mean, std, tensor.shape))


def constant_(tensor, val):
    """Fill every element with val."""
    _target(tensor, "constant_")
    return _fill(tensor, val)


def zeros_(tensor):
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0):
    """Glorot: U(−a, a) with a = gain · √(6 / (fan_in + fan_out))."""
    _target(tensor, "xavier_uniform_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return _fill(tensor, generator().uniform(-a, a, tensor.shape))


def xavier_normal_(tensor, gain=1.0):
    """Glorot: N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    _target(tensor, "xavier_normal_")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _fill(tensor, generator().normal(0.0, std, tensor.shape))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He: U(−bound, bound) with bound = gain · √(3 / fan), gain = calculate_gain(nonlinearity, a).

    PyTorch's Linear and Conv2d use a = √5, which gives bound = 1/√fan_in."""
    _target(tensor, "kaiming_uniform_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return _fill(tensor, generator().uniform(-bound, bound, tensor.shape))


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He: N(0, std²) with std = gain / √fan."""
    _target(tensor, "kaiming_normal_")
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return _fill(tensor, generator().normal(0.0, std, tensor.shape))


def eye_(tensor):
    """Fill a 2-d tensor with the identity: w[i, j] = 1 if i = j else 0 (Linear keeps its
    input's first min(in, out) features)."""
    _target(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"init.eye_(): only 2-d tensors are supported, got shape {tensor.shape}")
    return _fill(tensor, np.eye(*tensor.shape))


def dirac_(tensor, groups=1):
    """Fill a conv weight (out, in, k…) of 3, 4 or 5 dims so that the convolution is the
    identity on the first min(out/groups, in) channels of each group: w[g·m + d, d, centre] = 1
    with m = out/groups, every other entry 0 (torch.nn.init.dirac_)."""
    _target(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"init.dirac_(): only 3, 4 or 5-d tensors are supported, got shape {tensor.shape}")
    if not isinstance(groups, numbers.Integral) or groups < 1 or tensor.shape[0] % groups:
        raise ValueError(f"init.dirac_(): out_channels ({tensor.shape[0]}) must be divisible by "
                         f"groups ({groups!r}), a positive int")
    m = tensor.shape[0] // groups
    w = np.zeros(tensor.shape)
    centre = tuple(k // 2 for k in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(m, tensor.shape[1])):
            w[(g * m + d, d) + centre] = 1
    return _fill(tensor, w)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """Fill with N(mean, std²) truncated to [a, b]: values drawn from the normal until they
    fall inside (rejection sampling, so the distribution is exact); a and b are absolute
    bounds, as in torch.nn.init.trunc_normal_. The interval must hold at least a 10⁻⁴
    share of the normal's mass (else ValueError)."""
    _target(tensor, "trunc_normal_")
    if not std > 0:
        raise ValueError(f"init.trunc_normal_(): std must be positive, got {std}")
    if not a < b:
        raise ValueError(f"init.trunc_normal_(): a ({a}) must be below b ({b})")

    def cdf(v):
        return 0.5 * (1 + math.erf((v - mean) / (std * math.sqrt(2))))
    mass = cdf(b) - cdf(a)
    if mass < 1e-4:
        raise ValueError(f"init.trunc_normal_(): [a, b] = [{a}, {b}] holds only {mass:.3g} of "
                         f"N({mean}, {std}²); move the bounds nearer the mean")
    n = int(np.prod(tensor.shape))
    out = np.empty(n)
    filled = 0
    while filled < n:
        need = n - filled
        draw = generator().normal(mean, std, min(int(need / mass * 1.1) + 16, 1 << 24))
        draw = draw[(draw >= a) & (draw <= b)][:need]
        out[filled:filled + len(draw)] = draw
        filled += len(draw)
    return _fill(tensor, out.reshape(tensor.shape))


def orthogonal_(tensor, gain=1.0):
    """Fill with a (semi-)orthogonal matrix times gain (Saxe et al. 2013): the tensor is
    viewed as (rows, cols) = (shape[0], size/shape[0]); Q of the QR factorisation of a
    Gaussian matrix, its columns' signs fixed by R's diagonal so Q is uniformly
    distributed; rows ≤ cols gives orthonormal rows, rows > cols orthonormal columns."""
    _target(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"init.orthogonal_(): only tensors with 2 or more dims are supported, "
                         f"got shape {tensor.shape}")
    rows = tensor.shape[0]
    cols = int(np.prod(tensor.shape)) // rows if rows else 0
    if rows == 0 or cols == 0:
        return tensor
    g = generator().standard_normal((rows, cols))
    if rows < cols:
        g = g.T                                        # (cols, rows): QR wants tall
    q, r = np.linalg.qr(g)                             # q (tall, short) with orthonormal columns
    q = q * np.sign(np.diag(r))                        # unique Q: R with a positive diagonal
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(tensor.shape))


def sparse_(tensor, sparsity, std=0.01):
    """Fill a 2-d tensor with N(0, std²) values and then zero ⌈sparsity · rows⌉ randomly
    chosen entries in every column (Martens 2010; torch.nn.init.sparse_)."""
    _target(tensor, "sparse_")
    if tensor.ndim != 2:
        raise ValueError(f"init.sparse_(): only 2-d tensors are supported, got shape {tensor.shape}")
    if not 0 <= sparsity <= 1:
        raise ValueError(f"init.sparse_(): sparsity must be in [0, 1], got {sparsity}")
    rows, cols = tensor.shape
    w = generator().normal(0.0, std, (rows, cols))
    zeros = int(math.ceil(sparsity * rows))
    for j in range(cols):
        w[generator().permutation(rows)[:zeros], j] = 0
    return _fill(tensor, w)
