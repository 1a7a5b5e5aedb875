# Convolution kernels: forward, weight gradient and input gradient of conv2d, in two
# families that compute the same numbers:
#
#   direct  loops straight from the formulas (for tiny channel counts, e.g. LeNet's
#           first layer with one input channel, and depthwise convolutions);
#   gemm    im2col / col2im, the data movement around NumPy's BLAS GEMM, which the
#           Python side (minigrad/ops/conv.py) calls between these kernels.
#
# Notation (DESIGN.md): x (N, C, H, W) input, w (K, C/G, kh, kw) weight, δ = ∂L/∂y
# (N, K, OH, OW), stride S = (sh, sw), padding P = (ph, pw) on the top/left, dilation
# D = (dh, dw), groups G. The bottom/right padding is implicit: the caller passes the
# output size OH×OW, and any tap that lands outside the input reads a zero. So
# asymmetric ('same') padding and rows the forward drops need no special case.
#
#   forward     y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, c, i'·sh + p·dh, j'·sw + q·dw] · w[k,c,p,q]
#
# A tap (p, q) of output (i', j') reads input row ih = i'·sh + p·dh − ph. Every loop
# below runs only over the (i', p) pairs whose ih lies in [0, H): the zero padding is
# never stored and never multiplied.
#
#   blas    the same im2col / col2im, fused with the GEMM inside one OpenMP loop: each
#           thread takes whole samples (or row blocks of one sample), gathers a small
#           im2col block into its own scratch and multiplies it with a single-threaded
#           GEMM of NumPy's OpenBLAS, called through a function pointer the Python side
#           found (minigrad/_blas.py). One layer of parallelism, one barrier per call.
#
# Contract: the Python side validates every shape and integer, passes C-contiguous
# arrays of one dtype, and allocates the outputs; bounds checks are off by default
# (see setup.py). No global state: all scratch memory is passed in.
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
cimport cython

ctypedef fused floating:
    float
    double

# ---- index helpers ---------------------------------------------------------------
# For a tap at offset `off` (= p·d − pad) and stride s, output position o reads input
# position o·s + off. The outputs whose read lands inside [0, size) are
# [_first(off, s), _end(off, s, size, O)).

cdef inline Py_ssize_t _first(Py_ssize_t off, Py_ssize_t s) noexcept nogil:
    """Smallest o ≥ 0 with o·s + off ≥ 0."""
    if off >= 0:
        return 0
    return (-off + s - 1) // s


cdef inline Py_ssize_t _end(Py_ssize_t off, Py_ssize_t s, Py_ssize_t size,
                            Py_ssize_t O) noexcept nogil:
    """One past the largest o < O with o·s + off < size (at least _first(off, s))."""
    cdef Py_ssize_t e, lo = _first(off, s)
    if size - off <= 0:
        return lo
    e = (size - off + s - 1) // s
    if e > O:
        e = O
    if e < lo:
        e = lo
    return e


# ---- direct loops ----------------------------------------------------------------

