"""Argument checks and normalisation of conv2d and conv_transpose2d: every argument is
validated here before any kernel runs (the kernels trust their caller), with errors that
name the function, the argument and the shapes.

Notation (DESIGN.md): x (N, C, H, W) or (C, H, W), w (K, C/G, F_h, F_w) for conv2d and
(C_in, C_out/G, F_h, F_w) for conv_transpose2d; K is only the number of output channels.
Output size along an axis: ⌊(H + P_top + P_bottom − D·(F_h − 1) − 1) / S⌋ + 1.
"""
import numpy as np

from ..tensor_base import TensorBase
from ._args import check_same_dtype, float_array, int_arg, pair, same_padding
from .limits import check_output

_WEIGHT_RANK = {4: "4-d (K, C/G, F_h, F_w)"}
_BIAS_RANK = {1: "1-d (K,)"}


def operands(fn, x, weight, bias, groups):
    """The input (3-d or 4-d), weight (4-d) and bias (1-d or None) arrays and the groups
    count, checked for float dtypes, ranks, positive groups and no empty dimension."""
    xa = float_array(x, fn, "input", (3, 4))
    wa = float_array(weight, fn, "weight", (4,), rank_names=_WEIGHT_RANK)
    ba = None if bias is None else float_array(bias, fn, "bias", (1,), rank_names=_BIAS_RANK)
    check_same_dtype(fn, xa, weight=wa, bias=ba)            # PyTorch's rule: no mixed dtypes
    groups = int_arg(groups, fn, "groups")
    if groups < 1:
        raise ValueError(f"{fn}(): groups must be positive, got {groups}")
    if min(wa.shape) < 1:
        raise ValueError(f"{fn}(): weight must have no empty dimension, got shape {wa.shape}")
    if min(xa.shape[-3:]) < 1:
        raise ValueError(f"{fn}(): input must have non-empty channel and spatial dimensions, "
                         f"got shape {xa.shape}")
    return xa, wa, ba, groups


def compute_dtype(*arrays):
    """NumPy's promotion; float16 is computed in float32 (the kernels are float32/64)."""
    dt = np.result_type(*[a.dtype for a in arrays if a is not None])
    return np.dtype(np.float32) if dt == np.float16 else dt


def out_size(size, k, s, p_lo, p_hi, d):
    """⌊(size + p_lo + p_hi − d·(k − 1) − 1) / s⌋ + 1 output positions along one axis."""
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


