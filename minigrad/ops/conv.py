"""Convolution: conv2d and conv_transpose2d, forward and backward side by side.

Names as in DESIGN.md: x (N, C, H, W) the input, w (K, C/G, F_h, F_w) the weight (K the
number of output channels, F_h×F_w the kernel size), b (K,) the bias, δ = ∂L/∂y
(N, K, OH, OW), stride S = (S_h, S_w), padding P (top, bottom, left, right), dilation
D = (D_h, D_w), groups G (Cg = C/G input and Kg = K/G output channels per group).

    y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]

This file holds the math; the arguments are checked in ops/conv_args.py, the path each
pass takes is chosen in minigrad/kernels.py (`kernels.explain(...)` says which and why;
`with kernels.use("direct"):` runs the plain loops of ext/conv_direct.pyx), and
ops/conv_dispatch.py runs it.
"""
import numpy as np

from .. import kernels
from ..autograd import Function, once_differentiable
from ..tensor_base import TensorBase
from . import conv_dispatch as _dispatch
from .conv_args import compute_dtype, conv2d_args, conv_transpose2d_args, out_size
from . import layout

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFunction", "ConvTranspose2dFunction"]


# ---- conv2d --------------------------------------------------------------------

class Conv2dFunction(Function):
    """y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]

    (a cross-correlation, as in every framework; a convolution in the signal-processing
    sense is this with the kernel flipped 180°, seed 001). The plain loops of this formula:
    ext/conv_direct.pyx conv2d_forward_direct.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        """stride, dilation: pairs; padding: (top, bottom, left, right), all validated."""
        ctx.unbatched = x.ndim == 3
        dtype = compute_dtype(x, w, b)
        ctx.out_dtype = np.result_type(x.dtype, w.dtype, *(() if b is None else (b.dtype,)))
        x = np.ascontiguousarray(x[None] if ctx.unbatched else x, dtype=dtype)
        w = np.ascontiguousarray(w, dtype=dtype)
        b = None if b is None else np.ascontiguousarray(b, dtype=dtype)
        pt, pb, pl, pr = padding
        kh, kw = w.shape[2:]
        out_hw = (out_size(x.shape[2], kh, stride[0], pt, pb, dilation[0]),
                  out_size(x.shape[3], kw, stride[1], pl, pr, dilation[1]))
        ctx.geom = _dispatch.Geom(stride, (pt, pl), dilation, groups)
        ctx.save_for_backward(x, w)
        path = kernels._plan("conv2d", x.shape, w.shape, dtype, ctx.geom, out_hw).forward
        y = _dispatch.correlate(x, w, b, out_hw, ctx.geom, path)
        y = y[0] if ctx.unbatched else y
        return y.astype(ctx.out_dtype, copy=False)

    @staticmethod
    @once_differentiable
    def backward(ctx, δ):
        """Seed 004, with S, P, D and G:

        ∂L/∂b[k]       = Σ_n Σ_i' Σ_j' δ[n,k,i',j']
        ∂L/∂w[k,c,p,q] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'] · x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D]
                         (the input correlated with δ; loops: conv2d_weight_grad_direct)
        ∂L/∂x          = 1. flip w 180° and swap its channel axes; 2. dilate δ by S (S−1
                         zeros between entries); 3. pad it by D·(F−1) − P; 4. correlate.
                         The dilation's zeros are never multiplied: the loops
                         (ext/conv_direct.pyx conv2d_input_grad_direct) split the rows and
                         columns into S_h×S_w phases, each a stride-1 correlation of δ with
                         the taps p·D ≡ phase (mod S). examples/conv_backward_by_hand.py
                         runs the four steps in NumPy next to it.
        Which kernel computes each: kernels.explain(); `kernels.use("direct")` forces the loops.
        """
        x, w = ctx.saved
        δ = np.ascontiguousarray(δ[None] if ctx.unbatched else δ, dtype=x.dtype)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        paths = kernels._plan("conv2d", x.shape, w.shape, x.dtype, ctx.geom, δ.shape[2:])
        dx, dw, db = _dispatch.backward(x, x.shape, δ, w, ctx.geom, need_x, need_w, need_b, paths)
        if dx is not None:
            assert dx.shape == x.shape
            dx = dx[0] if ctx.unbatched else dx
        return dx, dw, db, None, None, None, None


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           data_format="channels_first"):
    """2-d convolution of a batch of images (a cross-correlation, as in every framework).

    With G groups, output channel k reads the C/G input channels of its group
    g = k // (K/G), and each output pixel is a window of the zero-padded input x_pad
    weighted by the kernel::

        y[n, k, i, j] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·C/G + c, i·S_h + p·D_h, j·S_w + q·D_w]
                                         · w[k, c, p, q]

    (c < C/G, p < F_h, q < F_w). The backward gives ∂L/∂b (δ summed over n, i, j),
    ∂L/∂w (x correlated with δ) and ∂L/∂x (the zero-dilated, padded δ correlated with
    the 180°-flipped kernel: the lecture's derivation, in DESIGN.md).

    Parameters
    ----------
    x : Tensor, (N, C, H, W) or (C, H, W)
        The input, channels first (NCHW). A channels-last (N, H, W, C) image needs
        ``x.permute(0, 3, 1, 2)`` first, or data_format='channels_last'. float32 or float64 (float16 is computed in
        float32 and returned in float16).
    weight : Tensor, (K, C/G, F_h, F_w)
        K kernels, each spanning the C/G input channels of its group.
    bias : Tensor, (K,), optional
        b[k] is added to every pixel of output channel k. Default None: no bias.
    stride : int or (S_h, S_w)
        The step between neighbouring windows; the output is about S times smaller.
        Default 1.
    padding : int, (P_h, P_w), 'valid' or 'same'
        Zeros added around the input: P rows above and below, P columns left and right.
        'valid' is 0. 'same' follows TensorFlow/Keras for every stride and dilation:
        OH = ⌈H / S_h⌉, total padding max((OH − 1)·S_h + (F_h − 1)·D_h + 1 − H, 0), the
        odd row or column at the bottom/right. Default 0.
    dilation : int or (D_h, D_w)
        The spacing between kernel taps (à trous): a 3×3 kernel with D = 2 covers 5×5
        pixels. Default 1.
    groups : int
        G: the C input and K output channels are split into G groups convolved
        separately (G = C is a depthwise convolution); G must divide C and K. Default 1.
    data_format : 'channels_first' or 'channels_last'
        'channels_last' takes TensorFlow's layout (tf.nn.conv2d, Keras' Conv2D): x
        (N, H, W, C), weight (F_h, F_w, C/G, K), and returns (N, OH, OW, K)
        (minigrad/ops/layout.py). Default 'channels_first', as above.

    Returns
    -------
    Tensor, (N, K, OH, OW), or (K, OH, OW) for a (C, H, W) input
        OH = ⌊(H + P_top + P_bottom − D_h·(F_h − 1) − 1) / S_h⌋ + 1, and OW alike.

    Raises
    ------
    ValueError, TypeError
        Naming the argument and the shapes: channels that do not match the weight, a
        kernel larger than the padded input, a stride or dilation below 1, a bias of the
        wrong length, an integer input.

    Examples
    --------
    >>> x = mg.arange(16.).reshape(1, 1, 4, 4)
    >>> F.conv2d(x, mg.ones(1, 1, 2, 2), stride=2)      # sums of the four 2×2 blocks
    tensor([[[[10., 18.],
              [42., 50.]]]])
    >>> F.conv2d(mg.zeros(8, 3, 32, 32), mg.zeros(16, 3, 5, 5), stride=2, padding='same').shape
    (8, 16, 16, 16)
    >>> F.conv2d(mg.zeros(8, 4, 32, 32), mg.zeros(8, 2, 3, 3), groups=2, dilation=2).shape
    (8, 8, 28, 28)
    """
    if layout.is_channels_last("conv2d", data_format):
        return layout.conv2d_channels_last(conv2d, x, weight, bias, stride, padding, dilation, groups)
    xa, wa, ba, stride, padding, dilation, groups, _ = conv2d_args(
        "conv2d", x, weight, bias, stride, padding, dilation, groups)
    return Conv2dFunction.apply(x if isinstance(x, TensorBase) else xa,
                                weight if isinstance(weight, TensorBase) else wa,
                                bias if bias is None or isinstance(bias, TensorBase) else ba,
                                stride, padding, dilation, groups)


# ---- conv_transpose2d ----------------------------------------------------------

# conv_transpose2d's passes are conv2d's passes of the convolution it is the adjoint of
# (from its output to its input), under the names kernels.trace() reports
_TRANSPOSED = {"forward": "input_grad", "input_grad": "forward", "weight_grad": "weight_grad",
               "bias_grad": "bias_grad"}


class ConvTranspose2dFunction(Function):
    """The adjoint of conv2d: y = (x dilated by S, padded by D·(F−1) − P) ⋆ flip(w)ᵀ + b,
    with w in PyTorch's layout (C_in, C_out/G, F_h, F_w) — exactly conv2d's input gradient
    with x in the role of δ, so its forward *is* that code path, and its backward is the
    conv2d forward and weight-gradient code.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, groups, dilation):
        """stride, padding, output_padding, dilation: validated pairs."""
        ctx.unbatched = x.ndim == 3
        dtype = compute_dtype(x, w, b)
        out_dtype = np.result_type(x.dtype, w.dtype, *(() if b is None else (b.dtype,)))
        x = np.ascontiguousarray(x[None] if ctx.unbatched else x, dtype=dtype)
        w = np.ascontiguousarray(w, dtype=dtype)
        N, _, H, W = x.shape
        Cin, Cog, kh, kw = w.shape
        y_shape = (N, Cog * groups,
                   (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1,
                   (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1)
        ctx.geom = _dispatch.Geom(stride, padding, dilation, groups)
        ctx.save_for_backward(x, w)
        paths = kernels._plan("conv2d", y_shape, w.shape, dtype, ctx.geom, (H, W))
        y, _, _ = _dispatch.backward(None, y_shape, x, w, ctx.geom, True, False, False, paths,
                                     "conv_transpose2d", _TRANSPOSED)
        if b is not None:
            y += b.astype(dtype).reshape(-1, 1, 1)                 # (N, C_out, Ho, Wo) + (C_out, 1, 1)
        y = y[0] if ctx.unbatched else y
        return y.astype(out_dtype, copy=False)

    @staticmethod
    @once_differentiable
    def backward(ctx, δ):
        """y is conv2d's ∂L/∂(input) of a convolution z = y_in ⋆ w with x as its δ, so
        by the adjoint:

        ∂L/∂x[n,ci,i,j]   = Σ_co Σ_p Σ_q δ_pad[n, co, i·S + p·D, j·S + q·D] · w[ci,co,p,q]
                            (δ correlated with w: the conv2d forward)
        ∂L/∂w[ci,co,p,q]  = Σ_n Σ_i Σ_j x[n,ci,i,j] · δ_pad[n, co, i·S + p·D, j·S + q·D]
                            (δ correlated with x: conv2d's weight gradient, x as its δ)
        ∂L/∂b[co]         = Σ_n Σ_i Σ_j δ[n,co,i,j]
        """
        x, w = ctx.saved
        δ = np.ascontiguousarray(δ[None] if ctx.unbatched else δ, dtype=x.dtype)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        paths = kernels._plan("conv2d", δ.shape, w.shape, x.dtype, ctx.geom, x.shape[2:])
        dx = dw = None
        if need_x:
            dx = _dispatch.correlate(δ, w, None, x.shape[2:], ctx.geom, paths.forward,
                                     "conv_transpose2d", "input_grad")
            assert dx.shape == x.shape
            dx = dx[0] if ctx.unbatched else dx
        if need_w:
            _, dw, _ = _dispatch.backward(δ, δ.shape, x, w, ctx.geom, False, True, False, paths,
                                          "conv_transpose2d", _TRANSPOSED)
        db = δ.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db, None, None, None, None, None


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution (the gradient of conv2d with respect to its input), PyTorch's
    layout: x (N, C_in, H, W) or (C_in, H, W), weight (C_in, C_out/groups, F_h, F_w).

    Output: (N, C_out, Ho, Wo), Ho = (H−1)·S − 2·P + D·(F_h−1) + output_padding + 1.
    """
    xa, wa, ba, stride, padding, output_padding, dilation, groups, _ = conv_transpose2d_args(
        "conv_transpose2d", x, weight, bias, stride, padding, output_padding, groups, dilation)
    return ConvTranspose2dFunction.apply(x if isinstance(x, TensorBase) else xa,
                                         weight if isinstance(weight, TensorBase) else wa,
                                         bias if bias is None or isinstance(bias, TensorBase) else ba,
                                         stride, padding, output_padding, groups, dilation)
