"""Channels-last data, as TensorFlow and Keras hold it: `data_format="channels_last"`.

minigrad computes in PyTorch's layout (DESIGN.md): activations (N, C, H, W) and conv
weights (K, C/G, F_h, F_w). TensorFlow's `tf.nn.conv2d` and `layers.Conv2D` (the cells
of the notes) hold the channels last instead:

    activations   x (N, H, W, C)          instead of (N, C, H, W)
    conv weights  w (F_h, F_w, C/G, K)    instead of (K, C/G, F_h, F_w)

The numbers do not depend on where the channel axis sits, only the indexing does:

    y_nhwc[n, i', j', k] = y_nchw[n, k, i', j']

so conv2d, max_pool2d and avg_pool2d with data_format="channels_last" move the axes
(one differentiable `permute` each way, whose backward is the inverse permutation),
call the channels-first op, and move the output's axes back. Gradients flow through the
permutes, so ∂L/∂x comes back in (N, H, W, C) and ∂L/∂w in (F_h, F_w, C/G, K).

The public ops take the argument and hand the call to this module in one line, e.g.

    F.conv2d(x_nhwc, w_hwio, stride=2, padding="same", data_format="channels_last")

"NHWC" and "NCHW" (TensorFlow's spelling) are accepted as synonyms.
"""
from .shape import permute

CHANNELS_FIRST = "channels_first"
CHANNELS_LAST = "channels_last"
_SPELLINGS = {"channels_first": CHANNELS_FIRST, "NCHW": CHANNELS_FIRST,
              "channels_last": CHANNELS_LAST, "NHWC": CHANNELS_LAST}

# axis orders for permute(): activations with and without the batch axis, and weights
_NHWC_TO_NCHW = {4: (0, 3, 1, 2), 3: (2, 0, 1)}
_NCHW_TO_NHWC = {4: (0, 2, 3, 1), 3: (1, 2, 0)}
_HWIO_TO_OIHW = (3, 2, 0, 1)       # (F_h, F_w, C/G, K) -> (K, C/G, F_h, F_w)


def is_channels_last(fn, data_format):
    """True for 'channels_last' / 'NHWC', False for 'channels_first' / 'NCHW'; anything
    else is a ValueError naming the function `fn`."""
    if not isinstance(data_format, str) or data_format not in _SPELLINGS:
        raise ValueError(f"{fn}(): data_format must be 'channels_first' (NCHW) or "
                         f"'channels_last' (NHWC), got {data_format!r}")
    return _SPELLINGS[data_format] == CHANNELS_LAST


def _ndim(fn, what, t, allowed, layout):
    ndim = len(t.shape) if hasattr(t, "shape") else -1
    if ndim not in allowed:
        shape = getattr(t, "shape", type(t).__name__)
        raise ValueError(f"{fn}(data_format='channels_last'): {what} must be {layout}, "
                         f"got shape {shape}")
    return ndim


def channels_first(fn, x):
    """x (N, H, W, C) or (H, W, C) -> (N, C, H, W) or (C, H, W), differentiably."""
    ndim = _ndim(fn, "input", x, (3, 4), "4-d (N, H, W, C) or 3-d (H, W, C)")
    return permute(x, _NHWC_TO_NCHW[ndim])


def channels_last(y):
    """y (N, C, H, W) or (C, H, W) -> (N, H, W, C) or (H, W, C), differentiably."""
    return permute(y, _NCHW_TO_NHWC[y.ndim])


def conv2d_channels_last(conv2d, x, weight, bias, stride, padding, dilation, groups):
    """conv2d on x (N, H, W, C) with weight (F_h, F_w, C/G, K), as tf.nn.conv2d takes them;
    returns (N, OH, OW, K). `conv2d` is the channels-first op that computes it."""
    fn = "conv2d"
    _ndim(fn, "weight", weight, (4,), "4-d (F_h, F_w, C/groups, K)")
    x_ndim = _ndim(fn, "input", x, (3, 4), "4-d (N, H, W, C) or 3-d (H, W, C)")
    C, Cg = x.shape[-1], weight.shape[2]
    if isinstance(groups, int) and groups > 0 and Cg * groups != C:
        raise ValueError(f"{fn}(data_format='channels_last'): input has {C} channels in its "
                         f"last axis (shape {tuple(x.shape)}) but weight {tuple(weight.shape)} "
                         f"(F_h, F_w, C/groups, K) with groups={groups} expects {Cg * groups}")
    y = conv2d(permute(x, _NHWC_TO_NCHW[x_ndim]), permute(weight, _HWIO_TO_OIHW), bias,
               stride, padding, dilation, groups)
    return channels_last(y)              # (N, K, OH, OW) -> (N, OH, OW, K)


def pool2d_channels_last(fn, pool, x, *args):
    """pool (max_pool2d or avg_pool2d, named fn) over x (N, H, W, C); returns (N, OH, OW, C)
    — and, when pool returns indices too, those in (N, OH, OW, C) (each still the flat
    index h·W + w of the winner within its channel's H×W plane)."""
    out = pool(channels_first(fn, x), *args)
    if isinstance(out, tuple):
        y, indices = out
        return channels_last(y), channels_last(indices)
    return channels_last(out)