def padding4(padding, fn, hw, khw, stride, dilation):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            return (same_padding(hw[0], khw[0], stride[0], dilation[0])[1:]
                    + same_padding(hw[1], khw[1], stride[1], dilation[1])[1:])
        raise ValueError(f"{fn}(): padding must be an int, a pair, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = pair(padding, fn, "padding", 0)
    return (ph, ph, pw, pw)


_CHECKED = {}                       # _plain_key -> conv2d_args' checked hyper-parameters
_CHECKED_MAX = 4096                 # entries before it starts afresh (a bound, not an LRU)


def conv2d_args(fn, x, weight, bias, stride, padding, dilation, groups):
    """Everything conv2d checks: (xa, wa, ba, stride, padding, dilation, groups, out_shape)
    with padding as (top, bottom, left, right) and out_shape conv2d's output shape.

    The result depends only on the operands' shapes and dtypes and the hyper-parameters, so
    a layer's repeated calls with plain arguments (_plain_key) reuse the first call's
    checked values (only the memory budget is asked again): 18 → 4.3 µs a call
    for a Conv2d layer's (tuple) arguments."""
    key = _plain_key(fn, x, weight, bias, stride, padding, dilation, groups)
    hit = None if key is None else _CHECKED.get(key)
    if hit is not None:
        checked, itemsize = hit             # the memory budget may have changed: asked again
        check_output(fn, "padding and stride", checked[-1], itemsize)
        return (x.data, weight.data, None if bias is None else bias.data) + checked
    result = _conv2d_args(fn, x, weight, bias, stride, padding, dilation, groups)
    if key is not None:
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = (result[3:], compute_dtype(*result[:3]).itemsize)
    return result


def _plain(v):
    """An int, a pair of ints (int exactly: not a bool, not NumPy's) or a string."""
    t = type(v)
    return t is int or t is str or (t is tuple and len(v) == 2 and type(v[0]) is int
                                     and type(v[1]) is int)


def _plain_key(fn, x, weight, bias, stride, padding, dilation, groups):
    """conv2d_args' memo key when the operands are tensors and the hyper-parameters plain
    values (_plain), else None (then every check runs)."""
    if not (isinstance(x, TensorBase) and isinstance(weight, TensorBase)
            and (bias is None or isinstance(bias, TensorBase)) and type(groups) is int
            and _plain(stride) and _plain(padding) and _plain(dilation)):
        return None
    xa, wa = x.data, weight.data
    return (fn, xa.shape, xa.dtype, wa.shape, wa.dtype,
            None if bias is None else (bias.data.shape, bias.data.dtype),
            stride, padding, dilation, groups)


def _conv2d_args(fn, x, weight, bias, stride, padding, dilation, groups):
    """conv2d_args' checks, every one."""
    xa, wa, ba, groups = operands(fn, x, weight, bias, groups)
    stride = pair(stride, fn, "stride", 1, bounded=False)    # any stride is valid: see below
    dilation = pair(dilation, fn, "dilation", 1)
    C, H, W = xa.shape[-3:]
    K, Cg, kh, kw = wa.shape
    if K % groups:
        raise ValueError(f"{fn}(): groups={groups} must divide the out_channels "
                         f"(weight shape {wa.shape})")
    if C % groups:
        raise ValueError(f"{fn}(): groups={groups} must divide the input channels "
                         f"(input shape {xa.shape})")
    if Cg * groups != C:
        nhwc = ""
        if W == Cg * groups:            # an (N, H, W, C) image read as NCHW: its C lands last
            nhwc = ("; it looks channels-last (N, H, W, C): pass x.permute(0, 3, 1, 2) "
                    "or data_format='channels_last'")
        raise ValueError(f"{fn}(): input has {C} channels (shape {xa.shape}) but weight "
                         f"{wa.shape} with groups={groups} expects {Cg * groups}{nhwc}")
    if ba is not None and ba.shape != (K,):
        raise ValueError(f"{fn}(): bias must have shape ({K},) for weight {wa.shape}, "
                         f"got {ba.shape}")
    padding = padding4(padding, fn, (H, W), (kh, kw), stride, dilation)
    pt, pb, pl, pr = padding
    for axis, size, k, d, lo, hi in (("height", H, kh, dilation[0], pt, pb),
                                     ("width", W, kw, dilation[1], pl, pr)):
        if d * (k - 1) + 1 > size + lo + hi:
            raise ValueError(
                f"{fn}(): the kernel's {axis} with dilation ({d}·({k}−1)+1 = {d * (k - 1) + 1}) "
                f"is larger than the padded input's ({size}+{lo}+{hi} = {size + lo + hi}); "
                f"input shape {xa.shape}, weight shape {wa.shape}")
    # A stride longer than the room the kernel has leaves one output position along that
    # axis; any such stride gives the same numbers, so use the smallest (it fits in int32).
    stride = (min(stride[0], H + pt + pb - dilation[0] * (kh - 1)),
              min(stride[1], W + pl + pr - dilation[1] * (kw - 1)))
    out_shape = (xa.shape[0],) * (xa.ndim == 4) + (K, out_size(H, kh, stride[0], pt, pb, dilation[0]),
                                                   out_size(W, kw, stride[1], pl, pr, dilation[1]))
    check_output(fn, "padding and stride", out_shape, compute_dtype(xa, wa, ba).itemsize)
    return xa, wa, ba, stride, padding, dilation, groups, out_shape


def conv_transpose2d_args(fn, x, weight, bias, stride, padding, output_padding, groups, dilation):
    """Everything conv_transpose2d checks: (xa, wa, ba, stride, padding, output_padding,
    dilation, groups, out_shape), the hyper-parameters as pairs."""
    xa, wa, ba, groups = operands(fn, x, weight, bias, groups)
    stride = pair(stride, fn, "stride", 1)
    dilation = pair(dilation, fn, "dilation", 1)
    if isinstance(padding, str):
        raise ValueError(f"{fn}(): padding must be an int or a pair of ints, got {padding!r}")
    padding = pair(padding, fn, "padding", 0)
    output_padding = pair(output_padding, fn, "output_padding", 0)
    C, H, W = xa.shape[-3:]
    Cin, Cog, kh, kw = wa.shape
    if Cin % groups:
        raise ValueError(f"{fn}(): groups={groups} must divide the in_channels "
                         f"(weight shape {wa.shape})")
    if C != Cin:
        raise ValueError(f"{fn}(): input has {C} channels (shape {xa.shape}) but weight "
                         f"{wa.shape} expects {Cin}")
    if ba is not None and ba.shape != (Cog * groups,):
        raise ValueError(f"{fn}(): bias must have shape ({Cog * groups},) for weight {wa.shape} "
                         f"and groups={groups}, got {ba.shape}")
    for axis in (0, 1):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ValueError(f"{fn}(): output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    out_hw = []
    for axis, size, k in ((0, H, kh), (1, W, kw)):
        out = ((size - 1) * stride[axis] - 2 * padding[axis] + dilation[axis] * (k - 1)
               + output_padding[axis] + 1)
        if out < 1:
            raise ValueError(f"{fn}(): padding {padding} is too large: the output "
                             f"{'height' if axis == 0 else 'width'} would be {out} "
                             f"(input shape {xa.shape}, weight shape {wa.shape})")
        out_hw.append(out)
    out_shape = (xa.shape[0],) * (xa.ndim == 4) + (Cog * groups, *out_hw)
    check_output(fn, "stride, dilation and output_padding", out_shape,
                 compute_dtype(xa, wa, ba).itemsize)
    return xa, wa, ba, stride, padding, output_padding, dilation, groups, out_shape
