# im2col / col2im convolution kernels: conv2d's forward and gradients as matrix products.
#
#   gemm  im2col, col2im and the layout changes around NumPy's np.matmul, which the Python
#         side (minigrad/ops/conv_dispatch.py) calls between these kernels;
#   blas  the same im2col / col2im fused with the GEMM inside one OpenMP loop: each thread
#         gathers a small im2col block into its own scratch and multiplies it with a
#         single-threaded GEMM of NumPy's OpenBLAS (_gemm.pxi, minigrad/_blas.py). One layer
#         of parallelism, one barrier per call.
#
# Notation (DESIGN.md): x (N, C, H, W) input, w (K, C/G, F_h, F_w) weight (kh, kw in the
# code), δ = ∂L/∂y (N, K, OH, OW), stride (sh, sw), top/left padding (ph, pw), dilation
# (dh, dw), groups G; K is only ever the number of output channels. The im2col matrix has
# one row r = (c·kh + p)·kw + q per tap and one column per output pixel.
#
# Contract: the Python side validates every shape and integer, passes C-contiguous arrays
# of one dtype, and allocates the outputs and all scratch memory; bounds checks are off by
# default (see setup.py). No global state.
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
cimport cython

ctypedef fused floating:
    float
    double

include "_index.pxi"
include "_gemm.pxi"


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
                         floating[:, ::1] acc,              # OUT (threads, K·C/G·kh·kw + K):
                                                            #     per-thread partial ∂L/∂w as (G, Cg·kh·kw, Kg)
                                                            #     (dw_rows: as (G, Kg, Cg·kh·kw)),
                                                            #     then ∂L/∂b
                         floating[:, ::1] scratch,          # TMP (threads, (C·kh·kw + K)·Lc + xq)
                         unsigned char[::1] started,        # TMP (threads,) zeros
                         Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t dh, Py_ssize_t dw,
                         Py_ssize_t groups, Py_ssize_t nb, Py_ssize_t rows, Py_ssize_t xq,
                         bint need_dx, bint need_dw, bint need_db, bint dw_rows,
                         size_t gemm, bint ilp64, int num_threads):
    """Per block (see conv2d_forward_blas) and group g, with δ_blk the block's δ as a
    (K, Lc) matrix:

        ∂L/∂w_gᵀ += im2col(x)_blk,g (Cg·kh·kw, Lc) @ δ_blk,gᵀ (Lc, Kg)
        ∂L/∂x   += col2im(w_gᵀ (Cg·kh·kw, Kg) @ δ_blk,g (Kg, Lc))
        ∂L/∂b   += Σ over the block's pixels of δ

    The sample blocks are split statically over the threads; each thread accumulates its
    ∂L/∂w and ∂L/∂b in its own row of acc (the caller adds the rows in a fixed order, so
    the result does not depend on timing) and owns the ∂L/∂x planes of its samples. A
    thread's first block writes its row (β = 0; no zeroing pass over acc: 9 MiB for
    ResNet-18's 256 → 512 layer), the later ones add to it; a thread that got no block
    zeroes its row.
    ∂L/∂w is accumulated transposed: OpenBLAS runs cols·δᵀ faster than δ·colsᵀ here
    (benchmarks/RESULTS.md); the caller transposes it back. With dw_rows (many output
    channels: the transpose of a large weight costs more than the slower product) the
    rows of ∂L/∂w itself, (G, Kg, Cg·kh·kw), are accumulated instead.
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
    cdef bint first                                     # the thread's first block: write acc
    cdef floating beta
    with nogil:
        for sb in prange(nsb, schedule='static', num_threads=num_threads):
            t = threadid()
            first = _first_block(started, t)
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
                        if first and j == n0:
                            acc[t, K * CgKK + k] = <floating>s
                        else:
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
                    beta = 0 if first and blk == 0 else 1
                    for g in range(groups):
                        if dw_rows:
                            # (Kg, Lc) @ (Lc, Cg·kh·kw) -> (Kg, Cg·kh·kw), accumulated
                            _gemm(gemm, ilp64, NO_TRANS, TRANS, Kg, CgKK, Lc,
                                  d + g * Kg * ldd, ldd, &scratch[t, g * CgKK * Lc], Lc,
                                  beta, &acc[t, g * Kg * CgKK], CgKK)
                        else:
                            # (Cg·kh·kw, Lc) @ (Lc, Kg) -> (Cg·kh·kw, Kg), accumulated
                            _gemm(gemm, ilp64, NO_TRANS, TRANS, CgKK, Kg, Lc,
                                  &scratch[t, g * CgKK * Lc], Lc, d + g * Kg * ldd, ldd,
                                  beta, &acc[t, g * CgKK * Kg], Kg)
                if need_dx:
                    for g in range(groups):
                        # (Cg·kh·kw, Kg) @ (Kg, Lc) -> (Cg·kh·kw, Lc)
                        _gemm(gemm, ilp64, TRANS, NO_TRANS, CgKK, Lc, Kg,
                              &w[g * Kg, 0, 0, 0], CgKK, d + g * Kg * ldd, ldd,
                              0, &scratch[t, g * CgKK * Lc], Lc)
                    for j in range(n1 - n0):
                        _col2im_block(scratch, t, Lc, j * L, dx, n0 + j, oi0, oi1, OW,
                                      kh, kw, sh, sw, ph, pw, dh, dw)
        _zero_unstarted_rows(acc, started)              # threads without a block



def sum_transpose(const floating[:, ::1] acc,     # IN  (threads, G·B·A + extra) partials
                  floating[:, :, ::1] out,        # OUT (G, A, B)
                  int num_threads):
    """out[g, a, b] = Σ_t acc[t, (g·B + b)·A + a]: the per-thread partial ∂L/∂wᵀ of the
    'blas' backward, (G, Cg·kh·kw, Kg) each, summed in thread order and transposed back
    to (G, Kg, Cg·kh·kw) in one pass over 32×32 tiles (each tile's rows of acc stay in
    cache; NumPy's transposed copy strides through memory: 7.6 ms instead of about 1 for
    ResNet-18's 512×512×3×3 weight, benchmarks/RESULTS.md blas_blocks)."""
    cdef Py_ssize_t T = acc.shape[0], G = out.shape[0], A = out.shape[1], B = out.shape[2]
    cdef Py_ssize_t nbt = (B + 31) // 32, tile, g, b0, b1, a0, a1, a, b, t, base
    cdef floating s
    with nogil:
        for tile in prange(G * nbt, schedule='static', num_threads=num_threads):
            g = tile // nbt
            b0 = (tile % nbt) * 32
            b1 = b0 + 32
            if b1 > B:
                b1 = B
            for a0 in range(0, A, 32):
                a1 = a0 + 32
                if a1 > A:
                    a1 = A
                for a in range(a0, a1):
                    for b in range(b0, b1):
                        base = (g * B + b) * A + a
                        s = acc[0, base]
                        for t in range(1, T):
                            s = s + acc[t, base]
                        out[g, a, b] = s
