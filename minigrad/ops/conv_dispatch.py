"""Kernel glue of the convolutions: runs the path minigrad/kernels.py chose on C-contiguous
arrays of one dtype — one function per path, scratch memory, the calls into ext/.

Two computations, as the Functions in ops/conv.py use them:

    correlate   y = b + x ⋆ w                       conv2d forward; conv_transpose2d's ∂L/∂x
    backward    ∂L/∂x = dilate_pad(δ) ⋆ flip(w)ᵀ    conv2d's ∂L/∂x; conv_transpose2d forward
                ∂L/∂w = x ⋆ δ                       conv2d's ∂L/∂w; conv_transpose2d's ∂L/∂w
    input_grad, weight_grad, bias_grad: `backward` for one of the three, as the ops of
                ops/conv.py call it

Notation (DESIGN.md): x (N, C, H, W), w (K, C/G, F_h, F_w) (kh, kw in the code; K is only
the number of output channels), δ (N, K, OH, OW), geometry g: stride (sh, sw), top/left
padding (ph, pw) — the bottom/right is implied by the explicit output size —, dilation
(dh, dw), groups G.
"""
import functools
import math
import threading

import numpy as np

from .. import _blas
from .. import kernels
from .._ext import conv_depthwise as _depthwise
from .._ext import conv_direct as _direct
from .._ext import conv_direct16 as _d16
from .._ext import conv_hwnc as _hwnc
from .._ext import conv_im2col as _im2col
from .._ext import conv_pointwise as _pointwise
from .._ext import winograd as _wino
from ..threads import get_num_threads
from .elementwise import add_arrays


class Geom:
    """Stride, top/left padding, dilation and groups of one convolution. The bottom/right
    padding never needs storing: the explicit output size implies it."""
    __slots__ = ("sh", "sw", "ph", "pw", "dh", "dw", "groups")

    def __init__(self, stride, pad_tl, dilation, groups):
        (self.sh, self.sw), (self.ph, self.pw) = stride, pad_tl
        (self.dh, self.dw), self.groups = dilation, groups

    def args(self):
        return (self.sh, self.sw, self.ph, self.pw, self.dh, self.dw)


_tls = threading.local()


def _workspace(name, shape, dtype):
    """A scratch array reused across calls (per Python thread, so concurrent calls never
    share one). Grows when needed; never returned to the caller. A layer asks for the same
    shape on every call: the view made last time is handed out again (0.5 µs instead of 2.8)."""
    bufs = _tls.__dict__.setdefault("bufs", {})
    entry = bufs.get(name)                          # (bytes, (shape, dtype), view of them)
    if entry is not None and entry[1] == (shape, dtype):
        return entry[2]
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    buf = None if entry is None else entry[0]
    if buf is None or buf.size < nbytes:
        buf = np.empty(max(nbytes, 64), np.uint8)
    view = buf[:nbytes].view(dtype).reshape(shape)
    bufs[name] = (buf, (shape, dtype), view)
    return view


def _bias(b, dtype):
    return np.empty(0, dtype) if b is None else b


# ---- y = b + x ⋆ w, one function per path ----------------------------------------------

def correlate(x, w, b, out_hw, g, path, op="conv2d", which="forward", u=None):
    """y = b + x ⋆ w: (N, C, H, W) ⋆ (K, C/G, kh, kw) -> (N, K, OH, OW), OH×OW = out_hw,
    by `path` (one of kernels.CONV_PATHS, as kernels._plan chose it). u: on the 'winograd'
    path, w's kernel transform when the caller keeps it for the backward (winograd_weights)."""
    K = w.shape[0]
    if x.shape[0] == 0:
        return np.empty((0, K) + tuple(out_hw), x.dtype)
    kernels._ran(op, which, path, x.shape, w.shape)
    if u is not None and path == "winograd":
        return _forward_winograd(x, w, b, out_hw, g, u=u)
    return _FORWARD[path](x, w, b, out_hw, g)


def winograd_weights(w):
    """F(2×2, 3×3)'s transformed kernels of w (K, C, 3, 3), a new (16, K, C) array
    U[ξ] = (G·w[k, c]·Gᵀ)[ξ] (ext/winograd.pyx): what the forward's GEMMs read and, at the
    turned points and transposed, ∂L/∂x's — a conv2d forward keeps it for its backward
    (ops/conv.py), one transform per step instead of two."""
    u = np.empty((16,) + w.shape[:2], w.dtype)
    _wino.winograd_weights(w, u, get_num_threads(), vec=kernels._winograd_kernels_vector(
        w.dtype, w.size))
    return u


