"""Convolution: conv2d and conv_transpose2d, forward and backward side by side.

Names as in DESIGN.md: x (N, C, H, W) the input, w (K, C/G, kh, kw) the weight,
b (K,) the bias, δ = ∂L/∂y (N, K, OH, OW), stride S = (sh, sw), padding P (top,
bottom, left, right), dilation D = (dh, dw), groups G (Cg = C/G input and Kg = K/G
output channels per group).

    y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]

Three computations, each in three kernel families (ext/conv.pyx) that give the same
numbers up to rounding: `direct` loops (tiny per-group channel counts: depthwise),
`blas` (the default: one OpenMP loop over samples in which each thread gathers a small
im2col block and multiplies it with a single-threaded GEMM of NumPy's own OpenBLAS,
minigrad/_blas.py) and `gemm` (im2col/col2im around np.matmul, batch in bounded
chunks; used when no OpenBLAS is found next to NumPy). A fourth family, `winograd`
(ext/winograd.pyx: Winograd F(2×2, 3×3), 2.25× fewer multiplications, the same OpenMP
loop + single-threaded GEMM), computes _correlate for 3×3 kernels at stride 1,
dilation 1, one group, where the channel counts make its GEMMs fat (_winograd_ok); and
`k16` / `w16` (ext/direct16.h: the direct loops vectorised over 16 output channels or
over runs of 16 output pixels) compute it for small float32 layers such as LeNet's,
where im2col would cost as much as the multiplications (_k16_ok, _w16_ok).

    _correlate      y = b + x ⋆ w                         conv2d forward; conv_transpose2d's ∂L/∂x
    _backward       ∂L/∂x = dilate_pad(δ) ⋆ flip(w)ᵀ      conv2d's ∂L/∂x; conv_transpose2d forward
                    ∂L/∂w = x ⋆ δ                         conv2d's ∂L/∂w; conv_transpose2d's ∂L/∂w

conv_transpose2d is the adjoint of conv2d, so it reuses the same code with the roles
of x and δ exchanged (no duplicate kernels).

The Python side validates every argument before a kernel runs (bounds checks are off
in the kernels), makes the arrays C-contiguous in one float dtype, and allocates the
outputs. Set `_FORCE_PATH = 'direct'`, `'blas'`, `'gemm'`, `'winograd'`, `'k16'` or `'w16'` to
force a kernel family (tests do; the last three where they apply, the usual choice
elsewhere).
"""
import numbers
import threading

import numpy as np

from .. import _blas
from .._ext import conv as _k
from .._ext import winograd as _wk
from ..autograd import Function
from ..tensor import Tensor
from ..threads import get_num_threads
from .limits import check_index, check_output

_FORCE_PATH = None                 # None (choose by shape), 'direct', 'blas', 'gemm', 'winograd', 'k16', 'w16'
_WORKSPACE_BYTES = 64 << 20        # im2col buffer bound per call: the batch is processed in chunks
_BLAS_BLOCK_BYTES = 4 << 20        # 'blas': im2col block per thread, about this size ...
_BLAS_MIN_COLUMNS = 1024           # ... but at least this many output pixels per GEMM;
_BLAS_BATCH_BELOW = 256            # several samples per block only when OH·OW is below this,
_BLAS_BATCH_COLUMNS = 256          # ... just enough of them for this many output pixels
_SHIFT_MAX_OW = 32                 # 'blas': two-step im2col for output rows up to this wide
_DIRECT_MAX_TAPS = 32              # direct loops when C/G · kh · kw is at most this (and G > 1)
_GEMM_HELPER_THREADS = 1           # threads for im2col/col2im between BLAS calls (see _correlate)
_W16_MAX_K = 32                    # 'w16' direct loops by default when K ≤ this ...
_W16_MIN_OW = 16                   # ... on output rows at least this wide
_K16_MAX_K = 32                    # 'k16' direct loops by default when K ≤ this, ...
_K16_MAX_OW = 15                   # ... output rows at most this wide ...
_K16_MIN_TAPS = 64                 # ... and at least this many taps (C·kh·kw) per output
_WINOGRAD_MIN_CK = 6               # 'winograd' by default when C·K/(C+K) is at least this
_WINOGRAD_MIN_TILES = 256          # ... and the call has at least this many 2×2 output tiles
_WINOGRAD_BLOCK_TILES = 96         # 'winograd': about this many 2×2 output tiles per block


# ---- argument normalisation ----------------------------------------------------

def _int(v, fn, name):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{fn}(): {name} must be an int or a pair of ints, got {v!r} "
                        f"({type(v).__name__})")
    return int(v)


