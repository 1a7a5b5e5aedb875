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
# conv_direct.pyx loops over the same indices; here each (tap, output row) pair is one call
# of a row helper below, whose loop the compiler vectorises (`omp simd`: the rows of y and
# x never overlap, and the dot product keeps a partial sum per lane). At column stride 1
# the rows are contiguous; other strides take the same helpers with a strided operand.
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
    /* y[i] += a · x[i·s], i < n */                                                         \\
    static inline void dw_axpy_##SUF(T *y, const T *x, Py_ssize_t n, Py_ssize_t s, T a) {   \\
        if (s == 1) {                                                                       \\
            _Pragma("omp simd")                                                             \\
            for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i];                            \\
        } else {                                                                            \\
            for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i * s];                        \\
        }                                                                                   \\
    }                                                                                       \\
    /* y[i·s] += a · x[i], i < n */                                                         \\
    static inline void dw_axpy_out_##SUF(T *y, const T *x, Py_ssize_t n, Py_ssize_t s, T a) { \\
        if (s == 1) {                                                                       \\
            _Pragma("omp simd")                                                             \\
            for (Py_ssize_t i = 0; i < n; i++) y[i] += a * x[i];                            \\
        } else {                                                                            \\
            for (Py_ssize_t i = 0; i < n; i++) y[i * s] += a * x[i];                        \\
        }                                                                                   \\
    }                                                                                       \\
    /* Σ d[i] · x[i·s], i < n, in double */                                                 \\
    static inline double dw_dot_##SUF(const T *d, const T *x, Py_ssize_t n, Py_ssize_t s) { \\
        double acc = 0;                                                                     \\
        if (s == 1) {                                                                       \\
            _Pragma("omp simd reduction(+:acc)")                                            \\
            for (Py_ssize_t i = 0; i < n; i++) acc += (double)d[i] * x[i];                  \\
        } else {                                                                            \\
            for (Py_ssize_t i = 0; i < n; i++) acc += (double)d[i] * x[i * s];              \\
        }                                                                                   \\
        return acc;                                                                         \\
    }
    MINIGRAD_DW_ROWS(f, float)
    MINIGRAD_DW_ROWS(d, double)
    """
    void dw_axpy_f(float *y, const float *x, Py_ssize_t n, Py_ssize_t s, float a) nogil
    void dw_axpy_d(double *y, const double *x, Py_ssize_t n, Py_ssize_t s, double a) nogil
    void dw_axpy_out_f(float *y, const float *x, Py_ssize_t n, Py_ssize_t s, float a) nogil
    void dw_axpy_out_d(double *y, const double *x, Py_ssize_t n, Py_ssize_t s, double a) nogil
    double dw_dot_f(const float *d, const float *x, Py_ssize_t n, Py_ssize_t s) nogil
    double dw_dot_d(const double *d, const double *x, Py_ssize_t n, Py_ssize_t s) nogil


cdef inline void _axpy(floating *y, const floating *x, Py_ssize_t n, Py_ssize_t s,
                       floating a) noexcept nogil:
    """y[i] += a · x[i·s] for i < n."""
    if floating is float:
        dw_axpy_f(y, x, n, s, a)
    else:
        dw_axpy_d(y, x, n, s, a)


cdef inline void _axpy_out(floating *y, const floating *x, Py_ssize_t n, Py_ssize_t s,
                           floating a) noexcept nogil:
    """y[i·s] += a · x[i] for i < n."""
    if floating is float:
        dw_axpy_out_f(y, x, n, s, a)
    else:
        dw_axpy_out_d(y, x, n, s, a)


cdef inline double _dot(const floating *d, const floating *x, Py_ssize_t n,
                        Py_ssize_t s) noexcept nogil:
    """Σ d[i] · x[i·s] for i < n."""
    if floating is float:
        return dw_dot_f(d, x, n, s)
    else:
        return dw_dot_d(d, x, n, s)


def conv2d_forward_depthwise(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                             const floating[:, :, :, ::1] w,   # IN  (C, 1, kh, kw)
                             const floating[::1] b,            # IN  (C,) (zeros when no bias)
                             floating[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                             Py_ssize_t sh, Py_ssize_t sw,
                             Py_ssize_t ph, Py_ssize_t pw,
                             Py_ssize_t dh, Py_ssize_t dw,
                             int num_threads):
    """y[n,c,i',j'] = b[c] + Σ_p Σ_q w[c,0,p,q] · x_pad[n, c, i'·sh + p·dh − ph, j'·sw + q·dw − pw]

    One thread per (n, c) plane; each tap adds w[c,0,p,q] times a shifted, strided row of
    x to each output row it reaches."""
    cdef Py_ssize_t N = y.shape[0], C = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t nc, n, c, p, q, oi, oj, i0, i1, j0, j1, off_w
    with nogil:
        for nc in prange(N * C, schedule='static', num_threads=num_threads):
            n = nc // C
            c = nc % C
            for oi in range(OH):
                for oj in range(OW):
                    y[n, c, oi, oj] = b[c]
            for p in range(kh):
                i0 = _first(p * dh - ph, sh)
                i1 = _end(p * dh - ph, sh, H, OH)
                for q in range(kw):
                    off_w = q * dw - pw
                    j0 = _first(off_w, sw)
                    j1 = _end(off_w, sw, W, OW)
                    if j1 <= j0:
                        continue
                    for oi in range(i0, i1):   # y[n,c,oi,j0:j1] += w · x[n,c,ih, j·sw + off_w]
                        _axpy(&y[n, c, oi, j0], &x[n, c, oi * sh + p * dh - ph, j0 * sw + off_w],
                              j1 - j0, sw, w[c, 0, p, q])


def conv2d_weight_grad_depthwise(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                                 const floating[:, :, :, ::1] dy,   # IN  (N, C, OH, OW) δ
                                 floating[:, :, :, ::1] gw,         # OUT (C, 1, kh, kw) ∂L/∂w
                                 Py_ssize_t sh, Py_ssize_t sw,
                                 Py_ssize_t ph, Py_ssize_t pw,
                                 Py_ssize_t dh, Py_ssize_t dw,
                                 int num_threads):
    """∂L/∂w[c,0,p,q] = Σ_n Σ_i' Σ_j' δ[n,c,i',j'] · x_pad[n, c, i'·sh + p·dh − ph, j'·sw + q·dw − pw]

    One thread per channel: each sum runs in one thread, in a fixed order (a partial sum
    per vector lane within a row, rows added in order), in double."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = dy.shape[2], OW = dy.shape[3], kh = gw.shape[2], kw = gw.shape[3]
    cdef Py_ssize_t c, n, p, q, oi, i0, i1, j0, j1, off_w
    cdef double acc
    with nogil:
        for c in prange(C, schedule='static', num_threads=num_threads):
            for p in range(kh):
                i0 = _first(p * dh - ph, sh)
                i1 = _end(p * dh - ph, sh, H, OH)
                for q in range(kw):
                    off_w = q * dw - pw
                    j0 = _first(off_w, sw)
                    j1 = _end(off_w, sw, W, OW)
                    acc = 0
                    if j1 > j0:
                        for n in range(N):
                            for oi in range(i0, i1):
                                acc = acc + _dot(&dy[n, c, oi, j0],
                                                 &x[n, c, oi * sh + p * dh - ph, j0 * sw + off_w],
                                                 j1 - j0, sw)
                    gw[c, 0, p, q] = <floating>acc


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


