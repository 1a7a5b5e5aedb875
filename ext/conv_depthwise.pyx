# Depthwise convolution (groups = C = K: one F_h×F_w filter per channel, MobileNet's 3×3):
# forward, ∂L/∂w and ∂L/∂x with the inner row loops vectorised.
#
# With one input and one output channel per group, the formulas of DESIGN.md become, per
# channel c (x_pad: x with zeros outside [0, H)×[0, W)):
#
#   y[n,c,i',j']  = b[c] + Σ_p Σ_q w[c,0,p,q] · x_pad[n, c, i'·S_h + p·D_h − P_h, j'·S_w + q·D_w − P_w]
#   ∂L/∂w[c,0,p,q] = Σ_n Σ_i' Σ_j' δ[n,c,i',j'] · x_pad[n, c, i'·S_h + p·D_h − P_h, j'·S_w + q·D_w − P_w]
#   ∂L/∂x[n,c,i,j] = Σ over the (p, q, i', j') whose tap read x[n,c,i,j] of w[c,0,p,q] · δ[n,c,i',j']
#
# The last line is the same sum as seed 004's correlation of the dilated, padded δ with the
# flipped kernel (ext/conv_direct.pyx derives it phase by phase), written from the other
# side: each real δ entry is multiplied by each tap and added to the input element that tap
# read in the forward (the adjoint of the forward's gather), so no dilation zero is formed.
#
# conv_direct.pyx loops over the same indices; here each plane is first copied into a
# zero-padded scratch plane, so that no tap needs a bounds test, and each output row is
# computed from all the taps at once in a loop the compiler vectorises (`omp simd`; the
# 3×3 filters of MobileNet written out, so the row stays in registers) — see "whole padded
# planes" below. The last line's scatter form (one row helper call per tap and δ row) is
# kept for ∂L/∂x where the gather form does not apply (stride > 1, or padding wider than
# the filter's reach).
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py, path 'depthwise') checks that
# w is (C, 1, F_h, F_w), y and δ (N, C, OH, OW), and passes C-contiguous arrays of one
# dtype; _first/_end (_index.pxi) keep every read and write inside the arrays for any
# OH×OW. Bounds checks are off by default (see setup.py).
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
cimport cython

ctypedef fused floating:
    float
    double

include "_index.pxi"

cdef extern from *:
    """
    #define MINIGRAD_DW_ROWS(SUF, T)                                                        \\
    /* y[i·s] += a · x[i], i < n */                                                         \\
    static inline void dw_axpy_out_##SUF(T *y, const T *x, Py_ssize_t n, Py_ssize_t s, T a) { \\
        if (s == 1) {                                                                       \\
            _Pragma("omp simd")                                                             \\
            for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i];                            \\
        } else {                                                                            \\
            for (Py_ssize_t i = 0; i < n; i++) y[i * s] += a * x[i];                        \\
        }                                                                                   \\
    }
    MINIGRAD_DW_ROWS(f, float)
    MINIGRAD_DW_ROWS(d, double)
    """
    void dw_axpy_out_f(float *y, const float *x, Py_ssize_t n, Py_ssize_t s, float a) nogil
    void dw_axpy_out_d(double *y, const double *x, Py_ssize_t n, Py_ssize_t s, double a) nogil


cdef inline void _axpy_out(floating *y, const floating *x, Py_ssize_t n, Py_ssize_t s,
                           floating a) noexcept nogil:
    """y[i·s] += a · x[i] for i < n."""
    if floating is float:
        dw_axpy_out_f(y, x, n, s, a)
    else:
        dw_axpy_out_d(y, x, n, s, a)


def conv2d_input_grad_depthwise(const floating[:, :, :, ::1] dy,   # IN  (N, C, OH, OW) δ
                                const floating[:, :, :, ::1] w,    # IN  (C, 1, kh, kw)
                                floating[:, :, :, ::1] dx,         # OUT (N, C, H, W) ∂L/∂x
                                Py_ssize_t sh, Py_ssize_t sw,
                                Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t dh, Py_ssize_t dw,
                                int num_threads):
    """∂L/∂x[n,c,i,j] = Σ over the taps (p, q) and outputs (i', j') that read x[n,c,i,j] of
    w[c,0,p,q] · δ[n,c,i',j']: each δ row, times each tap, added to the input row the tap
    read (columns j'·sw + q·dw − pw). Rows and columns no tap read (the bottom/right ones a
    strided forward dropped) stay 0. One thread per (n, c) plane."""
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t OH = dy.shape[2], OW = dy.shape[3], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t nc, n, c, p, q, oi, ih, iw, i0, i1, j0, j1, off_w
    with nogil:
        for nc in prange(N * C, schedule='static', num_threads=num_threads):
            n = nc // C
            c = nc % C
            for ih in range(H):
                for iw in range(W):
                    dx[n, c, ih, iw] = 0
            for p in range(kh):
                i0 = _first(p * dh - ph, sh)
                i1 = _end(p * dh - ph, sh, H, OH)
                for q in range(kw):
                    off_w = q * dw - pw
                    j0 = _first(off_w, sw)
                    j1 = _end(off_w, sw, W, OW)
                    if j1 <= j0:
                        continue
                    for oi in range(i0, i1):   # dx[n,c,ih, j·sw + off_w] += w · δ[n,c,oi,j0:j1]
                        _axpy_out(&dx[n, c, oi * sh + p * dh - ph, j0 * sw + off_w], &dy[n, c, oi, j0],
                                  j1 - j0, sw, w[c, 0, p, q])


