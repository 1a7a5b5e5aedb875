"""Pooling over NCHW activations: max pooling (with its argmax mask), average pooling,
adaptive average pooling and global average pooling.

Names as in DESIGN.md: x is (N, C, H, W), or unbatched (C, H, W); the kernel is
F_h×F_w, the stride S, the padding P, the dilation D (max pooling only). Along
each axis (rows shown; columns alike) output row i reads the input rows

    i·S − P + p·D,   p = 0 … F_h−1          (rows outside 0 … H−1 are padding)

and there are

    OH = ⌊(H + 2P − D·(F_h−1) − 1) / S⌋ + 1   output rows (PyTorch's formula), or with
         ceil_mode ⌈·⌉ instead of ⌊·⌋, minus one if the last window would then start
         in the bottom padding ((OH−1)·S ≥ H + P);
    OH = ⌈H / S⌉ with padding='same' (Keras/TensorFlow): total padding
         max((OH−1)·S + D·(F_h−1) + 1 − H, 0), the odd pixel at the bottom/right;
    padding='valid' is P = 0.

Max pooling pads with −inf (padding never wins); average pooling divides by
  - the window clipped to the *padded* input, min(i·S − P + F_h, H + P) − (i·S − P) per
    axis, with count_include_pad=True (PyTorch; with ceil_mode a window hanging past
    the padded input counts only what lies inside it);
  - the number of real elements with count_include_pad=False and always with
    padding='same' (TensorFlow's rule: padding never counts);
  - divisor_override when given.

This module validates and normalises every argument (a kernel trusts its caller) and
describes each axis's windows by small tables — first real row, end row, divisor
factor — cached per geometry, which the kernels in ext/pool.pyx read. Every divisor
rule above is a product of a row factor and a column factor, so one average kernel
serves them all, adaptive pooling included.
minigrad/kernels.py chooses the kernel of each call: the table loops ('direct'), or the
specialised ones for 2×2 windows at stride 2 ('2x2'), whole-plane averages ('plane'), max
pooling's 3×3 windows at stride 1 with one pixel of padding ('3x3': separable, a row pass
then a column pass) and other max-pooling windows listed in a table ('taps').
"""
import functools
import math

import numpy as np

from .. import kernels
from .._ext import pool as _k
from ..autograd import Function
from ..tensor_base import TensorBase, wrap
from ..threads import get_num_threads
from . import layout
from ._args import MAX_INDEX, bool_arg, float_array, is_int, nonempty_planes, pair, same_padding
from .limits import check_output

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
           "global_avg_pool2d", "MaxPool2dFunction", "AvgPool2dFunction", "MaxPool2dBackward",
           "MaxPool2dGather", "AvgPool2dBackward"]


# ---- argument normalisation (built on ops/_args.py) -------------------------------------

def pool_args(fn, kernel_size, stride=None, padding=0, dilation=1):
    """Validate and normalise the hyper-parameters shared by the fixed-window poolings.

    Returns (kernel, stride, padding, dilation): pairs of ints, except padding, which
    is a pair or the string 'same'/'valid'. Checks what needs no input: kernel, stride,
    dilation ≥ 1; padding ≥ 0 and at most half the kernel, P ≤ ⌊F/2⌋ (PyTorch's rule;
    the string forms compute their own padding).
    """
    k = pair(kernel_size, fn, "kernel_size", 1)
    s = k if stride is None else pair(stride, fn, "stride", 1)
    d = pair(dilation, fn, "dilation", 1)
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("same", "valid"):
            raise ValueError(f"{fn}(): padding must be an int, a pair of ints, 'same' or "
                             f"'valid', got {padding!r}")
        return k, s, p, d
    p = pair(padding, fn, "padding", 0)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{fn}(): padding {p} must be at most half the kernel size {k} "
                         f"(padding ≤ kernel_size // 2)")
    return k, s, p, d


def adaptive_output_size(fn, output_size, hw=None):
    """output_size -> (OH, OW): an int, or a pair whose None entries keep the input's size."""
    if is_int(output_size) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise TypeError(f"{fn}(): output_size must be an int or a pair of ints/None, "
                        f"got {output_size!r}")
    out = []
    for a, o in enumerate(output_size):
        if o is None:
            out.append(None if hw is None else hw[a])
        elif is_int(o):
            if o < 1 or o > MAX_INDEX:
                raise ValueError(f"{fn}(): output_size entries must be positive ints, "
                                 f"got {tuple(output_size)}")
            out.append(int(o))
        else:
            raise TypeError(f"{fn}(): output_size must be an int or a pair of ints/None, "
                            f"got {output_size!r}")
    return tuple(out)


