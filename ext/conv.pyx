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
# Contract: the Python side validates every shape and integer, passes C-contiguous
# arrays of one dtype, and allocates the outputs; bounds checks are off by default
# (see setup.py). No global state: all scratch memory is passed in.
from cython.parallel cimport prange
cimport cython

ctypedef fused floating:
    float
    double

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MINIGRAD_HAVE_OPENMP 1
    #else
    #define MINIGRAD_HAVE_OPENMP 0
    #endif
    """
    const int MINIGRAD_HAVE_OPENMP


def openmp_enabled():
    """True when this extension was compiled with OpenMP."""
    return MINIGRAD_HAVE_OPENMP == 1


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
    cdef Py_ssize_t nc, n, ci, c, g, k, rh, rw, p, q, oi, oj, i0, i1, j0, j1, ih, off_w
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
            for rh in range(sh):                       # row phase
                for rw in range(sw):                   # column phase
                    for k in range(g * Kg, (g + 1) * Kg):
                        for p in range(kh):
                            if (p * dh) % sh != rh:    # tap p never meets a real δ row in this phase
                                continue
                            i0 = _first(p * dh - ph, sh)
                            i1 = _end(p * dh - ph, sh, H, OH)
                            for q in range(kw):
                                if (q * dw) % sw != rw:
                                    continue
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
