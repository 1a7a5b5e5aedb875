# The direct convolution of small float32 layers vectorised over 16 output channels ('k16')
# or over runs of 16 output pixels of a row ('w16'): the Cython entry point around the C
# loops of ext/direct16.h (which states the formulas and the vector schemes): the forward,
# and (w16) ∂L/∂w and ∂L/∂b at stride 1; minigrad/kernels.py decides which layers take them.
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py) validates every shape and
# integer, passes C-contiguous float32 arrays, and allocates the outputs and the scratch
# memory; bounds checks are off by default (see setup.py).
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
cimport cython


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
    float mg_sum(const float* v, Py_ssize_t n)
    int MG_K32_PIX
    void mg_wgrad_k32(const float* xp, Py_ssize_t ldx, Py_ssize_t S, const Py_ssize_t* pix,
                      Py_ssize_t P, const Py_ssize_t* tap, Py_ssize_t Tr, const float* dp,
                      Py_ssize_t K, float* acc)
    void mg_conv_k32(const float* xp, Py_ssize_t ldx, Py_ssize_t S, const Py_ssize_t* pix,
                     Py_ssize_t P, const Py_ssize_t* tap, Py_ssize_t T, Py_ssize_t CT,
                     const float* wp, Py_ssize_t K, const float* bias, float* part,
                     float* y, Py_ssize_t ldy)
    void mg_wgrad_w16_4(const float* xs, const Py_ssize_t* off, Py_ssize_t T,
                        const float* ds, Py_ssize_t ldd, Py_ssize_t K, Py_ssize_t L, float* dw)
    void mg_wgrad_w16_8(const float* xs, const Py_ssize_t* off, Py_ssize_t T,
                        const float* ds, Py_ssize_t ldd, Py_ssize_t K, Py_ssize_t L, float* dw)
    void mg_conv_flat_4(const float* xs, const Py_ssize_t* off, Py_ssize_t T, const float* wt,
                        Py_ssize_t Kp, Py_ssize_t K, const float* bias, Py_ssize_t L,
                        float* ys, Py_ssize_t ldy)
    void mg_conv_flat_8(const float* xs, const Py_ssize_t* off, Py_ssize_t T, const float* wt,
                        Py_ssize_t Kp, Py_ssize_t K, const float* bias, Py_ssize_t L,
                        float* ys, Py_ssize_t ldy)


def simd_level():
    """2: AVX-512, 1: AVX2 + FMA, 0: neither (or a build without the dispatch), for
    conv2d_forward_direct16's vector code."""
    return mg_simd_level()


def k16_run():
    """Output pixels per run of mg_conv_k16 (the caller pads rows to a multiple)."""
    return MG_K16_RUN