cdef extern from *:
    """
    /* Compiled for AVX-512, AVX2+FMA and baseline x86-64; the loader picks the one this  \
       CPU runs (as ext/direct16.h; GCC on x86-64 Linux, else one plain build). */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define MG_DW_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define MG_DW_CLONES
    #endif
    #define MINIGRAD_DW_PLANES(SUF, T)                                                      \\
    /* out[i·ldo + j] = b + Σ_p Σ_q w[p·kw + q] · in[(i·sh + p·dh)·ldi + j·sw + q·dw]      \\
       for i < OH, j < OW: a whole plane, each output row kept in registers over all taps   \\
       (3×3 at column stride 1 or 2, dilation 1 along the row: the taps written out). */   \\
    MG_DW_CLONES                                                                            \\
    static void dw_gather_##SUF(T *out, Py_ssize_t ldo, const T *in, Py_ssize_t ldi,        \\
                                Py_ssize_t OH, Py_ssize_t OW, const T *w, Py_ssize_t kh,    \\
                                Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, \\
                                Py_ssize_t dw, T b) {                                       \\
        for (Py_ssize_t i = 0; i < OH; i++) {                                               \\
            T *o = out + i * ldo;                                                           \\
            const T *r0 = in + i * sh * ldi;                                                \\
            if (kh == 3 && kw == 3 && dw == 1 && (sw == 1 || sw == 2)) {                    \\
                const T *r1 = r0 + dh * ldi, *r2 = r0 + 2 * dh * ldi;                       \\
                const T w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5],   \\
                        w6 = w[6], w7 = w[7], w8 = w[8];                                    \\
                if (sw == 1) {                                                              \\
                    _Pragma("omp simd")                                                     \\
                    for (Py_ssize_t j = 0; j < OW; j++)                                     \\
                        o[j] = b + w0 * r0[j] + w1 * r0[j + 1] + w2 * r0[j + 2]             \\
                                 + w3 * r1[j] + w4 * r1[j + 1] + w5 * r1[j + 2]             \\
                                 + w6 * r2[j] + w7 * r2[j + 1] + w8 * r2[j + 2];            \\
                } else {                                                                    \\
                    _Pragma("omp simd")                                                     \\
                    for (Py_ssize_t j = 0; j < OW; j++)                                     \\
                        o[j] = b + w0 * r0[2 * j] + w1 * r0[2 * j + 1] + w2 * r0[2 * j + 2] \\
                                 + w3 * r1[2 * j] + w4 * r1[2 * j + 1] + w5 * r1[2 * j + 2] \\
                                 + w6 * r2[2 * j] + w7 * r2[2 * j + 1] + w8 * r2[2 * j + 2];\\
                }                                                                           \\
                continue;                                                                   \\
            }                                                                               \\
            for (Py_ssize_t j = 0; j < OW; j++) o[j] = b;                                   \\
            for (Py_ssize_t p = 0; p < kh; p++)                                             \\
                for (Py_ssize_t q = 0; q < kw; q++) {                                       \\
                    const T a = w[p * kw + q];                                              \\
                    const T *s = r0 + p * dh * ldi + q * dw;                                \\
                    if (sw == 1) {                                                          \\
                        _Pragma("omp simd")                                                 \\
                        for (Py_ssize_t j = 0; j < OW; j++) o[j] += a * s[j];               \\
                    } else {                                                                \\
                        for (Py_ssize_t j = 0; j < OW; j++) o[j] += a * s[j * sw];          \\
                    }                                                                       \\
                }                                                                           \\
        }                                                                                   \\
    }                                                                                       \\
    /* g[p·kw + q] += Σ_i Σ_j d[i·ldd + j] · in[(i·sh + p·dh)·ldi + j·sw + q·dw]           \\
       for i < OH, j < OW: one plane's share of ∂L/∂w, a partial sum per vector lane in T,   \\
       the plane's total added to g in double. 3×3 at stride 1 with ldd = ldi (δ copied   \\
       to xp's row length, zeros past OW): the nine sums in one pass over δ. */             \\
    MG_DW_CLONES                                                                            \\
    static void dw_wgrad_##SUF(double *g, const T *d, Py_ssize_t ldd, const T *in,          \\
                               Py_ssize_t ldi, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, \\
                               Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,  \\
                               Py_ssize_t dw) {                                             \\
        if (kh == 3 && kw == 3 && dw == 1 && sh == 1 && sw == 1 && ldd == ldi) {                       \\
            /* δ on rows as long as xp's, zeros past OW: one loop over the whole plane, so   \\
               the nine vector sums are reduced to scalars once per plane, not per row */    \\
            const Py_ssize_t Lf = (OH - 1) * ldi + OW;                                      \\
            const T *r0 = in, *r1 = in + dh * ldi, *r2 = in + 2 * dh * ldi;                 \\
            T a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0;       \\
            _Pragma("omp simd reduction(+:a0,a1,a2,a3,a4,a5,a6,a7,a8)")                     \\
            for (Py_ssize_t f = 0; f < Lf; f++) {                                           \\
                const T v = d[f];                                                           \\
                a0 += v * r0[f]; a1 += v * r0[f + 1]; a2 += v * r0[f + 2];                  \\
                a3 += v * r1[f]; a4 += v * r1[f + 1]; a5 += v * r1[f + 2];                  \\
                a6 += v * r2[f]; a7 += v * r2[f + 1]; a8 += v * r2[f + 2];                  \\
            }                                                                               \\
            g[0] += a0; g[1] += a1; g[2] += a2; g[3] += a3; g[4] += a4;                     \\
            g[5] += a5; g[6] += a6; g[7] += a7; g[8] += a8;                                 \\
            return;                                                                         \\
        }                                                                                   \\
        for (Py_ssize_t p = 0; p < kh; p++)                                                 \\
            for (Py_ssize_t q = 0; q < kw; q++) {                                           \\
                T acc = 0;                                                                  \\
                for (Py_ssize_t i = 0; i < OH; i++) {                                       \\
                    const T *di = d + i * ldd;                                              \\
                    const T *s = in + (i * sh + p * dh) * ldi + q * dw;                     \\
                    if (sw == 1) {                                                          \\
                        _Pragma("omp simd reduction(+:acc)")                                \\
                        for (Py_ssize_t j = 0; j < OW; j++) acc += di[j] * s[j];            \\
                    } else {                                                                \\
                        for (Py_ssize_t j = 0; j < OW; j++) acc += di[j] * s[j * sw];       \\
                    }                                                                       \\
                }                                                                           \\
                g[p * kw + q] += acc;                                                       \\
            }                                                                               \\
    }
    MINIGRAD_DW_PLANES(f, float)
    MINIGRAD_DW_PLANES(d, double)
    """
    void dw_gather_f(float *out, Py_ssize_t ldo, const float *inp, Py_ssize_t ldi,
                     Py_ssize_t OH, Py_ssize_t OW, const float *w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, float b) nogil
    void dw_gather_d(double *out, Py_ssize_t ldo, const double *inp, Py_ssize_t ldi,
                     Py_ssize_t OH, Py_ssize_t OW, const double *w, Py_ssize_t kh, Py_ssize_t kw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, double b) nogil
    void dw_wgrad_f(double *g, const float *d, Py_ssize_t ldd, const float *inp, Py_ssize_t ldi,
                    Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                    Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw) nogil
    void dw_wgrad_d(double *g, const double *d, Py_ssize_t ldd, const double *inp, Py_ssize_t ldi,
                    Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                    Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw) nogil


cdef inline void _gather(floating *out, Py_ssize_t ldo, const floating *inp, Py_ssize_t ldi,
                         Py_ssize_t OH, Py_ssize_t OW, const floating *w, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                         Py_ssize_t dw, floating b) noexcept nogil:
    """out[i·ldo + j] = b + Σ_p Σ_q w[p·kw + q] · inp[(i·sh + p·dh)·ldi + j·sw + q·dw]."""
    if floating is float:
        dw_gather_f(out, ldo, inp, ldi, OH, OW, w, kh, kw, sh, sw, dh, dw, b)
    else:
        dw_gather_d(out, ldo, inp, ldi, OH, OW, w, kh, kw, sh, sw, dh, dw, b)


cdef inline void _wgrad(double *g, const floating *d, Py_ssize_t ldd, const floating *inp,
                        Py_ssize_t ldi, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh,
                        Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                        Py_ssize_t dw) noexcept nogil:
    """g[p·kw + q] += Σ_i Σ_j d[i·ldd + j] · inp[(i·sh + p·dh)·ldi + j·sw + q·dw]."""
    if floating is float:
        dw_wgrad_f(g, d, ldd, inp, ldi, OH, OW, kh, kw, sh, sw, dh, dw)
    else:
        dw_wgrad_d(g, d, ldd, inp, ldi, OH, OW, kh, kw, sh, sw, dh, dw)


