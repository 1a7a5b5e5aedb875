# Direct convolution loops: conv2d's forward, ∂L/∂w and ∂L/∂x written straight from the
# formulas of DESIGN.md (seeds 001, 004), for every stride, padding, dilation and group count.
# The lecture path: `with minigrad.kernels.use("direct"):` runs any convolution on these
# loops; by default only depthwise-like layers take them (minigrad/kernels.py).
#
# Notation (DESIGN.md): x (N, C, H, W) input, w (K, C/G, F_h, F_w) weight (kh, kw in the
# code), δ = ∂L/∂y (N, K, OH, OW), stride S = (sh, sw), padding P = (ph, pw) on the
# top/left (the bottom/right is implicit in OH×OW), dilation D = (dh, dw), groups G
# (Cg = C/G input and Kg = K/G output channels per group); K is only ever the number of
# output channels.
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py) validates every shape and
# integer, passes C-contiguous arrays of one dtype and allocates the outputs; bounds
# checks are off by default (see setup.py). No global state.
from cython.parallel cimport prange
cimport cython

ctypedef fused floating:
    float
    double

include "_index.pxi"


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


cdef inline bint _phase_leader(Py_ssize_t p0, Py_ssize_t d, Py_ssize_t s) noexcept nogil:
    """True when tap p0 is the first tap of its phase (p0·d mod s): no p < p0 has
    p·d ≡ p0·d (mod s). So each phase is visited once, and only the phases that hold
    a tap (at most F_h of them, however large the stride)."""
    cdef Py_ssize_t p
    for p in range(p0):
        if (p * d) % s == (p0 * d) % s:
            return False
    return True


def conv2d_input_grad_direct(const floating[:, :, :, ::1] dy,   # IN  (N, K, OH, OW) δ
                             const floating[:, :, :, ::1] w,    # IN  (K, C/G, kh, kw)
                             floating[:, :, :, ::1] dx,         # OUT (N, C, H, W) ∂L/∂x
                             Py_ssize_t sh, Py_ssize_t sw,
                             Py_ssize_t ph, Py_ssize_t pw,
                             Py_ssize_t dh, Py_ssize_t dw,
                             Py_ssize_t groups, int num_threads):
    """∂L/∂x = (δ dilated by S, padded by D·(F−1) − P) ⋆ (w flipped 180°, channels swapped),
    computed phase by phase so that the zeros of the dilation are never multiplied.

    Seed 004 ("当步长不为1时"), four steps: 1. flip each kernel 180° and swap its channel
    axes; 2. dilate δ (S−1 zeros between neighbouring entries); 3. pad it by D·(F−1) − P
    (plus, bottom/right, the rows the forward dropped); 4. correlate it with the flipped
    kernel. Written out, the flipped tap F−1−p at input row i lands on dilated-δ row
    i + P − p·D, a real entry only when S divides it; so

        ∂L/∂x[n,c,i,j] = Σ_k Σ_p Σ_q w[k,c,p,q] · δ[n, k, (i + P_h − p·D_h)/S_h, (j + P_w − q·D_w)/S_w]
                         over the taps with S_h | i + P_h − p·D_h and S_w | j + P_w − q·D_w
                         (δ outside its bounds is 0).

    The phases: input row i meets tap p only when i + P_h ≡ p·D_h (mod S_h). So the rows
    fall into S_h phases r_h = (i + P_h) mod S_h; phase r_h sees exactly the taps p with
    p·D_h ≡ r_h (mod S_h), and on its rows i = r_h − P_h + S_h·m the dilated correlation
    is a stride-1 correlation of the undilated δ with that sub-sampled kernel:

        ∂L/∂x[n, c, r_h − P_h + S_h·m, r_w − P_w + S_w·l]
            = Σ_k Σ_{p: p·D_h ≡ r_h} Σ_{q: q·D_w ≡ r_w} δ[n, k, m − e_p, l − e_q] · w[k,c,p,q],
        e_p = (p·D_h − r_h) / S_h,  e_q = (q·D_w − r_w) / S_w.

    The loops below do exactly this: for each phase (r_h, r_w) that holds a tap, for each
    of its taps (p, q), δ (stride 1 over i', j') times w[k,c,p,q] is added to the phase's
    rows i = i'·S_h + p·D_h − P_h (stride S_h) and columns alike. No zero of the dilation
    is formed or multiplied: stride 2 costs what stride 1 costs per δ entry. Rows the
    forward dropped (bottom/right) are reached by no tap and keep 0; the output has x's
    shape by construction. tests/test_conv.py's input_grad_literal and
    examples/conv_backward_by_hand.py run the four steps literally and agree.
    One thread per (n, c) input plane; no two threads write the same element.
    """
    cdef Py_ssize_t N = dx.shape[0], C = dx.shape[1], H = dx.shape[2], W = dx.shape[3]
    cdef Py_ssize_t K = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3]
    cdef Py_ssize_t Kg = K // groups
    cdef Py_ssize_t nc, n, ci, c, g, k, p, q, p0, q0, rh, rw, oi, oj, i0, i1, j0, j1, ih, iw, off_w
    cdef floating wv
    with nogil:
        for nc in prange(N * C, schedule='static', num_threads=num_threads):
            n = nc // C
            ci = nc % C
            g = ci // Cg
            c = ci % Cg
            for ih in range(H):
                for iw in range(W):
                    dx[n, ci, ih, iw] = 0
            for p0 in range(kh):
                if not _phase_leader(p0, dh, sh):
                    continue
                rh = (p0 * dh) % sh                 # row phase: rows i with (i + P_h) mod S_h = rh
                for q0 in range(kw):
                    if not _phase_leader(q0, dw, sw):
                        continue
                    rw = (q0 * dw) % sw             # column phase
                    # phase (rh, rw): a stride-1 correlation of δ with the taps of the phase
                    for k in range(g * Kg, (g + 1) * Kg):
                        for p in range(p0, kh):
                            if (p * dh) % sh != rh:
                                continue
                            i0 = _first(p * dh - ph, sh)      # δ rows whose input row is real
                            i1 = _end(p * dh - ph, sh, H, OH)
                            for q in range(q0, kw):
                                if (q * dw) % sw != rw:
                                    continue
                                off_w = q * dw - pw
                                j0 = _first(off_w, sw)
                                j1 = _end(off_w, sw, W, OW)
                                wv = w[k, c, p, q]
                                for oi in range(i0, i1):
                                    ih = oi * sh + p * dh - ph          # a row of phase rh
                                    for oj in range(j0, j1):
                                        dx[n, ci, ih, oj * sw + off_w] += wv * dy[n, k, oi, oj]