def _input(fn, x):
    """The ndarray behind x, checked: float32/float64, (C, H, W) or (N, C, H, W), only N may be 0."""
    return nonempty_planes(fn, float_array(x, fn, "input", (3, 4), _POOL_DTYPES))


_POOL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ---- window tables (cached per geometry) -------------------------------------------------

class _Geometry:
    """How the windows of one pooling call lie over an H×W plane.

    out: (OH, OW). rows/cols: (lo, hi, div) tables per axis, read-only intp arrays: window
    i reads the real rows lo[i], lo[i]+D, … < hi[i]; div[i] is the row factor of its
    divisor (average pooling only). step: (D_h, D_w). path: which kernels run —
    "general" (the tables), "2x2" (2×2 windows at stride 2 tiling the top-left of the
    plane, no padding), "plane" (average pooling, one window = the whole plane) or "3x3"
    (max pooling, 3×3 windows at stride 1 with one pixel of padding: _same_3x3).
    divisor: the uniform divisor on the "2x2" and "plane" paths.
    """
    __slots__ = ("H", "W", "out", "rows", "cols", "step", "path", "divisor", "real",
                 "window_taps", "taps_group", "taps")

    def __init__(self, H, W, rows, cols, step=(1, 1), plane_ok=True):
        self.H, self.W = H, W
        self.rows = tuple(_frozen(t) for t in rows)
        self.cols = tuple(_frozen(t) for t in cols)
        self.out = (len(self.rows[0]), len(self.cols[0]))
        self.step = step
        self.path = "2x2" if _tiles_2x2(self.rows, self.cols, step, H, W) else "general"
        self.divisor = None
        # max pooling's tap table (_tap_table, made on first use): the real rows and columns
        # of each window (lo, lo + D, … < hi), the most real inputs a window has (0 if some
        # window has none: dilation can do that), and how many planes share a column of the
        # table (planes of fewer than 32 outputs go in groups)
        self.real = tuple((hi - lo + d - 1) // d
                          for (lo, hi, _), d in zip((self.rows, self.cols), step))
        nr, nc = self.real
        self.window_taps = int(nr.max() * nc.max()) if min(nr.min(), nc.min()) > 0 else 0
        self.taps_group = max(1, 32 // (self.out[0] * self.out[1]))
        self.taps = None
        if self.path == "2x2":
            self.divisor = int(self.rows[2][0] * self.cols[2][0])
        if (plane_ok and self.out == (1, 1) and self.rows[0][0] == 0 and self.rows[1][0] == H
                and self.cols[0][0] == 0 and self.cols[1][0] == W):
            self.path, self.divisor = "plane", int(self.rows[2][0] * self.cols[2][0])


def _frozen(a):
    a = np.ascontiguousarray(a, dtype=np.intp)
    a.flags.writeable = False
    return a


def _axis_length(fn, axis, n, k, s, p, d, ceil_mode):
    """Number of windows along one axis (PyTorch's pooling_output_shape)."""
    span = d * (k - 1) + 1
    out = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1                         # the last window would start in the bottom padding
    if out < 1:
        raise ValueError(f"{fn}(): the kernel ({k} with dilation {d}, spanning {span}) is "
                         f"larger than the padded input along the {axis} "
                         f"({n} + 2·{p} = {n + 2 * p}); the output would be empty")
    return out


def _axis_windows(fn, axis, n, k, s, p, d, ceil_mode):
    """(start, P_before): window i starts at row start[i] = i·S − P_before (maybe in the padding)."""
    if p == "same":
        out, before, _ = same_padding(n, k, s, d)    # Keras/TensorFlow: out = ⌈n/S⌉
    else:
        before = 0 if p == "valid" else p
        out = _axis_length(fn, axis, n, k, s, before, d, ceil_mode)
    return np.arange(out, dtype=np.intp) * s - before, before


@functools.lru_cache(maxsize=256)
def _max_geometry(fn, H, W, kernel, stride, padding, dilation, ceil_mode):
    if H * W > MAX_INDEX:
        raise ValueError(f"{fn}(): an input plane of {H}×{W} is too large for the int32 mask")
    rows, cols = [], []
    for a, (axis, n, tables) in enumerate((("height", H, rows), ("width", W, cols))):
        k, s, p, d = kernel[a], stride[a], _axis_pad(padding, a), dilation[a]
        start, _ = _axis_windows(fn, axis, n, k, s, p, d, ceil_mode)
        # the first real tap start + t·D ≥ 0, t = ⌈−start/D⌉, and the end min(start + D·(F−1) + 1, n)
        lo = np.where(start >= 0, start, start + (-start + d - 1) // d * d)
        hi = np.minimum(start + d * (k - 1) + 1, n)
        tables += [lo, hi, np.ones_like(lo)]
    g = _Geometry(H, W, rows, cols, step=dilation, plane_ok=False)
    if g.path == "general" and _same_3x3(g.rows, g.cols, g.step, H, W):
        g.path = "3x3"
    return g


def _tap_table(g):
    """The windows of a max-pooling geometry g as ext/pool.pyx's max_pool2d_taps_forward
    reads them: (idx, G), made once per geometry. G = g.taps_group planes share a column
    of the table (about 32 outputs; G = 1 on planes of 32 outputs or more).

    idx (T, G·OH·OW), read-only int32, T = g.window_taps, the most real inputs a window has
    (every window must have one: g.window_taps > 0). Column q·OH·OW + o (o = i·OW + j) lists
    the flat indices q·H·W + h·W + w of the real inputs of window (i, j) of the group's
    plane q, in row-major order, the last one repeated to fill the column (visiting the last
    input again changes nothing: it cannot be greater than the maximum it took part in, and
    if it is a NaN it is the last NaN already); padding is never listed (a −∞ never wins)."""
    if g.taps is None:
        (h_lo, h_hi, _), (w_lo, w_hi, _) = g.rows, g.cols
        (dh, dw), (nr, nc) = g.step, g.real                                    # real rows, cols
        # window (i, j)'s t-th real input is its row t // nc[j], column t % nc[j]; past its
        # last (t ≥ nr[i]·nc[j]) the last again
        t = np.arange(g.window_taps)[:, None, None]                             # (T, 1, 1)
        t = np.minimum(t, (nr[:, None] * nc[None, :] - 1)[None])               # (T, OH, OW)
        h = h_lo[None, :, None] + dh * (t // nc[None, None, :])
        w = w_lo[None, None, :] + dw * (t % nc[None, None, :])
        flat = (h * g.W + w).reshape(len(t), -1)                                 # (T, OH·OW)
        G = g.taps_group
        idx = np.concatenate([flat + q * g.H * g.W for q in range(G)], axis=1)
        idx = np.ascontiguousarray(idx, dtype=np.int32)
        idx.flags.writeable = False
        g.taps = idx, G
    return g.taps


@functools.lru_cache(maxsize=256)
def _avg_geometry(fn, H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    rows, cols = [], []
    for a, (axis, n, tables) in enumerate((("height", H, rows), ("width", W, cols))):
        k, s, p = kernel[a], stride[a], _axis_pad(padding, a)
        start, before = _axis_windows(fn, axis, n, k, s, p, 1, ceil_mode)
        end = np.minimum(start + k, n + before)          # clipped to the padded input
        lo, hi = np.maximum(start, 0), np.minimum(end, n)  # clipped to the real input
        if count_include_pad and p != "same":
            div = end - start
        else:
            div = hi - lo
        tables += [lo, hi, div]
    if divisor_override is not None:                      # divisor = d·1
        rows[2] = np.full_like(rows[2], divisor_override)
        cols[2] = np.ones_like(cols[2])
    return _Geometry(H, W, rows, cols)


@functools.lru_cache(maxsize=256)
def _adaptive_geometry(H, W, out):
    """Window i of OH along an axis of n: rows ⌊i·n/OH⌋ … ⌈(i+1)·n/OH⌉ − 1 (PyTorch), divisor its size."""
    rows, cols = [], []
    for n, o, tables in ((H, out[0], rows), (W, out[1], cols)):
        i = np.arange(o, dtype=np.intp)
        lo = (i * n) // o
        hi = -((-(i + 1) * n) // o)
        tables += [lo, hi, hi - lo]
    return _Geometry(H, W, rows, cols)


def _axis_pad(padding, axis):
    return padding if isinstance(padding, str) else padding[axis]


def _tiles_2x2(rows, cols, step, H, W):
    """True when window (i, j) is exactly rows 2i, 2i+1 × cols 2j, 2j+1 with one divisor
    everywhere: the 2×2 stride-2 tiling the specialised kernels assume."""
    if step != (1, 1):
        return False
    for lo, hi, div in (rows, cols):
        expect = 2 * np.arange(len(lo))
        if not (np.array_equal(lo, expect) and np.array_equal(hi, expect + 2)
                and np.all(div == div[0])):
            return False
    return True


def _same_3x3(rows, cols, step, H, W):
    """True when window (i, j) is rows i−1 … i+1 × cols j−1 … j+1 clipped to the plane, for
    every (i, j) of an H×W output: 3×3 windows at stride 1 with one pixel of padding
    (ext/pool.pyx's '3x3' kernel, separable)."""
    if step != (1, 1):
        return False
    for (lo, hi, _), n in ((rows, H), (cols, W)):
        i = np.arange(n)
        if not (len(lo) == n and np.array_equal(lo, np.maximum(i - 1, 0))
                and np.array_equal(hi, np.minimum(i + 2, n))):
            return False
    return True


# ---- the ops -----------------------------------------------------------------------------

def _planes(x):
    """(…, H, W) -> C-contiguous (P, H, W), P = N·C (a view when x is contiguous already)."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-2], x.shape[-1])


class MaxPool2dFunction(Function):
    """y[n,c,i,j] = max over p < F_h, q < F_w of x_pad[n, c, i·S_h − P_h + p·D_h, j·S_w − P_w + q·D_w],
    x_pad padded with −inf. The forward records the winner of each window in a mask
    (its flat index h·W + w in the H·W plane; a tie goes to the first in row-major
    order, a NaN wins its window, as in PyTorch).

    Backward (seed 004, 'upsample'): δ flows to the one input that won its window;
    every other input gets 0. Overlapping windows accumulate:
        ∂L/∂x[n,c,h,w] = Σ_{(i,j): mask[n,c,i,j] = h·W + w} δ[n,c,i,j]
    The argmax is read from the mask, never recomputed.
    """

    @staticmethod
    def forward(ctx, x, g, indices_out=None):
        x3 = _planes(x)                                       # (P, H, W)
        y = np.empty((x3.shape[0],) + g.out, x.dtype)         # (P, OH, OW)
        mask = np.empty((x3.shape[0],) + g.out, np.int32)     # (P, OH, OW)
        nt = get_num_threads()
        path = kernels._plan("max_pool2d", None, None, None, g, None).forward
        kernels._ran("max_pool2d", "forward", path, x3.shape)
        if path == "2x2":
            _k.max_pool2d_2x2_forward(x3, y, mask, nt)
        elif path == "3x3":
            _k.max_pool2d_3x3_forward(x3, y, mask, nt)
        elif path == "taps":
            _k.max_pool2d_taps_forward(x3, *_tap_table(g), y, mask, nt)
        else:
            (h_lo, h_hi, _), (w_lo, w_hi, _) = g.rows, g.cols
            _k.max_pool2d_forward(x3, h_lo, h_hi, g.step[0], w_lo, w_hi, g.step[1], y, mask, nt)
        ctx.save_for_backward(mask)
        ctx.g, ctx.x_shape, ctx.dtype = g, x.shape, x.dtype
        if indices_out is not None:
            indices_out.append(mask)
        return y.reshape(x.shape[:-2] + g.out)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x[h·W + w] = Σ δ[i,j] over the windows (i,j) whose mask names h·W + w:
        MaxPool2dBackward, an op (linear in δ, so differentiable again)."""
        mask, = ctx.saved
        return MaxPool2dBackward.apply(δ, mask, ctx.x_shape, ctx.dtype), None


class MaxPool2dBackward(Function):
    """dx = the scatter of δ through the recorded mask: max pooling's ∂L/∂x as an op.

        dx[n,c,h,w] = Σ_{(i,j): mask[n,c,i,j] = h·W + w} δ[n,c,i,j]     (seed 004's upsample(δ))

    δ (…, OH, OW), mask (P, OH, OW) int32 from MaxPool2dFunction's forward (P = N·C; −1
    marks a window without a real input), dx (…, H, W) = x_shape, by ext/pool.pyx
    (max_pool2d_backward).

    Backward. dx is linear in δ with a constant mask, and the scatter's transpose is a
    gather: for Γ = the gradient arriving at dx,
        ⟨Γ, dx⟩ = Σ_{n,c,i,j} δ[n,c,i,j] · Γ[n,c, mask[n,c,i,j]]
    so ∂/∂δ[n,c,i,j] = Γ[n,c, mask[n,c,i,j]] (MaxPool2dGather): the recorded mask routes
    the gradient forward and back, and the gather's own backward is this scatter again.
    """

    @staticmethod
    def forward(ctx, δ, mask, x_shape, dtype):
        """x_shape: the pooled input's shape (…, H, W); dtype: its dtype."""
        ctx.save_for_backward(mask)
        δ3 = np.ascontiguousarray(δ, dtype=dtype).reshape(mask.shape)   # (P, OH, OW), read only
        dx = np.empty((mask.shape[0],) + x_shape[-2:], dtype)           # (P, H, W), every element written
        kernels._ran("max_pool2d", "input_grad", "direct", δ3.shape)
        _k.max_pool2d_backward(δ3, mask, dx, get_num_threads())
        return dx.reshape(x_shape)

    @staticmethod
    def backward(ctx, Γ):
        """∂/∂δ = Γ gathered at the mask (the class docstring)."""
        mask, = ctx.saved
        return MaxPool2dGather.apply(Γ, mask), None, None, None


class MaxPool2dGather(Function):
    """y[n,c,i,j] = Γ[n,c, mask[n,c,i,j]] (0 where mask = −1): Γ (…, H, W) read at the
    winners recorded by max pooling, y (…, OH, OW); the transpose of MaxPool2dBackward's
    scatter, and its backward is that scatter (the same mask, δ ↔ Γ).
    """

    @staticmethod
    def forward(ctx, Γ, mask):
        """mask: (P, OH, OW) int32, flat indices h·W + w into each (H, W) plane of Γ."""
        ctx.save_for_backward(mask)
        ctx.shape, ctx.dtype = Γ.shape, Γ.dtype
        H, W = Γ.shape[-2:]
        planes = np.ascontiguousarray(Γ).reshape(mask.shape[0], H * W)  # (P, H·W)
        flat = mask.reshape(mask.shape[0], -1)                          # (P, OH·OW)
        y = np.take_along_axis(planes, np.maximum(flat, 0), axis=1)     # (P, OH·OW)
        y[flat < 0] = 0                                                 # no winner: no gradient
        return y.reshape(Γ.shape[:-2] + mask.shape[1:])

    @staticmethod
    def backward(ctx, δ):
        """∂/∂Γ = δ scattered through the mask: MaxPool2dBackward."""
        mask, = ctx.saved
        return MaxPool2dBackward.apply(δ, mask, ctx.shape, ctx.dtype), None


class AvgPool2dFunction(Function):
    """y[n,c,i,j] = Σ over the window of x / divisor[i,j], where the window and the divisor
    come from the geometry: fixed windows (count_include_pad, real elements only, or
    divisor_override), 'same' windows, or adaptive windows. divisor[i,j] = row[i]·col[j].

    Backward (seed 004): each input of a window receives δ / divisor — δ/(m·n) for an
    m×n window — and overlapping windows accumulate:
        ∂L/∂x[n,c,h,w] = Σ_{(i,j): (h,w) ∈ window(i,j)} δ[n,c,i,j] / divisor[i,j]
    """

    @staticmethod
    def forward(ctx, x, g):
        x3 = _planes(x)                                       # (P, H, W)
        y = np.empty((x3.shape[0],) + g.out, x.dtype)         # (P, OH, OW)
        nt = get_num_threads()
        path = kernels._plan("avg_pool2d", None, None, None, g, None).forward
        kernels._ran("avg_pool2d", "forward", path, x3.shape)
        if path == "2x2":
            _k.avg_pool2d_2x2_forward(x3, y, g.divisor, nt)
        elif path == "plane":                                # (P, H·W) -> (P,)
            _k.avg_pool2d_plane_forward(x3.reshape(len(x3), g.H * g.W), y.reshape(-1), g.divisor, nt)
        else:
            _k.avg_pool2d_forward(x3, *g.rows, *g.cols, y, nt)
        ctx.g, ctx.x_shape, ctx.dtype = g, x.shape, x.dtype
        return y.reshape(x.shape[:-2] + g.out)

    @staticmethod
    def backward(ctx, δ):
        """∂L/∂x = Σ over the windows containing the input of δ / divisor: AvgPool2dBackward,
        an op (linear in δ, so differentiable again)."""
        return AvgPool2dBackward.apply(δ, ctx.g, ctx.x_shape, ctx.dtype), None


class AvgPool2dBackward(Function):
    """dx = δ spread over the windows: average pooling's ∂L/∂x as an op,

        dx[n,c,h,w] = Σ_{(i,j): (h,w) ∈ window(i,j)} δ[n,c,i,j] / divisor[i,j]

    δ (…, OH, OW), dx (…, H, W) = x_shape, for the windows and divisors of g (fixed,
    'same' or adaptive), by the kernel kernels._plan chooses (ext/pool.pyx).

    Backward. dx is linear in δ; for Γ = the gradient arriving at dx,
        ⟨Γ, dx⟩ = Σ_{n,c,i,j} δ[n,c,i,j] · Σ_{(h,w) ∈ window(i,j)} Γ[n,c,h,w] / divisor[i,j]
    so ∂/∂δ = average pooling of Γ over the same windows (AvgPool2dFunction), whose
    backward is this op again.
    """

    @staticmethod
    def forward(ctx, δ, g, x_shape, dtype):
        """g: the pooling geometry (ops/pool.py's _Geometry); dtype: x's."""
        ctx.g = g
        P = math.prod(x_shape[:-2])
        δ3 = np.ascontiguousarray(δ, dtype=dtype).reshape((P,) + g.out)  # (P, OH, OW), read only
        dx = np.empty((P, g.H, g.W), dtype)                               # (P, H, W)
        path = kernels._plan("avg_pool2d", None, None, None, g, None).input_grad
        kernels._ran("avg_pool2d", "input_grad", path, δ3.shape)
        if path == "2x2":
            _k.avg_pool2d_2x2_backward(δ3, dx, g.divisor, get_num_threads())
        elif path == "plane":                                # (P,) -> (P, H·W)
            _k.avg_pool2d_plane_backward(δ3.reshape(-1), dx.reshape(P, g.H * g.W), g.divisor,
                                         get_num_threads())
        else:
            _k.avg_pool2d_backward(δ3, *g.rows, *g.cols, dx, get_num_threads())
        return dx.reshape(x_shape)

    @staticmethod
    def backward(ctx, Γ):
        """∂/∂δ = avg_pool(Γ) over the same windows (the class docstring)."""
        return AvgPool2dFunction.apply(Γ, ctx.g), None, None, None


# ---- public functions ---------------------------------------------------------------------

def divisor_arg(fn, divisor_override):
    """None, or a non-zero int32 that replaces every window's divisor."""
    if divisor_override is None:
        return None
    if not is_int(divisor_override):
        raise TypeError(f"{fn}(): divisor_override must be an int or None, got {divisor_override!r}")
    if divisor_override == 0 or abs(divisor_override) > MAX_INDEX:
        raise ValueError(f"{fn}(): divisor_override must be a non-zero int32, got {divisor_override}")
    return int(divisor_override)


def pool_geometry(fn, a, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                  count_include_pad=True, divisor_override=None):
    """The windows of max_pool2d (fn = 'max_pool2d') or avg_pool2d over the validated input
    array a (its last two axes), every argument checked; cached per geometry."""
    if fn == "max_pool2d":
        k, s, p, d = pool_args(fn, kernel_size, stride, padding, dilation)
        return _max_geometry(fn, a.shape[-2], a.shape[-1], k, s, p, d,
                             bool_arg(fn, "ceil_mode", ceil_mode))
    k, s, p, _ = pool_args(fn, kernel_size, stride, padding)
    return _avg_geometry(fn, a.shape[-2], a.shape[-1], k, s, p, bool_arg(fn, "ceil_mode", ceil_mode),
                         bool_arg(fn, "count_include_pad", count_include_pad),
                         divisor_arg(fn, divisor_override))


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, data_format="channels_first"):
    """Max pooling over each channel's windows (torch.nn.functional.max_pool2d)::

        y[n, c, i, j] = max over p < F_h, q < F_w of x_pad[n, c, i·S_h + p·D_h, j·S_w + q·D_w]

    where x_pad is x padded with −inf (padding never wins). The forward records which
    input won each window (the mask); the backward routes δ to that input only, adding
    where windows overlap (the lecture's upsample(δ)). Each channel is pooled alone.

    Parameters
    ----------
    x : Tensor, (N, C, H, W) or (C, H, W)
        float32 or float64.
    kernel_size : int or (F_h, F_w)
        The window.
    stride : int or (S_h, S_w), optional
        The step between windows. Default: kernel_size (windows that tile the input).
    padding : int, (P_h, P_w), 'valid' or 'same'
        −inf rows/columns on each side, at most kernel_size // 2. 'same' follows Keras:
        OH = ⌈H / S_h⌉ whatever ceil_mode says; 'valid' is 0. Default 0.
    dilation : int or (D_h, D_w)
        The spacing between window taps. Default 1.
    ceil_mode : bool
        Round the output size up instead of down (a last, partial window that starts
        inside the input or its left padding is kept). Default False.
    return_indices : bool
        Also return, for every output, the int64 flat index h·W + w (within its H×W
        plane) of the winner, as PyTorch does; −1 marks a window that holds no real
        input (possible only with dilation; its output is −inf).
    data_format : 'channels_first' or 'channels_last'
        'channels_last' takes and returns TensorFlow's (N, H, W, C) layout
        (minigrad/ops/layout.py). Default 'channels_first'.

    Returns
    -------
    Tensor, (N, C, OH, OW) (or (C, OH, OW)), and the indices when return_indices=True
        OH = ⌊(H + 2·P_h − D_h·(F_h − 1) − 1) / S_h⌋ + 1 (⌈…⌉ with ceil_mode), OW alike.

    Examples
    --------
    >>> x = mg.arange(16.).reshape(1, 1, 4, 4)
    >>> F.max_pool2d(x, 2)                      # the largest of each 2×2 block
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    >>> F.max_pool2d(mg.zeros(1, 96, 55, 55), 3, stride=2).shape      # AlexNet's overlapping pool
    (1, 96, 27, 27)
    """
    if layout.is_channels_last("max_pool2d", data_format):
        return layout.pool2d_channels_last("max_pool2d", max_pool2d, x, kernel_size, stride,
                                           padding, dilation, ceil_mode, return_indices)
    fn = "max_pool2d"
    a = _input(fn, x)
    g = pool_geometry(fn, a, kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool(fn, x if isinstance(x, TensorBase) else a, g, return_indices)


def _max_pool(fn, x, g, return_indices):
    """MaxPool2dFunction over the windows of g; with return_indices also the winners' int64
    flat indices h·W + w (shaped like the output), as PyTorch returns them."""
    if not bool_arg(fn, "return_indices", return_indices):
        return MaxPool2dFunction.apply(x, g)
    box = []
    y = MaxPool2dFunction.apply(x, g, indices_out=box)
    return y, wrap(box[0].astype(np.int64).reshape(y.shape), False)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, data_format="channels_first"):
    """Average pooling over each channel's windows (torch.nn.functional.avg_pool2d)::

        y[n, c, i, j] = (1 / d_ij) · Σ_{p < F_h, q < F_w} x_pad[n, c, i·S_h + p, j·S_w + q]

    with zero padding. The backward spreads δ[n, c, i, j] / d_ij evenly over window (i, j).

    Parameters
    ----------
    x : Tensor, (N, C, H, W) or (C, H, W)
        float32 or float64; each channel is averaged on its own.
    kernel_size : int or (F_h, F_w)
        The window: F_h × F_w inputs per average.
    stride : int or (S_h, S_w), optional
        The step between windows. Default: kernel_size.
    padding : int, (P_h, P_w), 'valid' or 'same'
        Zero rows/columns on each side, at most kernel_size // 2. 'same'/'valid' follow
        Keras/TensorFlow (with 'same' only real elements count, whatever
        count_include_pad says). Default 0.
    ceil_mode : bool
        Round the output size up instead of down. Default False.
    count_include_pad : bool
        The divisor d_ij: the window's size within the padded input (True, the default),
        or the number of real input elements in it (False).
    divisor_override : int, optional
        Use this divisor for every window instead.
    data_format : 'channels_first' or 'channels_last'
        'channels_last' takes and returns TensorFlow's (N, H, W, C) layout
        (minigrad/ops/layout.py). Default 'channels_first'.

    Returns
    -------
    Tensor, (N, C, OH, OW) (or (C, OH, OW))
        OH = ⌊(H + 2·P_h − F_h) / S_h⌋ + 1 (⌈…⌉ with ceil_mode), OW alike.

    Examples
    --------
    >>> x = mg.arange(16.).reshape(1, 1, 4, 4)
    >>> F.avg_pool2d(x, 2)
    tensor([[[[ 2.5,  4.5],
              [10.5, 12.5]]]])
    >>> F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)[0, 0, 0]
    tensor([2.5, 3. , 4. , 4.5])
    """
    if layout.is_channels_last("avg_pool2d", data_format):
        return layout.pool2d_channels_last("avg_pool2d", avg_pool2d, x, kernel_size, stride,
                                           padding, ceil_mode, count_include_pad, divisor_override)
    fn = "avg_pool2d"
    a = _input(fn, x)
    g = pool_geometry(fn, a, kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                      divisor_override)
    return AvgPool2dFunction.apply(x if isinstance(x, TensorBase) else a, g)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size (OH, OW), as torch.nn.functional.adaptive_avg_pool2d.

    Output row i averages the input rows ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉ − 1 (columns alike), so the
    windows tile the input when OH divides H and overlap by at most one row otherwise.
    output_size: an int, or a pair whose None entries keep the input's size.
    """
    fn = "adaptive_avg_pool2d"
    a = _input(fn, x)
    out = adaptive_output_size(fn, output_size, a.shape[-2:])
    # the window tables hold a few int64 per output row and column
    check_output(fn, "output_size", a.shape[:-2] + out, a.itemsize, extra_bytes=64 * (out[0] + out[1]))
    g = _adaptive_geometry(a.shape[-2], a.shape[-1], out)
    return AvgPool2dFunction.apply(x if isinstance(x, TensorBase) else a, g)


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Max pooling to a fixed output size (OH, OW), as torch.nn.functional.adaptive_max_pool2d.

    Output (i, j) is the max over the window of adaptive_avg_pool2d: rows
    ⌊i·H/OH⌋ … ⌈(i+1)·H/OH⌉ − 1, columns ⌊j·W/OW⌋ … ⌈(j+1)·W/OW⌉ − 1. The winner of
    each window is recorded in a mask in forward and the backward routes δ to it
    (MaxPool2d's backward; windows that overlap when OH does not divide H accumulate).
    output_size: an int, or a pair whose None entries keep the input's size. With
    return_indices=True also returns the int64 flat index h·W + w of each winner.
    """
    fn = "adaptive_max_pool2d"
    a = _input(fn, x)
    out = adaptive_output_size(fn, output_size, a.shape[-2:])
    if a.shape[-2] * a.shape[-1] > MAX_INDEX:
        raise ValueError(f"{fn}(): an input plane of {a.shape[-2]}×{a.shape[-1]} is too large "
                         f"for the int32 mask")
    check_output(fn, "output_size", a.shape[:-2] + out, a.itemsize + 4,
                 extra_bytes=64 * (out[0] + out[1]))
    g = _adaptive_geometry(a.shape[-2], a.shape[-1], out)     # step (1, 1): MaxPool2d's tables
    return _max_pool(fn, x if isinstance(x, TensorBase) else a, g, return_indices)


def global_avg_pool2d(x, keepdim=True):
    """The mean of each H×W plane (ResNet's last pooling): (N, C, H, W) -> (N, C, 1, 1),
    or (N, C) with keepdim=False. The same as adaptive_avg_pool2d(x, 1)."""
    y = adaptive_avg_pool2d(x, 1)
    if bool_arg("global_avg_pool2d", "keepdim", keepdim):
        return y
    from .shape import reshape
    return reshape(y, y.shape[:-2])