# ---- whole padded planes ------------------------------------------------------------------
#
# Rows of 4–32 pixels make the row helpers above short loops with a call each (a 16×16
# plane with a 3×3 filter: 144 of them). Instead, copy the plane once into a zero-padded
# scratch plane xp of Hp×Wp (Hp = (OH−1)·S_h + (F_h−1)·D_h + 1, Wp likewise), so that every
# tap of every output pixel reads inside xp, and compute each output row from all the taps
# at once (dw_gather: the row stays in registers instead of being read and written once per
# tap):
#     y[n,c,i',j'] = b[c] + Σ_p Σ_q w[c,0,p,q] · xp[i'·S_h + p·D_h, j'·S_w + q·D_w]
# ∂L/∂w reads the same xp against δ (dw_wgrad). At stride 1, ∂L/∂x is seed 004's
# correlation itself: δ padded by D·(F−1) − P (≥ 0: otherwise the row helpers above) with
# the kernel flipped 180° (wf),
#     ∂L/∂x[n,c,i,j] = Σ_p Σ_q wf[c,0,p,q] · δp[i + p·D_h, j + q·D_w]
# the same gather as the forward.
#
# Every plane of one call is placed at the same spot of its scratch plane, so the padding
# (and, dilated, the zeros between δ's entries) is the same for all of them: the kernels
# zero their scratch once per call and then copy each plane's values only (dw_place), in
# vector moves, where a memset and a memcpy call per row cost more than the arithmetic on
# 16×16 planes. The backward's thread walks one channel's planes, C·H·W elements apart (too
# far for the hardware prefetcher to guess), so it asks for the next sample's planes while
# it computes this one's; the forward's next plane follows its last and needs no asking
# (asking there cost 3–7 %).

cdef extern from *:
    """
    #define MINIGRAD_DW_PLACE(SUF, T)                                                       \\
    /* out[i·sh·ldo + j·sw] = a[i·W + j] for i < rows, j < cols (the rest of out is left  \\
       as it is: the zeros the caller wrote once) */                                        \\
    MG_DW_CLONES                                                                            \\
    static void dw_place_##SUF(T *out, Py_ssize_t ldo, const T *a, Py_ssize_t W,            \\
                               Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t sh,             \\
                               Py_ssize_t sw) {                                             \\
        for (Py_ssize_t i = 0; i < rows; i++) {                                             \\
            T *o = out + i * sh * ldo;                                                      \\
            const T *s = a + i * W;                                                         \\
            if (sw == 1) {                                                                  \\
                _Pragma("omp simd")                                                         \\
                for (Py_ssize_t j = 0; j < cols; j++) o[j] = s[j];                          \\
            } else {                                                                        \\
                for (Py_ssize_t j = 0; j < cols; j++) o[j * sw] = s[j];                     \\
            }                                                                               \\
        }                                                                                   \\
    }
    MINIGRAD_DW_PLACE(f, float)
    MINIGRAD_DW_PLACE(d, double)
    /* ask for the n bytes at a to be brought into the cache (the next plane, read while
       this one is computed) */
    static inline void dw_prefetch(const void *a, Py_ssize_t n) {
    #if defined(__GNUC__)
        for (Py_ssize_t k = 0; k < n; k += 64) __builtin_prefetch((const char *)a + k, 0, 3);
    #else
        (void)a; (void)n;
    #endif
    }
    """
    void dw_place_f(float *out, Py_ssize_t ldo, const float *a, Py_ssize_t W, Py_ssize_t rows,
                    Py_ssize_t cols, Py_ssize_t sh, Py_ssize_t sw) nogil
    void dw_place_d(double *out, Py_ssize_t ldo, const double *a, Py_ssize_t W, Py_ssize_t rows,
                    Py_ssize_t cols, Py_ssize_t sh, Py_ssize_t sw) nogil
    void dw_prefetch(const void *a, Py_ssize_t n) nogil