# ---- stride 1: whole padded planes ------------------------------------------------------
#
# Rows of 4–32 pixels make the row helpers above short loops with a call each (a 16×16
# plane with a 3×3 filter: 144 of them). At stride 1 a tap shifts the whole plane: copy the
# plane once into a zero-padded scratch plane xp of Hp×Wp (Hp = OH + (F_h−1)·D_h,
# Wp = OW + (F_w−1)·D_w), keep the output plane with the same row length Wp, and
#     yp[f] += w[c,0,p,q] · xp[f + p·D_h·Wp + q·D_w]      for every f < (OH−1)·Wp + OW
# is the tap's contribution to every output pixel (f = i'·Wp + j') in one long loop; the
# columns j' ≥ OW of yp are scratch, never copied out. For ∂L/∂w and ∂L/∂x, δ is copied
# to a plane with row length Wp and zeros in those columns, so they add nothing.

cdef void _pad_plane(const floating[:, :, :, ::1] a, Py_ssize_t n, Py_ssize_t c,
                     floating *out, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t top,
                     Py_ssize_t left) noexcept nogil:
    """out (Hp, Wp) = a[n, c] placed at (top, left) (top, left ≥ 0), zeros elsewhere,
    clipped to out."""
    cdef Py_ssize_t H = a.shape[2], W = a.shape[3], r
    cdef Py_ssize_t rows = min(H, Hp - top), cols = min(W, Wp - left)
    memset(out, 0, Hp * Wp * sizeof(floating))
    if cols > 0:
        for r in range(rows):
            memcpy(out + (r + top) * Wp + left, &a[n, c, r, 0], cols * sizeof(floating))