def _pair(v, fn, name, minimum, bounded=True):
    """An int or a pair of ints, each ≥ minimum (and ≤ 2**31 − 1 when bounded), as (a, b)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{fn}(): {name} must be an int or a pair of ints, got {v!r}")
        pair = (_int(v[0], fn, name), _int(v[1], fn, name))
    else:
        a = _int(v, fn, name)
        pair = (a, a)
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{fn}(): {name} must be {what}, got {v!r}")
    if bounded:
        check_index(fn, name, max(pair))
    return pair


def _same_padding(size, k, s, d):
    """TensorFlow's 'same' along one axis: out = ceil(in / S); the total padding is
    max((out−1)·S + (k−1)·D + 1 − in, 0), the odd pixel going to the bottom/right."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def _padding(padding, fn, hw, khw, stride, dilation):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            return (_same_padding(hw[0], khw[0], stride[0], dilation[0])
                    + _same_padding(hw[1], khw[1], stride[1], dilation[1]))
        raise ValueError(f"{fn}(): padding must be an int, a pair, 'valid' or 'same', "
                         f"got {padding!r}")
    ph, pw = _pair(padding, fn, "padding", 0)
    return (ph, ph, pw, pw)


def _float_array(t, fn, name, ndims):
    """The ndarray behind a Tensor (or an ndarray / array-like), checked for a float dtype
    and one of the allowed ranks."""
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        raise TypeError(f"{fn}(): {name} must be a float16/32/64 tensor, got dtype {a.dtype} "
                        f"(shape {a.shape})")
    if a.ndim not in ndims:
        want = " or ".join(f"{n}-d" for n in ndims)
        raise ValueError(f"{fn}(): {name} must be {want}, got shape {a.shape}")
    return a


def _operands(fn, x, weight, bias, groups):
    """The input (3-d or 4-d), weight (4-d) and bias (1-d or None) arrays and the groups
    count, checked for float dtypes, ranks, positive groups and no empty dimension."""
    xa = _float_array(x, fn, "input", (3, 4))
    wa = _float_array(weight, fn, "weight", (4,))
    ba = None if bias is None else _float_array(bias, fn, "bias", (1,))
    from .nn import check_same_dtype
    check_same_dtype(fn, xa, weight=wa, bias=ba)            # PyTorch's rule: no mixed dtypes
    groups = _int(groups, fn, "groups")
    if groups < 1:
        raise ValueError(f"{fn}(): groups must be positive, got {groups}")
    if min(wa.shape) < 1:
        raise ValueError(f"{fn}(): weight must have no empty dimension, got shape {wa.shape}")
    if min(xa.shape[-3:]) < 1:
        raise ValueError(f"{fn}(): input must have non-empty channel and spatial dimensions, "
                         f"got shape {xa.shape}")
    return xa, wa, ba, groups


def _compute_dtype(*arrays):
    """NumPy's promotion; float16 is computed in float32 (the kernels are float32/64)."""
    dt = np.result_type(*[a.dtype for a in arrays if a is not None])
    return np.dtype(np.float32) if dt == np.float16 else dt


def _out_size(size, k, s, p_lo, p_hi, d):
    return (size + p_lo + p_hi - d * (k - 1) - 1) // s + 1


# ---- the three computations, on C-contiguous arrays of one dtype ---------------

class _Geom:
    """Stride, top/left padding, dilation and groups of one convolution. The bottom/right
    padding never needs storing: the explicit output size implies it."""
    __slots__ = ("sh", "sw", "ph", "pw", "dh", "dw", "groups")

    def __init__(self, stride, pad_tl, dilation, groups):
        (self.sh, self.sw), (self.ph, self.pw) = stride, pad_tl
        (self.dh, self.dw), self.groups = dilation, groups

    def args(self):
        return (self.sh, self.sw, self.ph, self.pw, self.dh, self.dw)


def _path(w, groups):
    """'direct' for grouped convolutions with tiny per-group channel counts (depthwise:
    the per-group GEMMs would be matrix-vector products over a copied im2col matrix),
    else 'blas' when NumPy's OpenBLAS can be called from the kernels, else 'gemm'.
    Measured: even LeNet's first layer (C = 1, 5×5) is faster through im2col + GEMM
    than through the direct loops. _FORCE_PATH overrides ('winograd': the usual choice
    for what _winograd_ok declines, and for every backward)."""
    if _FORCE_PATH not in (None, "winograd", "k16", "w16"):
        return _FORCE_PATH
    _, Cg, kh, kw = w.shape
    if groups > 1 and Cg * kh * kw <= _DIRECT_MAX_TAPS:
        return "direct"
    return "blas" if _blas.available() else "gemm"


