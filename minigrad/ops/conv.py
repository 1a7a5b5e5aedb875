"""Convolution: conv2d and conv_transpose2d, forward and backward side by side, and the
weight-gradient op their backwards share.

Names as in DESIGN.md: x (N, C, H, W) the input, w (K, C/G, F_h, F_w) the weight (K the
number of output channels, F_h×F_w the kernel size), b (K,) the bias, δ = ∂L/∂y
(N, K, OH, OW), stride S = (S_h, S_w), padding P (top, bottom, left, right), dilation
D = (D_h, D_w), groups G (Cg = C/G input and Kg = K/G output channels per group).

    y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]

Three ops, whose backwards are made of one another (seed 004 derives the first-order pass):

    Conv2dFunction           y  = x ⋆ w + b          (correlate)
    ConvTranspose2dFunction  y  = x ⋆ᵀ w + b         (the adjoint of x ↦ x ⋆ w: dilate by S,
                                                       pad by D·(F−1) − P, correlate with the
                                                       flipped, channel-swapped kernel)
    Conv2dWeightGradFunction dw = x ⊛ δ              (x correlated with δ: ∂L/∂w of y = x ⋆ w)

and Conv2dBiasGradFunction, db = Σ_{n,i',j'} δ (linear: its backward broadcasts). The
three are bilinear. For a bilinear B(u, v) and the gradient Γ arriving at its output,
⟨Γ, B(u, v)⟩ is linear in u; written as ⟨u, A⟩, it gives ∂/∂u = A (and alike for v).
One identity, the same sum grouped by x, by w or by δ,

    ⟨δ, x ⋆ w⟩ = Σ_n Σ_k Σ_i' Σ_j' δ[n,k,i',j'] Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S+p·D, j'·S+q·D] w[k,c,p,q]
               = ⟨x, δ ⋆ᵀ w⟩ = ⟨w, x ⊛ δ⟩                               (∗)

gives every derivative:

    y = x ⋆ w:    ∂L/∂x = δ ⋆ᵀ w      ∂L/∂w = x ⊛ δ      ∂L/∂b = Σ_{n,i',j'} δ
    y = x ⋆ᵀ w:   ∂L/∂x = δ ⋆ w       ∂L/∂w = δ ⊛ x      (x ⋆ᵀ w is conv2d's input gradient
                                                          with x as its δ: swap the roles in ∗)
    dw = x ⊛ δ:   ∂/∂x  = δ ⋆ᵀ Γ      ∂/∂δ  = x ⋆ Γ      (Γ = the gradient of dw, w's shape)

so the gradient of a gradient is again these three ops, on the same kernels, with the
same geometry (S, P, D, G) and explicit output sizes (which also settle output_padding
and 'same' padding's odd row).

This file holds the math; the arguments are checked in ops/conv_args.py, the path each
pass takes is chosen in minigrad/kernels.py (`kernels.explain(...)` says which and why;
`with kernels.use("direct"):` runs the plain loops of ext/conv_direct.pyx), and
ops/conv_dispatch.py runs it. kernels.trace() labels each call with the pass it serves:
conv2d's backward records ('conv2d', 'input_grad' / 'weight_grad' / 'bias_grad') even
though its ∂L/∂x is the conv_transpose2d op.
"""
import numpy as np

from .. import kernels
from ..autograd import Function, is_grad_enabled
from ..tensor_base import TensorBase, wrap
from . import conv_dispatch as _dispatch
from .conv_args import compute_dtype, conv2d_args, conv_transpose2d_args
from . import layout

__all__ = ["conv2d", "conv_transpose2d", "Conv2dFunction", "ConvTranspose2dFunction",
           "Conv2dWeightGradFunction", "Conv2dBiasGradFunction"]


def _operands(ctx):
    """The two array operands of ctx's forward (x and w, or x and δ), as its backward
    formula takes them: the input tensors themselves where the backward is being recorded
    (create_graph=True, and the input requires grad: the gradients must depend on it),
    else the C-contiguous arrays in the compute dtype that forward kept (the same values,
    and a non-contiguous input, e.g. a channels_last permute, is not copied again)."""
    if not is_grad_enabled():
        return ctx.saved[:2]
    return tuple(t if isinstance(t, TensorBase) and t.requires_grad else a
                 for t, a in zip(ctx.inputs[:2], ctx.saved))


