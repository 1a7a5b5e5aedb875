# Convolution on small planes as kh GEMMs in an (H, W, N, C) layout ('hwnc').
#
# The correlation of DESIGN.md,
#     y[n,k,i,j] = b[k] + Σ_c Σ_p Σ_q x[n,c, i·S_h + p·D_h − P_h, j·S_w + q·D_w − P_w] · w[k,c,p,q],
# splits into one sum per kernel row p. Copy x once into rows that hold, for every input
# row h, output column j and sample n, the kw taps of each channel's window side by side,
#     xq[h, j, n, c·kw + q] = x[n, c, h, j·S_w + q·D_w − P_w]      (0 outside the plane),
# and take the weight as rows wr[p, k, c·kw + q] = w[k, c, p, q]. Then for each p
#     y[i, j, n, :] += xq[i·S_h + p·D_h − P_h, j, n, :] @ wr[p]ᵀ    (C·kw) @ (C·kw, K)
# and, because i is the outermost index of both, the rows of all output rows i that read
# an input row inside the plane form ONE contiguous block of xq (at row stride S_h > 1,
# once xq's rows are stored in phases: the rows h ≡ φ mod S_h together): kh GEMMs of
# (valid rows·OW·N, C·kw) @ (C·kw, K) in all, with nothing computed for the rows of the
# vertical padding. The gradients are the same products turned around:
#     ∂L/∂wr[p] = Σ_rows δq[rows]ᵀ @ xq[rows + shift]          (K, M) @ (M, C·kw)
#     ∂L/∂x     = (stride 1) the forward correlation of δ padded by D·(F−1)−P with the
#                 flipped, channel-swapped kernel (seed 004): the same GEMMs with
#                 wr[p, c, k·kw + q] = w[k, c, F_h−1−p, F_w−1−q]
# with δq[i, j, n, k] = δ[n, k, i, j] (gather_rows with kw = 1). On planes of a few
# pixels the samples sit in the GEMMs' long dimension, where im2col's per-sample blocks
# give GEMMs of 4 or 16 columns and Winograd's 2×2 tiles are mostly padding.
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py, path 'hwnc') checks one group
# (∂L/∂x: stride 1) and the sizes below, and passes C-contiguous arrays of one dtype; bounds
# checks are off by default (see setup.py). Each GEMM runs single-threaded inside the
# OpenMP loops (see _gemm.pxi); every thread writes its own rows, so the sums need no
# partials and do not depend on the number of threads.
from cython.parallel cimport prange
from libc.string cimport memset
cimport cython

ctypedef fused floating:
    float
    double

include "_gemm.pxi"
include "_sums.pxi"