def _winograd_ok(x, w, out_hw, g):
    """True when _correlate takes the Winograd F(2×2, 3×3) kernels: a 3×3 kernel at
    stride 1, dilation 1, one group (any padding), NumPy's OpenBLAS callable, and (unless
    _FORCE_PATH = 'winograd') where it pays:
      C·K/(C+K) ≥ _WINOGRAD_MIN_CK: per tile the GEMMs save ∝ C·K multiplications, the
          tile transforms cost ∝ C + K (C = 3, or C = K = 8, lose);
      at least _WINOGRAD_MIN_TILES tiles: the 16·K·C transformed weights are paid per call;
      OH, OW ≥ 8, and C·K/(C+K) ≥ 2·_WINOGRAD_MIN_CK below 16: short tile rows make the
          transforms dearer (7×7 wastes a quarter of its tiles on the half tiles).
    Measured (2 cores, hot, float32 forward, padding 1, ms, winograd vs the im2col 'blas'
    path; N×C×H², K): res-56-s1 32×64×56², 64: 12.4 vs 21.9; res-14-s1 8×256×14², 256:
    3.0 vs 4.5; 16×128×28², 128: 5.9 vs 9.4; 64×12×32², 12: 0.85 vs 1.5; 64×32×8², 32:
    0.41 vs 0.51. Declined: 64×8×32², 8: 0.62 vs 0.60; cifar-3x3 64×3×32², 16: 0.58 vs
    0.42; 64×16×8², 16: 0.27 vs 0.22; 8×512×7², 512: 5.5 vs 4.8; 32×128×4², 128: 0.73
    vs 0.73."""
    if _FORCE_PATH not in (None, "winograd") or not _blas.available():
        return False
    K, C, kh, kw = w.shape
    if (kh, kw, g.sh, g.sw, g.dh, g.dw, g.groups) != (3, 3, 1, 1, 1, 1, 1):
        return False
    if _FORCE_PATH == "winograd":
        return True
    OH, OW = out_hw
    tiles = x.shape[0] * -(-OH // 2) * -(-OW // 2)
    ck = C * K / (C + K)
    return (ck >= _WINOGRAD_MIN_CK * (1 if min(OH, OW) >= 16 else 2) and min(OH, OW) >= 8
            and tiles >= _WINOGRAD_MIN_TILES)


_SIMD_LEVEL = _k.simd_level()          # 2 AVX-512, 1 AVX2+FMA, 0 none (ext/direct16.h)


def _k16_ok(x, w, out_hw, g):
    """True when _correlate takes ext/direct16.h's direct loops, vectorised over 16
    output channels: float32, one group, K a multiple of 16 (the vector width), a CPU
    with AVX2 or AVX-512, and (unless _FORCE_PATH = 'k16') the small layers where the
    im2col copy costs as much as the GEMM: K ≤ _K16_MAX_K, short output rows (OW ≤
    _K16_MAX_OW) and at least _K16_MIN_TAPS taps per output. _correlate asks Winograd
    first: where both apply it is faster (64×32×8², 32, 3×3 'same': 0.28 vs 0.35 ms).
    Measured (2 cores, hot, forward, ms, k16 vs the im2col 'blas' path; N×C×H², K,
    kernel): LeNet c2 64×6×14², 16, 5×5: 0.155 vs 0.315 (batch 256: 0.43 vs 0.61);
    64×16×16², 16, 3×3 'same': 0.37 vs 0.42; 64×32×8², 32, 3×3: 0.36 vs 0.48; 32×16×16²,
    32, 3×3 stride 2: 0.115 vs 0.14. Declined: cifar-3x3 (27 taps) 1.22 vs 0.39; LeNet c1
    with K = 16 (25 taps) 0.26 vs 0.23."""
    if _FORCE_PATH not in (None, "k16"):
        return False
    K, Cg, kh, kw = w.shape
    if x.dtype != np.float32 or g.groups != 1 or K % 16:
        return False
    if _FORCE_PATH == "k16":                    # (tests: on any CPU, the baseline build)
        return True
    return (_SIMD_LEVEL > 0 and K <= _K16_MAX_K and out_hw[1] <= _K16_MAX_OW
            and Cg * kh * kw >= _K16_MIN_TAPS)


def _w16_ok(x, w, out_hw, g):
    """True when _correlate takes ext/direct16.h's direct loops vectorised over runs of 16
    output pixels (mg_conv_w16_*): float32, one group, column stride 1, and (unless
    _FORCE_PATH = 'w16') a CPU with AVX2 or AVX-512 and few output channels (K ≤
    _W16_MAX_K) on rows at least _W16_MIN_OW wide.
    Its GEMM would have only K rows, which OpenBLAS runs far below its peak; and these
    loops need no im2col. _correlate asks Winograd and k16 first.
    Measured (2 cores, hot, forward, ms, w16 vs the im2col 'blas' path vs Winograd;
    N×C×H², K, kernel, padding 'same'): LeNet c1 64×1×28², 6, 5×5: 0.107 vs 0.174;
    cifar-3x3 64×3×32², 16, 3×3: 0.27 vs 0.40; 64×3×32², 32, 5×5: 0.95 vs 1.99;
    64×16×32², 16, 3×3: 0.90 vs 2.42 vs 1.02; 64×32×32², 16: 1.86 vs 4.08 vs 1.84;
    32×64×32², 32: 3.41 vs 7.36 vs 2.81; 64×16×16², 16: 0.26 vs 0.43 vs 0.34."""
    if _FORCE_PATH not in (None, "w16"):
        return False
    K, Cg, kh, kw = w.shape
    if x.dtype != np.float32 or g.groups != 1 or g.sw != 1:
        return False
    if _FORCE_PATH == "w16":
        return True
    return _SIMD_LEVEL > 0 and K <= _W16_MAX_K and out_hw[1] >= _W16_MIN_OW


def _blas_blocks(N, R, OH, OW, itemsize, nt):
    """(samples, output rows) per block of the 'blas' path.

    Tiny images (OH·OW < _BLAS_BATCH_BELOW): just enough whole samples per block for
    _BLAS_BATCH_COLUMNS output pixels, leaving every thread a block (the GEMM result then
    needs a copy to NCHW). Otherwise one sample's output rows, the GEMM writing into y in
    place: an im2col block (R, Lc) of Lc ≈ _BLAS_BLOCK_BYTES / (R·itemsize) columns, at
    least _BLAS_MIN_COLUMNS (a fat GEMM).
    Measured (2 cores, hot, forward / forward+backward, ms): 512 KiB blocks of ≥ 256
    columns vs 4 MiB of ≥ 1024: res-56-s2 12.3 / 40.6 vs 10.1 / 34.9, cifar-3x3 0.73 vs
    0.42 forward, the other suite shapes within ±5%; lenet-c2 forward 0.38 ms with
    2-sample blocks, 0.45 with 4 or 8."""
    L = OH * OW
    if L < _BLAS_BATCH_BELOW and _BLAS_BATCH_COLUMNS >= 2 * L:
        return max(1, min(_BLAS_BATCH_COLUMNS // L, -(-N // nt))), OH
    cols = max(_BLAS_BLOCK_BYTES // max(R * itemsize, 1), _BLAS_MIN_COLUMNS)
    return 1, max(1, min(OH, cols // OW))


def _blas_shift_rows(x_shape, kh, kw, OH, OW, g, rows):
    """Room for the shifted input rows of ext/conv.pyx's _im2col_shifted (C·kw·sh·U·OW,
    U rows per plane for blocks of `rows` output rows), or 0 for the row-by-row gather.
    The two-step im2col pays for short output rows (OW ≤ _SHIFT_MAX_OW), unless they are
    as wide as the input rows at stride 1 (one copy per tap then needs no shifting).
    Measured (2 cores, hot), LeNet's second layer (64×6×14×14, 5×5, 'valid'): forward
    0.33 ms vs 0.48 row by row, forward+backward 1.27 vs 1.57; at batch 256 forward 1.21
    vs 1.81 ms."""
    _, C, H, W = x_shape
    if OW > _SHIFT_MAX_OW or (g.sh == 1 and g.sw == 1 and W == OW and OW <= 32):
        return 0
    U = -(-min(H, (rows - 1) * g.sh + (kh - 1) * g.dh + 1) // g.sh)
    return C * kw * g.sh * U * OW


_tls = threading.local()


def _workspace(name, shape, dtype):
    """A scratch array reused across calls (per Python thread, so concurrent calls never
    share one). Grows when needed; never returned to the caller."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    bufs = _tls.__dict__.setdefault("bufs", {})
    buf = bufs.get(name)
    if buf is None or buf.size < nbytes:
        buf = bufs[name] = np.empty(max(nbytes, 64), np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _chunk(N, per_sample_bytes):
    """Samples per chunk so that the workspace stays within _WORKSPACE_BYTES."""
    return max(1, min(N, _WORKSPACE_BYTES // max(per_sample_bytes, 1)))


def _correlate(x, w, b, out_hw, g):
    """y = b + x ⋆ w: (N, C, H, W) ⋆ (K, Cg, kh, kw) -> (N, K, OH, OW), OH×OW = out_hw."""
    N = x.shape[0]
    K, Cg, kh, kw = w.shape
    OH, OW = out_hw
    dtype, nt = x.dtype, get_num_threads()
    if N == 0:
        return np.empty((0, K, OH, OW), dtype)
    if _winograd_ok(x, w, out_hw, g):
        # One parallel loop over blocks of about _WINOGRAD_BLOCK_TILES 2×2 output tiles, split
        # evenly over the threads (tile rows across samples: small images share a block);
        # each thread transforms its tiles, runs 16 GEMMs (K, C) @ (C, tiles), writes y.
        TH, TW = -(-OH // 2), -(-OW // 2)
        per = max(1, round(N * TH * TW / (nt * _WINOGRAD_BLOCK_TILES)))  # blocks per thread
        rows = -(-N * TH // (nt * per))                                  # tile rows per block
        u = _workspace("winograd_u", (16, K, Cg), dtype)
        _wk.winograd_weights(w, u, nt)                                   # (16, K, C) = G·w·Gᵀ
        y = np.empty((N, K, OH, OW), dtype)
        scratch = _workspace("winograd", (nt, 16 * (Cg + K) * rows * TW), dtype)
        bias = np.empty(0, dtype) if b is None else b
        fn, ilp64 = _blas.gemm(dtype)
        with _blas.single_threaded():
            _wk.conv2d_forward_winograd(x, u, bias, y, scratch, g.ph, g.pw, rows, fn, ilp64, nt)
        return y
    if _k16_ok(x, w, out_hw, g):
        # One parallel loop over samples: each thread zero-pads its sample into its
        # scratch (rows and columns for the padding and the last run's overhang), then
        # the direct loops of ext/direct16.h write y[n].
        run = _k.k16_run()
        Hp = max(x.shape[2] + g.ph, (OH - 1) * g.sh + (kh - 1) * g.dh + 1)
        Wp = max(x.shape[3] + g.pw, (-(-OW // run) * run - 1) * g.sw + (kw - 1) * g.dw + 1)
        wt = np.ascontiguousarray(w.transpose(1, 2, 3, 0)).reshape(Cg * kh * kw, K)
        y = np.empty((N, K, OH, OW), dtype)
        scratch = _workspace("k16", (nt, x.shape[1] * Hp * Wp), dtype)
        bias = np.empty(0, dtype) if b is None else b
        _k.conv2d_forward_direct16(x, wt, bias, y, scratch, kh, kw, *g.args(), Hp, Wp, 0, nt)
        return y
    if _w16_ok(x, w, out_hw, g):
        # As for k16, with runs of 16 output pixels and kb output channels at a time
        # (the weights padded with zero channels to a multiple of kb).
        kb = 8 if K <= 8 else 16
        Kp = -(-K // kb) * kb
        Hp = max(x.shape[2] + g.ph, (OH - 1) * g.sh + (kh - 1) * g.dh + 1)
        Wp = max(x.shape[3] + g.pw, -(-OW // 16) * 16 + (kw - 1) * g.dw)
        wt = np.zeros((Cg * kh * kw, Kp), dtype)
        wt[:, :K] = w.transpose(1, 2, 3, 0).reshape(Cg * kh * kw, K)
        y = np.empty((N, K, OH, OW), dtype)
        scratch = _workspace("k16", (nt, x.shape[1] * Hp * Wp), dtype)
        bias = np.empty(0, dtype) if b is None else b
        _k.conv2d_forward_direct16(x, wt, bias, y, scratch, kh, kw, *g.args(), Hp, Wp, kb, nt)
        return y
    path = _path(w, g.groups)
    if path == "direct":
        bias = np.zeros(K, dtype) if b is None else b
        y = np.empty((N, K, OH, OW), dtype)
        _k.conv2d_forward_direct(x, w, bias, y, *g.args(), g.groups, nt)
        return y
    if path == "blas":
        # One parallel loop over blocks (several samples, or one sample's rows); each
        # thread: im2col of its block into its scratch row, then (Kg, Cg·kh·kw) @ the block.
        R = x.shape[1] * kh * kw
        nb, rows = _blas_blocks(N, R, OH, OW, dtype.itemsize, nt)
        xq = _blas_shift_rows(x.shape, kh, kw, OH, OW, g, rows)
        y = np.empty((N, K, OH, OW), dtype)
        scratch = _workspace("blas", (nt, (R + K) * nb * rows * OW + xq), dtype)
        bias = np.empty(0, dtype) if b is None else b
        fn, ilp64 = _blas.gemm(dtype)
        with _blas.single_threaded():
            _k.conv2d_forward_blas(x, w, bias, y, scratch, *g.args(), g.groups, nb, rows, xq,
                                   fn, ilp64, nt)
        return y

    # One layer of parallelism at a time: the GEMM runs on OpenBLAS's threads, so the
    # copies around it run on one thread. With OpenMP threads in im2col, the two
    # thread pools spin against each other on the same cores (measured on 2 cores:
    # LeNet's second layer forward+backward 2.3 ms with one helper thread, 280 ms
    # with two under load).
    G, Kg, L, R = g.groups, K // g.groups, OH * OW, x.shape[1] * kh * kw
    nt = min(nt, _GEMM_HELPER_THREADS)
    y = np.empty((N, K, OH, OW), dtype)
    wg = w.reshape(G, Kg, Cg * kh * kw)
    bias = np.empty(0, dtype) if b is None else b
    nb = _chunk(N, (R + K) * L * dtype.itemsize)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        cols = _workspace("cols", (R, m * L), dtype)
        _k.im2col(x, cols, n0, m, kh, kw, OH, OW, *g.args(), nt)
        yt = _workspace("knl", (G, Kg, m * L), dtype)
        np.matmul(wg, cols.reshape(G, Cg * kh * kw, m * L), out=yt)
        #        (G, Kg, Cg·kh·kw) @ (G, Cg·kh·kw, m·OH·OW) -> (G, Kg, m·OH·OW)
        _k.knl_to_nkl(yt.reshape(K, m, L), bias, y[n0:n0 + m].reshape(m, K, L), nt)
        #        (K, m, OH·OW) + b -> (m, K, OH·OW)
    return y


def _backward(x, x_shape, δ, w, g, need_dx, need_dw, need_db=False):
    """(∂L/∂x, ∂L/∂w, ∂L/∂b) of y = b + x ⋆ w, each None unless asked for.

    ∂L/∂x[n,c,i,j] = Σ_k Σ_p Σ_q δ_dil_pad[n, k, i + p, j + q] · w_flip[c, k, p, q]
        δ dilated by S (S−1 zeros between entries), padded by D·(K−1) − P (plus, on the
        bottom/right, the rows the forward dropped), correlated with the kernel flipped
        180° with its channel axes swapped (seed 004). Neither path forms the zeros:
        direct — phase by phase: S_h×S_w phases (r_h, r_w), each a stride-1 correlation of
            δ with the sub-sampled kernel of the taps p·D ≡ r (mod S) (for D = 1,
            w[:, :, r_h::S_h, r_w::S_w]); see conv2d_input_grad_direct;
        gemm, blas — ∂L/∂x = col2im(wᵀ · δ): each column of wᵀ·δ holds, for one real δ
            entry, its products with every tap; col2im adds each product where the dilated
            correlation would put it. The same sums, no zero multiplied.
    ∂L/∂w[k,c,p,q] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'] · x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D]
        the input correlated with δ: gemm — δ (Kg, N·OH·OW) @ im2col(x)ᵀ per group;
        blas — the same product block by block, summed per thread, then over threads.
    ∂L/∂b[k] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'].

    x may be None when only ∂L/∂x is needed; x_shape is the shape of ∂L/∂x.
    """
    N, C, H, W = x_shape
    K, Cg, kh, kw = w.shape
    _, _, OH, OW = δ.shape
    dtype, nt = δ.dtype, get_num_threads()
    if N == 0:
        return (np.zeros(x_shape, dtype) if need_dx else None,
                np.zeros(w.shape, dtype) if need_dw else None,
                np.zeros(K, dtype) if need_db else None)
    if need_dx and (g.sh, g.sw, g.dh, g.dw) == (1, 1, 1, 1):
        # At stride 1 there is nothing to dilate: ∂L/∂x is the plain correlation of δ,
        # padded by K−1−P, with the flipped, channel-swapped kernel — a forward
        # convolution, which _correlate computes with Winograd where that pays
        # (measured, hot, ∂L/∂x by Winograd then ∂L/∂w alone vs the fused backward:
        # 0.81–0.96× on res-56-s1-like layers, 0.87–0.99× on res-14-s1).
        gt = _Geom((1, 1), (kh - 1 - g.ph, kw - 1 - g.pw), (1, 1), g.groups)
        wt = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)           # (C, K, kh, kw), a view
        if gt.ph >= 0 and gt.pw >= 0 and _winograd_ok(δ, wt, (H, W), gt):
            dx = _correlate(δ, np.ascontiguousarray(wt), None, (H, W), gt)
            if need_dw or need_db:
                _, dw, db = _backward(x, x_shape, δ, w, g, False, need_dw, need_db)
                return dx, dw, db
            return dx, None, None
    dx = np.empty(x_shape, dtype) if need_dx else None
    path = _path(w, g.groups)
    if path == "blas":
        G, R = g.groups, C * kh * kw
        nb, rows = _blas_blocks(N, R, OH, OW, dtype.itemsize, nt)
        xq = _blas_shift_rows(x_shape, kh, kw, OH, OW, g, rows) if need_dw else 0
        scratch = _workspace("blas", (nt, (R + K) * nb * rows * OW + xq), dtype)
        acc = _workspace("blas_acc", (nt, K * Cg * kh * kw + K), dtype)
        acc[...] = 0
        dummy = np.zeros((1, 1, 1, 1), dtype)
        fn, ilp64 = _blas.gemm(dtype)
        with _blas.single_threaded():
            _k.conv2d_backward_blas(x if need_dw else dummy, δ, w, dx if need_dx else dummy,
                                    acc, scratch, *g.args(), g.groups, nb, rows, xq,
                                    need_dx, need_dw, need_db, fn, ilp64, nt)
        part = acc.sum(axis=0) if nt > 1 else acc[0]          # thread partials, fixed order
        dw = None
        if need_dw:                  # (G, Cg·kh·kw, Kg) -> (G, Kg, Cg·kh·kw) = (K, Cg, kh, kw)
            dw = np.ascontiguousarray(part[:K * Cg * kh * kw].reshape(G, Cg * kh * kw, K // G)
                                      .transpose(0, 2, 1)).reshape(w.shape)
        db = part[K * Cg * kh * kw:].copy() if need_db else None
        return dx, dw, db
    db = δ.sum(axis=(0, 2, 3)) if need_db else None
    dw = np.zeros(w.shape, dtype) if need_dw else None
    if path == "direct":
        if need_dx:
            _k.conv2d_input_grad_direct(δ, w, dx, *g.args(), g.groups, nt)
        if need_dw:
            _k.conv2d_weight_grad_direct(x, δ, dw, *g.args(), g.groups, nt)
        return dx, dw, db

    G, Kg, L, R = g.groups, K // g.groups, OH * OW, C * kh * kw
    nt = min(nt, _GEMM_HELPER_THREADS)
    CgKK = Cg * kh * kw
    wT = w.reshape(G, Kg, CgKK).transpose(0, 2, 1)               # (G, Cg·kh·kw, Kg)
    dwg = dw.reshape(G, Kg, CgKK) if need_dw else None
    nb = _chunk(N, (R + K) * L * dtype.itemsize)
    for n0 in range(0, N, nb):
        m = min(nb, N - n0)
        δt = _workspace("knl", (K, m, L), dtype)
        _k.nkl_to_knl(δ[n0:n0 + m].reshape(m, K, L), δt, nt)     # (m, K, OH·OW) -> (K, m, OH·OW)
        δt = δt.reshape(G, Kg, m * L)
        cols = _workspace("cols", (G, CgKK, m * L), dtype)
        if need_dw:
            _k.im2col(x, cols.reshape(R, m * L), n0, m, kh, kw, OH, OW, *g.args(), nt)
            part = np.matmul(δt, cols.transpose(0, 2, 1))
            #      (G, Kg, m·OH·OW) @ (G, m·OH·OW, Cg·kh·kw) -> (G, Kg, Cg·kh·kw)
            dwg += part
        if need_dx:
            np.matmul(wT, δt, out=cols)
            #      (G, Cg·kh·kw, Kg) @ (G, Kg, m·OH·OW) -> (G, Cg·kh·kw, m·OH·OW)
            _k.col2im(cols.reshape(R, m * L), dx, n0, m, kh, kw, OH, OW, *g.args(), nt)
    return dx, dw, db


# ---- conv2d --------------------------------------------------------------------

class Conv2d(Function):
    """y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D] · w[k,c,p,q]

    (a cross-correlation, as in every framework; a convolution in the signal-processing
    sense is this with the kernel flipped 180°, seed 001).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        """stride, dilation: pairs; padding: (top, bottom, left, right), all validated."""
        ctx.unbatched = x.ndim == 3
        dtype = _compute_dtype(x, w, b)
        ctx.out_dtype = np.result_type(x.dtype, w.dtype, *(() if b is None else (b.dtype,)))
        x = np.ascontiguousarray(x[None] if ctx.unbatched else x, dtype=dtype)
        w = np.ascontiguousarray(w, dtype=dtype)
        b = None if b is None else np.ascontiguousarray(b, dtype=dtype)
        pt, pb, pl, pr = padding
        kh, kw = w.shape[2:]
        out_hw = (_out_size(x.shape[2], kh, stride[0], pt, pb, dilation[0]),
                  _out_size(x.shape[3], kw, stride[1], pl, pr, dilation[1]))
        ctx.geom = _Geom(stride, (pt, pl), dilation, groups)
        ctx.save_for_backward(x, w)
        y = _correlate(x, w, b, out_hw, ctx.geom)
        y = y[0] if ctx.unbatched else y
        return y.astype(ctx.out_dtype, copy=False)

    @staticmethod
    def backward(ctx, δ):
        """Seed 004, with S, P, D and G:

        ∂L/∂b[k]       = Σ_n Σ_i' Σ_j' δ[n,k,i',j']
        ∂L/∂w[k,c,p,q] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'] · x_pad[n, g·Cg+c, i'·S + p·D, j'·S + q·D]
                         (the input correlated with δ)
        ∂L/∂x          = δ dilated by S, padded by D·(K−1) − P, correlated with w flipped
                         180° and its channel axes swapped; the dilation's zeros are never
                         multiplied (see _backward for how each path does it).
        """
        x, w = ctx.saved
        δ = np.ascontiguousarray(δ[None] if ctx.unbatched else δ, dtype=x.dtype)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        dx, dw, db = _backward(x, x.shape, δ, w, ctx.geom, need_x, need_w, need_b)
        if dx is not None:
            assert dx.shape == x.shape
            dx = dx[0] if ctx.unbatched else dx
        return dx, dw, db, None, None, None, None


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-d cross-correlation of x (N, C, H, W) or (C, H, W) with weight (K, C/groups, kh, kw).

    padding: an int, a pair (ph, pw), 'valid' (none) or 'same' (TensorFlow's, for every
    stride and dilation: out = ceil(in / stride), the odd pixel bottom/right).
    Output: (N, K, OH, OW) with OH = floor((H + P_top + P_bottom − D·(kh−1) − 1) / S) + 1.
    """
    fn = "conv2d"
    xa, wa, ba, groups = _operands(fn, x, weight, bias, groups)
    stride = _pair(stride, fn, "stride", 1, bounded=False)     # any stride is valid: see below
    dilation = _pair(dilation, fn, "dilation", 1)
    C, H, W = xa.shape[-3:]
    K, Cg, kh, kw = wa.shape
    if K % groups:
        raise ValueError(f"{fn}(): groups={groups} must divide the out_channels "
                         f"(weight shape {wa.shape})")
    if C % groups:
        raise ValueError(f"{fn}(): groups={groups} must divide the input channels "
                         f"(input shape {xa.shape})")
    if Cg * groups != C:
        raise ValueError(f"{fn}(): input has {C} channels (shape {xa.shape}) but weight "
                         f"{wa.shape} with groups={groups} expects {Cg * groups}")
    if ba is not None and ba.shape != (K,):
        raise ValueError(f"{fn}(): bias must have shape ({K},) for weight {wa.shape}, "
                         f"got {ba.shape}")
    padding = _padding(padding, fn, (H, W), (kh, kw), stride, dilation)
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
    out_shape = (xa.shape[0],) * (xa.ndim == 4) + (K, _out_size(H, kh, stride[0], pt, pb, dilation[0]),
                                                   _out_size(W, kw, stride[1], pl, pr, dilation[1]))
    check_output(fn, "padding and stride", out_shape, _compute_dtype(xa, wa, ba).itemsize)
    return Conv2d.apply(x if isinstance(x, Tensor) else xa,
                        weight if isinstance(weight, Tensor) else wa,
                        bias if bias is None or isinstance(bias, Tensor) else ba,
                        stride, padding, dilation, groups)


# ---- conv_transpose2d ----------------------------------------------------------

class ConvTranspose2d(Function):
    """The adjoint of conv2d: y = (x dilated by S, padded by D·(K−1) − P) ⋆ flip(w)ᵀ + b,
    with w in PyTorch's layout (C_in, C_out/G, kh, kw) — exactly conv2d's input gradient
    with x in the role of δ, so its forward *is* that code path, and its backward is the
    conv2d forward and weight-gradient code.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, groups, dilation):
        """stride, padding, output_padding, dilation: validated pairs."""
        ctx.unbatched = x.ndim == 3
        dtype = _compute_dtype(x, w, b)
        out_dtype = np.result_type(x.dtype, w.dtype, *(() if b is None else (b.dtype,)))
        x = np.ascontiguousarray(x[None] if ctx.unbatched else x, dtype=dtype)
        w = np.ascontiguousarray(w, dtype=dtype)
        N, _, H, W = x.shape
        Cin, Cog, kh, kw = w.shape
        y_shape = (N, Cog * groups,
                   (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1,
                   (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1)
        ctx.geom = _Geom(stride, padding, dilation, groups)
        ctx.save_for_backward(x, w)
        y, _, _ = _backward(None, y_shape, x, w, ctx.geom, need_dx=True, need_dw=False)
        if b is not None:
            y += b.astype(dtype).reshape(-1, 1, 1)                 # (N, C_out, Ho, Wo) + (C_out, 1, 1)
        y = y[0] if ctx.unbatched else y
        return y.astype(out_dtype, copy=False)

    @staticmethod
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
        dx = dw = None
        if need_x:
            dx = _correlate(δ, w, None, x.shape[2:], ctx.geom)
            assert dx.shape == x.shape
            dx = dx[0] if ctx.unbatched else dx
        if need_w:
            _, dw, _ = _backward(δ, δ.shape, x, w, ctx.geom, need_dx=False, need_dw=True)
        db = δ.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db, None, None, None, None, None


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution (the gradient of conv2d with respect to its input), PyTorch's
    layout: x (N, C_in, H, W) or (C_in, H, W), weight (C_in, C_out/groups, kh, kw).

    Output: (N, C_out, Ho, Wo), Ho = (H−1)·S − 2·P + D·(kh−1) + output_padding + 1.
    """
    fn = "conv_transpose2d"
    xa, wa, ba, groups = _operands(fn, x, weight, bias, groups)
    stride = _pair(stride, fn, "stride", 1)
    dilation = _pair(dilation, fn, "dilation", 1)
    if isinstance(padding, str):
        raise ValueError(f"{fn}(): padding must be an int or a pair of ints, got {padding!r}")
    padding = _pair(padding, fn, "padding", 0)
    output_padding = _pair(output_padding, fn, "output_padding", 0)
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
    check_output(fn, "stride, dilation and output_padding",
                 (xa.shape[0],) * (xa.ndim == 4) + (Cog * groups, *out_hw),
                 _compute_dtype(xa, wa, ba).itemsize)
    return ConvTranspose2d.apply(x if isinstance(x, Tensor) else xa,
                                 weight if isinstance(weight, Tensor) else wa,
                                 bias if bias is None or isinstance(bias, Tensor) else ba,
                                 stride, padding, output_padding, groups, dilation)