def _batched(a):
    """(C, H, W) -> (1, C, H, W) (a view); a 4-d array as it is."""
    return a[None] if a.ndim == 3 else a


def _prepare(ctx, *arrays):
    """The arrays (None stays None) C-contiguous in the compute dtype (float16 is computed
    in float32), with ctx.out_dtype the dtype the op returns (NumPy's promotion)."""
    present = [a for a in arrays if a is not None]
    dtype = present[0].dtype
    if (dtype == np.float32 or dtype == np.float64) and all(a.dtype == dtype for a in present):
        ctx.out_dtype = dtype              # one float dtype (the usual case): no promotion
    else:
        dtype = compute_dtype(*present)
        ctx.out_dtype = np.result_type(*[a.dtype for a in present])
    return dtype, [None if a is None else np.ascontiguousarray(a, dtype=dtype) for a in arrays]


def _fused_gradients(ctx, δ):
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) of the conv2d node ctx, each None unless asked for: what the
    forwards of its three gradient ops (ConvTranspose2dFunction as ∂L/∂x,
    Conv2dWeightGradFunction, Conv2dBiasGradFunction) compute, in one call of the fused
    kernels (conv_dispatch.backward) — the same kernels and blocks, so the same numbers bit
    for bit (tests/test_double_backward_conv.py), in one parallel pass instead of three
    (measured: ~50 µs less per layer, 8% of LeNet's first layer's backward). Only for a
    backward that records no graph: nothing here is differentiable."""
    x, w, *kept = ctx.saved                 # kept: w's Winograd transform, if forward kept it
    x4, δ4 = _batched(x), _batched(np.ascontiguousarray(δ.data, dtype=x.dtype))
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    paths = kernels._plan("conv2d", x4.shape, w.shape, x.dtype, ctx.geom, δ4.shape[2:])
    dx, dw, db = _dispatch.backward(x4, x4.shape, δ4, w, ctx.geom, need_x, need_w, need_b, paths,
                                    u=kept[0] if kept else None)
    if dx is not None and x.ndim == 3:
        dx = dx[0]                                              # (1, C, H, W) -> (C, H, W)
    return tuple(None if a is None else wrap(a) for a in (dx, dw, db))


# ---- conv2d --------------------------------------------------------------------

class Conv2dFunction(Function):
    """y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]

    (a cross-correlation, as in every framework; a convolution in the signal-processing
    sense is this with the kernel flipped 180°, seed 001). The plain loops of this formula:
    ext/conv_direct.pyx conv2d_forward_direct.
    """

    @staticmethod
    def forward(ctx, x, w, b, geom, out_hw, label=("conv2d", "forward")):
        """x (N, C, H, W) or (C, H, W), w (K, C/G, F_h, F_w), b (K,) or None, validated;
        geom: S, the top/left padding, D and G (conv_dispatch.Geom); out_hw: (OH, OW) (it
        implies the bottom/right padding). label: the (op, pass) kernels.trace() records —
        conv_transpose2d's ∂L/∂x and the weight-gradient op's ∂/∂δ are this forward."""
        dtype, (x, w, b) = _prepare(ctx, x, w, b)
        ctx.geom = geom
        x4 = _batched(x)                                        # (N, C, H, W)
        plan = kernels._plan("conv2d", x4.shape, w.shape, dtype, geom, out_hw)
        u = None
        if (plan.forward == plan.input_grad == "winograd" and ctx.needs_input_grad[0]
                and is_grad_enabled()):
            u = _dispatch.winograd_weights(w)   # F(2×2)'s U, read again by ∂L/∂x (turned)
        ctx.save_for_backward(x, w, *(() if u is None else (u,)))
        y = _dispatch.correlate(x4, w, b, out_hw, geom, plan.forward, *label, u=u)  # (N, K, OH, OW)
        y = y[0] if x.ndim == 3 else y
        return y.astype(ctx.out_dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """Seed 004, with S, P, D and G, each gradient an op (so it is differentiable again):

        ∂L/∂b[k]       = Σ_n Σ_i' Σ_j' δ[n,k,i',j']: Conv2dBiasGradFunction
        ∂L/∂w[k,c,p,q] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'] · x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D]
                         = (x ⊛ δ)[k,c,p,q]: Conv2dWeightGradFunction
                         (loops: conv2d_weight_grad_direct)
        ∂L/∂x          = δ ⋆ᵀ w, conv_transpose2d(δ, w) with the same S, P, D, G and x's
                         size as its output size: 1. flip w 180° and swap its channel axes;
                         2. dilate δ by S (S−1 zeros between entries); 3. pad it by
                         D·(F−1) − P; 4. correlate. The dilation's zeros are never
                         multiplied: the loops (ext/conv_direct.pyx conv2d_input_grad_direct)
                         split the rows and columns into S_h×S_w phases, each a stride-1
                         correlation of δ with the taps p·D ≡ phase (mod S).
                         examples/conv_backward_by_hand.py runs the four steps in NumPy.
        Which kernel computes each: kernels.explain(); `kernels.use("direct")` forces the loops.
        The gradients of these gradients: the module docstring (∗). When no graph is
        recorded (a first-order backward), the three ops' forwards run as one call of the
        fused kernels instead (_fused_gradients: the same numbers, bit for bit).
        """
        if not is_grad_enabled():
            return _fused_gradients(ctx, δ) + (None, None)
        x, w = _operands(ctx)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = ctx.geom
        dx = dw = db = None
        if need_x:                                     # (N, K, OH, OW) ⋆ᵀ w -> (N, C, H, W)
            dx = ConvTranspose2dFunction.apply(δ, w, None, g, x.shape[-2:],
                                               label=("conv2d", "input_grad"))
        if need_w:                                     # (N, C, H, W) ⊛ (N, K, OH, OW) -> w's shape
            dw = Conv2dWeightGradFunction.apply(x, δ, w.shape, g, label=("conv2d", "weight_grad"))
        if need_b:                                     # (N, K, OH, OW) -> (K,)
            db = Conv2dBiasGradFunction.apply(δ, x.shape, ctx.saved[1], g)
        return dx, dw, db, None, None


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
    the 180°-flipped kernel: the lecture's derivation, in DESIGN.md). Each is an op of its
    own (conv_transpose2d for ∂L/∂x), so the backward is differentiable again
    (``backward(create_graph=True)``: Hessian-vector products, gradient penalties).

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
    xa, wa, ba, stride, padding, dilation, groups, out_shape = conv2d_args(
        "conv2d", x, weight, bias, stride, padding, dilation, groups)
    pt, _, pl, _ = padding
    return Conv2dFunction.apply(x if isinstance(x, TensorBase) else xa,
                                weight if isinstance(weight, TensorBase) else wa,
                                bias if bias is None or isinstance(bias, TensorBase) else ba,
                                _dispatch.Geom(stride, (pt, pl), dilation, groups), out_shape[-2:])


# ---- conv_transpose2d ----------------------------------------------------------

class ConvTranspose2dFunction(Function):
    """The adjoint of conv2d: y = x ⋆ᵀ w + b = (x dilated by S, padded by D·(F−1) − P) ⋆
    flip(w)ᵀ + b, with w in PyTorch's layout (C_in, C_out/G, F_h, F_w) — exactly conv2d's
    input gradient with x in the role of δ, so its forward *is* that code path (and it is
    conv2d's ∂L/∂x op), and its backward is the conv2d forward and weight-gradient ops.
    """

    @staticmethod
    def forward(ctx, x, w, b, geom, out_hw, label=("conv_transpose2d", "forward")):
        """x (N, C_in, H, W) or (C_in, H, W), w (C_in, C_out/G, F_h, F_w), b (C_out,) or
        None, validated; geom: S, P (top/left), D, G of the convolution this is the adjoint
        of; out_hw: the output size (Ho, Wo), explicit (it settles output_padding, and the
        odd row of 'same' padding when this is conv2d's ∂L/∂x). label: as Conv2dFunction's."""
        dtype, (x, w, b) = _prepare(ctx, x, w, b)
        ctx.geom = geom
        ctx.save_for_backward(x, w)
        x4 = _batched(x)                                        # (N, C_in, H, W)
        N, _, H, W = x4.shape
        y_shape = (N, w.shape[1] * geom.groups) + tuple(out_hw)  # (N, C_out, Ho, Wo)
        paths = kernels._plan("conv2d", y_shape, w.shape, dtype, geom, (H, W))
        y = _dispatch.input_grad(x4, w, y_shape, geom, paths, *label)
        if b is not None:
            y += b.reshape(-1, 1, 1)                            # (N, C_out, Ho, Wo) + (C_out, 1, 1)
        y = y[0] if x.ndim == 3 else y
        return y.astype(ctx.out_dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """y is conv2d's ∂L/∂(input) of a convolution z = y_in ⋆ w with x as its δ, so
        by the adjoint (the module docstring's ∗ with the roles swapped):

        ∂L/∂x[n,ci,i,j]   = Σ_co Σ_p Σ_q δ_pad[n, co, i·S + p·D, j·S + q·D] · w[ci,co,p,q]
                            = (δ ⋆ w): the conv2d op, x's size as its output size
        ∂L/∂w[ci,co,p,q]  = Σ_n Σ_i Σ_j x[n,ci,i,j] · δ_pad[n, co, i·S + p·D, j·S + q·D]
                            = (δ ⊛ x): the weight-gradient op, δ as its input, x as its δ
        ∂L/∂b[co]         = Σ_n Σ_i Σ_j δ[n,co,i,j]
        """
        x, w = _operands(ctx)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = ctx.geom
        dx = dw = db = None
        if need_x:                                     # (N, C_out, Ho, Wo) ⋆ w -> (N, C_in, H, W)
            dx = Conv2dFunction.apply(δ, w, None, g, x.shape[-2:],
                                      label=("conv_transpose2d", "input_grad"))
        if need_w:                                     # (N, C_out, Ho, Wo) ⊛ (N, C_in, H, W) -> w's shape
            dw = Conv2dWeightGradFunction.apply(δ, x, w.shape, g,
                                                label=("conv_transpose2d", "weight_grad"))
        if need_b:                                     # (N, C_out, Ho, Wo) -> (C_out,)
            db = δ.sum(dim=tuple(a for a in range(δ.ndim) if a != δ.ndim - 3))
        return dx, dw, db, None, None


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution (the gradient of conv2d with respect to its input), PyTorch's
    layout: x (N, C_in, H, W) or (C_in, H, W), weight (C_in, C_out/groups, F_h, F_w).

    Output: (N, C_out, Ho, Wo), Ho = (H−1)·S − 2·P + D·(F_h−1) + output_padding + 1.
    Its backward is conv2d (∂L/∂x) and conv2d's weight-gradient op (∂L/∂w), each
    differentiable again.
    """
    xa, wa, ba, stride, padding, output_padding, dilation, groups, out_shape = conv_transpose2d_args(
        "conv_transpose2d", x, weight, bias, stride, padding, output_padding, groups, dilation)
    return ConvTranspose2dFunction.apply(x if isinstance(x, TensorBase) else xa,
                                         weight if isinstance(weight, TensorBase) else wa,
                                         bias if bias is None or isinstance(bias, TensorBase) else ba,
                                         _dispatch.Geom(stride, padding, dilation, groups),
                                         out_shape[-2:])


# ---- the weight gradient, an op of its own ---------------------------------------------

class Conv2dWeightGradFunction(Function):
    """dw = x ⊛ δ, conv2d's weight gradient as an op (DESIGN.md's formula):

        dw[k,c,p,q] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'] · x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D]

    x (N, C, H, W) or (C, H, W), δ (N, K, OH, OW) or (K, OH, OW), dw (K, C/G, F_h, F_w):
    the fast weight-gradient kernels (kernels.explain's ∂L/∂w path; loops:
    ext/conv_direct.pyx conv2d_weight_grad_direct). conv2d's and conv_transpose2d's
    backwards use it (the latter with the roles of x and δ swapped).

    Backward. dw is bilinear in (x, δ); for Γ = the gradient arriving at dw (w's shape),
    ⟨Γ, x ⊛ δ⟩ is the sum (∗) of the module docstring with Γ in the place of w:

        ⟨Γ, x ⊛ δ⟩ = Σ_n Σ_k Σ_i' Σ_j' δ[n,k,i',j'] · (x ⋆ Γ)[n,k,i',j']   = ⟨δ, x ⋆ Γ⟩
                   = Σ_n Σ_c Σ_h Σ_w   x[n,c,h,w]   · (δ ⋆ᵀ Γ)[n,c,h,w]   = ⟨x, δ ⋆ᵀ Γ⟩

    so  ∂/∂δ = x ⋆ Γ      (conv2d of x with kernel Γ; δ's size as its output size)
        ∂/∂x = δ ⋆ᵀ Γ     (conv_transpose2d of δ with kernel Γ; x's size as its output size)
    — convolutions again, with the same S, P, D, G.
    """

    @staticmethod
    def forward(ctx, x, δ, w_shape, geom, label=("conv2d", "weight_grad")):
        """x, δ as above; w_shape (K, C/G, F_h, F_w); geom as in Conv2dFunction.forward."""
        dtype, (x, δ) = _prepare(ctx, x, δ)
        ctx.geom = geom
        ctx.save_for_backward(x, δ)
        x4, δ4 = _batched(x), _batched(δ)                       # (N, C, H, W), (N, K, OH, OW)
        paths = kernels._plan("conv2d", x4.shape, w_shape, dtype, geom, δ4.shape[2:])
        dw = _dispatch.weight_grad(x4, δ4, w_shape, geom, paths, *label)   # (K, C/G, F_h, F_w)
        return dw.astype(ctx.out_dtype, copy=False)

    @staticmethod
    def backward(ctx, Γ):
        """∂/∂x = δ ⋆ᵀ Γ, ∂/∂δ = x ⋆ Γ (the class docstring's derivation)."""
        x, δ = _operands(ctx)
        g = ctx.geom
        dx = dδ = None
        if ctx.needs_input_grad[0]:                    # (N, K, OH, OW) ⋆ᵀ Γ -> (N, C, H, W)
            dx = ConvTranspose2dFunction.apply(δ, Γ, None, g, x.shape[-2:])
        if ctx.needs_input_grad[1]:                    # (N, C, H, W) ⋆ Γ -> (N, K, OH, OW)
            dδ = Conv2dFunction.apply(x, Γ, None, g, δ.shape[-2:])
        return dx, dδ, None, None


class Conv2dBiasGradFunction(Function):
    """db = Σ_n Σ_i' Σ_j' δ[n,k,i',j'], conv2d's bias gradient as an op: δ (N, K, OH, OW)
    or (K, OH, OW) -> db (K,), summed by the kernel of the weight-gradient path (the 'blas'
    path sums it in parallel per sample, as its fused backward did; the others in NumPy).

    Backward. db is linear in δ: ⟨Γ, db⟩ = Σ_n Σ_k Σ_i' Σ_j' Γ[k] · δ[n,k,i',j'], so
    ∂/∂δ[n,k,i',j'] = Γ[k], Γ broadcast over n, i', j'.
    """

    @staticmethod
    def forward(ctx, δ, x_shape, w, geom, label=("conv2d", "bias_grad")):
        """x_shape, w: the input's shape and the weight (only its shape is read) of the
        convolution whose bias this is, which choose the path; geom as in Conv2dFunction."""
        ctx.shape = δ.shape
        dtype, (δ, w) = _prepare(ctx, δ, w)
        δ4 = _batched(δ)                                        # (N, K, OH, OW)
        x4_shape = δ4.shape[:1] + tuple(x_shape[-3:])           # (N, C, H, W)
        paths = kernels._plan("conv2d", x4_shape, w.shape, dtype, geom, δ4.shape[2:])
        db = _dispatch.bias_grad(δ4, x4_shape, w, geom, paths, *label)     # (K,)
        return db.astype(ctx.out_dtype, copy=False)

    @staticmethod
    def backward(ctx, Γ):
        """∂/∂δ = Γ broadcast over n, i', j' (the class docstring)."""
        return Γ.reshape(-1, 1, 1).expand(*ctx.shape), None, None, None