def gather_rows(const floating[:, :, :, ::1] x,      # IN  (N, C, H, W)
                floating[:, :, :, ::1] xq,           # OUT (sh·Hs, OW, N, C·kw), Hs = ⌈H/sh⌉
                int kw, int sw, int pw, int dw, int sh, int num_threads):
    """xq[φ·Hs + m, j, n, c·kw + q] = x[n, c, m·sh + φ, j·sw + q·dw − pw], 0 where that
    column is outside the plane (the horizontal padding) or that row is past the last.
    The rows in phases of the row stride: for each kernel row, the input rows of
    consecutive output rows are then consecutive here too. With kw = 1, sw = sh = 1,
    pw = 0: the (H, W, N, C) transpose."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Hq = xq.shape[0], OW = xq.shape[1], Hs = Hq // sh
    cdef Py_ssize_t t, hq, f, h, n, j, q, c, iw
    with nogil:
        for t in prange(Hq * N, schedule='static', num_threads=num_threads):
            hq = t // N
            n = t - hq * N
            f = hq // Hs
            h = (hq - f * Hs) * sh + f
            for j in range(OW):
                for c in range(C):
                    for q in range(kw):
                        iw = j * sw + q * dw - pw
                        xq[hq, j, n, c * kw + q] = x[n, c, h, iw] if h < H and 0 <= iw < W else 0


def weight_rows(const floating[:, :, :, ::1] w,       # IN  (K, C, kh, kw)
                floating[:, :, ::1] wr,               # OUT (kh, K, C·kw), or (kh, C, K·kw) flipped
                bint flip, int num_threads):
    """The weight as the GEMMs' rows: wr[p, k, c·kw + q] = w[k, c, p, q]; flipped 180° with
    its channel axes swapped (for ∂L/∂x): wr[p, c, k·kw + q] = w[k, c, kh−1−p, kw−1−q]."""
    cdef Py_ssize_t K = w.shape[0], C = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t k, c, p, q
    with nogil:
        if flip:
            for c in prange(C, schedule='static', num_threads=num_threads):
                for p in range(kh):
                    for k in range(K):
                        for q in range(kw):
                            wr[p, c, k * kw + q] = w[k, c, kh - 1 - p, kw - 1 - q]
        else:
            for k in prange(K, schedule='static', num_threads=num_threads):
                for p in range(kh):
                    for c in range(C):
                        for q in range(kw):
                            wr[p, k, c * kw + q] = w[k, c, p, q]


def weight_from_rows(const floating[:, :, ::1] wr,    # IN  (kh, K, C·kw)
                     floating[:, :, :, ::1] w,        # OUT (K, C, kh, kw)
                     int num_threads):
    """w[k, c, p, q] = wr[p, k, c·kw + q] (weight_rows undone: ∂L/∂w from its rows)."""
    cdef Py_ssize_t K = w.shape[0], C = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t k, c, p, q
    with nogil:
        for k in prange(K, schedule='static', num_threads=num_threads):
            for p in range(kh):
                for c in range(C):
                    for q in range(kw):
                        w[k, c, p, q] = wr[p, k, c * kw + q]


def scatter_nchw(const floating[:, :, :, ::1] yq,    # IN  (OH, OW, N, K)
                 const floating[::1] b,              # IN  (K,) bias, or (0,) for none
                 floating[:, :, :, ::1] y,           # OUT (N, K, OH, OW)
                 int num_threads):
    """y[n, k, i, j] = yq[i, j, n, k] + b[k]."""
    cdef Py_ssize_t OH = yq.shape[0], OW = yq.shape[1], N = yq.shape[2], K = yq.shape[3]
    cdef Py_ssize_t n, k, i, j
    cdef bint has_bias = b.shape[0] > 0
    with nogil:
        for n in prange(N, schedule='static', num_threads=num_threads):
            for i in range(OH):
                for j in range(OW):
                    if has_bias:
                        for k in range(K):
                            y[n, k, i, j] = yq[i, j, n, k] + b[k]
                    else:
                        for k in range(K):
                            y[n, k, i, j] = yq[i, j, n, k]


# Kernel row p reads input row i·sh + s, s = p·dh − ph, for output row i. The output rows
# in [_row_lo, _row_hi) are those whose input row lies inside the plane; in gather_rows'
# phase order that input row is xq's row i + _row_shift. (Functions returning values,
# not one writing through pointers: inside a prange, Cython makes a variable
# thread-private only where it is assigned.)
cdef inline Py_ssize_t _row_lo(Py_ssize_t p, int sh, int ph, int dh) noexcept nogil:
    cdef Py_ssize_t s = p * dh - ph
    return 0 if s >= 0 else (sh - 1 - s) // sh


cdef inline Py_ssize_t _row_hi(Py_ssize_t p, Py_ssize_t OH, Py_ssize_t H, int sh, int ph,
                               int dh) noexcept nogil:
    cdef Py_ssize_t s = p * dh - ph
    cdef Py_ssize_t hi = 0 if H - s <= 0 else (H - s + sh - 1) // sh
    cdef Py_ssize_t lo = _row_lo(p, sh, ph, dh)
    if hi > OH:
        hi = OH
    return hi if hi > lo else lo


cdef inline Py_ssize_t _row_shift(Py_ssize_t p, Py_ssize_t H, int sh, int ph, int dh) noexcept nogil:
    cdef Py_ssize_t s = p * dh - ph
    cdef Py_ssize_t a = s // sh if s >= 0 else -((sh - 1 - s) // sh)     # ⌊s / sh⌋
    return (s - a * sh) * ((H + sh - 1) // sh) + a


def conv_rows(const floating[:, :, ::1] xq,     # IN  (H, OW·N, C·kw)
              const floating[:, :, ::1] wr,     # IN  (kh, K, C·kw)
              floating[:, ::1] yq,              # OUT (OH·OW·N, K)
              Py_ssize_t H, int sh, int ph, int dh, size_t gemm, bint ilp64, int num_threads):
    """yq[i·OW·N + r] = Σ_p xq[i + _row_shift(p), r] @ wr[p]ᵀ over the p whose input row
    i·sh + p·dh − ph is in the plane (H rows; r runs over the OW·N (column, sample) rows of
    one output row). The rows are
    split evenly over the threads; each thread's first product (the kernel row covering the
    most of its rows) overwrites, the rows it does not cover are zeroed first."""
    cdef Py_ssize_t R = xq.shape[1], KC = xq.shape[2]
    cdef Py_ssize_t kh = wr.shape[0], K = wr.shape[1], M = yq.shape[0]
    cdef Py_ssize_t OH = M // R
    cdef Py_ssize_t t, i, p, r0, r1, lo, hi, a, e, best, first_lo, first_hi, shift
    cdef int nt = num_threads
    if M == 0:
        return
    with nogil:
        for t in prange(nt, schedule='static', num_threads=nt):
            r0 = M * t // nt
            r1 = M * (t + 1) // nt
            if r0 >= r1:
                continue
            # the kernel row covering the most of [r0, r1) goes first (β = 0)
            best = 0
            first_lo = r0
            first_hi = r0
            for p in range(kh):
                lo = _row_lo(p, sh, ph, dh)
                hi = _row_hi(p, OH, H, sh, ph, dh)
                a = lo * R if lo * R > r0 else r0
                e = hi * R if hi * R < r1 else r1
                if e - a > first_hi - first_lo:
                    best, first_lo, first_hi = p, a, e
            if first_hi <= first_lo:          # no kernel row reaches the plane
                first_lo = first_hi = r1
            if first_lo > r0:
                memset(&yq[r0, 0], 0, (first_lo - r0) * K * sizeof(floating))
            if first_hi < r1:
                memset(&yq[first_hi, 0], 0, (r1 - first_hi) * K * sizeof(floating))
            for i in range(kh):
                p = best if i == 0 else (i - 1 if i <= best else i)   # best first, then the rest
                lo = _row_lo(p, sh, ph, dh)
                hi = _row_hi(p, OH, H, sh, ph, dh)
                a = lo * R if lo * R > r0 else r0
                e = hi * R if hi * R < r1 else r1
                if e <= a:
                    continue
                shift = _row_shift(p, H, sh, ph, dh) * R
                # (e − a, C·kw) @ (C·kw, K) -> (e − a, K), over (β = 0) or onto (β = 1)
                _gemm(gemm, ilp64, NO_TRANS, TRANS, e - a, K, KC, &xq[0, 0, 0] + (a + shift) * KC,
                      KC, &wr[p, 0, 0], KC, 0 if i == 0 else 1, &yq[a, 0], K)


def wgrad_rows(const floating[:, :, ::1] xq,     # IN  (H, OW·N, C·kw)
               const floating[:, ::1] dyq,       # IN  (OH·OW·N, K) δ as (i, j, n) rows
               floating[:, :, ::1] dwr,          # OUT (kh, K, C·kw)
               Py_ssize_t H, int sh, int ph, int dh, size_t gemm, bint ilp64, int num_threads):
    """dwr[p] = Σ_rows dyq[rows]ᵀ @ xq[rows + _row_shift(p)·OW·N] over the output rows whose
    input row is in the plane (H rows): one GEMM per kernel row p, its C·kw result columns split
    into num_threads blocks (each thread writes its own block of each p, summing over all
    rows)."""
    cdef Py_ssize_t R = xq.shape[1], KC = xq.shape[2]
    cdef Py_ssize_t kh = dwr.shape[0], K = dwr.shape[1], M = dyq.shape[0]
    cdef Py_ssize_t OH = M // R if R > 0 else 0
    cdef Py_ssize_t task, p, c0, c1, lo, hi, k, shift
    cdef int nt = num_threads
    with nogil:
        for task in prange(kh * nt, schedule='static', num_threads=nt):
            p = task // nt
            c0 = KC * (task - p * nt) // nt
            c1 = KC * (task - p * nt + 1) // nt
            if c1 <= c0:
                continue
            lo = _row_lo(p, sh, ph, dh)
            hi = _row_hi(p, OH, H, sh, ph, dh)
            if hi <= lo:
                for k in range(K):
                    memset(&dwr[p, k, c0], 0, (c1 - c0) * sizeof(floating))
                continue
            shift = _row_shift(p, H, sh, ph, dh) * R
            # (K, M_p) @ (M_p, c1 − c0) -> (K, c1 − c0): δq transposed against xq's columns
            _gemm(gemm, ilp64, TRANS, NO_TRANS, K, c1 - c0, (hi - lo) * R,
                  &dyq[lo * R, 0], K, &xq[0, 0, 0] + (lo * R + shift) * KC + c0, KC,
                  0, &dwr[p, 0, c0], KC)


def bias_grad(const floating[:, :, ::1] dy,       # IN  (N, K, OH·OW) δ
              floating[::1] db,                   # OUT (K,)
              int num_threads):
    """db[k] = Σ_n Σ_l δ[n, k, l], summed in double per output channel (each plane by
    _row_sum, the planes in order)."""
    cdef Py_ssize_t N = dy.shape[0], K = dy.shape[1], L = dy.shape[2]
    cdef Py_ssize_t n, k
    cdef double s
    with nogil:
        for k in prange(K, schedule='static', num_threads=num_threads):
            s = 0
            for n in range(N):
                s = s + _row_sum(&dy[n, k, 0], L)
            db[k] = <floating>s