def conv2d_forward_depthwise_s1(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                                const floating[:, :, :, ::1] w,   # IN  (C, 1, kh, kw)
                                const floating[::1] b,            # IN  (C,) (zeros when no bias)
                                floating[:, :, :, ::1] y,         # OUT (N, C, OH, OW)
                                floating[:, ::1] scratch,         # TMP (threads, (Hp + OH)·Wp)
                                Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t dh, Py_ssize_t dw,
                                int num_threads):
    """y[n,c,i',j'] = b[c] + Σ_p Σ_q w[c,0,p,q] · x_pad[n, c, i' + p·dh − ph, j' + q·dw − pw],
    one padded plane at a time (see above). One thread per (n, c) plane."""
    cdef Py_ssize_t N = y.shape[0], C = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t Hp = OH + (kh - 1) * dh, Wp = OW + (kw - 1) * dw
    cdef Py_ssize_t Lf = (OH - 1) * Wp + OW
    cdef Py_ssize_t nc, n, c, p, q, f, oi, oj, t
    cdef floating *xp
    cdef floating *yp
    with nogil:
        for nc in prange(N * C, schedule='static', num_threads=num_threads):
            t = threadid()
            n = nc // C
            c = nc % C
            xp = &scratch[t, 0]
            yp = &scratch[t, Hp * Wp]
            _pad_plane(x, n, c, xp, Hp, Wp, ph, pw)
            for f in range(Lf):
                yp[f] = b[c]
            for p in range(kh):
                for q in range(kw):                    # yp[f] += w · xp[f + p·dh·Wp + q·dw]
                    _axpy(yp, xp + p * dh * Wp + q * dw, Lf, 1, w[c, 0, p, q])
            for oi in range(OH):
                memcpy(&y[n, c, oi, 0], yp + oi * Wp, OW * sizeof(floating))


def conv2d_backward_depthwise_s1(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W) (any, if not need_dw)
                                 const floating[:, :, :, ::1] dy,   # IN  (N, C, OH, OW) δ
                                 const floating[:, :, :, ::1] w,    # IN  (C, 1, kh, kw)
                                 floating[:, :, :, ::1] dx,         # OUT (N, C, H, W), if need_dx
                                 floating[:, :, :, ::1] gw,         # OUT (C, 1, kh, kw), if need_dw
                                 floating[:, ::1] scratch,          # TMP (threads, (Hp + OH)·Wp)
                                 Py_ssize_t ph, Py_ssize_t pw,
                                 Py_ssize_t dh, Py_ssize_t dw,
                                 bint need_dx, bint need_dw, int num_threads):
    """One thread per channel c, over the samples n (so ∂L/∂w[c] is summed by one thread,
    in a fixed order); per (n, c), with δp = δ[n, c] on rows of length Wp (zeros beyond OW):

        ∂L/∂w[c,0,p,q] += Σ_f δp[f] · xp[f + p·dh·Wp + q·dw]        (xp: x[n, c] padded)
        dxp[f + p·dh·Wp + q·dw] += w[c,0,p,q] · δp[f]                (then ∂L/∂x = dxp's interior)
    """
    cdef Py_ssize_t N = dy.shape[0], C = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t H = dx.shape[2], W = dx.shape[3], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t Hp = OH + (kh - 1) * dh, Wp = OW + (kw - 1) * dw
    cdef Py_ssize_t Lf = (OH - 1) * Wp + OW
    cdef Py_ssize_t c, n, p, q, f, oi, oj, r, s, t, off
    cdef floating *pp
    cdef floating *dp
    cdef double acc
    with nogil:
        for c in prange(C, schedule='static', num_threads=num_threads):
            t = threadid()
            pp = &scratch[t, 0]                        # xp (∂L/∂w), then dxp (∂L/∂x)
            dp = &scratch[t, Hp * Wp]                  # δp
            if need_dw:
                for p in range(kh):
                    for q in range(kw):
                        gw[c, 0, p, q] = 0
            for n in range(N):
                memset(dp, 0, OH * Wp * sizeof(floating))
                for oi in range(OH):
                    memcpy(dp + oi * Wp, &dy[n, c, oi, 0], OW * sizeof(floating))
                if need_dw:
                    _pad_plane(x, n, c, pp, Hp, Wp, ph, pw)
                    for p in range(kh):
                        for q in range(kw):
                            acc = _dot(dp, pp + p * dh * Wp + q * dw, Lf, 1)
                            gw[c, 0, p, q] += <floating>acc
                if need_dx:
                    memset(pp, 0, Hp * Wp * sizeof(floating))
                    for p in range(kh):
                        for q in range(kw):            # dxp[f + p·dh·Wp + q·dw] += w · δp[f]
                            _axpy(pp + p * dh * Wp + q * dw, dp, Lf, 1, w[c, 0, p, q])
                    for r in range(H):                 # x[r, s] sits at dxp[r + ph, s + pw]
                        if r + ph < Hp:
                            for s in range(min(W, Wp - pw)):
                                dx[n, c, r, s] = pp[(r + ph) * Wp + s + pw]
                            for s in range(max(Wp - pw, 0), W):
                                dx[n, c, r, s] = 0       # (columns no tap read)
                        else:
                            for s in range(W):
                                dx[n, c, r, s] = 0       # (rows no tap read)