def _forward_direct(x, w, b, out_hw, g):
    """ext/conv_direct.pyx: one thread per (n, k) output plane, the formula as loops."""
    y = np.empty((x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    bias = np.zeros(w.shape[0], x.dtype) if b is None else b
    _direct.conv2d_forward_direct(x, w, bias, y, *g.args(), g.groups, get_num_threads())
    return y


def _wino4_vector(m, TW, *arrays):
    """Whether F(4×4)'s tile transforms take ext/winograd4.h's AVX-512 gathers and scatters
    (16 tiles a vector) instead of winograd.pyx's scalar loops: kernels._winograd4_vector
    for each array (the build, the CPU, float32, tiles a row, 32-bit offsets)."""
    return m == 4 and all(kernels._winograd4_vector(TW, a.dtype, a.size) for a in arrays)


def _wino4_rows(m, TW, vec, dtype):
    """Whether, where the gathers are not taken (vec False), F(4×4)'s input transform takes
    ext/winograd4.h's tile-row vectors (kernels._winograd4_rows)."""
    return m == 4 and not vec and kernels._winograd4_rows(TW, dtype)


def _forward_winograd(x, w, b, out_hw, g, m=2, flip=False, u=None):
    """ext/winograd.pyx: one parallel loop over blocks of m×m output tiles (F(m×m, 3×3),
    m = 2 or 4); each thread transforms its tiles, runs (m+2)² GEMMs (K, C) @ (C, tiles),
    writes y. flip: y = x ⋆ w turned by 180° with its channel axes swapped, w of shape
    (x's channels, y's channels, 3, 3) as the forward's weight is for its ∂L/∂x
    (_input_grad_winograd): for m = 4 the kernel transform turns and swaps as it reads w;
    for m = 2 the GEMMs read w's own transform at the turned points, transposed
    (ext/winograd.pyx, `turned`). u (m = 2): w's own transform, winograd_weights(w), when
    the caller kept it (the conv2d forward for its ∂L/∂x); else it is made here."""
    N, K, Cg = x.shape[0], w.shape[1 if flip else 0], w.shape[0 if flip else 1]
    OH, OW = out_hw
    dtype, nt = x.dtype, get_num_threads()
    TH, TW, P = -(-OH // m), -(-OW // m), (m + 2) ** 2
    rows = kernels._winograd_rows(N, TH, TW, nt, m)                  # tile rows per block
    turned = flip and m == 2
    if u is None:
        u = _workspace("winograd_u", (P,) + (w.shape[:2] if turned else (K, Cg)), dtype)
        _wino.winograd_weights(w, u, nt, flip and not turned,        # (P, K, C) = G·w·Gᵀ
                               kernels._winograd_kernels_vector(dtype, w.size))
    elif m != 2 or u.shape != (P,) + w.shape[:2] or u.dtype != dtype:
        raise ValueError(f"conv2d(): Winograd's kept kernel transform {u.shape} {u.dtype} "
                         f"does not fit the weight {w.shape} {dtype}")
    y = np.empty((N, K, OH, OW), dtype)
    scratch = _workspace("winograd", (nt, P * (Cg + K) * rows * TW), dtype)
    fn, ilp64 = _blas.gemm(dtype)
    vec = _wino4_vector(m, TW, x, y)
    with _blas.single_threaded():
        _wino.conv2d_forward_winograd(x, u, _bias(b, dtype), y, scratch, g.ph, g.pw, rows,
                                      fn, ilp64, nt, vec, turned=turned,
                                      rows_vec=_wino4_rows(m, TW, vec, dtype))
    return y


def _forward_winograd4(x, w, b, out_hw, g):
    """ext/winograd.pyx's F(4×4, 3×3): _forward_winograd with 4×4 tiles, 36 GEMMs."""
    return _forward_winograd(x, w, b, out_hw, g, 4)


def _input_grad_winograd(δ, w, x_shape, g, path, u=None):
    """∂L/∂x at stride 1 by Winograd ('winograd' or 'winograd4'): the forward correlation
    of δ, padded by F−1−P, with the kernel turned by 180° and its channel axes swapped
    (seed 004) — for F(4×4) the turn and the swap made by the kernel transform as it reads
    w; for F(2×2) none: w's own transform (u, kept by the forward, or made here) read at
    the turned points, transposed (ext/winograd.pyx conv2d_forward_winograd, `turned`)."""
    gt = Geom((1, 1), (2 - g.ph, 2 - g.pw), (1, 1), 1)             # F − 1 − P, F = 3
    if path == "winograd":
        return _forward_winograd(δ, w, None, x_shape[2:], gt, 2, True, u)
    return _forward_winograd(δ, w, None, x_shape[2:], gt, 4, True)


def _forward_k16(x, w, b, out_hw, g):
    """ext/direct16.h over 16 output channels: one parallel loop over samples; each thread
    zero-pads its sample into its scratch (rows and columns for the padding and the last
    run's overhang), then the direct loops write y[n]."""
    K, Cg, kh, kw = w.shape
    OH, OW = out_hw
    run = _d16.k16_run()
    Hp = max(x.shape[2] + g.ph, (OH - 1) * g.sh + (kh - 1) * g.dh + 1)
    Wp = max(x.shape[3] + g.pw, (-(-OW // run) * run - 1) * g.sw + (kw - 1) * g.dw + 1)
    wt = np.ascontiguousarray(w.transpose(1, 2, 3, 0)).reshape(Cg * kh * kw, K)  # (c, p, q, k)
    return _direct16(x, wt, b, w.shape, out_hw, g, Hp, Wp, 0)


def _k32_tables(x_shape, w_shape, out_hw, g, pad_pixels, pad_taps):
    """(Hp, Wp, pix, tap) of the k32 loops (ext/direct16.h): the padded sample's size, and
    where output pixel j = i'·OW + j''s window starts in it, pix[j] = i'·sh·Wp + j'·sw, and
    where tap t = (c, p, q) lies in a window, tap[t] = c·Hp·Wp + p·dh·Wp + q·dw; each table
    rounded up to a multiple of 8 entries if asked (the extra ones 0). Read-only arrays,
    made once per layer geometry (_k32_tables_of)."""
    return _k32_tables_of(*x_shape[1:], *w_shape[2:], *out_hw, *g.args(), pad_pixels, pad_taps)


@functools.lru_cache(maxsize=256)
def _k32_tables_of(C, H, W, kh, kw, OH, OW, sh, sw, ph, pw, dh, dw, pad_pixels, pad_taps):
    """_k32_tables for one geometry, remembered: a layer asks on every call, and the NumPy
    that builds the tables cost about 30 µs a call (DenseNet-121's 128 → 32 layers on 4×4
    planes: a fifth of their forward)."""
    Hp = max(H + ph, (OH - 1) * sh + (kh - 1) * dh + 1)
    Wp = max(W + pw, (OW - 1) * sw + (kw - 1) * dw + 1)
    tile = _d16.k32_pixels()

    def table(n, pad):
        return np.zeros(-(-n // tile) * tile if pad else n, np.intp)
    pix, tap = table(OH * OW, pad_pixels), table(C * kh * kw, pad_taps)
    pix[:OH * OW] = (np.arange(OH)[:, None] * (sh * Wp) + np.arange(OW) * sw).ravel()
    c, p, q = np.arange(C)[:, None, None], np.arange(kh)[:, None], np.arange(kw)
    tap[:C * kh * kw] = (c * (Hp * Wp) + p * (dh * Wp) + q * dw).ravel()
    pix.flags.writeable = tap.flags.writeable = False
    return Hp, Wp, pix, tap


def _forward_k32(x, w, b, out_hw, g):
    """ext/direct16.h's mg_conv_k32 (32 output channels × 8 output pixels a tile): one
    parallel loop over groups of samples (kernels._k32_blocks), each zero-padded into its
    thread's scratch; pixel and tap offsets from _k32_tables."""
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    OH, OW = out_hw
    Hp, Wp, pix, tap = _k32_tables(x.shape, w.shape, out_hw, g, True, False)
    T, nt = C * kh * kw, get_num_threads()
    wp = np.empty((K // 32, T, 32), np.float32)
    _d16.pack_k32(w.reshape(K, T), wp, nt)
    S, CT = kernels._k32_blocks(N, C * Hp * Wp, T, nt)
    y = np.empty((N, K, OH, OW), np.float32)
    scratch = _workspace("k16", (nt, S * C * Hp * Wp), np.float32)
    part = _workspace("k32_part", (nt, S * pix.shape[0] * 32 if CT < T else 1), np.float32)
    _d16.conv2d_forward_k32(x, wp, _bias(b, x.dtype), pix, tap, y, scratch, part, g.ph, g.pw,
                            Hp, Wp, S, CT, nt)
    return y


def _forward_w16(x, w, b, out_hw, g):
    """As k16, with runs of 16 output pixels and kb output channels at a time (the weights
    padded with zero channels to a multiple of kb); over flat streams (_forward_flat) at
    stride 1 or at one stride along both axes with dilation 1 (kernels._flat_streams),
    else (a row stride only) row by row."""
    K, Cg, kh, kw = w.shape
    OH, OW = out_hw
    if kernels._flat_streams(g):
        return _forward_flat(x, w, b, out_hw, g)
    kb = 8 if K <= 8 else 16
    Kp = -(-K // kb) * kb
    Hp = max(x.shape[2] + g.ph, (OH - 1) * g.sh + (kh - 1) * g.dh + 1)
    Wp = max(x.shape[3] + g.pw, -(-OW // 16) * 16 + (kw - 1) * g.dw)
    wt = np.zeros((Cg * kh * kw, Kp), x.dtype)
    wt[:, :K] = w.transpose(1, 2, 3, 0).reshape(Cg * kh * kw, K)              # (c, p, q, k)
    return _direct16(x, wt, b, w.shape, out_hw, g, Hp, Wp, kb)


def _tap_offsets(C, kh, kw, ldx, Wp, g, s, multiple):
    """The offsets of the taps t = (c, p, q) in w16's flat streams (ext/direct16.h), padded
    with zeros to a multiple of `multiple` entries: c·ldx + p·dh·Wp + q·dw at stride s = 1;
    at stride s > 1 (x's phases, ext/conv_direct16.pyx _phase_streams) the stream of phase
    (p mod s, q mod s) of channel c shifted by p div s rows and q div s columns,
    ((c·s + p mod s)·s + q mod s)·ldx + (p div s)·Wp + q div s. A read-only array, made
    once per geometry (as _k32_tables)."""
    return _tap_offsets_of(C, kh, kw, ldx, Wp, g.dh, g.dw, s, multiple)


@functools.lru_cache(maxsize=256)
def _tap_offsets_of(C, kh, kw, ldx, Wp, dh, dw, s, multiple):
    T = C * kh * kw
    off = np.zeros(-(-T // multiple) * multiple, np.intp)
    c, p, q = np.arange(C)[:, None, None], np.arange(kh)[:, None], np.arange(kw)
    if s == 1:
        off[:T] = (c * ldx + p * (dh * Wp) + q * dw).ravel()
    else:
        off[:T] = (((c * s + p % s) * s + q % s) * ldx + (p // s) * Wp + q // s).ravel()
    off.flags.writeable = False
    return off


def _tap_reach(kh, kw, Wp, g, s):
    """How far past a position of its stream a tap reads at most (the largest shift in
    _tap_offsets): the room each stream needs after its planes."""
    return ((kh - 1) * g.dh * Wp + (kw - 1) * g.dw if s == 1
            else (kh - 1) // s * Wp + (kw - 1) // s)


def _forward_flat(x, w, b, out_hw, g):
    """ext/direct16.h's mg_conv_flat: one parallel loop over groups of samples
    (kernels._w16_flat_blocks); each thread lays its group's padded planes out as one flat
    stream per channel (at a stride s > 1, one per channel and phase of x: kernels._flat_layout),
    sums every tap's shifted stream times its weights into the output streams, kb channels ×
    16·runs positions at a time, and copies the outputs out."""
    N, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    OH, OW = out_hw
    nt = get_num_threads()
    Hp, Wp, s = kernels._flat_layout((H, W), out_hw, (kh, kw), g)
    S, kb, run = kernels._w16_flat_blocks(N, Hp * Wp, nt)
    Kp = -(-K // kb) * kb
    ldy = -(-S * Hp * Wp // run) * run
    ldx = S * Hp * Wp + _tap_reach(kh, kw, Wp, g, s) + run
    wt = np.zeros((C * kh * kw, Kp), np.float32)
    wt[:, :K] = w.transpose(1, 2, 3, 0).reshape(C * kh * kw, K)              # (c, p, q, k)
    y = np.empty((N, K, OH, OW), np.float32)
    xscr = _workspace("w16_flat_x", (nt, C * s * s * ldx), np.float32)
    yscr = _workspace("w16_flat_y", (nt, K * ldy), np.float32)
    _d16.conv2d_forward_flat(x, wt, _bias(b, x.dtype), _tap_offsets(C, kh, kw, ldx, Wp, g, s, 1),
                             y, xscr, yscr, g.ph, g.pw, Hp, Wp, S, ldx, ldy, kb, nt, s)
    return y


def _direct16(x, wt, b, w_shape, out_hw, g, Hp, Wp, kb):
    """conv2d_forward_direct16 on (c, p, q, k)-ordered weights wt; kb = 0: k16, else w16."""
    K, _, kh, kw = w_shape
    nt = get_num_threads()
    y = np.empty((x.shape[0], K) + tuple(out_hw), x.dtype)
    scratch = _workspace("k16", (nt, x.shape[1] * Hp * Wp), x.dtype)
    _d16.conv2d_forward_direct16(x, wt, _bias(b, x.dtype), y, scratch, kh, kw, *g.args(),
                                 Hp, Wp, kb, nt)
    return y


def _forward_hwnc(x, w, b, out_hw, g):
    """ext/conv_hwnc.pyx (one group; small planes): x copied once into rows xq[h, j, n]
    holding each channel's kw taps side by side (the rows in phases of the row stride),
    then one GEMM per kernel row p over every output row whose input row i·S_h + p·D_h −
    P_h is in the plane, samples and columns in the GEMM's long dimension; the
    (OH, OW, N, K) result moved to NCHW with the bias added."""
    _check_hwnc(x.shape, w.shape, g)
    K, C, kh, kw = w.shape
    wr = _workspace("hwnc_w", (kh, K, C * kw), w.dtype)
    _hwnc.weight_rows(w, wr, False, get_num_threads())
    return _hwnc_correlate(x, wr, b, out_hw, (kh, kw), g)


def _input_grad_hwnc(δ, w, x_shape, g):
    """∂L/∂x by ext/conv_hwnc.pyx (stride 1): the forward correlation of δ, padded by
    D·(F−1)−P (negative: rows and columns dropped), with the kernel flipped 180° and its
    channel axes swapped (seed 004) at the same dilation, the flip made while the weight
    is laid out as the GEMMs' rows."""
    K, C, kh, kw = w.shape
    gt = Geom((1, 1), ((kh - 1) * g.dh - g.ph, (kw - 1) * g.dw - g.pw), (g.dh, g.dw), 1)
    _check_hwnc(x_shape, w.shape, g, stride1=True)
    wr = _workspace("hwnc_w", (kh, C, K * kw), w.dtype)
    _hwnc.weight_rows(w, wr, True, get_num_threads())
    return _hwnc_correlate(δ, wr, None, x_shape[2:], (kh, kw), gt)


def _hwnc_correlate(x, wr, b, out_hw, khw, g):
    """y = b + x ⋆ w with w given as the GEMMs' rows wr (kh, K, C·kw)."""
    N, C, H, W = x.shape
    kh, K = wr.shape[:2]
    OH, OW = out_hw
    dtype, nt = x.dtype, get_num_threads()
    xq = _hwnc_rows(x, OW, khw[1], g, "hwnc_x", nt)
    yq = _workspace("hwnc_y", (OH * OW * N, K), dtype)
    fn, ilp64 = _blas.gemm(dtype)
    with _blas.single_threaded():
        _hwnc.conv_rows(xq, wr, yq, H, g.sh, g.ph, g.dh, fn, ilp64, nt)
    y = np.empty((N, K, OH, OW), dtype)
    _hwnc.scatter_nchw(yq.reshape(OH, OW, N, K), _bias(b, dtype), y, nt)
    return y


def _hwnc_rows(x, OW, kw, g, name, nt):
    """x (N, C, H, W) as the 'hwnc' rows (sh·⌈H/sh⌉, OW·N, C·kw): xq[φ·⌈H/sh⌉ + m, j·N + n,
    c·kw + q] = x[n, c, m·sh + φ, j·sw + q·dw − pw], 0 outside the plane (a scratch
    array; g None: δ's plain (OH, OW·N, K) transpose)."""
    N, C, H, _ = x.shape
    sh, sw, pw, dw = (1, 1, 0, 1) if g is None else (g.sh, g.sw, g.pw, g.dw)
    Hq = -(-H // sh) * sh
    xq = _workspace(name, (Hq, OW * N, C * kw), x.dtype)
    _hwnc.gather_rows(x, xq.reshape(Hq, OW, N, C * kw), kw, sw, pw, dw, sh, nt)
    return xq


def _check_hwnc(x_shape, w_shape, g, stride1=False):
    if g.groups != 1 or x_shape[1] != w_shape[1] or (stride1 and (g.sh, g.sw) != (1, 1)):
        need = "stride 1 and one group" if stride1 else "one group"
        raise ValueError(f"conv2d(): the 'hwnc' path needs {need}; got input "
                         f"{tuple(x_shape)}, weight {tuple(w_shape)}, stride ({g.sh}, {g.sw}), "
                         f"groups {g.groups}")


def _forward_blas(x, w, b, out_hw, g):
    """ext/conv_im2col.pyx's fused path: one parallel loop over blocks (several samples, or
    one sample's rows); each thread: im2col of its block into its scratch row, then
    (Kg, Cg·kh·kw) @ the block with a single-threaded OpenBLAS GEMM."""
    N, K = x.shape[0], w.shape[0]
    kh, kw = w.shape[2:]
    OH, OW = out_hw
    dtype, nt = x.dtype, get_num_threads()
    R = x.shape[1] * kh * kw
    nb, rows = kernels._blas_blocks(N, R, OH, OW, dtype.itemsize, nt)
    xq = kernels._blas_shift_rows(x.shape, kh, kw, OH, OW, g, rows)
    y = np.empty((N, K, OH, OW), dtype)
    scratch = _workspace("blas", (nt, (R + K) * nb * rows * OW + xq), dtype)
    fn, ilp64 = _blas.gemm(dtype)
    with _blas.single_threaded():
        _im2col.conv2d_forward_blas(x, w, _bias(b, dtype), y, scratch, *g.args(), g.groups,
                                    nb, rows, xq, fn, ilp64, nt)
    return y


def _forward_gemm(x, w, b, out_hw, g):
    """im2col (ext/conv_im2col.pyx) and np.matmul, the batch in bounded chunks.

    One layer of parallelism at a time: the matmul runs on OpenBLAS's threads, so the
    copies around it run on kernels.Tuning.gemm_helper_threads (one)."""
    N = x.shape[0]
    K, Cg, kh, kw = w.shape
    OH, OW = out_hw
    dtype = x.dtype
    G, Kg, L, R = g.groups, K // g.groups, OH * OW, x.shape[1] * kh * kw
    nb, nt = kernels._gemm_chunk(N, (R + K) * L * dtype.itemsize)
    nt = min(nt, get_num_threads())
    y = np.empty((N, K, OH, OW), dtype)
    wg = w.reshape(G, Kg, Cg * kh * kw)
    bias = _bias(b, dtype)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = _workspace("cols", (R, m * L), dtype)
        _im2col.im2col(x, cols, n0, m, kh, kw, OH, OW, *g.args(), nt)
        yt = _workspace("knl", (G, Kg, m * L), dtype)
        np.matmul(wg, cols.reshape(G, Cg * kh * kw, m * L), out=yt)
        #        (G, Kg, Cg·kh·kw) @ (G, Cg·kh·kw, m·OH·OW) -> (G, Kg, m·OH·OW)
        _im2col.knl_to_nkl(yt.reshape(K, m, L), bias, y[n0:n0 + m].reshape(m, K, L), nt)
        #        (K, m, OH·OW) + b -> (m, K, OH·OW)
    return y


def _forward_pointwise(x, w, b, out_hw, g):
    """ext/conv_pointwise.pyx: a 1×1 convolution (stride 1, no padding, one group) is
    y[n] = w (K, C) @ x[n] (C, H·W) + b: one single-threaded GEMM per sample on the
    tensors in place, threads over samples; no im2col. On planes of a few pixels, or a
    few more with a large w (kernels._pointwise_batched), the whole batch as one product
    instead, x copied channel-major (C, N·H·W), each thread a block of y's K rows."""
    N, C, H, W = x.shape
    K = w.shape[0]
    _check_pointwise(x.shape, w.shape, out_hw, g)
    y = np.empty((N, K, H, W), x.dtype)
    fn, ilp64 = _blas.gemm(x.dtype)
    nt = get_num_threads()
    with _blas.single_threaded():
        if kernels._pointwise_batched(H * W, C, K):   # small planes, large w: one product
            xs = _workspace("pointwise_x", (C, N * H * W), x.dtype)
            ys = _workspace("pointwise_y", (K, N * H * W), x.dtype)
            _pointwise.conv2d_forward_pointwise_batched(
                x.reshape(N, C, H * W), w.reshape(K, C), _bias(b, x.dtype),
                y.reshape(N, K, H * W), xs, ys, fn, ilp64, nt)
        else:
            _pointwise.conv2d_forward_pointwise(x.reshape(N, C, H * W), w.reshape(K, C),
                                                _bias(b, x.dtype), y.reshape(N, K, H * W),
                                                fn, ilp64, nt)
    return y


def _forward_depthwise(x, w, b, out_hw, g):
    """ext/conv_depthwise.pyx: one filter per channel (groups = C = K); one thread per
    (n, c) plane, padded once into scratch, each output row from all taps at once."""
    _check_depthwise(x.shape, w.shape, out_hw, g)
    C, _, kh, kw = w.shape
    y = np.empty((x.shape[0], C) + tuple(out_hw), x.dtype)
    bias = np.zeros(C, x.dtype) if b is None else b
    nt = get_num_threads()
    if kernels._depthwise_lanes(x.shape[2:], out_hw, (kh, kw), x.dtype):   # a plane per vector
        idx, _ = _lanes_picks(*x.shape[2:], *out_hw, kh, kw, *g.args())
        _depthwise.conv2d_forward_depthwise_lanes(x, w.reshape(C, kh * kw), bias, idx, y, nt)
        return y
    cl, cb = kernels._depthwise_channels_last(out_hw, C, (g.sh, g.sw))
    if cl:                              # small planes: channels in the vector lanes
        wt = np.ascontiguousarray(w.reshape(C, kh * kw).T)                    # (kh·kw, C)
        size = (_depthwise_plane(w.shape, out_hw, g) + out_hw[0] * out_hw[1]) * cb
        scratch = _workspace("depthwise", (nt, size), x.dtype)
        _depthwise.conv2d_forward_depthwise_cl(x, wt, bias, y, scratch, cb, kh, kw, *g.args(), nt)
        return y
    scratch = _workspace("depthwise", (nt, _depthwise_plane(w.shape, out_hw, g)), x.dtype)
    _depthwise.conv2d_forward_depthwise(x, w.reshape(C, kh * kw), bias, y, scratch, kh, kw,
                                        *g.args(), nt)
    return y


@functools.lru_cache(maxsize=256)
def _lanes_picks(H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw):
    """The pick indices of ext/conv_depthwise.pyx's "lanes" kernels, (taps, 16) int32 each,
    read-only: idx[t, o] = the input pixel k = i·W + j that tap t = p·F_w + q of output pixel
    o = i'·OW + j' reads, i = i'·S_h + p·D_h − P_h, j = j'·S_w + q·D_w − P_w (16: outside
    the plane, and for o ≥ OH·OW); inv[t, k] = the o whose tap t reads k (16: none)."""
    taps, P = kh * kw, OH * OW
    idx = np.full((taps, 16), 16, np.int32)
    inv = np.full((taps, 16), 16, np.int32)
    o = np.arange(P)
    i, j = np.divmod(o, OW)
    for t in range(taps):
        p, q = divmod(t, kw)
        ii, jj = i * sh + p * dh - ph, j * sw + q * dw - pw
        inside = (ii >= 0) & (ii < H) & (jj >= 0) & (jj < W)
        k = ii * W + jj
        idx[t, :P] = np.where(inside, k, 16)
        inv[t, k[inside]] = o[inside]
    idx.flags.writeable = inv.flags.writeable = False
    return idx, inv


def _depthwise_plane(w_shape, out_hw, g):
    """The padded plane every tap of every output pixel reads inside:
    Hp = (OH−1)·S_h + (F_h−1)·D_h + 1 rows of Wp = (OW−1)·S_w + (F_w−1)·D_w + 1."""
    (OH, OW), (kh, kw) = out_hw, w_shape[2:]
    return ((OH - 1) * g.sh + (kh - 1) * g.dh + 1) * ((OW - 1) * g.sw + (kw - 1) * g.dw + 1)


def _depthwise_dx_gathers(w_shape, g):
    """Whether ∂L/∂x runs as the forward's gather (δ dilated by S, padded by D·(F−1) − P,
    flipped kernel): where that padding is ≥ 0."""
    kh, kw = w_shape[2:]
    return g.ph <= (kh - 1) * g.dh and g.pw <= (kw - 1) * g.dw


def _check_depthwise(x_shape, w_shape, out_hw, g):
    """What the depthwise loops assume (kernels._plan only chooses them then)."""
    C = x_shape[1]
    if not (g.groups == C and w_shape[:2] == (C, 1) and len(out_hw) == 2):
        raise ValueError(f"conv2d(): the 'depthwise' path needs groups = input channels = output "
                         f"channels and a (C, 1, F_h, F_w) weight; got input {tuple(x_shape)}, "
                         f"weight {tuple(w_shape)}, groups {g.groups}")


def _check_pointwise(x_shape, w_shape, out_hw, g):
    """What the unchecked pointwise loops assume (kernels._plan only chooses them then)."""
    if (w_shape[1:] != (x_shape[1], 1, 1) or tuple(out_hw) != tuple(x_shape[2:])
            or (g.sh, g.sw, g.ph, g.pw, g.groups) != (1, 1, 0, 0, 1)):
        raise ValueError(f"conv2d(): the 'pointwise' path needs a 1×1 kernel over all "
                         f"channels, stride 1, no padding, one group; got input {tuple(x_shape)}, "
                         f"weight {tuple(w_shape)}, output {tuple(out_hw)}, stride "
                         f"({g.sh}, {g.sw}), padding ({g.ph}, {g.pw}), groups {g.groups}")


_FORWARD = {"direct": _forward_direct, "gemm": _forward_gemm, "blas": _forward_blas,
            "winograd": _forward_winograd, "winograd4": _forward_winograd4, "k16": _forward_k16, "k32": _forward_k32,
            "w16": _forward_w16,
            "pointwise": _forward_pointwise, "depthwise": _forward_depthwise,
            "hwnc": _forward_hwnc}


# ---- ∂L/∂x, ∂L/∂w, ∂L/∂b ------------------------------------------------------------------

_SAME_NAMES = {"forward": "forward", "input_grad": "input_grad", "weight_grad": "weight_grad",
               "bias_grad": "bias_grad"}


def backward(x, x_shape, δ, w, g, need_dx, need_dw, need_db, paths, op="conv2d", names=_SAME_NAMES,
             u=None):
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) of y = b + x ⋆ w, each None unless asked for, by the paths
    kernels._plan chose (`paths.input_grad` is 'winograd', 'winograd4', 'w16', 'k32', 'hwnc' or the
    base path; `paths.weight_grad` is 'k32', 'w16', 'hwnc', 'winograd', 'winograd4' or the base
    path).

    ∂L/∂x = δ dilated by S, padded by D·(F−1) − P (plus, bottom/right, the rows the forward
        dropped), correlated with the kernel flipped 180° with its channel axes swapped
        (seed 004). No path forms the dilation's zeros:
        direct   — phase by phase (ext/conv_direct.pyx conv2d_input_grad_direct);
        gemm, blas — col2im(wᵀ · δ): each column of wᵀ·δ holds, for one real δ entry, its
            products with every tap; col2im adds each where the dilated correlation puts it;
        winograd, winograd4, w16, k32 — at stride 1 and dilation 1 only (nothing to dilate): the
            forward correlation of δ, padded by F−1−P, with the flipped, channel-swapped kernel
            (F(4×4): turned and swapped by the kernel transform as it reads w; F(2×2): w's own
            transform read at the turned points, transposed; for w16 and k32 a copy).
    ∂L/∂w = x ⋆ δ: direct loops, δ (Kg, N·OH·OW) @ im2col(x)ᵀ per group, (w16, stride 1)
        per tap the dot product of δ's stream with x's stream shifted by the tap, or (k32)
        per tile of 8 taps × 32 channels, over every output pixel, δ's channels times the
        taps' inputs of the pixel's window.
    ∂L/∂b = Σ_n Σ_i' Σ_j' δ[n,k,i',j'].

    x may be None when only ∂L/∂x is needed; x_shape is the shape of ∂L/∂x. op and names
    label the passes in kernels.trace() (conv_transpose2d's forward is this ∂L/∂x). u: w's
    F(2×2) kernel transform if the forward kept it (winograd_weights), for ∂L/∂x by 'winograd'.
    """
    N, C, H, W = x_shape
    K, Cg, kh, kw = w.shape
    dtype = δ.dtype
    if N == 0:
        return (np.zeros(x_shape, dtype) if need_dx else None,
                np.zeros(w.shape, dtype) if need_dw else None,
                np.zeros(K, dtype) if need_db else None)
    dx = None
    if need_dx and paths.input_grad == "hwnc":
        kernels._ran(op, names["input_grad"], "hwnc", δ.shape, w.shape)
        dx = _input_grad_hwnc(δ, w, x_shape, g)
        need_dx = False
    if need_dx and paths.input_grad in ("winograd", "winograd4"):
        kernels._ran(op, names["input_grad"], paths.input_grad, δ.shape, (C, K, kh, kw))
        dx = _input_grad_winograd(δ, w, x_shape, g, paths.input_grad, u)
        need_dx = False
    if need_dx and paths.input_grad in ("w16", "k32"):
        gt = Geom((1, 1), (kh - 1 - g.ph, kw - 1 - g.pw), (1, 1), g.groups)
        wt = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, K, kh, kw)
        dx = correlate(δ, wt, None, (H, W), gt, paths.input_grad, op, names["input_grad"])
        need_dx = False
    if not (need_dx or need_dw or need_db):
        return dx, None, None
    path = paths.weight_grad
    for which, need in (("input_grad", need_dx), ("weight_grad", need_dw), ("bias_grad", need_db)):
        if need:
            kernels._ran(op, names[which], paths.input_grad if which == "input_grad" else path,
                         δ.shape, w.shape)
    if path in _WEIGHT_GRAD:            # ∂L/∂x, if still needed, by the base path alone
        if need_dx:
            dx = _BACKWARD[paths.input_grad](x, x_shape, δ, w, g, True, False, False)[0]
        if not (need_dw or need_db):
            return dx, None, None
        return (dx,) + _WEIGHT_GRAD[path](x, x_shape, δ, w.shape, g, need_dw, need_db)
    dx2, dw, db = _BACKWARD[path](x, x_shape, δ, w, g, need_dx, need_dw, need_db)
    return (dx2 if need_dx else dx), dw, db


def input_grad(δ, w, x_shape, g, paths, op="conv2d", which="input_grad"):
    """∂L/∂x = dilate_pad(δ) ⋆ flip(w)ᵀ, of shape x_shape, alone: conv2d's ∂L/∂x op and
    conv_transpose2d's forward (its x as δ). `which` names the pass in kernels.trace()."""
    return backward(None, x_shape, δ, w, g, True, False, False, paths, op, {"input_grad": which})[0]


def weight_grad(x, δ, w_shape, g, paths, op="conv2d", which="weight_grad"):
    """∂L/∂w = x ⋆ δ, of shape w_shape, alone: the weight-gradient op. Without ∂L/∂x the
    kernels read only the weight's shape, so they get an uninitialised array of it."""
    w = np.empty(w_shape, δ.dtype)
    return backward(x, x.shape, δ, w, g, False, True, False, paths, op, {"weight_grad": which})[1]


def bias_grad(δ, x_shape, w, g, paths, op="conv2d", which="bias_grad"):
    """∂L/∂b = Σ_n Σ_i' Σ_j' δ alone, by the weight-gradient path's code (x_shape and w's
    shape choose its blocks, so the sums are those of the fused backward)."""
    return backward(None, x_shape, δ, w, g, False, False, True, paths, op, {"bias_grad": which})[2]


def _backward_direct(x, x_shape, δ, w, g, need_dx, need_dw, need_db):
    """ext/conv_direct.pyx: ∂L/∂x by stride phases, ∂L/∂w one thread per (k, c) slice."""
    nt = get_num_threads()
    dx = dw = None
    if need_dx:
        dx = np.empty(x_shape, δ.dtype)
        _direct.conv2d_input_grad_direct(δ, w, dx, *g.args(), g.groups, nt)
    if need_dw:
        dw = np.empty(w.shape, δ.dtype)
        _direct.conv2d_weight_grad_direct(x, δ, dw, *g.args(), g.groups, nt)
    return dx, dw, (δ.sum(axis=(0, 2, 3)) if need_db else None)


def _weight_grad_w16(x, x_shape, δ, w_shape, g, need_dw, need_db):
    """ext/direct16.h's ∂L/∂w (and ∂L/∂b) over flat streams (kernels._flat_streams): one
    parallel loop over groups of samples; each thread lays its group's x and δ out as flat
    streams on the padded grid, or on the grid of x's phases at stride s > 1
    (kernels._w16_wgrad_blocks, _flat_layout), then sums every tap's shifted x stream against
    δ's, 16 positions at a time. Thread partials summed in a fixed order."""
    N, C, H, W = x_shape
    K, Cg, kh, kw = w_shape
    _, _, OH, OW = δ.shape
    nt = get_num_threads()
    Hp, Wp, s = kernels._flat_layout((H, W), (OH, OW), (kh, kw), g)
    S, kb = kernels._w16_wgrad_blocks(N, Hp * Wp, nt)
    T, Kp = C * kh * kw, -(-K // kb) * kb
    ldd = -(-S * Hp * Wp // 16) * 16
    ldx = S * Hp * Wp + _tap_reach(kh, kw, Wp, g, s) + 16
    off = _tap_offsets(C, kh, kw, ldx, Wp, g, s, 3)
    acc = _workspace("w16_wgrad_acc", (nt, K * T + K), np.float32)
    acc[...] = 0
    xscr = _workspace("w16_wgrad_x", (nt, C * s * s * ldx if need_dw else 1), np.float32)
    dscr = _workspace("w16_wgrad_d", (nt, Kp * ldd + 16), np.float32)
    if x is None:
        x = np.zeros((1, 1, 1, 1), np.float32)
    _d16.conv2d_weight_grad_w16(x, δ, off, acc, xscr, dscr, T, g.ph, g.pw, Hp, Wp, S, ldx, ldd,
                                kb, need_dw, need_db, nt, s)
    dw = acc[:, :K * T].sum(axis=0).reshape(w_shape) if need_dw else None
    db = acc[:, K * T:].sum(axis=0) if need_db else None
    return dw, db


def _weight_grad_k32(x, x_shape, δ, w_shape, g, need_dw, need_db):
    """ext/direct16.h's mg_wgrad_k32 (8 taps × 32 output channels a tile, summed over every
    output pixel of every sample): one parallel loop over groups of samples
    (kernels._k32_blocks), each thread adding into its own (K/32, taps, 32) partial; the
    partials summed in thread order, then turned to (K, taps). ∂L/∂b summed per channel in
    double."""
    N, C, H, W = x_shape
    K, _, kh, kw = w_shape
    _, _, OH, OW = δ.shape
    dw = None
    if need_dw:
        Hp, Wp, pix, tap = _k32_tables(x_shape, w_shape, (OH, OW), g, False, True)
        T, Tr, nt = C * kh * kw, tap.shape[0], get_num_threads()
        S, _ = kernels._k32_blocks(N, C * Hp * Wp + K * OH * OW, T, nt)
        acc = _workspace("k32_wgrad_acc", (nt, K * Tr), np.float32)
        acc[...] = 0
        scratch = _workspace("k16", (nt, S * C * Hp * Wp), np.float32)
        dscr = _workspace("k32_wgrad_d", (nt, S * K * OH * OW), np.float32)
        _d16.conv2d_weight_grad_k32(x, δ, pix, tap, acc, scratch, dscr, g.ph, g.pw, Hp, Wp, S,
                                    nt)
        dw = np.empty(w_shape, np.float32)
        _d16.unpack_k32_sum(acc, dw.reshape(K, T), nt)
    return dw, (_bias_sums(δ) if need_db else None)


def _weight_grad_hwnc(x, x_shape, δ, w_shape, g, need_dw, need_db):
    """ext/conv_hwnc.pyx: ∂L/∂wr[p] = δq[rows]ᵀ @ xq[rows + shift], one GEMM per kernel row
    p over the output rows whose input row is in the plane (xq as in the forward, δq =
    δ as (OH, OW, N, K) rows), each thread a block of its result columns; ∂L/∂b summed
    per channel in double."""
    N, C, H, W = x_shape
    K, _, kh, kw = w_shape
    _, _, OH, OW = δ.shape
    dtype, nt = δ.dtype, get_num_threads()
    dw = None
    if need_dw:
        _check_hwnc(x_shape, w_shape, g)
        xq = _hwnc_rows(x, OW, kw, g, "hwnc_x", nt)
        dyq = _hwnc_rows(δ, OW, 1, None, "hwnc_y", nt).reshape(OH * OW * N, K)
        dwr = _workspace("hwnc_w", (kh, K, C * kw), dtype)
        fn, ilp64 = _blas.gemm(dtype)
        with _blas.single_threaded():
            _hwnc.wgrad_rows(xq, dyq, dwr, H, g.sh, g.ph, g.dh, fn, ilp64, nt)
        dw = np.empty(w_shape, dtype)
        _hwnc.weight_from_rows(dwr, dw, nt)
    return dw, (_bias_sums(δ) if need_db else None)


def _bias_sums(δ):
    """∂L/∂b[k] = Σ_n Σ_ij δ[n, k, i, j], each channel summed in double
    (ext/conv_hwnc.pyx bias_grad)."""
    N, K, OH, OW = δ.shape
    db = np.empty(K, δ.dtype)
    _hwnc.bias_grad(δ.reshape(N, K, OH * OW), db, get_num_threads())
    return db


def _weight_grad_winograd(x, x_shape, δ, w_shape, g, need_dw, need_db, m=2):
    """ext/winograd.pyx, F(m×m, 3×3) (m = 2 or 4, T = m + 2): ∂L/∂w[k, c] =
    Gᵀ·(Σ_tiles (A·Δ·Aᵀ) ⊙ (Bᵀ·d·B))·G, as T² GEMMs D[ξ] (K, tiles) @ V[ξ]ᵀ (tiles, C) over
    blocks of tile rows (the forward's blocks), either each thread summing its own (T², K, C)
    partial over its blocks, the partials added in thread order as they are transformed back,
    or — where those partials would outweigh the transformed tiles
    (kernels._winograd_wgrad_points) — every block transformed first and the GEMMs shared out
    by point ξ, each summing all blocks in order. ∂L/∂b summed per channel in double."""
    N, C, H, W = x_shape
    K = w_shape[0]
    _, _, OH, OW = δ.shape
    dtype, nt = δ.dtype, get_num_threads()
    dw = None
    if need_dw:
        TH, TW, P = -(-OH // m), -(-OW // m), (m + 2) ** 2
        rows = kernels._winograd_rows(N, TH, TW, nt, m, min(C, K))
        fn, ilp64 = _blas.gemm(dtype)
        vec = _wino4_vector(m, TW, x, δ)
        rows_vec = _wino4_rows(m, TW, vec, dtype)
        if kernels._winograd_wgrad_points(C, K, N * TH * TW, P, dtype.itemsize, nt):
            acc = _workspace("winograd_acc", (1, P * K * C), dtype)     # written, not zeroed
            buf = _workspace("winograd_points", (P * (C + K) * N * TH * TW,), dtype)
            with _blas.single_threaded():
                _wino.conv2d_weight_grad_winograd_points(x, δ, acc.reshape(P, K * C), buf, g.ph,
                                                         g.pw, rows, m, fn, ilp64, nt, vec,
                                                         rows_vec=rows_vec)
        else:
            acc = _workspace("winograd_acc", (nt, P * K * C), dtype)    # written, not zeroed
            scratch = _workspace("winograd", (nt, P * (C + K) * rows * TW), dtype)
            with _blas.single_threaded():
                _wino.conv2d_weight_grad_winograd(x, δ, acc, scratch, np.zeros(nt, np.uint8),
                                                  g.ph, g.pw, rows, m, fn, ilp64, nt, vec,
                                                  rows_vec=rows_vec)
        dw = np.empty(w_shape, dtype)                       # (+ the thread partials, in order)
        _wino.winograd_weight_grad(acc.reshape(-1, P, K, C), dw, nt,
                                   kernels._winograd_kernels_vector(dtype, dw.size))
    return dw, (_bias_sums(δ) if need_db else None)


def _weight_grad_winograd4(x, x_shape, δ, w_shape, g, need_dw, need_db):
    """ext/winograd.pyx's F(4×4, 3×3) ∂L/∂w: _weight_grad_winograd with 4×4 tiles, 36 GEMMs."""
    return _weight_grad_winograd(x, x_shape, δ, w_shape, g, need_dw, need_db, 4)


def _backward_blas(x, x_shape, δ, w, g, need_dx, need_dw, need_db):
    """ext/conv_im2col.pyx's fused backward: per block, ∂L/∂wᵀ += im2col(x) @ δᵀ (or, for
    many output channels, ∂L/∂w += δ @ im2col(x)ᵀ: kernels._blas_dw_rows) and
    ∂L/∂x += col2im(wᵀ @ δ), partial ∂L/∂w and ∂L/∂b per thread, summed in a fixed order."""
    N, C, H, W = x_shape
    K, Cg, kh, kw = w.shape
    _, _, OH, OW = δ.shape
    dtype, nt = δ.dtype, get_num_threads()
    G, R = g.groups, C * kh * kw
    dx = np.empty(x_shape, dtype) if need_dx else None
    nb, rows = kernels._blas_blocks(N, R, OH, OW, dtype.itemsize, nt)
    xq = kernels._blas_shift_rows(x_shape, kh, kw, OH, OW, g, rows) if need_dw else 0
    scratch = _workspace("blas", (nt, (R + K) * nb * rows * OW + xq), dtype)
    acc = _workspace("blas_acc", (nt, K * Cg * kh * kw + K), dtype)   # written, not zeroed
    dummy = np.zeros((1, 1, 1, 1), dtype)
    fn, ilp64 = _blas.gemm(dtype)
    dw_rows = kernels._blas_dw_rows(K // G, Cg * kh * kw)
    with _blas.single_threaded():
        _im2col.conv2d_backward_blas(x if need_dw else dummy, δ, w, dx if need_dx else dummy,
                                     acc, scratch, np.zeros(nt, np.uint8), *g.args(), g.groups,
                                     nb, rows, xq,
                                     need_dx, need_dw, need_db, dw_rows, fn, ilp64, nt)
    dw = None
    if need_dw and dw_rows:         # Σ_t (G, Kg, Cg·kh·kw) = (K, Cg, kh, kw), fixed order
        dw = _rows_summed(acc[:, :K * Cg * kh * kw]).reshape(w.shape)
    elif need_dw:   # Σ_t (G, Cg·kh·kw, Kg) -> (G, Kg, Cg·kh·kw) = (K, Cg, kh, kw), fixed order
        dw = np.empty(w.shape, dtype)
        _im2col.sum_transpose(acc, dw.reshape(G, K // G, Cg * kh * kw), nt)
    db = acc[:, K * Cg * kh * kw:].sum(axis=0) if need_db else None   # thread partials, fixed order
    return dx, dw, db


def _rows_summed(acc):
    """Σ_t acc[t], the rows added in order, acc[0] + acc[1] + …, as acc.sum(axis=0) adds
    them, but on the threads (ops.elementwise.add_arrays): a per-thread partial ∂L/∂w of
    ResNet-18's 512-channel layers is 1.2 M values."""
    if acc.shape[0] == 1:
        return np.array(acc[0])                          # (a copy: acc is a workspace)
    out = add_arrays(acc[0], acc[1])
    for t in range(2, acc.shape[0]):
        add_arrays(out, acc[t], out=out)
    return out


def _backward_gemm(x, x_shape, δ, w, g, need_dx, need_dw, need_db):
    """im2col/col2im (ext/conv_im2col.pyx) around np.matmul, the batch in bounded chunks:
    ∂L/∂w += δ (G, Kg, m·OH·OW) @ im2col(x)ᵀ, ∂L/∂x = col2im(wᵀ @ δ)."""
    N, C, H, W = x_shape
    K, Cg, kh, kw = w.shape
    _, _, OH, OW = δ.shape
    dtype = δ.dtype
    dx = np.empty(x_shape, dtype) if need_dx else None
    dw = np.zeros(w.shape, dtype) if need_dw else None
    G, Kg, L, R = g.groups, K // g.groups, OH * OW, C * kh * kw
    nb, nt = kernels._gemm_chunk(N, (R + K) * L * dtype.itemsize)
    nt = min(nt, get_num_threads())
    CgKK = Cg * kh * kw
    wT = w.reshape(G, Kg, CgKK).transpose(0, 2, 1)               # (G, Cg·kh·kw, Kg)
    dwg = dw.reshape(G, Kg, CgKK) if need_dw else None
    if not (need_dx or need_dw):                                 # ∂L/∂b alone: no blocks
        return None, None, (δ.sum(axis=(0, 2, 3)) if need_db else None)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        δt = _workspace("knl", (K, m, L), dtype)
        _im2col.nkl_to_knl(δ[n0:n0 + m].reshape(m, K, L), δt, nt)  # (m, K, OH·OW) -> (K, m, OH·OW)
        δt = δt.reshape(G, Kg, m * L)
        cols = _workspace("cols", (G, CgKK, m * L), dtype)
        if need_dw:
            _im2col.im2col(x, cols.reshape(R, m * L), n0, m, kh, kw, OH, OW, *g.args(), nt)
            part = np.matmul(δt, cols.transpose(0, 2, 1))
            #      (G, Kg, m·OH·OW) @ (G, m·OH·OW, Cg·kh·kw) -> (G, Kg, Cg·kh·kw)
            dwg += part
        if need_dx:
            np.matmul(wT, δt, out=cols)
            #      (G, Cg·kh·kw, Kg) @ (G, Kg, m·OH·OW) -> (G, Cg·kh·kw, m·OH·OW)
            _im2col.col2im(cols.reshape(R, m * L), dx, n0, m, kh, kw, OH, OW, *g.args(), nt)
    return dx, dw, (δ.sum(axis=(0, 2, 3)) if need_db else None)


def _backward_pointwise(x, x_shape, δ, w, g, need_dx, need_dw, need_db):
    """ext/conv_pointwise.pyx: per sample ∂L/∂x[n] = wᵀ @ δ[n] and ∂L/∂wᵀ += x[n] @ δ[n]ᵀ
    (partial sums per thread, added in a fixed order), on the tensors in place; on planes
    of a few pixels, or a few more with a large w (kernels._pointwise_batched), the whole
    batch at once (_backward_pointwise_batched)."""
    N, C, H, W = x_shape
    K = w.shape[0]
    _check_pointwise(x_shape, w.shape, δ.shape[2:], g)
    dtype, nt = δ.dtype, get_num_threads()
    dx = np.empty(x_shape, dtype) if need_dx else None
    if kernels._pointwise_batched(H * W, C, K):      # small planes, large w: one product
        return _backward_pointwise_batched(x, x_shape, δ, w, dx, need_dw, need_db)
    acc = _workspace("pointwise_acc", (nt, C * K + K), dtype)          # written, not zeroed
    dummy = np.zeros((1, 1, 1), dtype)
    fn, ilp64 = _blas.gemm(dtype)
    with _blas.single_threaded():
        _pointwise.conv2d_backward_pointwise(
            x.reshape(N, C, H * W) if need_dw else dummy, δ.reshape(N, K, H * W),
            w.reshape(K, C), dx.reshape(N, C, H * W) if need_dx else dummy, acc,
            np.zeros(nt, np.uint8), need_dx, need_dw, need_db, fn, ilp64, nt)
    dw = None
    if need_dw:                             # Σ_t (C, K) -> (K, C) = (K, C, 1, 1), fixed order
        dw = np.empty(w.shape, dtype)
        _im2col.sum_transpose(acc, dw.reshape(1, K, C), nt)
    db = acc[:, C * K:].sum(axis=0) if need_db else None      # thread partials, fixed order
    return dx, dw, db


def _backward_pointwise_batched(x, x_shape, δ, w, dx, need_dw, need_db):
    """ext/conv_pointwise.pyx on small planes: x and δ copied channel-major over the batch,
    (C, N·H·W) and (K, N·H·W), then ∂L/∂x = wᵀ @ δ, ∂L/∂w = δ @ xᵀ, one product each,
    each thread a block of its rows; ∂L/∂b summed per channel in double."""
    N, C, H, W = x_shape
    K, L, dtype, nt = w.shape[0], H * W, δ.dtype, get_num_threads()
    need_dx = dx is not None
    dw = np.empty((K, C), dtype) if need_dw else np.zeros((1, 1), dtype)
    db = np.empty(K, np.float64) if need_db else np.zeros(1, np.float64)
    ds = _workspace("pointwise_y", (K, N * L), dtype)
    xs = (_workspace("pointwise_x", (C, N * L), dtype) if need_dw else np.zeros((1, 1), dtype))
    dxs = (_workspace("pointwise_dx", (C, N * L), dtype) if need_dx else np.zeros((1, 1), dtype))
    dummy = np.zeros((1, 1, 1), dtype)
    fn, ilp64 = _blas.gemm(dtype)
    with _blas.single_threaded():
        _pointwise.conv2d_backward_pointwise_batched(
            x.reshape(N, C, L) if need_dw else dummy, δ.reshape(N, K, L), w.reshape(K, C),
            dx.reshape(N, C, L) if need_dx else dummy, dw, db, xs, ds, dxs,
            need_dx, need_dw, need_db, fn, ilp64, nt)
    return (dx, dw.reshape(w.shape) if need_dw else None,
            db.astype(dtype) if need_db else None)


def _backward_depthwise(x, x_shape, δ, w, g, need_dx, need_dw, need_db):
    """ext/conv_depthwise.pyx: one thread per channel over the samples, each plane padded
    once into scratch; ∂L/∂w from the padded x against the dilated δ (summed per channel in
    double), ∂L/∂x as the forward's gather over the dilated, padded δ with the flipped
    kernel (seed 004), or, where that padding D·(F−1) − P would be negative,
    (conv2d_input_grad_depthwise) each δ row times each tap added where the tap read.
    Small planes: channels-last blocks (kernels._depthwise_channels_last)."""
    _check_depthwise(x_shape, w.shape, δ.shape[2:], g)
    if δ.shape[:2] != (x_shape[0], w.shape[0]):
        raise ValueError(f"conv2d(): the 'depthwise' path got δ of shape {δ.shape} for input "
                         f"{tuple(x_shape)} and weight {w.shape}")
    C, _, kh, kw = w.shape
    nt, dtype = get_num_threads(), δ.dtype
    if (need_dx or need_dw) and kernels._depthwise_lanes(x_shape[2:], δ.shape[2:], (kh, kw), dtype):
        idx, inv = _lanes_picks(*x_shape[2:], *δ.shape[2:], kh, kw, *g.args())   # a plane per vector
        dx = np.empty(x_shape, dtype) if need_dx else np.zeros((1, 1, 1, 1), dtype)
        gw = np.empty((C, kh * kw), dtype) if need_dw else np.zeros((1, 1), dtype)
        db = np.empty(C, dtype) if need_db else np.zeros(1, dtype)
        _depthwise.conv2d_backward_depthwise_lanes(x if need_dw else δ, δ, w.reshape(C, kh * kw),
                                                   idx, inv, dx, gw, db, need_dx, need_dw,
                                                   need_db, nt)
        return ((dx if need_dx else None), (gw.reshape(w.shape) if need_dw else None),
                (db if need_db else None))
    db = _bias_sums(np.ascontiguousarray(δ)) if need_db else None
    cl, cb = kernels._depthwise_channels_last(δ.shape[2:], C, (g.sh, g.sw))
    if cl and (need_dx or need_dw):     # small planes: channels in the vector lanes
        OH, OW = δ.shape[2:]
        dx = np.empty(x_shape, dtype) if need_dx else np.zeros((1, 1, 1, 1), dtype)
        gw = np.empty((kh * kw, C), dtype) if need_dw else np.zeros((1, 1), dtype)
        size = (2 * _depthwise_plane(w.shape, δ.shape[2:], g) + OH * OW + kh * kw) * cb
        scratch = _workspace("depthwise_b", (nt, size), dtype)
        wt = np.ascontiguousarray(w.reshape(C, kh * kw).T)                    # (kh·kw, C)
        _depthwise.conv2d_backward_depthwise_cl(x if need_dw else δ, δ, wt, dx, gw, scratch, cb,
                                                kh, kw, *g.args(), need_dx, need_dw, nt)
        return ((dx if need_dx else None),
                (np.ascontiguousarray(gw.T).reshape(w.shape) if need_dw else None), db)
    gathers = need_dx and _depthwise_dx_gathers(w.shape, g)
    dx = np.empty(x_shape, dtype) if need_dx else None
    gw = np.empty((C, kh * kw), np.float64) if need_dw else np.zeros((1, 1), np.float64)
    if need_dw or gathers:
        plane = _depthwise.backward_scratch(*x_shape[2:], *δ.shape[2:], kh, kw, *g.args(),
                                            gathers, need_dw)
        scratch = _workspace("depthwise_b", (nt, plane), dtype)
        wf = np.ascontiguousarray(w[:, :, ::-1, ::-1]).reshape(C, kh * kw)   # flipped 180°
        _depthwise.conv2d_backward_depthwise(x if need_dw else δ, δ, wf,
                                             dx if gathers else np.zeros((1, 1, 1, 1), dtype),
                                             gw, scratch, kh, kw, *g.args(), gathers, need_dw, nt)
    if need_dx and not gathers:
        _depthwise.conv2d_input_grad_depthwise(δ, w, dx, *g.args(), nt)
    dw = gw.astype(dtype).reshape(w.shape) if need_dw else None
    return dx, dw, db


_BACKWARD = {"direct": _backward_direct, "gemm": _backward_gemm, "blas": _backward_blas,
             "pointwise": _backward_pointwise, "depthwise": _backward_depthwise}
# paths that compute ∂L/∂w and ∂L/∂b alone (∂L/∂x, if wanted, by another path)
_WEIGHT_GRAD = {"w16": _weight_grad_w16, "hwnc": _weight_grad_hwnc, "k32": _weight_grad_k32,
                "winograd": _weight_grad_winograd, "winograd4": _weight_grad_winograd4}