cdef void _pad_sample(const float[:, :, :, ::1] x, Py_ssize_t n, float[:, ::1] scratch,
                      Py_ssize_t t, Py_ssize_t at, Py_ssize_t Hp, Py_ssize_t Wp,
                      Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """scratch[t, at : at + C·Hp·Wp] as (C, Hp, Wp) = sample n zero-padded: ph rows above,
    pw columns left, zeros below and right up to Hp×Wp (the direct loops then need no
    bounds)."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], c, i
    cdef float* end = &scratch[t, at + C * Hp * Wp - 1]
    memset(&scratch[t, at], 0, C * Hp * Wp * sizeof(float))
    for c in range(C):
        for i in range(H):
            end = &scratch[t, at + (c * Hp + ph + i) * Wp + pw + W - 1]
            memcpy(&scratch[t, at + (c * Hp + ph + i) * Wp + pw], &x[n, c, i, 0],
                   W * sizeof(float))


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
            _pad_sample(x, n, scratch, t, 0, Hp, Wp, ph, pw)
            if kb == 0:
                mg_conv_k16(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, kh, kw, bias,
                            &y[n, 0, 0, 0], OH, OW, sh, sw, dh, dw)
            elif kb == 8:
                mg_conv_w16_8(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, Kp, kh, kw, bias,
                              &y[n, 0, 0, 0], OH, OW, sh, dh, dw)
            else:
                mg_conv_w16_16(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, Kp, kh, kw, bias,
                               &y[n, 0, 0, 0], OH, OW, sh, dh, dw)


def k32_pixels():
    """Output pixels per tile of mg_conv_k32 (the caller pads its pixel table to a multiple)."""
    return MG_K32_PIX


cdef int _k32_check(str fn, Py_ssize_t N, Py_ssize_t C, Py_ssize_t K, const Py_ssize_t[::1] pix,
                    Py_ssize_t P, const Py_ssize_t[::1] tap, Py_ssize_t T, Py_ssize_t Hp,
                    Py_ssize_t Wp, Py_ssize_t S, float[:, ::1] scratch,
                    int num_threads) except -1:
    """The shapes and offsets the k32 loops trust (bounds checks are off): K a positive
    multiple of 32, tables of ≥ P pixels and T taps (both multiples of MG_K32_PIX where the
    loops take them 8 at a time: the caller passes the table's own length), every window
    read inside a padded sample (max pix + max tap < C·Hp·Wp), a group of ≥ 1 sample and
    scratch for S padded samples per thread. A ValueError names fn and the shapes."""
    cdef Py_ssize_t j, pmax = 0, tmax = 0, ldx = C * Hp * Wp
    if K < 32 or K % 32:
        raise ValueError(f"{fn}(): the output channels must be a positive multiple of 32, got {K}")
    if pix.shape[0] < P or tap.shape[0] < T or Hp < 1 or Wp < 1 or S < 1 or num_threads < 1:
        raise ValueError(f"{fn}(): pixel table {pix.shape[0]} (≥ {P}?), tap table {tap.shape[0]} "
                         f"(≥ {T}?), plane {Hp}×{Wp}, group S={S}, threads {num_threads} "
                         f"(each ≥ 1?)")
    for j in range(pix.shape[0]):
        if pix[j] < 0:
            raise ValueError(f"{fn}(): pixel offset {pix[j]} < 0")
        pmax = max(pmax, pix[j])
    for j in range(tap.shape[0]):
        if tap[j] < 0:
            raise ValueError(f"{fn}(): tap offset {tap[j]} < 0")
        tmax = max(tmax, tap[j])
    if pmax + tmax >= ldx:
        raise ValueError(f"{fn}(): windows reach offset {pmax + tmax}, past a padded sample of "
                         f"{C}×{Hp}×{Wp} = {ldx}")
    if scratch.shape[0] < num_threads or scratch.shape[1] < min(S, N) * ldx:
        raise ValueError(f"{fn}(): scratch {(scratch.shape[0], scratch.shape[1])} < ({num_threads}, "
                         f"{min(S, N) * ldx}) for {min(S, N)} samples of {C}×{Hp}×{Wp}")
    return 0


cdef void _blocks_of_32(const float* src, Py_ssize_t L, Py_ssize_t B, float* dst,
                        Py_ssize_t ldb) noexcept nogil:
    """dst[kb·ldb + t·32 + i] = src[(32·kb + i)·L + t] for kb < B, t < L, i < 32: the rows of
    src (B·32 of them, L long) in blocks of 32, each block one stream, column after column.
    16 columns at a time: each of a block's 32 rows then gives a whole cache line, and the
    32 lines stay in L1 together (one column at a time across all L, rows 2 or 4 KB apart
    would fight over a few L1 sets)."""
    cdef Py_ssize_t kb, t0, t, i
    for kb in range(B):
        for t0 in range(0, L, 16):
            for i in range(32):
                for t in range(t0, min(t0 + 16, L)):
                    dst[kb * ldb + t * 32 + i] = src[(kb * 32 + i) * L + t]


def pack_k32(const float[:, ::1] w,                      # IN  (K, T) the weights by rows
             float[:, :, ::1] wp,                        # OUT (K/32, T, 32)
             int num_threads):
    """wp[kb, t, i] = w[32·kb + i, t]: each block of 32 output channels' weights as one
    stream, tap after tap (mg_conv_k32's order); blocks in parallel."""
    cdef Py_ssize_t B = wp.shape[0], T = wp.shape[1], kb
    if w.shape[0] != 32 * B or w.shape[1] != T or wp.shape[2] != 32 or B < 1 or T < 1:
        raise ValueError(f"pack_k32(): w {(w.shape[0], w.shape[1])} does not fill wp "
                         f"{(wp.shape[0], wp.shape[1], wp.shape[2])} (K/32, T, 32)")
    cdef const float* end = &w[B * 32 - 1, T - 1]
    with nogil:
        for kb in prange(B, schedule='static', num_threads=num_threads):
            _blocks_of_32(&w[kb * 32, 0], T, 1, &wp[kb, 0, 0], T * 32)


cdef void _pad_group(const float[:, :, :, ::1] x, Py_ssize_t n0, Py_ssize_t Sg,
                     float[:, ::1] scratch, Py_ssize_t t, Py_ssize_t Hp, Py_ssize_t Wp,
                     Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """scratch[t] = samples n0 … n0+Sg−1, each zero-padded to (C, Hp, Wp), one after the other."""
    cdef Py_ssize_t s, ldx = x.shape[1] * Hp * Wp
    for s in range(Sg):
        _pad_sample(x, n0 + s, scratch, t, s * ldx, Hp, Wp, ph, pw)


def conv2d_forward_k32(const float[:, :, :, ::1] x,     # IN  (N, C, H, W)
                       const float[:, :, ::1] wp,       # IN  (K/32, C·kh·kw, 32): pack_k32
                       const float[::1] b,              # IN  (K,) bias, or (0,) for none
                       const Py_ssize_t[::1] pix,       # IN  (OH·OW rounded up to 8)
                       const Py_ssize_t[::1] tap,       # IN  (C·kh·kw,)
                       float[:, :, :, ::1] y,           # OUT (N, K, OH, OW)
                       float[:, ::1] scratch,           # TMP (threads, S·C·Hp·Wp)
                       float[:, ::1] part,              # TMP (threads, S·pix.shape[0]·32)
                       Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Hp, Py_ssize_t Wp,
                       Py_ssize_t S, Py_ssize_t CT, int num_threads):
    """y[n] = b + x_pad[n] ⋆ w by direct16.h's mg_conv_k32 (32 output channels × 8 output
    pixels a tile; pix and tap are its window and tap offsets in a padded sample), S
    samples per thread at a time, copied first into the thread's scratch, zero-padded to
    (C, Hp, Wp) each; the taps in chunks of CT (their partial sums in part)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], K = y.shape[1]
    cdef Py_ssize_t P = y.shape[2] * y.shape[3], T = tap.shape[0], ldx = C * Hp * Wp
    _k32_check("conv2d_forward_k32", N, C, K, pix, P, tap, T, Hp, Wp, S, scratch, num_threads)
    if (wp.shape[0] * 32 != K or wp.shape[1] != T or y.shape[0] != N
            or b.shape[0] not in (0, K) or pix.shape[0] % MG_K32_PIX or CT < 1
            or (CT < T and part.shape[0] < num_threads)
            or (CT < T and part.shape[1] < min(S, N) * pix.shape[0] * 32)
            or Hp < x.shape[2] + ph or Wp < x.shape[3] + pw or ph < 0 or pw < 0):
        raise ValueError(f"conv2d_forward_k32(): x {(x.shape[0], x.shape[1], x.shape[2], x.shape[3])}, packed w "
                         f"{(wp.shape[0], wp.shape[1], wp.shape[2])}, bias ({b.shape[0]},), y {(y.shape[0], y.shape[1], y.shape[2], y.shape[3])}, "
                         f"pixel table {pix.shape[0]} (a multiple of {MG_K32_PIX}?), chunk "
                         f"CT={CT} of T={T} taps, part {(part.shape[0], part.shape[1])}, padding "
                         f"({ph}, {pw}) into {Hp}×{Wp}: inconsistent")
    cdef Py_ssize_t groups = (N + S - 1) // S, gi, n0, Sg, s, t
    cdef const float* bias = &b[0] if b.shape[0] > 0 else NULL
    with nogil:
        for gi in prange(groups, schedule='static', num_threads=num_threads):
            t = threadid()
            n0 = gi * S
            Sg = min(S, N - n0)
            _pad_group(x, n0, Sg, scratch, t, Hp, Wp, ph, pw)
            mg_conv_k32(&scratch[t, 0], ldx, Sg, &pix[0], P, &tap[0], T, CT, &wp[0, 0, 0], K,
                        bias, &part[t, 0], &y[n0, 0, 0, 0], K * P)


def conv2d_weight_grad_k32(const float[:, :, :, ::1] x,    # IN  (N, C, H, W)
                           const float[:, :, :, ::1] δ,    # IN  (N, K, OH, OW)
                           const Py_ssize_t[::1] pix,      # IN  (OH·OW,)
                           const Py_ssize_t[::1] tap,      # IN  (C·kh·kw rounded up to 8,)
                           float[:, ::1] acc,              # OUT (threads, K·Tr) +=: (K/32, Tr, 32)
                           float[:, ::1] scratch,          # TMP (threads, S·C·Hp·Wp)
                           float[:, ::1] dscr,             # TMP (threads, S·K·OH·OW)
                           Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Hp, Py_ssize_t Wp,
                           Py_ssize_t S, int num_threads):
    """Per thread t, acc[t] += its samples' ∂L/∂w by direct16.h's mg_wgrad_k32 (8 taps × 32
    output channels a tile), S samples at a time: each group's samples zero-padded to
    (C, Hp, Wp) into the thread's scratch and its δ copied to dscr as (K/32, S·P, 32).
    Groups are dealt to the threads statically; the caller sums the partials in a fixed
    order."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], K = δ.shape[1]
    cdef Py_ssize_t P = δ.shape[2] * δ.shape[3], Tr = tap.shape[0], ldx = C * Hp * Wp
    _k32_check("conv2d_weight_grad_k32", N, C, K, pix, P, tap, Tr, Hp, Wp, S, scratch,
               num_threads)
    if (Tr % MG_K32_PIX or δ.shape[0] != N or acc.shape[0] < num_threads or acc.shape[1] < K * Tr
            or dscr.shape[0] < num_threads or dscr.shape[1] < min(S, N) * K * P
            or Hp < x.shape[2] + ph or Wp < x.shape[3] + pw or ph < 0 or pw < 0):
        raise ValueError(f"conv2d_weight_grad_k32(): x {(x.shape[0], x.shape[1], x.shape[2], x.shape[3])}, δ "
                         f"{(δ.shape[0], δ.shape[1], δ.shape[2], δ.shape[3])}, tap table {Tr} (a multiple of {MG_K32_PIX}?), "
                         f"acc {(acc.shape[0], acc.shape[1])}, δ scratch {(dscr.shape[0], dscr.shape[1])}, "
                         f"padding ({ph}, {pw}) into {Hp}×{Wp}: inconsistent")
    cdef Py_ssize_t groups = (N + S - 1) // S, gi, n0, Sg, s, t
    cdef float* end
    with nogil:
        for gi in prange(groups, schedule='static', num_threads=num_threads):
            t = threadid()
            n0 = gi * S
            Sg = min(S, N - n0)
            _pad_group(x, n0, Sg, scratch, t, Hp, Wp, ph, pw)
            end = &dscr[t, K * Sg * P - 1]         # dscr[kb, s·P + j, i] = δ[n0 + s, 32·kb + i, j]
            for s in range(Sg):
                _blocks_of_32(&δ[n0 + s, 0, 0, 0], P, K // 32, &dscr[t, s * P * 32], Sg * P * 32)
            mg_wgrad_k32(&scratch[t, 0], ldx, Sg, &pix[0], P, &tap[0], Tr, &dscr[t, 0], K,
                         &acc[t, 0])


def unpack_k32_sum(const float[:, ::1] acc,              # IN  (threads, K·Tr): (K/32, Tr, 32)
                   float[:, ::1] dw,                      # OUT (K, T)
                   int num_threads):
    """dw[32·kb + i, t] = Σ_th acc[th, (kb·Tr + t)·32 + i], the threads' partials added in
    thread order (the same numbers every run): conv2d_weight_grad_k32's result in w's
    layout; blocks of 32 channels in parallel."""
    cdef Py_ssize_t nth = acc.shape[0], K = dw.shape[0], T = dw.shape[1]
    if K < 32 or K % 32 or acc.shape[1] < K * T or acc.shape[0] < 1:
        raise ValueError(f"unpack_k32_sum(): acc {(acc.shape[0], acc.shape[1])} does not hold (K/32, ≥ T, "
                         f"32) partials for dw {(dw.shape[0], dw.shape[1])} (K a multiple of 32?)")
    cdef Py_ssize_t Tr = acc.shape[1] // K, kb, t, i, th
    cdef float v
    with nogil:
        for kb in prange(K // 32, schedule='static', num_threads=num_threads):
            for i in range(32):
                for t in range(T):
                    v = acc[0, (kb * Tr + t) * 32 + i]
                    for th in range(1, nth):
                        v = v + acc[th, (kb * Tr + t) * 32 + i]
                    dw[kb * 32 + i, t] = v


cdef void _x_streams(const float[:, :, :, ::1] x, Py_ssize_t n0, Py_ssize_t S, float* xs,
                     Py_ssize_t ldx, Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t ph,
                     Py_ssize_t pw) noexcept nogil:
    """xs (C, ldx): channel c's zero-padded planes (Hp × Wp) of samples n0 … n0+S−1, one
    after the other (ph rows above, pw columns left; what does not fit the plane, e.g. the
    rows a 'same' padding of an even kernel drops below, is left out). The zeros below and
    to the right need not fit either: where the taps overhang a row (a plane), they read
    the next one's leading zeros (minigrad/kernels.py _flat_grid sizes Hp and Wp)."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t s, c, i, plane = Hp * Wp
    cdef Py_ssize_t lp = min(pw, Wp), rows = max(0, min(H, Hp - ph))
    cdef Py_ssize_t cols = max(0, min(W, Wp - pw))
    cdef Py_ssize_t top = min(ph, Hp) * Wp, below = (Hp - min(ph, Hp) - rows) * Wp
    cdef float* row
    for c in range(C):                    # every entry written once: data or zero
        for s in range(S):
            row = &xs[c * ldx + s * plane]
            memset(row, 0, top * sizeof(float))
            row = row + top
            for i in range(rows):
                memset(row, 0, lp * sizeof(float))
                memcpy(row + lp, &x[n0 + s, c, i, 0], cols * sizeof(float))
                memset(row + lp + cols, 0, (Wp - lp - cols) * sizeof(float))
                row = row + Wp
            memset(row, 0, below * sizeof(float))
        memset(&xs[c * ldx + S * plane], 0, (ldx - S * plane) * sizeof(float))


cdef void _phase_streams(const float[:, :, :, ::1] x, Py_ssize_t n0, Py_ssize_t S, float* xs,
                         Py_ssize_t ldx, Py_ssize_t Hq, Py_ssize_t Wq, Py_ssize_t st,
                         Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """The streams of a correlation at stride st > 1 (dilation 1): x_pad split into its
    st×st phases, X_ab[u, v] = x_pad[u·st + a, v·st + b], each a plane of Hq × Wq. Stream
    (c·st + a)·st + b of xs ((C·st², ldx)) holds channel c's phase (a, b) of samples
    n0 … n0+S−1, one plane after the other, zero where x_pad is padding or past the input,
    and zero from S·Hq·Wq to ldx. Then x_pad[c, i'·st + p, j'·st + q] =
    X_{p mod st, q mod st}[c, i' + p div st, j' + q div st]: a stride-1 sum over the taps'
    shifted phase streams, which mg_conv_flat and mg_wgrad_w16 run as they are."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t c, a, b, smp, u, v, ih, iw, plane = Hq * Wq
    cdef float* out
    cdef const float* src
    for c in range(C):
        for a in range(st):
            for b in range(st):
                out = &xs[((c * st + a) * st + b) * ldx]
                for smp in range(S):
                    for u in range(Hq):
                        ih = u * st + a - ph
                        if ih < 0 or ih >= H:
                            for v in range(Wq):
                                out[v] = 0
                        else:
                            src = &x[n0 + smp, c, ih, 0]
                            for v in range(Wq):
                                iw = v * st + b - pw
                                out[v] = src[iw] if 0 <= iw < W else 0
                        out = out + Wq
                memset(out, 0, (ldx - S * plane) * sizeof(float))


cdef void _group_streams(const float[:, :, :, ::1] x, const float[:, :, :, ::1] δ,
                         Py_ssize_t n0, Py_ssize_t S, float* xs, Py_ssize_t ldx,
                         float* ds, Py_ssize_t ldd, Py_ssize_t Kp, float* db,
                         Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t st, bint need_x, bint need_db) noexcept nogil:
    """The streams of mg_wgrad_w16 for samples n0 … n0+S−1: xs as _x_streams lays them out
    (if need_x; at stride st > 1 the phase streams of _phase_streams); ds (Kp, ldd) holds δ
    on the same grid (zero for j' ≥ OW, i' ≥ OH and k ≥ K); db[k] += Σ δ (if need_db)."""
    cdef Py_ssize_t K = δ.shape[1], OH = δ.shape[2], OW = δ.shape[3]
    cdef Py_ssize_t s, k, i, plane = Hp * Wp
    memset(ds, 0, Kp * ldd * sizeof(float))
    for k in range(K):
        for s in range(S):
            for i in range(OH):
                memcpy(&ds[k * ldd + s * plane + i * Wp], &δ[n0 + s, k, i, 0], OW * sizeof(float))
        if need_db:                           # (the stream's other entries are zeros)
            db[k] += mg_sum(&ds[k * ldd], ldd)
    if need_x and st == 1:
        _x_streams(x, n0, S, xs, ldx, Hp, Wp, ph, pw)
    elif need_x:
        _phase_streams(x, n0, S, xs, ldx, Hp, Wp, st, ph, pw)


def conv2d_forward_flat(const float[:, :, :, ::1] x,      # IN  (N, C, H, W)
                        const float[:, ::1] wt,            # IN  (C·kh·kw, Kp) w as (c, p, q, k)
                        const float[::1] b,                # IN  (K,) bias, or (0,) for none
                        const Py_ssize_t[::1] off,         # IN  (C·kh·kw,) tap offsets
                        float[:, :, :, ::1] y,             # OUT (N, K, OH, OW)
                        float[:, ::1] xscr,                # TMP (threads, C·ldx)
                        float[:, ::1] yscr,                # TMP (threads, K·ldy)
                        Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t Hp, Py_ssize_t Wp,
                        Py_ssize_t S, Py_ssize_t ldx, Py_ssize_t ldy, int kb, int num_threads,
                        Py_ssize_t stride=1):
    """y = b + x ⋆ w at stride 1 by mg_conv_flat_<kb> (ext/direct16.h) over groups of S
    samples: each group's x is laid out as the streams of _x_streams (off[t] = c·ldx +
    p·dh·Wp + q·dw for tap t = (c, p, q)), the kernel writes the K output streams on the
    same padded grid into yscr, and the OH × OW outputs of each plane are copied out.
    stride > 1 (dilation 1): the streams of x's phases (_phase_streams, Hp × Wp their
    planes, off[t] = ((c·stride + p mod stride)·stride + q mod stride)·ldx +
    (p div stride)·Wp + q div stride). Groups are dealt to the threads statically."""
    cdef Py_ssize_t N = x.shape[0], K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t T = off.shape[0], Kp = wt.shape[1], groups = (N + S - 1) // S
    cdef Py_ssize_t run = 48 if kb == 8 else 32
    cdef Py_ssize_t gi, n0, Sg, L, tid, s, k, i, plane = Hp * Wp
    cdef const float* bias = &b[0] if b.shape[0] > 0 else NULL
    cdef float* ys
    with nogil:
        for gi in prange(groups, schedule='static', num_threads=num_threads):
            tid = threadid()
            n0 = gi * S
            Sg = min(S, N - n0)
            if stride == 1:
                _x_streams(x, n0, Sg, &xscr[tid, 0], ldx, Hp, Wp, ph, pw)
            else:
                _phase_streams(x, n0, Sg, &xscr[tid, 0], ldx, Hp, Wp, stride, ph, pw)
            L = ((Sg - 1) * plane + OH * Wp + run - 1) // run * run
            ys = &yscr[tid, 0]
            if kb == 8:
                mg_conv_flat_8(&xscr[tid, 0], &off[0], T, &wt[0, 0], Kp, K, bias, L, ys, ldy)
            else:
                mg_conv_flat_4(&xscr[tid, 0], &off[0], T, &wt[0, 0], Kp, K, bias, L, ys, ldy)
            for k in range(K):
                for s in range(Sg):
                    for i in range(OH):
                        memcpy(&y[n0 + s, k, i, 0], &ys[k * ldy + s * plane + i * Wp],
                               OW * sizeof(float))


def conv2d_weight_grad_w16(const float[:, :, :, ::1] x,   # IN  (N, C, H, W)
                           const float[:, :, :, ::1] δ,   # IN  (N, K, OH, OW)
                           const Py_ssize_t[::1] off,     # IN  (T rounded up to 3,) tap offsets
                           float[:, ::1] acc,             # OUT (threads, K·T + K) partials, += 
                           float[:, ::1] xscr,            # TMP (threads, C·ldx)
                           float[:, ::1] dscr,            # TMP (threads, Kp·ldd + 16)
                           Py_ssize_t T, Py_ssize_t ph, Py_ssize_t pw,
                           Py_ssize_t Hp, Py_ssize_t Wp, Py_ssize_t S,
                           Py_ssize_t ldx, Py_ssize_t ldd, int kb, bint need_dw, bint need_db,
                           int num_threads, Py_ssize_t stride=1):
    """Per thread t, acc[t, :K·T] += its groups' ∂L/∂w (K, C·kh·kw) and acc[t, K·T:] += Σ δ
    (∂L/∂b) of a convolution, by mg_wgrad_w16_<kb> (ext/direct16.h) over groups of
    S samples: each group's x and δ are first laid out as the kernel's streams (planes of
    Hp × Wp; off[t] = c·ldx + p·dh·Wp + q·dw for tap t = (c, p, q); at stride > 1 x's
    phases, as in conv2d_forward_flat). Groups are dealt to the threads statically, and
    the caller sums the thread partials in a fixed order: the same numbers every run."""
    cdef Py_ssize_t N = δ.shape[0], K = δ.shape[1], OH = δ.shape[2]
    cdef Py_ssize_t Kp = (dscr.shape[1] - 16) // ldd, groups = (N + S - 1) // S
    cdef Py_ssize_t gi, n0, Sg, L, tid
    cdef float* ds
    with nogil:
        for gi in prange(groups, schedule='static', num_threads=num_threads):
            tid = threadid()
            n0 = gi * S
            Sg = min(S, N - n0)
            # δ's streams start on a 64-byte boundary (the row has 16 floats to spare):
            # its vector loads, 8 per 3 of x, then never straddle two cache lines
            ds = <float*>((<size_t>&dscr[tid, 0] + 63) & ~(<size_t>63))
            _group_streams(x, δ, n0, Sg, &xscr[tid, 0], ldx, ds, ldd, Kp,
                           &acc[tid, K * T], Hp, Wp, ph, pw, stride, need_dw, need_db)
            if need_dw:
                L = ((Sg - 1) * Hp * Wp + OH * Wp + 15) // 16 * 16
                if kb == 8:
                    mg_wgrad_w16_8(&xscr[tid, 0], &off[0], T, ds, ldd, K, L,
                                   &acc[tid, 0])
                else:
                    mg_wgrad_w16_4(&xscr[tid, 0], &off[0], T, ds, ldd, K, L,
                                   &acc[tid, 0])