cdef inline Py_ssize_t _fits(Py_ssize_t n, Py_ssize_t at, Py_ssize_t size, Py_ssize_t s) noexcept nogil:
    """How many of at, at + s, …, at + (n−1)·s lie below size (at ≥ 0, s ≥ 1)."""
    if at >= size:
        return 0
    return min(n, (size - at + s - 1) // s)


cdef inline void _place(floating *out, Py_ssize_t Ho, Py_ssize_t Wo, Py_ssize_t top,
                        Py_ssize_t left, const floating *a, Py_ssize_t H, Py_ssize_t W,
                        Py_ssize_t sh, Py_ssize_t sw) noexcept nogil:
    """The plane a (H, W) dilated by (sh, sw) into out (Ho, Wo) at (top, left) ≥ 0:
    out[top + i·sh, left + j·sw] = a[i, j], clipped to out; the rest of out untouched."""
    cdef Py_ssize_t rows = _fits(H, top, Ho, sh), cols = _fits(W, left, Wo, sw)
    if rows > 0 and cols > 0:
        if floating is float:
            dw_place_f(out + top * Wo + left, Wo, a, W, rows, cols, sh, sw)
        else:
            dw_place_d(out + top * Wo + left, Wo, a, W, rows, cols, sh, sw)


def conv2d_forward_depthwise(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                             const floating[:, ::1] w,         # IN  (C, kh·kw)
                             const floating[::1] b,            # IN  (C,) (zeros when no bias)
                             floating[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                             floating[:, ::1] scratch,         # TMP (threads, Hp·Wp)
                             Py_ssize_t kh, Py_ssize_t kw,
                             Py_ssize_t sh, Py_ssize_t sw,
                             Py_ssize_t ph, Py_ssize_t pw,
                             Py_ssize_t dh, Py_ssize_t dw,
                             int num_threads):
    """y[n,c,i',j'] = b[c] + Σ_p Σ_q w[c,0,p,q] · x_pad[n, c, i'·sh + p·dh − ph, j'·sw + q·dw − pw],
    one padded plane at a time (see above). One thread per (n, c) plane."""
    cdef Py_ssize_t N = y.shape[0], C = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Hp = (OH - 1) * sh + (kh - 1) * dh + 1, Wp = (OW - 1) * sw + (kw - 1) * dw + 1
    cdef Py_ssize_t nc, n, c, t
    cdef floating *xp
    if scratch.shape[1] < Hp * Wp or scratch.shape[0] < num_threads:
        raise ValueError(f"conv2d_forward_depthwise(): scratch {tuple(scratch.shape)[:2]} is "
                         f"too small for {num_threads} threads of {Hp}×{Wp} padded planes")
    with nogil:
        memset(&scratch[0, 0], 0, scratch.shape[0] * scratch.shape[1] * sizeof(floating))
        for nc in prange(N * C, schedule='static', num_threads=num_threads):
            t = threadid()
            n = nc // C
            c = nc % C
            xp = &scratch[t, 0]
            _place(xp, Hp, Wp, ph, pw, &x[n, c, 0, 0], H, W, 1, 1)
            _gather(&y[n, c, 0, 0], OW, xp, Wp, OH, OW, &w[c, 0], kh, kw, sh, sw, dh, dw, b[c])


def conv2d_backward_depthwise(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W) (any, if not need_dw)
                              const floating[:, :, :, ::1] dy,   # IN  (N, C, OH, OW) δ
                              const floating[:, ::1] wf,         # IN  (C, kh·kw) w flipped 180° (any, if not need_dx)
                              floating[:, :, :, ::1] dx,         # OUT (N, C, H, W), if need_dx
                              double[:, ::1] gw,                 # OUT (C, kh·kw) ∂L/∂w, if need_dw
                              floating[:, ::1] scratch,          # TMP (threads, see below)
                              Py_ssize_t kh, Py_ssize_t kw,
                              Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t ph, Py_ssize_t pw,
                              Py_ssize_t dh, Py_ssize_t dw,
                              bint need_dx, bint need_dw, int num_threads):
    """One thread per channel c, over the samples n (so ∂L/∂w[c] is summed by one thread,
    in a fixed order):

        ∂L/∂w[c,0,p,q] = Σ_n Σ_r Σ_s δd[r, s] · xp[r + p·dh, s + q·dw]
        ∂L/∂x[n,c,i,j] = Σ_p Σ_q wf[c,0,p,q] · δp[i + p·dh, j + q·dw]   (need_dx)

    with δd = δ[n, c] dilated by the stride (δd[i'·sh, j'·sw] = δ[n,c,i',j'], zeros between:
    seed 004's dilated δ, so that both sums are stride-1 loops over whole planes; at
    stride 2 that multiplies three zeros per entry and still runs 2–3× faster than the
    strided loops), on rows of Wp, and δp = δd placed at (top, left) = (D_h·(F_h−1) − P_h,
    D_w·(F_w−1) − P_w) ≥ 0 in an Hd×Wd plane of zeros, Hd = H + (F_h−1)·D_h,
    Wd = W + (F_w−1)·D_w.

    When both are asked for, xp and δp get rows of one length L = max(Wp, Wd) (zeros past
    their own width), and δd is δp read from (top, left) on: every δ entry lies inside δp
    (top + OHd ≤ Hd, left + OWd ≤ Wd), and past OWd a row of δp holds zeros up to the next
    row's δ (its right padding, then the left padding of the next row), which is what the
    one-pass ∂L/∂w needs; so δ is copied once, not twice.

    scratch, per thread (backward_scratch gives the length): xp (Hp·L) and δp (Hd·L) when
    both; else xp (Hp·Wp) and δd (OHd·Wp) if need_dw, δp (Hd·Wd) if need_dx.
    """
    cdef Py_ssize_t N = dy.shape[0], C = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t H = dx.shape[2] if need_dx else x.shape[2]
    cdef Py_ssize_t W = dx.shape[3] if need_dx else x.shape[3]
    cdef Py_ssize_t Hp = (OH - 1) * sh + (kh - 1) * dh + 1, Wp = (OW - 1) * sw + (kw - 1) * dw + 1
    cdef Py_ssize_t Hd = H + (kh - 1) * dh, Wd = W + (kw - 1) * dw
    cdef Py_ssize_t OHd = (OH - 1) * sh + 1, OWd = (OW - 1) * sw + 1     # δ dilated by S
    cdef Py_ssize_t top = (kh - 1) * dh - ph, left = (kw - 1) * dw - pw
    cdef bint both = need_dx and need_dw
    cdef Py_ssize_t Lx = max(Wp, Wd) if both else Wp, Ld = Lx if both else Wd
    cdef Py_ssize_t c, n, t, r
    cdef floating *xp
    cdef floating *dd
    cdef floating *dp
    if need_dx and (top < 0 or left < 0):
        raise ValueError(f"conv2d_backward_depthwise(): ∂L/∂x as a gather needs padding ≤ "
                         f"dilation·(kernel − 1); got padding ({ph}, {pw}), kernel ({kh}, {kw}), "
                         f"dilation ({dh}, {dw})")
    if scratch.shape[1] < backward_scratch(H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw,
                                           need_dx, need_dw) or scratch.shape[0] < num_threads:
        raise ValueError(f"conv2d_backward_depthwise(): scratch {tuple(scratch.shape)[:2]} is "
                         f"too small for {num_threads} threads of planes {H}×{W} → {OH}×{OW}")
    with nogil:
        memset(&scratch[0, 0], 0, scratch.shape[0] * scratch.shape[1] * sizeof(floating))
        for c in prange(C, schedule='static', num_threads=num_threads):
            t = threadid()
            xp = &scratch[t, 0]
            dd = xp + (Hp * Lx if need_dw else 0)
            dp = dd + (OHd * Wp if need_dw and not both else 0)
            if need_dw:
                for r in range(kh * kw):
                    gw[c, r] = 0
            for n in range(N):
                if n + 1 < N:                      # the next sample's planes of channel c
                    dw_prefetch(&dy[n + 1, c, 0, 0], OH * OW * sizeof(floating))
                    if need_dw:
                        dw_prefetch(&x[n + 1, c, 0, 0], H * W * sizeof(floating))
                if need_dx:                        # δp: dilated by S, at (top, left)
                    _place(dp, Hd, Ld, top, left, &dy[n, c, 0, 0], OH, OW, sh, sw)
                if need_dw:
                    _place(xp, Hp, Lx, ph, pw, &x[n, c, 0, 0], H, W, 1, 1)
                    if both:                       # δd = δp from (top, left) on, rows of L
                        _wgrad(&gw[c, 0], dp + top * Ld + left, Ld, xp, Lx, OHd, OWd, kh, kw,
                               1, 1, dh, dw)
                    else:                          # δ dilated by S on rows of Wp (dw_wgrad)
                        _place(dd, OHd, Wp, 0, 0, &dy[n, c, 0, 0], OH, OW, sh, sw)
                        _wgrad(&gw[c, 0], dd, Wp, xp, Wp, OHd, OWd, kh, kw, 1, 1, dh, dw)
                if need_dx:                        # seed 004: dilate_pad(δ) ⋆ rot180(w)
                    _gather(&dx[n, c, 0, 0], W, dp, Ld, H, W, &wf[c, 0], kh, kw, 1, 1, dh, dw, 0)


cpdef Py_ssize_t backward_scratch(Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                                  Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                                  bint need_dx, bint need_dw):
    """The scratch conv2d_backward_depthwise needs per thread, in elements (see there)."""
    cdef Py_ssize_t Hp = (OH - 1) * sh + (kh - 1) * dh + 1, Wp = (OW - 1) * sw + (kw - 1) * dw + 1
    cdef Py_ssize_t Hd = H + (kh - 1) * dh, Wd = W + (kw - 1) * dw, OHd = (OH - 1) * sh + 1
    if need_dx and need_dw:
        return (Hp + Hd) * max(Wp, Wd)
    return (Hp * Wp + OHd * Wp if need_dw else 0) + (Hd * Wd if need_dx else 0)


# ---- small planes: channels in the vector lanes -------------------------------------------
#
# On 4×4 and 2×2 planes (MobileNetV2's last stages at 64×64) the loops above spend their
# time on per-plane overhead: rows of 2–4 pixels fill no vector. Here a block of cb
# channels of one sample is transposed to channels-last, padded, (Hp, Wp, cb), so that
# each output pixel of all cb channels is one short vector loop per tap:
#     yt[i', j', :] = b[:] + Σ_p Σ_q wt[p·F_w + q, :] · xt[i'·S_h + p·D_h, j'·S_w + q·D_w, :]
# (wt: the weights transposed to (F_h·F_w, C)); ∂L/∂w[c, p, q] sums δt · xt over the same
# positions, and ∂L/∂x adds wt · δt where each tap read (the scatter form, at any stride:
# the lanes are channels, so no two lanes ever add to the same element).

cdef extern from *:
    """
    #define MINIGRAD_DWC(SUF, T)                                                            \\
    /* xt[((i + top)·Wp + j + left)·cb + l] = a[l·H·W + i·W + j], zeros elsewhere */        \\
    MG_DW_CLONES                                                                            \\
    static void dwc_pack_##SUF(T *xt, const T *a, Py_ssize_t H, Py_ssize_t W,               \\
                               Py_ssize_t cb, Py_ssize_t Hp, Py_ssize_t Wp,                 \\
                               Py_ssize_t top, Py_ssize_t left) {                           \\
        Py_ssize_t rows = H < Hp - top ? H : Hp - top, cols = W < Wp - left ? W : Wp - left; \\
        memset(xt, 0, Hp * Wp * cb * sizeof(T));                                            \\
        for (Py_ssize_t i = 0; i < rows; i++)                                               \\
            for (Py_ssize_t j = 0; j < cols; j++) {                                         \\
                T *o = xt + ((i + top) * Wp + j + left) * cb;                               \\
                const T *s = a + i * W + j;                                                 \\
                _Pragma("omp simd")                                                         \\
                for (Py_ssize_t l = 0; l < cb; l++) o[l] = s[l * H * W];                    \\
            }                                                                               \\
    }                                                                                       \\
    /* a[l·H·W + i·W + j] = t[((i + top)·Wt + j + left)·cb + l] inside t (Ht, Wt, cb),      \\
       0 outside */                                                                         \\
    MG_DW_CLONES                                                                            \\
    static void dwc_unpack_##SUF(T *a, const T *t, Py_ssize_t H, Py_ssize_t W,              \\
                                 Py_ssize_t cb, Py_ssize_t Ht, Py_ssize_t Wt,               \\
                                 Py_ssize_t top, Py_ssize_t left) {                         \\
        for (Py_ssize_t i = 0; i < H; i++)                                                  \\
            for (Py_ssize_t j = 0; j < W; j++) {                                            \\
                T *o = a + i * W + j;                                                       \\
                if (i + top < Ht && j + left < Wt) {                                        \\
                    const T *s = t + ((i + top) * Wt + j + left) * cb;                      \\
                    _Pragma("omp simd")                                                     \\
                    for (Py_ssize_t l = 0; l < cb; l++) o[l * H * W] = s[l];                \\
                } else {                                                                    \\
                    for (Py_ssize_t l = 0; l < cb; l++) o[l * H * W] = 0;                   \\
                }                                                                           \\
            }                                                                               \\
    }                                                                                       \\
    /* yt[o·cb + l] = b[l] + Σ_p Σ_q wt[(p·kw + q)·ldw + l] · xt[pos(o, p, q)·cb + l] */    \\
    MG_DW_CLONES                                                                            \\
    static void dwc_forward_##SUF(T *yt, const T *xt, Py_ssize_t Wp, Py_ssize_t OH,         \\
                                  Py_ssize_t OW, const T *wt, Py_ssize_t ldw, const T *b,   \\
                                  Py_ssize_t cb, Py_ssize_t kh, Py_ssize_t kw,              \\
                                  Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,              \\
                                  Py_ssize_t dw) {                                          \\
        for (Py_ssize_t i = 0; i < OH; i++)                                                 \\
            for (Py_ssize_t j = 0; j < OW; j++) {                                           \\
                T *acc = yt + (i * OW + j) * cb;                                            \\
                _Pragma("omp simd")                                                         \\
                for (Py_ssize_t l = 0; l < cb; l++) acc[l] = b[l];                          \\
                for (Py_ssize_t p = 0; p < kh; p++)                                         \\
                    for (Py_ssize_t q = 0; q < kw; q++) {                                   \\
                        const T *s = xt + ((i * sh + p * dh) * Wp + j * sw + q * dw) * cb;  \\
                        const T *wr = wt + (p * kw + q) * ldw;                              \\
                        _Pragma("omp simd")                                                 \\
                        for (Py_ssize_t l = 0; l < cb; l++) acc[l] += wr[l] * s[l];         \\
                    }                                                                       \\
            }                                                                               \\
    }                                                                                       \\
    /* ga[(p·kw + q)·cb + l] += Σ_o dt[o·cb + l] · xt[pos(o, p, q)·cb + l] (need_dw), and   \\
       dxt[pos(o, p, q)·cb + l] += wt[(p·kw + q)·ldw + l] · dt[o·cb + l] (need_dx; dxt      \\
       zeroed first) */                                                                     \\
    MG_DW_CLONES                                                                            \\
    static void dwc_backward_##SUF(T *ga, T *dxt, const T *dt, const T *xt, Py_ssize_t Wp,  \\
                                   Py_ssize_t Hp, Py_ssize_t OH, Py_ssize_t OW,             \\
                                   const T *wt, Py_ssize_t ldw, Py_ssize_t cb,              \\
                                   Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,             \\
                                   Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,             \\
                                   int need_dx, int need_dw) {                              \\
        if (need_dx) memset(dxt, 0, Hp * Wp * cb * sizeof(T));                              \\
        for (Py_ssize_t i = 0; i < OH; i++)                                                 \\
            for (Py_ssize_t j = 0; j < OW; j++) {                                           \\
                const T *d = dt + (i * OW + j) * cb;                                        \\
                for (Py_ssize_t p = 0; p < kh; p++)                                         \\
                    for (Py_ssize_t q = 0; q < kw; q++) {                                   \\
                        Py_ssize_t at = ((i * sh + p * dh) * Wp + j * sw + q * dw) * cb;    \\
                        if (need_dw) {                                                      \\
                            T *g = ga + (p * kw + q) * cb;                                  \\
                            const T *s = xt + at;                                           \\
                            _Pragma("omp simd")                                             \\
                            for (Py_ssize_t l = 0; l < cb; l++) g[l] += d[l] * s[l];        \\
                        }                                                                   \\
                        if (need_dx) {                                                      \\
                            T *o = dxt + at;                                                \\
                            const T *wr = wt + (p * kw + q) * ldw;                          \\
                            _Pragma("omp simd")                                             \\
                            for (Py_ssize_t l = 0; l < cb; l++) o[l] += wr[l] * d[l];       \\
                        }                                                                   \\
                    }                                                                       \\
            }                                                                               \\
    }
    MINIGRAD_DWC(f, float)
    MINIGRAD_DWC(d, double)
    """
    void dwc_pack_f(float *xt, const float *a, Py_ssize_t H, Py_ssize_t W, Py_ssize_t cb,
                    Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t top, Py_ssize_t left) nogil
    void dwc_pack_d(double *xt, const double *a, Py_ssize_t H, Py_ssize_t W, Py_ssize_t cb,
                    Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t top, Py_ssize_t left) nogil
    void dwc_unpack_f(float *a, const float *t, Py_ssize_t H, Py_ssize_t W, Py_ssize_t cb,
                      Py_ssize_t Ht, Py_ssize_t Wt, Py_ssize_t top, Py_ssize_t left) nogil
    void dwc_unpack_d(double *a, const double *t, Py_ssize_t H, Py_ssize_t W, Py_ssize_t cb,
                      Py_ssize_t Ht, Py_ssize_t Wt, Py_ssize_t top, Py_ssize_t left) nogil
    void dwc_forward_f(float *yt, const float *xt, Py_ssize_t Wp, Py_ssize_t OH, Py_ssize_t OW,
                       const float *wt, Py_ssize_t ldw, const float *b, Py_ssize_t cb,
                       Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t dh, Py_ssize_t dw) nogil
    void dwc_forward_d(double *yt, const double *xt, Py_ssize_t Wp, Py_ssize_t OH, Py_ssize_t OW,
                       const double *wt, Py_ssize_t ldw, const double *b, Py_ssize_t cb,
                       Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t dh, Py_ssize_t dw) nogil
    void dwc_backward_f(float *ga, float *dxt, const float *dt, const float *xt, Py_ssize_t Wp,
                        Py_ssize_t Hp, Py_ssize_t OH, Py_ssize_t OW, const float *wt,
                        Py_ssize_t ldw, Py_ssize_t cb, Py_ssize_t kh, Py_ssize_t kw,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                        int need_dx, int need_dw) nogil
    void dwc_backward_d(double *ga, double *dxt, const double *dt, const double *xt,
                        Py_ssize_t Wp, Py_ssize_t Hp, Py_ssize_t OH, Py_ssize_t OW,
                        const double *wt, Py_ssize_t ldw, Py_ssize_t cb, Py_ssize_t kh,
                        Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                        Py_ssize_t dw, int need_dx, int need_dw) nogil


cdef inline void _pack(floating *t, const floating *a, Py_ssize_t H, Py_ssize_t W,
                       Py_ssize_t cb, Py_ssize_t Ht, Py_ssize_t Wt, Py_ssize_t top,
                       Py_ssize_t left) noexcept nogil:
    """cb planes a (cb, H, W) into the zero-padded channels-last block t (Ht, Wt, cb)."""
    if floating is float:
        dwc_pack_f(t, a, H, W, cb, Ht, Wt, top, left)
    else:
        dwc_pack_d(t, a, H, W, cb, Ht, Wt, top, left)


cdef inline void _unpack(floating *a, const floating *t, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t cb, Py_ssize_t Ht, Py_ssize_t Wt, Py_ssize_t top,
                         Py_ssize_t left) noexcept nogil:
    """The inverse: planes a (cb, H, W) from the interior of t (Ht, Wt, cb), zeros where
    the interior ends before H×W."""
    if floating is float:
        dwc_unpack_f(a, t, H, W, cb, Ht, Wt, top, left)
    else:
        dwc_unpack_d(a, t, H, W, cb, Ht, Wt, top, left)


def conv2d_forward_depthwise_cl(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                                const floating[:, ::1] wt,        # IN  (kh·kw, C) w transposed
                                const floating[::1] b,            # IN  (C,) (zeros when no bias)
                                floating[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                                floating[:, ::1] scratch,         # TMP (threads, (Hp·Wp + OH·OW)·cb)
                                Py_ssize_t cb, Py_ssize_t kh, Py_ssize_t kw,
                                Py_ssize_t sh, Py_ssize_t sw,
                                Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t dh, Py_ssize_t dw,
                                int num_threads):
    """y[n,c,i',j'] = b[c] + Σ_p Σ_q w[c,0,p,q] · x_pad[n, c, i'·sh + p·dh − ph, j'·sw + q·dw − pw]
    by blocks of cb channels of one sample in channels-last order (see above), one thread
    per (n, block)."""
    cdef Py_ssize_t N = y.shape[0], C = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Hp = (OH - 1) * sh + (kh - 1) * dh + 1, Wp = (OW - 1) * sw + (kw - 1) * dw + 1
    cdef Py_ssize_t nblk = (C + cb - 1) // cb, item, n, c0, m, t
    cdef floating *xt
    cdef floating *yt
    with nogil:
        for item in prange(N * nblk, schedule='static', num_threads=num_threads):
            t = threadid()
            n = item // nblk
            c0 = (item % nblk) * cb
            m = cb if c0 + cb <= C else C - c0
            xt = &scratch[t, 0]
            yt = &scratch[t, Hp * Wp * m]
            _pack(xt, &x[n, c0, 0, 0], H, W, m, Hp, Wp, ph, pw)
            if floating is float:
                dwc_forward_f(yt, xt, Wp, OH, OW, &wt[0, c0], C, &b[c0], m, kh, kw, sh, sw, dh, dw)
            else:
                dwc_forward_d(yt, xt, Wp, OH, OW, &wt[0, c0], C, &b[c0], m, kh, kw, sh, sw, dh, dw)
            _unpack(&y[n, c0, 0, 0], yt, OH, OW, m, OH, OW, 0, 0)


def conv2d_backward_depthwise_cl(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W) (any, if not need_dw)
                                 const floating[:, :, :, ::1] dy,   # IN  (N, C, OH, OW) δ
                                 const floating[:, ::1] wt,         # IN  (kh·kw, C) w transposed
                                 floating[:, :, :, ::1] dx,         # OUT (N, C, H, W), if need_dx
                                 floating[:, ::1] gw,               # OUT (kh·kw, C) ∂L/∂w transposed, if need_dw
                                 floating[:, ::1] scratch,          # TMP (threads, (2·Hp·Wp + OH·OW + kh·kw)·cb)
                                 Py_ssize_t cb, Py_ssize_t kh, Py_ssize_t kw,
                                 Py_ssize_t sh, Py_ssize_t sw,
                                 Py_ssize_t ph, Py_ssize_t pw,
                                 Py_ssize_t dh, Py_ssize_t dw,
                                 bint need_dx, bint need_dw, int num_threads):
    """By blocks of cb channels in channels-last order (see above), one thread per block
    over all samples (so each ∂L/∂w[c] is summed by one thread, in a fixed order):

        ∂L/∂w[c,0,p,q] = Σ_n Σ_i' Σ_j' δt[i', j', c] · xt[i'·sh + p·dh, j'·sw + q·dw, c]
        dxt[i'·sh + p·dh, j'·sw + q·dw, c] += w[c,0,p,q] · δt[i', j', c],
            ∂L/∂x[n,c,i,j] = dxt[i + ph, j + pw, c] (0 where no tap read)
    """
    cdef Py_ssize_t N = dy.shape[0], C = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t H = x.shape[2] if need_dw else dx.shape[2]     # (the same when both)
    cdef Py_ssize_t W = x.shape[3] if need_dw else dx.shape[3]
    cdef Py_ssize_t Hp = (OH - 1) * sh + (kh - 1) * dh + 1, Wp = (OW - 1) * sw + (kw - 1) * dw + 1
    cdef Py_ssize_t nblk = (C + cb - 1) // cb, blk, n, c0, m, t, r, l
    cdef floating *xt
    cdef floating *dxt
    cdef floating *dt
    cdef floating *ga
    with nogil:
        for blk in prange(nblk, schedule='static', num_threads=num_threads):
            t = threadid()
            c0 = blk * cb
            m = cb if c0 + cb <= C else C - c0
            xt = &scratch[t, 0]
            dxt = &scratch[t, Hp * Wp * m]
            dt = &scratch[t, 2 * Hp * Wp * m]
            ga = &scratch[t, (2 * Hp * Wp + OH * OW) * m]
            for r in range(kh * kw * m):
                ga[r] = 0
            for n in range(N):
                _pack(dt, &dy[n, c0, 0, 0], OH, OW, m, OH, OW, 0, 0)
                if need_dw:
                    _pack(xt, &x[n, c0, 0, 0], H, W, m, Hp, Wp, ph, pw)
                if floating is float:
                    dwc_backward_f(ga, dxt, dt, xt, Wp, Hp, OH, OW, &wt[0, c0], C, m, kh, kw,
                                   sh, sw, dh, dw, need_dx, need_dw)
                else:
                    dwc_backward_d(ga, dxt, dt, xt, Wp, Hp, OH, OW, &wt[0, c0], C, m, kh, kw,
                                   sh, sw, dh, dw, need_dx, need_dw)
                if need_dx:
                    _unpack(&dx[n, c0, 0, 0], dxt, H, W, m, Hp, Wp, ph, pw)
            if need_dw:
                for r in range(kh * kw):
                    for l in range(m):
                        gw[r, c0 + l] = ga[r * m + l]


# ---- planes of at most 16 pixels: one plane per 16-lane vector ("lanes", float32) ---------
#
# A 4×4 plane is sixteen floats, one AVX-512 vector. Number its pixels k = i·W + j; tap
# t = p·F_w + q of output pixel o = i'·OW + j' reads input pixel
#     idx[t][o] = (i'·S_h + p·D_h − P_h)·W + (j'·S_w + q·D_w − P_w)   (16 where outside)
# so the tap's contribution to the whole output plane is one shuffle of the input plane
# (lane o takes lane idx[t][o]; index 16 takes a zero) and one multiply-add:
#     y[n,c,:]  = b[c] + Σ_t w[c,t] · pick(x[n,c,:], idx[t])
#     ∂L/∂w[c,t] = Σ_n Σ_o δ[n,c,o] · pick(x[n,c,:], idx[t])[o]
#     ∂L/∂x[n,c,:] = Σ_t w[c,t] · pick(δ[n,c,:], inv[t])
# where inv[t][k] = the o with idx[t][o] = k (16 if none: for one tap o ↦ k is one-to-one,
# so the adjoint of a pick is the pick of the inverse indices). No copy, no transpose:
# each plane is one load and each result one store, in the tensors' own NCHW order.
# (GCC's vector extensions; AVX-512 runs a pick as one instruction, AVX2 and older lower
# it to element moves, where the channels-last blocks above are faster: kernels.
# _depthwise_lanes asks for AVX-512.)
cdef extern from *:
    """
    /* The helpers below pass 64-byte vectors by value; they are static inline, so the
       baseline build's different vector ABI (GCC's -Wpsabi note) never meets a caller. */
    #pragma GCC diagnostic ignored "-Wpsabi"
    #define MG_DWL_MAX_TAPS 25
    typedef float mg_v16f __attribute__((vector_size(64)));
    typedef int mg_v16i __attribute__((vector_size(64)));
    #if defined(__GNUC__) && !defined(__clang__)
    #define MG_PICK(v, ix) __builtin_shuffle((v), (mg_v16f){0}, (ix))
    #else
    static inline mg_v16f MG_PICK(mg_v16f v, mg_v16i ix) {
        mg_v16f r;
        for (int o = 0; o < 16; o++) r[o] = ix[o] < 16 ? v[ix[o]] : 0.0f;
        return r;
    }
    #endif
    /* the first n ≤ 16 floats at a, zeros after */
    static inline mg_v16f mg_lanes_load(const float *a, Py_ssize_t n) {
        mg_v16f v = {0};
        if (n == 16) memcpy(&v, a, 64);
        else for (Py_ssize_t k = 0; k < n; k++) v[k] = a[k];
        return v;
    }
    static inline void mg_lanes_store(float *a, mg_v16f v, Py_ssize_t n) {
        if (n == 16) memcpy(a, &v, 64);
        else for (Py_ssize_t k = 0; k < n; k++) a[k] = v[k];
    }
    static inline float mg_lanes_sum(mg_v16f v) {
        float s = 0;
        for (int k = 0; k < 16; k++) s += v[k];
        return s;
    }
    /* y plane r = b[c] + Σ_t w[c·taps + t] · pick(x plane r, idx[t]), c = r mod C, for the
       planes r0 … r1−1 of the (N·C) planes */
    MG_DW_CLONES
    static void dwl_forward(float *y, const float *x, const float *w, const float *b,
                            const int *idx, Py_ssize_t taps, Py_ssize_t r0, Py_ssize_t r1,
                            Py_ssize_t C, Py_ssize_t Pin, Py_ssize_t Pout) {
        for (Py_ssize_t r = r0; r < r1; r++) {
            const float *wc = w + (r % C) * taps;
            mg_v16f xv = mg_lanes_load(x + r * Pin, Pin);
            mg_v16f acc = (mg_v16f){0} + b[r % C];
            for (Py_ssize_t t = 0; t < taps; t++) {
                mg_v16i ix;
                memcpy(&ix, idx + 16 * t, 64);
                acc += wc[t] * MG_PICK(xv, ix);
            }
            mg_lanes_store(y + r * Pout, acc, Pout);
        }
    }
    /* channel c over the N samples: ∂L/∂x planes, ∂L/∂w[c, :] (gw + c·taps), ∂L/∂b[c] */
    MG_DW_CLONES
    static void dwl_backward(float *dx, float *gw, float *gb, const float *x,
                             const float *dy, const float *w, const int *idx,
                             const int *inv, Py_ssize_t taps, Py_ssize_t N, Py_ssize_t C,
                             Py_ssize_t c, Py_ssize_t Pin, Py_ssize_t Pout, int need_dx,
                             int need_dw, int need_db) {
        mg_v16f acc[MG_DWL_MAX_TAPS], accb = {0};
        mg_v16i ix;
        const float *wc = w + c * taps;
        for (Py_ssize_t t = 0; t < taps; t++) acc[t] = (mg_v16f){0};
        for (Py_ssize_t n = 0; n < N; n++) {
            Py_ssize_t r = n * C + c;
            mg_v16f dv = mg_lanes_load(dy + r * Pout, Pout);
            if (need_db) accb += dv;
            if (need_dw) {
                mg_v16f xv = mg_lanes_load(x + r * Pin, Pin);
                for (Py_ssize_t t = 0; t < taps; t++) {
                    memcpy(&ix, idx + 16 * t, 64);
                    acc[t] += dv * MG_PICK(xv, ix);
                }
            }
            if (need_dx) {
                mg_v16f d = {0};
                for (Py_ssize_t t = 0; t < taps; t++) {
                    memcpy(&ix, inv + 16 * t, 64);
                    d += wc[t] * MG_PICK(dv, ix);
                }
                mg_lanes_store(dx + r * Pin, d, Pin);
            }
        }
        if (need_dw)
            for (Py_ssize_t t = 0; t < taps; t++) gw[c * taps + t] = mg_lanes_sum(acc[t]);
        if (need_db) gb[c] = mg_lanes_sum(accb);
    }
    """
    const int MG_DWL_MAX_TAPS
    void dwl_forward(float *y, const float *x, const float *w, const float *b, const int *idx,
                     Py_ssize_t taps, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                     Py_ssize_t Pin, Py_ssize_t Pout) nogil
    void dwl_backward(float *dx, float *gw, float *gb, const float *x, const float *dy,
                      const float *w, const int *idx, const int *inv, Py_ssize_t taps,
                      Py_ssize_t N, Py_ssize_t C, Py_ssize_t c, Py_ssize_t Pin,
                      Py_ssize_t Pout, int need_dx, int need_dw, int need_db) nogil

LANES_MAX_TAPS = MG_DWL_MAX_TAPS


def _lanes_check(which, x_shape, y_shape, w_shape, idx_shape, inv_shape):
    """What the unchecked vector loops assume (they hold a plane in one 16-lane vector)."""
    x_shape, y_shape = tuple(x_shape)[:4], tuple(y_shape)[:4]
    taps = w_shape[1]
    if (x_shape[2] * x_shape[3] > 16 or y_shape[2] * y_shape[3] > 16 or x_shape[:2] != y_shape[:2]
            or w_shape[0] != y_shape[1] or not 0 < taps <= MG_DWL_MAX_TAPS
            or tuple(idx_shape)[:2] != (taps, 16)
            or (inv_shape is not None and tuple(inv_shape)[:2] != (taps, 16))):
        raise ValueError(f"conv2d_{which}_depthwise_lanes(): input planes {x_shape}, output "
                         f"{y_shape}, filters {tuple(w_shape)[:2]} and pick tables "
                         f"{tuple(idx_shape)[:2]} do not fit one 16-lane vector per plane, "
                         f"≤ {MG_DWL_MAX_TAPS} taps")


def conv2d_forward_depthwise_lanes(const float[:, :, :, ::1] x,   # IN  (N, C, H, W), H·W ≤ 16
                                   const float[:, ::1] w,         # IN  (C, taps) the filters
                                   const float[::1] b,            # IN  (C,) (zeros when no bias)
                                   const int[:, ::1] idx,         # IN  (taps, 16) pick indices
                                   float[:, :, :, ::1] y,         # OUT (N, C, OH, OW), OH·OW ≤ 16
                                   int num_threads):
    """y[n,c,:] = b[c] + Σ_t w[c,t] · pick(x[n,c,:], idx[t]) (see above), blocks of planes
    per thread."""
    cdef Py_ssize_t N = y.shape[0], C = y.shape[1], NC = y.shape[0] * y.shape[1]
    cdef Py_ssize_t Pin = x.shape[2] * x.shape[3], Pout = y.shape[2] * y.shape[3]
    cdef Py_ssize_t taps = w.shape[1], nb, per, blk, r0, r1
    cdef int nt = num_threads if NC * Pout * taps >= 65536 else 1
    _lanes_check("forward", x.shape, y.shape, w.shape, idx.shape, None)
    nb = nt * 8 if NC >= nt * 8 else nt
    per = (NC + nb - 1) // nb
    with nogil:
        for blk in prange(nb, schedule='static', num_threads=nt):
            r0 = blk * per
            r1 = min(r0 + per, NC)
            if r0 < r1:
                dwl_forward(&y[0, 0, 0, 0], &x[0, 0, 0, 0], &w[0, 0], &b[0], &idx[0, 0],
                            taps, r0, r1, C, Pin, Pout)


def conv2d_backward_depthwise_lanes(const float[:, :, :, ::1] x,    # IN  (N, C, H, W) (any, if not need_dw)
                                    const float[:, :, :, ::1] dy,   # IN  (N, C, OH, OW) δ
                                    const float[:, ::1] w,          # IN  (C, taps)
                                    const int[:, ::1] idx,          # IN  (taps, 16) pick indices
                                    const int[:, ::1] inv,          # IN  (taps, 16) their inverse
                                    float[:, :, :, ::1] dx,         # OUT (N, C, H, W), if need_dx
                                    float[:, ::1] gw,               # OUT (C, taps), if need_dw
                                    float[::1] gb,                  # OUT (C,), if need_db
                                    bint need_dx, bint need_dw, bint need_db, int num_threads):
    """∂L/∂x, ∂L/∂w and ∂L/∂b by the picks above, one thread per channel over all samples
    (so each ∂L/∂w[c] is summed by one thread, in a fixed order)."""
    cdef Py_ssize_t N = dy.shape[0], C = dy.shape[1], Pout = dy.shape[2] * dy.shape[3]
    cdef Py_ssize_t Pin = dx.shape[2] * dx.shape[3] if need_dx else x.shape[2] * x.shape[3]
    cdef Py_ssize_t taps = w.shape[1], c
    cdef int nt = num_threads if N * C * Pout * taps >= 65536 else 1
    _lanes_check("backward", (x if need_dw else dx if need_dx else dy).shape, dy.shape,
                 w.shape, idx.shape, inv.shape)
    if (need_dw and gw.shape[0] * gw.shape[1] != C * taps) or (need_db and gb.shape[0] != C):
        raise ValueError(f"conv2d_backward_depthwise_lanes(): ∂L/∂w {tuple(gw.shape)[:2]} or "
                         f"∂L/∂b ({gb.shape[0]},) does not hold {C} channels of {taps} taps")
    with nogil:
        for c in prange(C, schedule='static', num_threads=nt):
            dwl_backward(&dx[0, 0, 0, 0], &gw[0, 0], &gb[0], &x[0, 0, 0, 0], &dy[0, 0, 0, 0],
                         &w[0, 0], &idx[0, 0], &inv[0, 0], taps, N, C, c, Pin, Pout,
                         need_dx, need_dw, need_db)