def conv2d_forward_direct(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                          const floating[:, :, :, ::1] w,   # IN  (K, C/G, kh, kw)
                          const floating[::1] b,            # IN  (K,) (zeros when no bias)
                          floating[:, :, :, ::1] y,         # OUT (N, K, OH, OW)
                          Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t ph, Py_ssize_t pw,
                          Py_ssize_t dh, Py_ssize_t dw,
                          Py_ssize_t groups, int num_threads):
    """y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x[n, g·Cg+c, i'·sh + p·dh − ph, j'·sw + q·dw − pw] · w[k,c,p,q]

    (g = k // Kg the group of output channel k). One thread per (n, k) output plane;
    each tap adds w[k,c,p,q] times a shifted, strided window of x to the plane.
    """
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t nk, n, k, ci, c, p, q, oi, oj, i0, i1, j0, j1, ih, off_w
    cdef floating wv, bk
    with nogil:
        for nk in prange(N * K, schedule='static', num_threads=num_threads):
            n = nk // K
            k = nk % K
            bk = b[k]
            for oi in range(OH):
                for oj in range(OW):
                    y[n, k, oi, oj] = bk
            for c in range(Cg):
                ci = (k // Kg) * Cg + c
                for p in range(kh):
                    i0 = _first(p * dh - ph, sh)
                    i1 = _end(p * dh - ph, sh, H, OH)
                    for q in range(kw):
                        off_w = q * dw - pw
                        j0 = _first(off_w, sw)
                        j1 = _end(off_w, sw, W, OW)
                        wv = w[k, c, p, q]
                        for oi in range(i0, i1):
                            ih = oi * sh + p * dh - ph
                            for oj in range(j0, j1):
                                y[n, k, oi, oj] += wv * x[n, ci, ih, oj * sw + off_w]


def conv2d_weight_grad_direct(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
                              const floating[:, :, :, ::1] dy,   # IN  (N, K, OH, OW) δ
                              floating[:, :, :, ::1] gw,         # OUT (K, C/G, kh, kw) ∂L/∂w
                              Py_ssize_t sh, Py_ssize_t sw,
                              Py_ssize_t ph, Py_ssize_t pw,
                              Py_ssize_t dh, Py_ssize_t dw,
                              Py_ssize_t groups, int num_threads):
    """∂L/∂w[k,c,p,q] = Σ_n Σ_i' Σ_j' δ[n,k,i',j'] · x_pad[n, g·Cg+c, i'·sh + p·dh, j'·sw + q·dw]

    (the input correlated with δ). One thread per (k, c) kernel slice: no two threads
    write the same element, and each sum runs in one thread in a fixed order.
    """
    cdef Py_ssize_t N = x.shape[0], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t K = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t Cg = gw.shape[1], kh = gw.shape[2], kw = gw.shape[3]
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t kc, k, c, ci, n, p, q, oi, oj, i0, i1, j0, j1, ih, off_w
    cdef floating acc
    with nogil:
        for kc in prange(K * Cg, schedule='static', num_threads=num_threads):
            k = kc // Cg
            c = kc % Cg
            ci = (k // Kg) * Cg + c
            for p in range(kh):
                i0 = _first(p * dh - ph, sh)
                i1 = _end(p * dh - ph, sh, H, OH)
                for q in range(kw):
                    off_w = q * dw - pw
                    j0 = _first(off_w, sw)
                    j1 = _end(off_w, sw, W, OW)
                    acc = 0
                    for n in range(N):
                        for oi in range(i0, i1):
                            ih = oi * sh + p * dh - ph
                            for oj in range(j0, j1):
                                acc = acc + dy[n, k, oi, oj] * x[n, ci, ih, oj * sw + off_w]
                    gw[k, c, p, q] = acc


def conv2d_input_grad_direct(const floating[:, :, :, ::1] dy,   # IN  (N, K, OH, OW) δ
                             const floating[:, :, :, ::1] w,    # IN  (K, C/G, kh, kw)
                             floating[:, :, :, ::1] dx,         # OUT (N, C, H, W) ∂L/∂x
                             Py_ssize_t sh, Py_ssize_t sw,
                             Py_ssize_t ph, Py_ssize_t pw,
                             Py_ssize_t dh, Py_ssize_t dw,
                             Py_ssize_t groups, int num_threads):
    """∂L/∂x = (δ dilated by S, padded by D·(K−1)−P) ⋆ (w flipped 180°, channels swapped),
    computed phase by phase so that the zeros of the dilation are never multiplied.

    Seed 004 ("当步长不为1时"): put S−1 zeros between the entries of δ, pad it, and
    correlate it with the flipped kernel. Look at which taps of the flipped kernel
    land on a real δ entry: input row ih (ih + ph in padded coordinates) meets tap p
    only when ih + ph ≡ p·dh (mod sh). So the padded rows fall into sh phases
    rh = (ih + ph) mod sh; phase rh sees exactly the taps p with p·dh ≡ rh (mod sh),
    and on the rows ih + ph = rh + sh·m of that phase the dilated correlation is a
    stride-1 correlation of the undilated δ with that sub-sampled flipped kernel:

        ∂L/∂x[n, c, rh − ph + sh·m, rw − pw + sw·l]
            = Σ_k Σ_{p: p·dh ≡ rh} Σ_{q: q·dw ≡ rw} δ[n, k, m − e_p, l − e_q] · w[k, c, p, q],
        e_p = (p·dh − rh) / sh,  e_q = (q·dw − rw) / sw    (δ outside its bounds is 0)

    i.e. the tap (p, q) adds w[k,c,p,q]·δ[n,k] to the input positions
    i'·sh + p·dh − ph, j'·sw + q·dw − pw. Rows the forward dropped (bottom/right)
    are reached by no tap and keep 0; the output has x's shape by construction.
    One thread per (n, c) input plane; no two threads write the same element.
    """
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t K = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t nc, n, ci, c, g, k, p, q, oi, oj, i0, i1, j0, j1, ih, off_w
    cdef floating wv
    with nogil:
        for nc in prange(N * C, schedule='static', num_threads=num_threads):
            n = nc // C
            ci = nc % C
            g = ci // Cg
            c = ci % Cg
            for ih in range(H):
                for oj in range(W):
                    dx[n, ci, ih, oj] = 0
            # Each tap (p, q) belongs to exactly one phase (rh, rw) = (p·dh mod sh, q·dw mod sw)
            # and writes only that phase's rows/columns of dx, so looping over the taps
            # visits every phase (and only the ones that hold taps: a stride larger than
            # the kernel costs nothing extra) with the same sums, in the same order.
            for k in range(g * Kg, (g + 1) * Kg):
                for p in range(kh):
                    i0 = _first(p * dh - ph, sh)
                    i1 = _end(p * dh - ph, sh, H, OH)
                    for q in range(kw):
                        off_w = q * dw - pw
                        j0 = _first(off_w, sw)
                        j1 = _end(off_w, sw, W, OW)
                        wv = w[k, c, p, q]
                        # stride-1 in (i', j') over δ; the phase's rows/columns of dx
                        for oi in range(i0, i1):
                            ih = oi * sh + p * dh - ph
                            for oj in range(j0, j1):
                                dx[n, ci, ih, oj * sw + off_w] += wv * dy[n, k, oi, oj]


# ---- im2col / col2im around the GEMM -------------------------------------------------

def im2col(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W)
           floating[:, ::1] cols,             # OUT (C·kh·kw, nb·OH·OW)
           Py_ssize_t n0, Py_ssize_t nb,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t ph, Py_ssize_t pw,
           Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """cols[(c,p,q), (n,i',j')] = x_pad[n0+n, c, i'·sh + p·dh, j'·sw + q·dw]

    for the batch chunk n0 ≤ n0+n < n0+nb. Then y = w (K, C·kh·kw) @ cols per group,
    and ∂L/∂w = δ (K, nb·OH·OW) @ colsᵀ. Row r = (c·kh + p)·kw + q, so the rows of
    group g are the contiguous block [g·Cg·kh·kw, (g+1)·Cg·kh·kw). One thread per row.
    """
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t L = OH * OW, rows = C * kh * kw
    cdef Py_ssize_t r, c, p, q, n, oi, oj, i0, i1, j0, j1, ih, off_w, base
    with nogil:
        for r in prange(rows, schedule='static', num_threads=num_threads):
            c = r // (kh * kw)
            p = (r // kw) % kh
            q = r % kw
            i0 = _first(p * dh - ph, sh)
            i1 = _end(p * dh - ph, sh, H, OH)
            off_w = q * dw - pw
            j0 = _first(off_w, sw)
            j1 = _end(off_w, sw, W, OW)
            if j0 > OW:                 # the tap reads only padding in every column
                j0 = j1 = OW
            for n in range(nb):
                for oi in range(OH):
                    base = n * L + oi * OW
                    if oi < i0 or oi >= i1:
                        for oj in range(OW):
                            cols[r, base + oj] = 0
                        continue
                    ih = oi * sh + p * dh - ph
                    for oj in range(j0):
                        cols[r, base + oj] = 0
                    for oj in range(j0, j1):
                        cols[r, base + oj] = x[n0 + n, c, ih, oj * sw + off_w]
                    for oj in range(j1, OW):
                        cols[r, base + oj] = 0


def col2im(const floating[:, ::1] cols,       # IN  (C·kh·kw, nb·OH·OW)
           floating[:, :, :, ::1] dx,         # OUT (N, C, H, W), planes n0..n0+nb−1 written
           Py_ssize_t n0, Py_ssize_t nb,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t OH, Py_ssize_t OW,
           Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t ph, Py_ssize_t pw,
           Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """dx[n0+n, c, i'·sh + p·dh − ph, j'·sw + q·dw − pw] = Σ over (p, q, i', j') landing there
    of cols[(c,p,q), (n,i',j')]  — the adjoint of im2col.

    With cols = wᵀ @ δ, each entry is Σ_k w[k,c,p,q]·δ[n,k,i',j']: one real δ entry
    times one tap, which col2im adds where the dilated, padded δ correlated with the
    flipped kernel puts it. The structural zeros are never formed. One thread per
    (n, c) plane (zeroed here first); taps that land in the padding are skipped.
    """
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t L = OH * OW
    cdef Py_ssize_t nc, n, c, p, q, r, oi, oj, i0, i1, j0, j1, ih, off_w, base
    with nogil:
        for nc in prange(nb * C, schedule='static', num_threads=num_threads):
            n = nc // C
            c = nc % C
            for ih in range(H):
                for oj in range(W):
                    dx[n0 + n, c, ih, oj] = 0
            for p in range(kh):
                i0 = _first(p * dh - ph, sh)
                i1 = _end(p * dh - ph, sh, H, OH)
                for q in range(kw):
                    r = (c * kh + p) * kw + q
                    off_w = q * dw - pw
                    j0 = _first(off_w, sw)
                    j1 = _end(off_w, sw, W, OW)
                    for oi in range(i0, i1):
                        ih = oi * sh + p * dh - ph
                        base = n * L + oi * OW
                        for oj in range(j0, j1):
                            dx[n0 + n, c, ih, oj * sw + off_w] += cols[r, base + oj]


def knl_to_nkl(const floating[:, :, ::1] src,   # IN  (K, nb, L)   the GEMM's layout
               const floating[::1] b,           # IN  (K,) bias, or (0,) for none
               floating[:, :, ::1] dst,         # OUT (nb, K, L)   NCHW
               int num_threads):
    """dst[n, k, :] = src[k, n, :] + b[k]: the GEMM output back to NCHW, bias fused in."""
    cdef Py_ssize_t K = src.shape[0], nb = src.shape[1], L = src.shape[2]
    cdef Py_ssize_t nk, n, k, l
    cdef bint has_bias = b.shape[0] > 0
    cdef floating bk
    with nogil:
        for nk in prange(nb * K, schedule='static', num_threads=num_threads):
            n = nk // K
            k = nk % K
            bk = b[k] if has_bias else 0
            for l in range(L):
                dst[n, k, l] = src[k, n, l] + bk


def nkl_to_knl(const floating[:, :, ::1] src,   # IN  (nb, K, L)   NCHW (a chunk of δ)
               floating[:, :, ::1] dst,         # OUT (K, nb, L)   the GEMM's layout
               int num_threads):
    """dst[k, n, :] = src[n, k, :]."""
    cdef Py_ssize_t nb = src.shape[0], K = src.shape[1], L = src.shape[2]
    cdef Py_ssize_t nk, n, k, l
    with nogil:
        for nk in prange(nb * K, schedule='static', num_threads=num_threads):
            n = nk // K
            k = nk % K
            for l in range(L):
                dst[k, n, l] = src[n, k, l]



# ---- im2col + GEMM fused per thread (the 'blas' path) -----------------------------------
#
# The GEMM (CBLAS, row-major, called by address and single-threaded from inside the
# OpenMP loops) comes from _gemm.pxi, shared with ext/winograd.pyx.
include "_gemm.pxi"


cdef void _im2col_shifted(const floating[:, :, :, ::1] x, Py_ssize_t n,
                          floating[:, ::1] scratch, Py_ssize_t t, Py_ssize_t ld,
                          Py_ssize_t col0, Py_ssize_t xo, Py_ssize_t xq,
                          Py_ssize_t oi0, Py_ssize_t oi1, Py_ssize_t OW,
                          Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """_im2col_block's result in two steps, with one copy per tap instead of one per row.

    The block reads the input rows lo ≤ ih < hi. Step 1 stores each of them kw times,
    shifted for tap column q, in the plane of its row phase (ih − lo) mod sh:
        xq[c, q, φ, u, j'] = x_pad[n, c, lo + u·sh + φ, j'·sw + q·dw]      (at scratch[t, xo:])
    Step 2: tap (c, p, q) of output row i' reads input row ih = i'·sh + o (o = p·dh − ph),
    that is phase φ = (o − lo) mod sh and u = i' + ⌊(o − lo) / sh⌋, so its consecutive
    rows i' are consecutive rows u of one plane: a single copy,
        scratch[t, r·ld + col0 + (i'−oi0)·OW + j'] = xq[c, q, φ, i' + ⌊(o − lo)/sh⌋, j'].
    Step 1 gathers C·kw·(hi − lo) rows instead of C·kh·kw·(oi1 − oi0): about kh/sh times
    fewer (LeNet's second layer: 420 rows of 10 instead of 1500). Each plane holds
    xq // (C·kw·sh·OW) rows, which the caller sized for the largest block."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t U = xq // (C * kw * sh * OW)          # rows per plane
    cdef Py_ssize_t c, p, q, r, ih, oj, j0, j1, off_w, off, i0, i1, base, lo, hi, phase, u0
    cdef Py_ssize_t plane, a
    cdef floating* dst
    cdef floating* end
    cdef const floating* src
    cdef const floating* end_src
    lo = oi0 * sh - ph
    if lo < 0:
        lo = 0
    hi = (oi1 - 1) * sh + (kh - 1) * dh - ph + 1
    if hi > H:
        hi = H
    for c in range(C):
        for q in range(kw):
            off_w = q * dw - pw
            j0 = _first(off_w, sw)
            j1 = _end(off_w, sw, W, OW)
            if j0 > OW:
                j0 = j1 = OW
            for phase in range(sh):
                plane = ((c * kw + q) * sh + phase) * U
                for a in range((hi - lo - phase + sh - 1) // sh):
                    ih = lo + phase + a * sh
                    u0 = plane + a
                    dst = &scratch[t, xo + u0 * OW]
                    end = &scratch[t, xo + u0 * OW + OW - 1]
                    for oj in range(j0):
                        dst[oj] = 0
                    if j1 > j0:
                        src = &x[n, c, ih, j0 * sw + off_w]
                        end_src = &x[n, c, ih, (j1 - 1) * sw + off_w]
                        if sw == 1:
                            for oj in range(j1 - j0):
                                dst[j0 + oj] = src[oj]
                        elif sw == 2:
                            for oj in range(j1 - j0):
                                dst[j0 + oj] = src[2 * oj]
                        else:
                            for oj in range(j1 - j0):
                                dst[j0 + oj] = src[oj * sw]
                    for oj in range(j1, OW):
                        dst[oj] = 0
    for p in range(kh):                 # the rows of tap (c, p, q) depend on p only
        off = p * dh - ph
        i0 = _first(off, sh)
        if i0 < oi0:
            i0 = oi0
        i1 = _end(off, sh, H, oi1)
        if i0 > oi1:
            i0 = oi1
        if i1 > oi1:                    # _end is at least _first, which may pass oi1
            i1 = oi1
        if i1 < i0:
            i1 = i0
        phase = (off - lo) % sh if off >= lo else (sh - (lo - off) % sh) % sh
        u0 = i0 + (off - lo - phase) // sh              # exact division
        for c in range(C):
            for q in range(kw):
                base = ((c * kh + p) * kw + q) * ld + col0
                plane = ((c * kw + q) * sh + phase) * U
                if i0 > oi0:
                    memset(&scratch[t, base], 0, (i0 - oi0) * OW * sizeof(floating))
                if i1 > i0:
                    memcpy(&scratch[t, base + (i0 - oi0) * OW],
                           &scratch[t, xo + (plane + u0) * OW],
                           (i1 - i0) * OW * sizeof(floating))
                    end = &scratch[t, base + (i1 - oi0) * OW - 1]
                    end = &scratch[t, xo + (plane + u0 + i1 - i0) * OW - 1]
                if i1 < oi1:
                    memset(&scratch[t, base + (i1 - oi0) * OW], 0,
                           (oi1 - i1) * OW * sizeof(floating))


cdef void _im2col_block(const floating[:, :, :, ::1] x, Py_ssize_t n,
                        floating[:, ::1] scratch, Py_ssize_t t, Py_ssize_t ld, Py_ssize_t col0,
                        Py_ssize_t oi0, Py_ssize_t oi1, Py_ssize_t OW,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t xo, Py_ssize_t xq) noexcept nogil:
    """scratch[t, r·ld + col0 + (i'−oi0)·OW + j'] = x_pad[n, c, i'·sh + p·dh, j'·sw + q·dw]

    for r = (c·kh + p)·kw + q and the output rows oi0 ≤ i' < oi1: sample n's part of an
    im2col block (C·kh·kw, ld) whose columns start at col0; zeros where a tap reads the
    padding. xq > 0: scratch[t, xo:xo + xq] has room for _im2col_shifted's shifted
    rows, which then does the work."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t r, c, p, q, oi, oj, i0, i1, j0, j1, ih, off_w, base, a, e
    cdef floating* dst
    cdef floating* end
    cdef const floating* src
    cdef const floating* end_src
    if xq > 0:
        _im2col_shifted(x, n, scratch, t, ld, col0, xo, xq, oi0, oi1, OW,
                        kh, kw, sh, sw, ph, pw, dh, dw)
        return
    for r in range(C * kh * kw):
        c = r // (kh * kw)
        p = (r // kw) % kh
        q = r % kw
        i0 = _first(p * dh - ph, sh)
        i1 = _end(p * dh - ph, sh, H, oi1)
        off_w = q * dw - pw
        j0 = _first(off_w, sw)
        j1 = _end(off_w, sw, W, OW)
        if j0 > OW:                     # the tap reads only padding in every column
            j0 = j1 = OW
        if sh == 1 and sw == 1 and W == OW and OW <= 32 and j1 > j0:
            # Stride 1 with output rows as wide as input rows ('same' padding): the tap's
            # rows are consecutive in x and in the block with the same stride, so one
            # memcpy covers them all; then the padding columns, which that copy filled
            # with the neighbouring rows' values, are zeroed. Only for narrow rows (e.g.
            # 14 wide), which otherwise cost up to three library calls each; on 56-wide
            # rows (res-56-s1) it measured no faster (within ±1%), so they keep the
            # row-by-row copy below.
            a = i0 if i0 > oi0 else oi0     # the rows oi0 ≤ a ≤ oi' < e ≤ oi1 read x
            if a > oi1:
                a = oi1
            e = i1 if i1 < oi1 else oi1
            if e < a:
                e = a
            base = r * ld + col0
            if a > oi0:
                memset(&scratch[t, base], 0, (a - oi0) * OW * sizeof(floating))
            if e > a:
                memcpy(&scratch[t, base + (a - oi0) * OW + j0],
                       &x[n, c, a + p * dh - ph, j0 + off_w],
                       ((e - a - 1) * OW + j1 - j0) * sizeof(floating))
                for oi in range(a, e):
                    base = r * ld + col0 + (oi - oi0) * OW
                    for oj in range(j0):
                        scratch[t, base + oj] = 0
                    for oj in range(j1, OW):
                        scratch[t, base + oj] = 0
            if oi1 > e:
                memset(&scratch[t, r * ld + col0 + (e - oi0) * OW], 0,
                       (oi1 - e) * OW * sizeof(floating))
            continue
        for oi in range(oi0, oi1):
            base = r * ld + col0 + (oi - oi0) * OW
            # Raw pointers into the row (the first and last element are indexed through
            # the memoryviews, so a bounds-checked build checks the whole range).
            dst = &scratch[t, base]
            end = &scratch[t, base + OW - 1]
            if oi < i0 or oi >= i1 or j1 <= j0:
                memset(dst, 0, OW * sizeof(floating))
                continue
            ih = oi * sh + p * dh - ph
            src = &x[n, c, ih, j0 * sw + off_w]
            end_src = &x[n, c, ih, (j1 - 1) * sw + off_w]
            for oj in range(j0):
                dst[oj] = 0
            dst = dst + j0
            if sw == 1:
                if j1 - j0 >= 32:
                    memcpy(dst, src, (j1 - j0) * sizeof(floating))
                else:                       # short rows: a library call costs more
                    for oj in range(j1 - j0):
                        dst[oj] = src[oj]
            elif sw == 2:                   # constant stride: the compiler vectorizes it
                for oj in range(j1 - j0):
                    dst[oj] = src[2 * oj]
            else:
                for oj in range(j1 - j0):
                    dst[oj] = src[oj * sw]
            dst = dst - j0
            for oj in range(j1, OW):
                dst[oj] = 0


cdef void _col2im_block(const floating[:, ::1] scratch, Py_ssize_t t, Py_ssize_t ld,
                        Py_ssize_t col0, floating[:, :, :, ::1] dx, Py_ssize_t n,
                        Py_ssize_t oi0, Py_ssize_t oi1, Py_ssize_t OW,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """dx[n, c, i'·sh + p·dh − ph, j'·sw + q·dw − pw] += scratch[t, r·ld + col0 + (i'−oi0)·OW + j']

    the adjoint of _im2col_block: each product of one real δ entry with one tap goes
    where the dilated, padded δ correlated with the flipped kernel puts it; taps landing
    in the padding are skipped."""
    cdef Py_ssize_t C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t r, c, p, q, oi, oj, i0, i1, j0, j1, ih, off_w, base
    for r in range(C * kh * kw):
        c = r // (kh * kw)
        p = (r // kw) % kh
        q = r % kw
        i0 = _first(p * dh - ph, sh)
        if i0 < oi0:
            i0 = oi0
        i1 = _end(p * dh - ph, sh, H, oi1)
        off_w = q * dw - pw
        j0 = _first(off_w, sw)
        j1 = _end(off_w, sw, W, OW)
        for oi in range(i0, i1):
            ih = oi * sh + p * dh - ph
            base = r * ld + col0 + (oi - oi0) * OW
            if sw == 1:
                for oj in range(j0, j1):
                    dx[n, c, ih, oj + off_w] += scratch[t, base + oj]
            else:
                for oj in range(j0, j1):
                    dx[n, c, ih, oj * sw + off_w] += scratch[t, base + oj]


# A block of work is either `nb` > 1 whole samples (small images) or one sample's output
# rows [oi0, oi1) (`nb` = 1, large images); its im2col matrix has Lc = nb·(oi1−oi0)·OW
# columns ordered (n, i', j'), and each thread's scratch row holds it.

def conv2d_forward_blas(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                        const floating[:, :, :, ::1] w,   # IN  (K, C/G, kh, kw)
                        const floating[::1] b,            # IN  (K,) bias, or (0,) for none
                        floating[:, :, :, ::1] y,         # OUT (N, K, OH, OW)
                        floating[:, ::1] scratch,         # TMP (threads, (C·kh·kw + K)·Lc + xq)
                        Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t ph, Py_ssize_t pw,
                        Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t groups, Py_ssize_t nb, Py_ssize_t rows, Py_ssize_t xq,
                        size_t gemm, bint ilp64, int num_threads):
    """y[block] = b + w_g (Kg, Cg·kh·kw) @ im2col(x)[block]_g (Cg·kh·kw, Lc), per group g

    One parallel loop over the blocks; each thread gathers its block's im2col matrix into
    its scratch row (cache-sized) and multiplies. A one-sample block's GEMM writes straight
    into y's NCHW rows (ldc = OH·OW) on top of the bias (β = 1): no copy, no transpose; a
    several-sample block's GEMM result (K, nb·OH·OW) is copied to y with the bias added.
    """
    cdef Py_ssize_t N = y.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3], C = x.shape[1]
    cdef Py_ssize_t Kg = K // groups, CgKK = Cg * kh * kw, L = OH * OW, R = C * kh * kw
    cdef Py_ssize_t nblk = (OH + rows - 1) // rows
    cdef Py_ssize_t nitems = ((N + nb - 1) // nb) * nblk
    cdef Py_ssize_t item, n0, n1, j, oi0, oi1, Lc, g, k, oi, oj, t
    cdef bint has_bias = b.shape[0] > 0
    cdef floating beta = 1 if has_bias else 0
    cdef floating bk
    cdef Py_ssize_t xo = scratch.shape[1] - xq
    with nogil:
        for item in prange(nitems, schedule='static', num_threads=num_threads):
            t = threadid()
            n0 = (item // nblk) * nb
            n1 = n0 + nb
            if n1 > N:
                n1 = N
            oi0 = (item % nblk) * rows
            oi1 = oi0 + rows
            if oi1 > OH:
                oi1 = OH
            Lc = (n1 - n0) * (oi1 - oi0) * OW
            for j in range(n1 - n0):
                _im2col_block(x, n0 + j, scratch, t, Lc, j * L, oi0, oi1, OW,
                              kh, kw, sh, sw, ph, pw, dh, dw, xo, xq)
            if n1 - n0 == 1:
                if has_bias:
                    for k in range(K):
                        for oi in range(oi0, oi1):
                            for oj in range(OW):
                                y[n0, k, oi, oj] = b[k]
                for g in range(groups):
                    # (Kg, Cg·kh·kw) @ (Cg·kh·kw, Lc) -> (Kg, Lc), rows oi0..oi1 of y[n0]
                    _gemm(gemm, ilp64, NO_TRANS, NO_TRANS, Kg, Lc, CgKK,
                          &w[g * Kg, 0, 0, 0], CgKK, &scratch[t, g * CgKK * Lc], Lc,
                          beta, &y[n0, g * Kg, oi0, 0], L)
            else:
                for g in range(groups):
                    # (Kg, Cg·kh·kw) @ (Cg·kh·kw, nb·L) -> (Kg, nb·L) after the im2col block
                    _gemm(gemm, ilp64, NO_TRANS, NO_TRANS, Kg, Lc, CgKK,
                          &w[g * Kg, 0, 0, 0], CgKK, &scratch[t, g * CgKK * Lc], Lc,
                          0, &scratch[t, (R + g * Kg) * Lc], Lc)
                for j in range(n1 - n0):                # (K, nb, OH·OW) + b -> (nb, K, OH, OW)
                    for k in range(K):
                        bk = b[k] if has_bias else 0
                        for oi in range(OH):
                            for oj in range(OW):
                                y[n0 + j, k, oi, oj] = scratch[t, (R + k) * Lc + j * L + oi * OW + oj] + bk


def conv2d_backward_blas(const floating[:, :, :, ::1] x,    # IN  (N, C, H, W) (any, if not need_dw)
                         const floating[:, :, :, ::1] dy,   # IN  (N, K, OH, OW) δ
                         const floating[:, :, :, ::1] w,    # IN  (K, C/G, kh, kw)
                         floating[:, :, :, ::1] dx,         # OUT (N, C, H, W) ∂L/∂x, if need_dx
                         floating[:, ::1] acc,              # OUT (threads, K·C/G·kh·kw + K), zeroed:
                                                            #     per-thread partial ∂L/∂w as (G, Cg·kh·kw, Kg),
                                                            #     then ∂L/∂b
                         floating[:, ::1] scratch,          # TMP (threads, (C·kh·kw + K)·Lc + xq)
                         Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t dh, Py_ssize_t dw,
                         Py_ssize_t groups, Py_ssize_t nb, Py_ssize_t rows, Py_ssize_t xq,
                         bint need_dx, bint need_dw, bint need_db,
                         size_t gemm, bint ilp64, int num_threads):
    """Per block (see conv2d_forward_blas) and group g, with δ_blk the block's δ as a
    (K, Lc) matrix:

        ∂L/∂w_gᵀ += im2col(x)_blk,g (Cg·kh·kw, Lc) @ δ_blk,gᵀ (Lc, Kg)
        ∂L/∂x   += col2im(w_gᵀ (Cg·kh·kw, Kg) @ δ_blk,g (Kg, Lc))
        ∂L/∂b   += Σ over the block's pixels of δ

    The sample blocks are split statically over the threads; each thread accumulates its
    ∂L/∂w and ∂L/∂b in its own row of acc (the caller adds the rows in a fixed order, so
    the result does not depend on timing) and owns the ∂L/∂x planes of its samples.
    ∂L/∂w is accumulated transposed: OpenBLAS runs cols·δᵀ ~1.35× faster than δ·colsᵀ
    here (205 vs 148 GFLOP/s single-threaded, 64×576×3136); the caller transposes it back.
    wᵀ·δ holds each real δ entry times each tap; col2im adds it where the dilated δ would
    meet that tap, so the dilation's zeros are never formed or multiplied. A one-sample
    block reads δ in place (ld = OH·OW); a several-sample block first copies its δ to
    (K, nb·OH·OW) after the im2col block in scratch.
    """
    cdef Py_ssize_t N = dy.shape[0], K = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t Kg = K // groups, CgKK = Cg * kh * kw, L = OH * OW
    cdef Py_ssize_t R = groups * CgKK
    cdef Py_ssize_t nblk = (OH + rows - 1) // rows
    cdef Py_ssize_t nsb = (N + nb - 1) // nb
    cdef Py_ssize_t sb, n0, n1, j, blk, oi0, oi1, Lc, g, k, oi, oj, t, c, ih, iw, ldd
    cdef const floating* d
    cdef double s
    cdef Py_ssize_t xo = scratch.shape[1] - xq
    with nogil:
        for sb in prange(nsb, schedule='static', num_threads=num_threads):
            t = threadid()
            n0 = sb * nb
            n1 = n0 + nb
            if n1 > N:
                n1 = N
            for j in range(n0, n1):
                if need_db:
                    for k in range(K):
                        s = 0
                        for oi in range(OH):
                            for oj in range(OW):
                                s = s + dy[j, k, oi, oj]
                        acc[t, K * CgKK + k] += <floating>s
                if need_dx:
                    for c in range(dx.shape[1]):
                        for ih in range(dx.shape[2]):
                            for iw in range(dx.shape[3]):
                                dx[j, c, ih, iw] = 0
            if not (need_dw or need_dx):
                continue
            for blk in range(nblk):
                oi0 = blk * rows
                oi1 = oi0 + rows
                if oi1 > OH:
                    oi1 = OH
                Lc = (n1 - n0) * (oi1 - oi0) * OW
                if n1 - n0 == 1:
                    d = &dy[n0, 0, oi0, 0]
                    ldd = L
                else:                                   # (nb, K, OH·OW) -> (K, nb·OH·OW)
                    for j in range(n1 - n0):
                        for k in range(K):
                            for oi in range(OH):
                                for oj in range(OW):
                                    scratch[t, (R + k) * Lc + j * L + oi * OW + oj] = dy[n0 + j, k, oi, oj]
                    d = &scratch[t, R * Lc]
                    ldd = Lc
                if need_dw:
                    for j in range(n1 - n0):
                        _im2col_block(x, n0 + j, scratch, t, Lc, j * L, oi0, oi1, OW,
                                      kh, kw, sh, sw, ph, pw, dh, dw, xo, xq)
                    for g in range(groups):
                        # (Cg·kh·kw, Lc) @ (Lc, Kg) -> (Cg·kh·kw, Kg), accumulated
                        _gemm(gemm, ilp64, NO_TRANS, TRANS, CgKK, Kg, Lc,
                              &scratch[t, g * CgKK * Lc], Lc, d + g * Kg * ldd, ldd,
                              1, &acc[t, g * CgKK * Kg], Kg)
                if need_dx:
                    for g in range(groups):
                        # (Cg·kh·kw, Kg) @ (Kg, Lc) -> (Cg·kh·kw, Lc)
                        _gemm(gemm, ilp64, TRANS, NO_TRANS, CgKK, Lc, Kg,
                              &w[g * Kg, 0, 0, 0], CgKK, d + g * Kg * ldd, ldd,
                              0, &scratch[t, g * CgKK * Lc], Lc)
                    for j in range(n1 - n0):
                        _col2im_block(scratch, t, Lc, j * L, dx, n0 + j, oi0, oi1, OW,
                                      kh, kw, sh, sw, ph, pw, dh, dw)


# ---- direct loops vectorised over 16 output channels or pixels (small layers) ------------

cdef extern from "direct16.h" nogil:
    int mg_simd_level()
    int MG_K16_RUN
    void mg_conv_k16(const float* xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                     const float* wt, Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw,
                     const float* bias, float* y, Py_ssize_t OH, Py_ssize_t OW,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw)
    void mg_conv_w16_8(const float* xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                       const float* wt, Py_ssize_t K, Py_ssize_t Kp, Py_ssize_t kh, Py_ssize_t kw,
                       const float* bias, float* y, Py_ssize_t OH, Py_ssize_t OW,
                       Py_ssize_t sh, Py_ssize_t dh, Py_ssize_t dw)
    void mg_conv_w16_16(const float* xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                        const float* wt, Py_ssize_t K, Py_ssize_t Kp, Py_ssize_t kh, Py_ssize_t kw,
                        const float* bias, float* y, Py_ssize_t OH, Py_ssize_t OW,
                        Py_ssize_t sh, Py_ssize_t dh, Py_ssize_t dw)


def simd_level():
    """2: AVX-512, 1: AVX2 + FMA, 0: neither (or a build without the dispatch), for
    conv2d_forward_direct16's vector code."""
    return mg_simd_level()


def k16_run():
    """Output pixels per run of mg_conv_k16 (the caller pads rows to a multiple)."""
    return MG_K16_RUN


cdef void _pad_sample(const float[:, :, :, ::1] x, Py_ssize_t n, float[:, ::1] scratch,
                      Py_ssize_t t, Py_ssize_t Hp, Py_ssize_t Wp,
                      Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """scratch[t] as (C, Hp, Wp) = sample n zero-padded: ph rows above, pw columns left,
    zeros below and right up to Hp×Wp (the direct loops then need no bounds)."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], c, i
    cdef float* end = &scratch[t, C * Hp * Wp - 1]
    memset(&scratch[t, 0], 0, C * Hp * Wp * sizeof(float))
    for c in range(C):
        for i in range(H):
            end = &scratch[t, (c * Hp + ph + i) * Wp + pw + W - 1]
            memcpy(&scratch[t, (c * Hp + ph + i) * Wp + pw], &x[n, c, i, 0], W * sizeof(float))


def conv2d_forward_direct16(const float[:, :, :, ::1] x,   # IN  (N, C, H, W)
                            const float[:, ::1] wt,         # IN  (C·kh·kw, Kp) w as (c, p, q, k)
                            const float[::1] b,             # IN  (K,) bias, or (0,) for none
                            float[:, :, :, ::1] y,          # OUT (N, K, OH, OW)
                            float[:, ::1] scratch,          # TMP (threads, C·Hp·Wp)
                            Py_ssize_t kh, Py_ssize_t kw,
                            Py_ssize_t sh, Py_ssize_t sw,
                            Py_ssize_t ph, Py_ssize_t pw,
                            Py_ssize_t dh, Py_ssize_t dw,
                            Py_ssize_t Hp, Py_ssize_t Wp, int kb, int num_threads):
    """y[n] = b + x_pad[n] ⋆ w by direct16.h's loops, one sample per thread at a time: the
    sample is first copied into the thread's zero-padded (C, Hp, Wp) scratch, with Hp, Wp
    covering the padding and the last run's overhang (so the loops need no bounds).
    kb = 0: mg_conv_k16, vectorised over 16 output channels (K % 16 == 0, Kp = K);
    kb = 8 or 16: mg_conv_w16_<kb>, over runs of 16 output pixels (sw = 1), kb output
    channels at a time (Kp: K rounded up to a multiple of kb, wt zero there)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t K = y.shape[1], OH = y.shape[2], OW = y.shape[3], Kp = wt.shape[1]
    cdef Py_ssize_t n, t
    cdef const float* bias = &b[0] if b.shape[0] > 0 else NULL
    with nogil:
        for n in prange(N, schedule='static', num_threads=num_threads):
            t = threadid()
            _pad_sample(x, n, scratch, t, Hp, Wp, ph, pw)
            if kb == 0:
                mg_conv_k16(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, kh, kw, bias,
                            &y[n, 0, 0, 0], OH, OW, sh, sw, dh, dw)
            elif kb == 8:
                mg_conv_w16_8(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, Kp, kh, kw, bias,
                              &y[n, 0, 0, 0], OH, OW, sh, dh, dw)
            else:
                mg_conv_w16_16(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, Kp, kh, kw, bias,
                               &y[n, 0, 0, 0], OH, OW, sh, dh, dw)
