# Winograd F(2×2, 3×3) and F(4×4, 3×3) convolution: the conv2d forward of 3×3 kernels with
# stride 1, dilation 1 and one group, with 2.25× (4×) fewer multiplications than im2col +
# GEMM; and ∂L/∂w by the same tiles (at the end of the file).
#
# Notation (DESIGN.md): x (N, C, H, W) input, w (K, C, 3, 3) weight, y (N, K, OH, OW),
# padding (ph, pw) on the top/left; the bottom/right padding is implicit in OH×OW (an
# input row or column outside [0, H)×[0, W) reads a zero), as in ext/_index.pxi.
#
#   y[n,k,i',j'] = b[k] + Σ_c Σ_p Σ_q x_pad[n, c, i' + p, j' + q] · w[k,c,p,q]
#
# Cut y into 2×2 tiles; tile (ti, tj) of sample n needs the 4×4 input patch
# d = x_pad[n, c, 2ti .. 2ti+3, 2tj .. 2tj+3]. For one channel pair (k, c), with g = w[k,c]
# (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016):
#
#        ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤        ⎡1  1  1  0⎤
#   Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥   Aᵀ = ⎣0  1 −1 −1⎦
#        ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥
#        ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
#
#   tile = Aᵀ · [(G·g·Gᵀ) ⊙ (Bᵀ·d·B)] · A        (2×2; ⊙ the elementwise product)
#
# Why this is the same correlation: in one dimension, with u = G·g and v = Bᵀ·d,
#   Aᵀ·(u ⊙ v) = (u0v0 + u1v1 + u2v2,  u1v1 − u2v2 − u3v3)
#              = (d0g0 + d1g1 + d2g2,  d1g0 + d2g1 + d3g2)
# (expand: u1v1 = (g0+g1+g2)(d1+d2)/2, u2v2 = (g0−g1+g2)(d2−d1)/2; the cross terms
# cancel), i.e. the two outputs of a 3-tap correlation of the 4 inputs d, for 4
# multiplications instead of 6. The 2-d formula applies it along the rows and then
# along the columns (the tensor product), 16 multiplications instead of 36 per tile and
# channel pair. Output (0, 0) of a tile reads only d's rows 0..2 and columns 0..2, so a
# tile that hangs over the bottom/right edge (OH or OW odd) is computed on zeros there
# and only its outputs that exist are written.
#
# Summed over c, the products become 16 matrix products: with
#   U[ξ] = (G·w[k,c]·Gᵀ)[ξ] as a (K, C) matrix,  V[ξ] = (Bᵀ·d·B)[ξ] as a (C, tiles) matrix,
#   M[ξ] = U[ξ] @ V[ξ]                    (K, C) @ (C, tiles) -> (K, tiles), ξ = 0..15
# and tile = Aᵀ·M[·, k, tile]·A + b[k]. U is computed once per call (winograd_weights);
# the forward (conv2d_forward_winograd) runs one OpenMP loop over blocks of tiles: each
# thread transforms its block's inputs into V in its scratch row, runs the 16 GEMMs with
# the single-threaded OpenBLAS GEMM (minigrad/_blas.py), and writes the output tiles.
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py) validates every shape and integer,
# passes C-contiguous arrays of one dtype, and allocates the outputs and the scratch
# memory; bounds checks are off by default (see setup.py).
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset

ctypedef fused floating:
    float
    double

include "_gemm.pxi"


cdef extern from "winograd4.h" nogil:
    int mg_wino4_ready()
    void mg_wino4_input(const float* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t r0,
                        Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t ph, Py_ssize_t pw,
                        float* s)
    void mg_wino4_output(const float* m, Py_ssize_t Tb, const float* bias, float* y, Py_ssize_t K,
                         Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t r0, Py_ssize_t TH, Py_ssize_t TW)
    void mg_wino4_grad(const float* dy, Py_ssize_t K, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t r0,
                       Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW, float* s)
    void mg_wino4_input_rows(const float* x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                             Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW,
                             Py_ssize_t ph, Py_ssize_t pw, float* s)


cdef extern from "wino_kernels.h" nogil:
    int mg_winok_ready()
    void mg_winok_weights(const float* w, Py_ssize_t Kw, Py_ssize_t Cw, Py_ssize_t k, int flip,
                          int four, float* u, Py_ssize_t ld, Py_ssize_t ncols)
    void mg_winok_weight_grad(const float* m, Py_ssize_t T, Py_ssize_t P, Py_ssize_t K,
                              Py_ssize_t C, Py_ssize_t k, float* dw)


def vector_kernel_transforms():
    """Whether this build has wino_kernels.h's AVX-512 kernel transforms (the caller also
    needs a CPU with AVX-512: kernels.simd_level() == 2)."""
    return mg_winok_ready() == 1


def vector_transforms():
    """Whether this build has winograd4.h's AVX-512 tile transforms for F(4×4) (the caller
    also needs a CPU with AVX-512: kernels.simd_level() == 2)."""
    return mg_wino4_ready() == 1


def winograd_weights(const floating[:, :, :, ::1] w,   # IN  (K, C, 3, 3)
                     floating[:, :, ::1] u,             # OUT (T², K, C), T² = 16 or 36; flip: (T², C, K)
                     int num_threads, bint flip=False, bint vec=False):
    """u[T·a + a', k, c] = (G · w[k,c] · Gᵀ)[a, a']: the transformed kernels, one (K, C)
    matrix per position ξ = T·a + a' of the T×T transformed tile — F(2×2, 3×3)'s G (4×3)
    when u has 16 rows, F(4×4, 3×3)'s (6×3), scaled by 576 (_weight_tiles4), when 36. One
    thread per row of u.

    flip: the kernel of ∂L/∂x at stride 1 instead, w turned by 180° with its channel axes
    swapped (seed 004; DESIGN.md's ∂L/∂x = pad(δ) ⋆ flip(w)ᵀ):
        u[ξ, c, k] = (G · rot180(w[k, c]) · Gᵀ)[ξ]
    read from w as it is (no flipped copy). F(4×4)'s ∂L/∂x uses it; F(2×2)'s reads the
    plain transform at the turned points instead (conv2d_forward_winograd's `turned`).

    vec (float32, a CPU with AVX-512, w of fewer than 2³¹ / 16 elements; ignored by a build
    without wino_kernels.h's code): the same transforms, 16 kernels a vector
    (wino_kernels.h mg_winok_weights), bit for bit."""
    cdef Py_ssize_t K = w.shape[1] if flip else w.shape[0]
    cdef Py_ssize_t k
    cdef bint four = u.shape[0] == 36
    vec = vec and mg_winok_ready() == 1        # (the caller also checks the CPU)
    with nogil:
        for k in prange(K, schedule='static', num_threads=num_threads):
            if floating is float and vec:
                mg_winok_weights(&w[0, 0, 0, 0], w.shape[0], w.shape[1], k, flip, four,
                                 &u[0, k, 0], u.shape[1] * u.shape[2], u.shape[2])
            elif four:
                _weight_tiles4(w, k, u, flip)
            else:
                _weight_tiles(w, k, u, flip)


# The tile transforms work on chunks of up to CH kernels or tiles through small arrays on
# the thread's stack: the compiler then knows that the loads and the stores of the loops
# over a chunk do not overlap, and vectorises them.
cdef enum:
    CH = 32


cdef inline void _kernel_taps(const floating[:, :, :, ::1] w, Py_ssize_t k, Py_ssize_t c0,
                              Py_ssize_t nc, bint flip, floating* gc) noexcept nogil:
    """gc[(3p + q)·CH + i] = g[p, q] for the chunk's kernels i < nc (tap-major): g =
    w[k, c0 + i], or with flip rot180(w[c0 + i, k]), i.e. g[p, q] = w[c0 + i, k, 2 − p, 2 − q]."""
    cdef Py_ssize_t i, p, q
    if flip:
        for i in range(nc):
            for p in range(3):
                for q in range(3):
                    gc[(3 * p + q) * CH + i] = w[c0 + i, k, 2 - p, 2 - q]
    else:
        for i in range(nc):
            for p in range(3):
                for q in range(3):
                    gc[(3 * p + q) * CH + i] = w[k, c0 + i, p, q]


cdef inline void _weight_tiles(const floating[:, :, :, ::1] w, Py_ssize_t k,
                               floating[:, :, ::1] u, bint flip) noexcept nogil:
    """u[·, k, c] = G · g · Gᵀ for g = w[k, c] (flip: rot180(w[c, k])), c = 0..C−1, a chunk
    of CH channels at a time: g is copied to `gc` (_kernel_taps), then h = G·g (4×3,
    column by column)
        h[0] = g[0],  h[1] = (g[0] + g[1] + g[2])/2,  h[2] = (g[0] − g[1] + g[2])/2,  h[3] = g[2]
    (g[p] the kernel's row p) and, the same way along the rows, h·Gᵀ."""
    cdef Py_ssize_t C = w.shape[0] if flip else w.shape[1]
    cdef Py_ssize_t chunk, c0, nc, i, p, q, a
    cdef floating gc[9][CH]
    cdef floating h[12][CH]
    cdef floating h0, h1, h2
    for chunk in range((C + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(C - c0, <Py_ssize_t>CH)
        _kernel_taps(w, k, c0, nc, flip, &gc[0][0])
        for q in range(3):                  # h[3a + q] = (G·g)[a, q]
            for i in range(nc):
                h[q][i] = gc[q][i]
                h[3 + q][i] = (gc[q][i] + gc[3 + q][i] + gc[6 + q][i]) * <floating>0.5
                h[6 + q][i] = (gc[q][i] - gc[3 + q][i] + gc[6 + q][i]) * <floating>0.5
                h[9 + q][i] = gc[6 + q][i]
        for a in range(4):                  # row a of h·Gᵀ
            for i in range(nc):
                h0 = h[3 * a][i]
                h1 = h[3 * a + 1][i]
                h2 = h[3 * a + 2][i]
                u[4 * a, k, c0 + i] = h0
                u[4 * a + 1, k, c0 + i] = (h0 + h1 + h2) * <floating>0.5
                u[4 * a + 2, k, c0 + i] = (h0 - h1 + h2) * <floating>0.5
                u[4 * a + 3, k, c0 + i] = h2


cdef inline (Py_ssize_t, Py_ssize_t) _patch_span(Py_ssize_t o, Py_ssize_t lim,
                                                 Py_ssize_t W) noexcept nogil:
    """(a, e): the columns a ≤ j < e of a chunk's rows, row[j] = x[·, o + j] for j < lim,
    that lie inside the input's W columns (a = e when none does)."""
    cdef Py_ssize_t a = min(max(-o, 0), lim)
    return a, max(min(W - o, lim), a)


cdef inline Py_ssize_t _pieces(Py_ssize_t c0, Py_ssize_t nc, Py_ssize_t r0, Py_ssize_t TH,
                               Py_ssize_t TW, Py_ssize_t* pc) noexcept nogil:
    """The pieces of the chunk of nc tiles from tile c0 of a block of tile rows that starts
    at row r0 (TW tiles a row, TH rows a sample): pc[4p .. 4p + 3] = (n, ti, tj, cnt) for
    piece p — cnt tiles from tile tj of tile row ti of sample n. Returns how many (≤ nc).

    The transforms take a block's tiles in chunks of CH across its tile rows (long vectors
    even where a tile row has two tiles, as on a 4×4 plane); a chunk's tiles in one tile
    row are a piece, whose input (or δ) rows are contiguous runs of one plane. The table
    is made once per chunk and serves every channel."""
    cdef Py_ssize_t i = 0, count = 0, q, r, n, tj, cnt
    while i < nc:
        q = (c0 + i) // TW
        r = r0 + q
        n = r // TH
        tj = c0 + i - q * TW
        cnt = min(TW - tj, nc - i)
        pc[4 * count] = n
        pc[4 * count + 1] = r - n * TH
        pc[4 * count + 2] = tj
        pc[4 * count + 3] = cnt
        count = count + 1
        i = i + cnt
    return count


cdef inline void _piece_rows(const floating[:, :, :, ::1] x, Py_ssize_t n, Py_ssize_t c,
                             Py_ssize_t ih0, Py_ssize_t o, Py_ssize_t R, Py_ssize_t lim,
                             floating* row, Py_ssize_t L) noexcept nogil:
    """row[r·L + j] = x[n, c, ih0 + r, o + j] for r < R, j < lim, and 0 where that is
    outside the plane: the R rows of `lim` columns a piece of tiles reads (its input rows,
    or the rows of δ it covers)."""
    cdef Py_ssize_t H = x.shape[2], a, e, r, ih, j
    a, e = _patch_span(o, lim, x.shape[3])
    for r in range(R):
        ih = ih0 + r
        if ih >= 0 and ih < H and e > a:
            for j in range(a):
                row[r * L + j] = 0
            memcpy(&row[r * L + a], &x[n, c, ih, o + a], (e - a) * sizeof(floating))
            for j in range(e, lim):
                row[r * L + j] = 0
        else:
            for j in range(lim):
                row[r * L + j] = 0


cdef inline void _store_pieces(const floating* z, Py_ssize_t L, Py_ssize_t m,
                               const Py_ssize_t* pc, Py_ssize_t npc,
                               floating[:, :, :, ::1] y, Py_ssize_t k) noexcept nogil:
    """The m output rows z[a·L + m·i + b] (a, b < m) of a chunk's tiles i into
    y[n, k, m·ti + a, m·tj + b], piece by piece (pc, npc from _pieces); only the outputs
    inside OH×OW (the last tile row or column of a sample may be cut)."""
    cdef Py_ssize_t OH = y.shape[2], OW = y.shape[3], i = 0, pj, a, n, oi, oj, cnt, ncols
    for pj in range(npc):
        n = pc[4 * pj]
        oi = m * pc[4 * pj + 1]
        oj = m * pc[4 * pj + 2]
        cnt = pc[4 * pj + 3]
        ncols = min(m * cnt, OW - oj)
        for a in range(min(OH - oi, m)):
            memcpy(&y[n, k, oi + a, oj], &z[a * L + m * i], ncols * sizeof(floating))
        i = i + cnt


cdef inline void _input_block2(const floating[:, :, :, ::1] x, Py_ssize_t r0, Py_ssize_t Tb,
                               Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t ph, Py_ssize_t pw,
                               floating* s) noexcept nogil:
    """s[ξ·C·Tb + c·Tb + tb] = (Bᵀ·d·B)[ξ] for the Tb tiles tb of a block, every channel c:
    tile tb is tile tj = tb mod TW of tile row r = r0 + tb div TW, i.e. of row ti = r mod TH
    of sample n = r div TH, and d = x_pad[n, c, 2ti − ph + (0..3), 2tj − pw + (0..3)].

    In chunks of CH tiles (_piece): per channel and piece the four input rows the piece
    reads go into `row` (_piece_rows), and d·B is taken row by row into ev; then, for the
    whole chunk at once, Bᵀ·(d·B) column by column. Both apply Bᵀ's rows to a 4-vector v:
        (v0 − v2,  v1 + v2,  v2 − v1,  v1 − v3)
    (s a raw pointer: the compiler then sees that the stores into it do not touch the
    stack arrays, and vectorises the loops over a chunk)."""
    cdef Py_ssize_t C = x.shape[1], ld = C * Tb
    cdef Py_ssize_t chunk, c0, nc, c, i, j, t, rr, pj, cnt, npc
    cdef Py_ssize_t pc[4 * CH]
    cdef floating row[4][2 * CH + 2]
    cdef floating ev[16][CH]
    cdef floating* so
    cdef floating e0, e1, e2, e3
    for chunk in range((Tb + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(Tb - c0, <Py_ssize_t>CH)
        npc = _pieces(c0, nc, r0, TH, TW, &pc[0])
        for c in range(C):
            i = 0
            for pj in range(npc):       # the pieces: d·B into ev[4rr + j][i + t]
                cnt = pc[4 * pj + 3]
                _piece_rows(x, pc[4 * pj], c, 2 * pc[4 * pj + 1] - ph, 2 * pc[4 * pj + 2] - pw,
                            4, 2 * cnt + 2, &row[0][0], 2 * CH + 2)
                for rr in range(4):
                    for t in range(cnt):
                        e0 = row[rr][2 * t]
                        e1 = row[rr][2 * t + 1]
                        e2 = row[rr][2 * t + 2]
                        e3 = row[rr][2 * t + 3]
                        ev[4 * rr][i + t] = e0 - e2
                        ev[4 * rr + 1][i + t] = e1 + e2
                        ev[4 * rr + 2][i + t] = e2 - e1
                        ev[4 * rr + 3][i + t] = e1 - e3
                i = i + cnt
            for j in range(4):          # Bᵀ·(d·B), column j: V[j], V[4 + j], V[8 + j], V[12 + j]
                so = s + j * ld + c * Tb + c0
                for i in range(nc):
                    e0 = ev[j][i]
                    e1 = ev[4 + j][i]
                    e2 = ev[8 + j][i]
                    e3 = ev[12 + j][i]
                    so[i] = e0 - e2
                    so[4 * ld + i] = e1 + e2
                    so[8 * ld + i] = e2 - e1
                    so[12 * ld + i] = e1 - e3


cdef inline void _output_block2(const floating* m, Py_ssize_t Tb, const floating[::1] b,
                                floating[:, :, :, ::1] y, Py_ssize_t r0, Py_ssize_t TH,
                                Py_ssize_t TW) noexcept nogil:
    """y[n, k, 2ti + (0..1), 2tj + (0..1)] = Aᵀ · M[·, k, tb] · A + b[k] for the Tb tiles tb
    of a block (laid out as in _input_block2), every output channel k, M[ξ, k, tb] =
    m[ξ·K·Tb + k·Tb + tb]; b of length 0: no bias. Per chunk of CH tiles and channel:
    f = Aᵀ·M column by column, then f·A row by row, each by Aᵀ's rows applied to a
    4-vector v:
        (v0 + v1 + v2,  v1 − v2 − v3)
    into two output rows z[a] (tile i's columns at 2i, 2i + 1), which _store_pieces copies
    into y."""
    cdef Py_ssize_t K = y.shape[1], ld = K * Tb
    cdef Py_ssize_t chunk, c0, nc, i, j, a, k, npc
    cdef Py_ssize_t pc[4 * CH]
    cdef const floating* mo
    cdef floating f[8][CH]
    cdef floating z[2][2 * CH]
    cdef floating v0, v1, v2, v3, bk
    for chunk in range((Tb + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(Tb - c0, <Py_ssize_t>CH)
        npc = _pieces(c0, nc, r0, TH, TW, &pc[0])
        for k in range(K):
            bk = b[k] if b.shape[0] > 0 else 0
            for j in range(4):          # f[4a + j] = (Aᵀ·M)[a, j]
                mo = m + k * Tb + c0 + j * ld
                for i in range(nc):
                    v0 = mo[i]
                    v1 = mo[4 * ld + i]
                    v2 = mo[8 * ld + i]
                    v3 = mo[12 * ld + i]
                    f[j][i] = v0 + v1 + v2
                    f[4 + j][i] = v1 - v2 - v3
            for a in range(2):          # z[a][2i + b] = (f·A)[a, b] + b[k]: output row a
                for i in range(nc):
                    v0 = f[4 * a][i]
                    v1 = f[4 * a + 1][i]
                    v2 = f[4 * a + 2][i]
                    v3 = f[4 * a + 3][i]
                    z[a][2 * i] = v0 + v1 + v2 + bk
                    z[a][2 * i + 1] = v1 - v2 - v3 + bk
            _store_pieces(&z[0][0], 2 * CH, 2, &pc[0], npc, y, k)


# ---- F(4×4, 3×3) -------------------------------------------------------------------------
#
# The same construction with 4×4 output tiles from 6×6 input patches (Lavin & Gray; the
# interpolation points 0, 1, −1, 2, −2 and ∞):
#
#        ⎡4  0 −5  0  1  0⎤        ⎡ 1/4     0     0 ⎤
#        ⎢0 −4 −4  1  1  0⎥        ⎢−1/6  −1/6  −1/6 ⎥        ⎡1  1  1  1  1  0⎤
#   Bᵀ = ⎢0  4 −4 −1  1  0⎥    G = ⎢−1/6   1/6  −1/6 ⎥   Aᵀ = ⎢0  1 −1  2 −2  0⎥
#        ⎢0 −2 −1  2  1  0⎥        ⎢1/24  1/12   1/6 ⎥        ⎢0  1  1  4  4  0⎥
#        ⎢0  2 −1 −2  1  0⎥        ⎢1/24 −1/12   1/6 ⎥        ⎣0  1 −1  8 −8  1⎦
#        ⎣0  4  0 −5  0  1⎦        ⎣  0     0     1  ⎦
#
#   tile = Aᵀ · [(G·g·Gᵀ) ⊙ (Bᵀ·d·B)] · A        (4×4, d the 6×6 patch)
#
# In one dimension Aᵀ·[(G·g) ⊙ (Bᵀ·d)] = (Σ_q d[i + q]·g[q])_{i = 0..3}: the product of the
# polynomials d and g evaluated at the five points and at infinity, and interpolated back
# (tests/test_winograd.py checks the whole path against the reference correlation). 36
# multiplications per tile and channel pair instead of 144 (F(2×2, 3×3): 16 for 36); the
# price is larger transforms and rounding errors a few times F(2×2)'s (entries up to 8).
# conv2d_forward_winograd runs both: the same blocks of tile rows, with 6×6 tiles and 36
# GEMMs per block for F(4×4).

cdef inline void _weight_tiles4(const floating[:, :, :, ::1] w, Py_ssize_t k,
                                floating[:, :, ::1] u, bint flip) noexcept nogil:
    """u[·, k, c] = 576 · G · g · Gᵀ (6×6) for g = w[k, c] (flip: rot180(w[c, k])),
    c = 0..C−1, in chunks of CH channels (the taps by _kernel_taps). G = D⁻¹·G' with D = diag(4, 6, 6, 24, 24, 1) and G' of integers, so
        576 · G·g·Gᵀ = S ⊙ (G'·g·G'ᵀ),   S[a, a'] = 576 / (D[a]·D[a'])   (integers)
    and the output transform divides by 576 once at the end: every constant on the way is
    an integer, so integer-valued images and kernels (seed 000's worked example) come out
    exact, as with the other paths. h = G'·g column by column, with the kernel's rows
    g0, g1, g2:
        (g0, −(g0 + g1 + g2), −(g0 − g1 + g2), g0 + 2g1 + 4g2, g0 − 2g1 + 4g2, g2)
    and then the same along the rows of h, times S."""
    cdef Py_ssize_t C = w.shape[0] if flip else w.shape[1]
    cdef Py_ssize_t chunk, c0, nc, i, p, q, a, b
    cdef floating gc[9][CH]
    cdef floating h[18][CH]
    cdef floating ut[6][CH]
    cdef floating* uo
    cdef floating h0, h1, h2, sa
    cdef floating d[6]
    cdef floating sc[6]
    d[:] = [4, 6, 6, 24, 24, 1]
    for chunk in range((C + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(C - c0, <Py_ssize_t>CH)
        _kernel_taps(w, k, c0, nc, flip, &gc[0][0])
        for q in range(3):                  # h[3a + q] = (G'·g)[a, q]
            for i in range(nc):
                h0 = gc[q][i]
                h1 = gc[3 + q][i]
                h2 = gc[6 + q][i]
                h[q][i] = h0
                h[3 + q][i] = -(h0 + h1 + h2)
                h[6 + q][i] = -(h0 - h1 + h2)
                h[9 + q][i] = h0 + <floating>2 * h1 + <floating>4 * h2
                h[12 + q][i] = h0 - <floating>2 * h1 + <floating>4 * h2
                h[15 + q][i] = h2
        for a in range(6):                  # row a of h·G'ᵀ, times S[a, ·]
            sa = <floating>576 / d[a]
            for b in range(6):
                sc[b] = sa / d[b]
            for i in range(nc):
                h0 = h[3 * a][i]
                h1 = h[3 * a + 1][i]
                h2 = h[3 * a + 2][i]
                ut[0][i] = h0 * sc[0]
                ut[1][i] = -(h0 + h1 + h2) * sc[1]
                ut[2][i] = -(h0 - h1 + h2) * sc[2]
                ut[3][i] = (h0 + <floating>2 * h1 + <floating>4 * h2) * sc[3]
                ut[4][i] = (h0 - <floating>2 * h1 + <floating>4 * h2) * sc[4]
                ut[5][i] = h2 * sc[5]
            for b in range(6):              # (through the stack: one store stream a loop)
                uo = &u[6 * a + b, k, c0]
                for i in range(nc):
                    uo[i] = ut[b][i]


cdef inline void _input_block4(const floating[:, :, :, ::1] x, Py_ssize_t r0, Py_ssize_t Tb,
                               Py_ssize_t TH, Py_ssize_t TW, Py_ssize_t ph, Py_ssize_t pw,
                               floating* s) noexcept nogil:
    """s[ξ·C·Tb + c·Tb + tb] = (Bᵀ·d·B)[ξ] for the Tb tiles tb of a block, every channel c:
    tile tb is tile tj = tb mod TW of tile row r = r0 + tb div TW, i.e. of row ti = r mod TH
    of sample n = r div TH, and d = x_pad[n, c, 4ti − ph + (0..5), 4tj − pw + (0..5)].

    As _input_block2 with 6×6 patches: per chunk of CH tiles, channel and piece the six
    input rows the piece reads go into `row` (_piece_rows), and d·B is taken row by row into
    ev; then, for the whole chunk at once, Bᵀ·(d·B) column by column. Both passes apply Bᵀ's rows to a 6-vector v:
        (4v0 − 5v2 + v4,  (v3 + v4) − 4(v1 + v2),  (v4 − v3) + 4(v1 − v2),
         (v4 − v2) + 2(v3 − v1),  (v4 − v2) − 2(v3 − v1),  4v1 − 5v3 + v5)
    (s a raw pointer: the compiler then sees that the stores into it do not touch the
    stack arrays, and vectorises the loops over a chunk)."""
    cdef Py_ssize_t C = x.shape[1], ld = C * Tb
    cdef Py_ssize_t rr, chunk, c0, nc, c, i, j, t, pj, cnt, npc
    cdef Py_ssize_t pc[4 * CH]
    cdef floating row[6][4 * CH + 2]
    cdef floating ev[36][CH]
    cdef floating* so
    cdef floating* s0
    cdef floating* s1
    cdef floating* s2
    cdef floating e0, e1, e2, e3, e4, e5, p, q
    for chunk in range((Tb + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(Tb - c0, <Py_ssize_t>CH)
        npc = _pieces(c0, nc, r0, TH, TW, &pc[0])
        for c in range(C):
            i = 0
            for pj in range(npc):       # the pieces: d·B into ev[6rr + j][i + t]
                cnt = pc[4 * pj + 3]
                _piece_rows(x, pc[4 * pj], c, 4 * pc[4 * pj + 1] - ph, 4 * pc[4 * pj + 2] - pw,
                            6, 4 * cnt + 2, &row[0][0], 4 * CH + 2)
                for rr in range(6):
                    for t in range(cnt):
                        e0 = row[rr][4 * t]
                        e1 = row[rr][4 * t + 1]
                        e2 = row[rr][4 * t + 2]
                        e3 = row[rr][4 * t + 3]
                        e4 = row[rr][4 * t + 4]
                        e5 = row[rr][4 * t + 5]
                        p = e4 - e2
                        q = e3 - e1
                        ev[6 * rr][i + t] = <floating>4 * e0 - <floating>5 * e2 + e4
                        ev[6 * rr + 1][i + t] = (e3 + e4) - <floating>4 * (e1 + e2)
                        ev[6 * rr + 2][i + t] = (e4 - e3) + <floating>4 * (e1 - e2)
                        ev[6 * rr + 3][i + t] = p + <floating>2 * q
                        ev[6 * rr + 4][i + t] = p - <floating>2 * q
                        ev[6 * rr + 5][i + t] = <floating>4 * e1 - <floating>5 * e3 + e5
                i = i + cnt
            for j in range(6):          # Bᵀ·(d·B), column j: V[j], V[6 + j], ...
                so = s + j * ld + c * Tb + c0
                s0 = so
                s1 = so + 6 * ld
                s2 = so + 12 * ld
                # (in two loops of three stores: then the compiler's check that the
                # stores do not overlap fits its limit, and it vectorises them)
                for i in range(nc):
                    e0 = ev[j][i]
                    e1 = ev[6 + j][i]
                    e2 = ev[12 + j][i]
                    e3 = ev[18 + j][i]
                    e4 = ev[24 + j][i]
                    s0[i] = <floating>4 * e0 - <floating>5 * e2 + e4
                    s1[i] = (e3 + e4) - <floating>4 * (e1 + e2)
                    s2[i] = (e4 - e3) + <floating>4 * (e1 - e2)
                s0 = so + 18 * ld
                s1 = so + 24 * ld
                s2 = so + 30 * ld
                for i in range(nc):
                    e1 = ev[6 + j][i]
                    e2 = ev[12 + j][i]
                    e3 = ev[18 + j][i]
                    e4 = ev[24 + j][i]
                    e5 = ev[30 + j][i]
                    p = e4 - e2
                    q = e3 - e1
                    s0[i] = p + <floating>2 * q
                    s1[i] = p - <floating>2 * q
                    s2[i] = <floating>4 * e1 - <floating>5 * e3 + e5


cdef inline void _output_block4(const floating* m, Py_ssize_t Tb, const floating[::1] b,
                                floating[:, :, :, ::1] y, Py_ssize_t r0, Py_ssize_t TH,
                                Py_ssize_t TW) noexcept nogil:
    """y[n, k, 4ti + (0..3), 4tj + (0..3)] = Aᵀ · M[·, k, tb] · A / 576 + b[k] for the Tb
    tiles tb of a block (laid out as in _input_block2), every output channel k,
    M[ξ, k, tb] = m[ξ·K·Tb + k·Tb + tb] (576: the scale of the transformed kernels,
    _weight_tiles4); b of length 0: no bias. Per chunk of CH tiles and channel:
    f = Aᵀ·M column by column, then f·A row by row, each by Aᵀ's rows applied to a
    6-vector v:
        (v0 + v1 + v2 + v3 + v4,  (v1 − v2) + 2(v3 − v4),  (v1 + v2) + 4(v3 + v4),
         (v1 − v2) + 8(v3 − v4) + v5)
    into four output rows z[a] (tile i's columns at 4i .. 4i+3), which _store_pieces copies
    into y."""
    cdef Py_ssize_t K = y.shape[1], ld = K * Tb
    cdef Py_ssize_t chunk, c0, nc, i, j, a, k, npc
    cdef Py_ssize_t pc[4 * CH]
    cdef const floating* m0
    cdef const floating* m1
    cdef const floating* m2
    cdef const floating* m3
    cdef const floating* m4
    cdef const floating* m5
    cdef floating f[24][CH]
    cdef floating z[4][4 * CH]
    cdef floating v0, v1, v2, v3, v4, v5, sp, dm, sq, dq, bk
    for chunk in range((Tb + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(Tb - c0, <Py_ssize_t>CH)
        npc = _pieces(c0, nc, r0, TH, TW, &pc[0])
        for k in range(K):
            bk = b[k] if b.shape[0] > 0 else 0
            for j in range(6):          # f[6a + j] = (Aᵀ·M)[a, j]
                m0 = m + k * Tb + c0 + j * ld
                m1 = m0 + 6 * ld
                m2 = m0 + 12 * ld
                m3 = m0 + 18 * ld
                m4 = m0 + 24 * ld
                m5 = m0 + 30 * ld
                for i in range(nc):
                    v0 = m0[i]
                    v1 = m1[i]
                    v2 = m2[i]
                    v3 = m3[i]
                    v4 = m4[i]
                    v5 = m5[i]
                    sp = v1 + v2
                    dm = v1 - v2
                    sq = v3 + v4
                    dq = v3 - v4
                    f[j][i] = v0 + sp + sq
                    f[6 + j][i] = dm + <floating>2 * dq
                    f[12 + j][i] = sp + <floating>4 * sq
                    f[18 + j][i] = dm + <floating>8 * dq + v5
            for a in range(4):          # z[a][4i + b] = (f·A)[a, b] / 576 + b[k]: output row a
                for i in range(nc):
                    v0 = f[6 * a][i]
                    v1 = f[6 * a + 1][i]
                    v2 = f[6 * a + 2][i]
                    v3 = f[6 * a + 3][i]
                    v4 = f[6 * a + 4][i]
                    v5 = f[6 * a + 5][i]
                    sp = v1 + v2
                    dm = v1 - v2
                    sq = v3 + v4
                    dq = v3 - v4
                    z[a][4 * i] = (v0 + sp + sq) / <floating>576 + bk
                    z[a][4 * i + 1] = (dm + <floating>2 * dq) / <floating>576 + bk
                    z[a][4 * i + 2] = (sp + <floating>4 * sq) / <floating>576 + bk
                    z[a][4 * i + 3] = (dm + <floating>8 * dq + v5) / <floating>576 + bk
            _store_pieces(&z[0][0], 4 * CH, 4, &pc[0], npc, y, k)


cdef Py_ssize_t[4] _TURN = [3, 1, 2, 0]     # π₄: F(2×2)'s points 0 and 3 swapped (turned)


def conv2d_forward_winograd(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                            const floating[:, :, ::1] u,      # IN  (T², K, C) winograd_weights(w)
                            const floating[::1] b,            # IN  (K,) bias, or (0,) for none
                            floating[:, :, :, ::1] y,         # OUT (N, K, OH, OW)
                            floating[:, ::1] scratch,         # TMP (threads, T²·(C + K)·rows·TW)
                            Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t rows,
                            size_t gemm, bint ilp64, int num_threads, bint vec=False,
                            bint turned=False, bint rows_vec=False):
    """y = b + x ⋆ w for 3×3 w, stride 1, by Winograd F(m×m, 3×3) (see the top of the file
    for m = 2, F(4×4, 3×3) below for m = 4): m = 2 when u has T² = 16 rows, 4 when 36.

    turned (m = 2 only): u is winograd_weights(w′) of the kernel w′ (C, K, 3, 3) whose
    correlation this one undoes, and the correlation is with w′ turned by 180° and its
    channel axes swapped, w = rot180(w′)ᵀ — ∂L/∂x's kernel (seed 004), without a transform
    of its own. Turning a kernel reverses its taps, and G·rev(g) = Π·G·g with Π the 4×4
    permutation that swaps the points 0 and 3 (G's rows 1 and 2 are symmetric, rows 0 and 3
    each other's reverse), along both axes: the transformed turned kernel at ξ = 4a + a′ is
    the transformed kernel at π(ξ) = 4·π₄(a) + π₄(a′), π₄ = (3, 1, 2, 0), and the swap of the
    channel axes is a transpose:
        M[ξ] = U′[π(ξ)]ᵀ @ V[ξ]        (K, C) @ (C, Tb), U′[·] (C, K) read transposed
    (the same products as a flipped transform's, summed in another order: equal up to
    rounding).

    The tiles, TH = ⌈OH/m⌉ rows of TW = ⌈OW/m⌉ per sample, are taken tile row by tile
    row across the whole batch (tile row r is row r mod TH of sample r div TH) in blocks
    of `rows` tile rows, so that a block of a small image spans several samples and its
    GEMMs stay wide. For a block of Tb = (its tile rows)·TW tiles, in thread t's scratch row:

        V[ξ] (C, Tb) at ξ·C·Tb          the transformed input tiles Bᵀ·d·B
        M[ξ] (K, Tb) at T²·C·Tb + ξ·K·Tb = U[ξ] (K, C) @ V[ξ] (C, Tb), ξ = 0..T²−1
    then each output tile is Aᵀ·M·A plus the bias.
    """
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t K = y.shape[1], OH = y.shape[2], OW = y.shape[3]
    cdef Py_ssize_t P = u.shape[0], m = 2 if P == 16 else 4
    cdef Py_ssize_t TH = (OH + m - 1) // m, TW = (OW + m - 1) // m, R = N * TH
    cdef Py_ssize_t nitems = (R + rows - 1) // rows
    cdef Py_ssize_t item, t, r0, r1, xi, Tb, mo
    with nogil:
        for item in prange(nitems, schedule='static', num_threads=num_threads):
            t = threadid()
            r0 = item * rows
            r1 = min(r0 + rows, R)
            Tb = (r1 - r0) * TW
            mo = P * C * Tb
            if m == 2:
                _input_block2(x, r0, Tb, TH, TW, ph, pw, &scratch[t, 0])
            elif floating is float and vec:             # ext/winograd4.h, 16 tiles a vector
                mg_wino4_input(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], r0, Tb, TH, TW, ph,
                               pw, &scratch[t, 0])
            elif floating is float and rows_vec:        # ext/winograd4.h, a tile row a vector
                mg_wino4_input_rows(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], r0, Tb, TH, TW,
                                    ph, pw, &scratch[t, 0])
            else:
                _input_block4(x, r0, Tb, TH, TW, ph, pw, &scratch[t, 0])
            for xi in range(P):
                # (K, C) @ (C, Tb) -> (K, Tb)
                if turned:                              # U′[π(ξ)]ᵀ, π(4a + a′) = 4·π₄(a) + π₄(a′)
                    _gemm(gemm, ilp64, TRANS, NO_TRANS, K, Tb, C,
                          &u[4 * _TURN[xi // 4] + _TURN[xi % 4], 0, 0], K,
                          &scratch[t, xi * C * Tb], Tb, 0, &scratch[t, mo + xi * K * Tb], Tb)
                else:
                    _gemm(gemm, ilp64, NO_TRANS, NO_TRANS, K, Tb, C, &u[xi, 0, 0], C,
                          &scratch[t, xi * C * Tb], Tb, 0, &scratch[t, mo + xi * K * Tb], Tb)
            if m == 2:
                _output_block2(&scratch[t, mo], Tb, b, y, r0, TH, TW)
            elif floating is float and vec:
                mg_wino4_output(&scratch[t, mo], Tb, &b[0] if b.shape[0] > 0 else NULL,
                                &y[0, 0, 0, 0], K, OH, OW, r0, TH, TW)
            else:
                _output_block4(&scratch[t, mo], Tb, b, y, r0, TH, TW)


# ---- ∂L/∂w by the same tiles ----------------------------------------------------------------
#
# For one tile and channel pair the forward is linear in g = w[k, c]:
#   tile = Aᵀ·[(G·g·Gᵀ) ⊙ V]·A,   V = Bᵀ·d·B.
# With Δ = ∂L/∂tile (2×2), ⟨Δ, Aᵀ·[U ⊙ V]·A⟩ = ⟨A·Δ·Aᵀ, U ⊙ V⟩ = ⟨(A·Δ·Aᵀ) ⊙ V, G·g·Gᵀ⟩
# = ⟨Gᵀ·[(A·Δ·Aᵀ) ⊙ V]·G, g⟩, so, summed over the tiles of every sample,
#   ∂L/∂w[k, c] = Gᵀ · Mw[·, k, c] · G,   Mw[ξ] = D[ξ] @ V[ξ]ᵀ   (K, tiles) @ (tiles, C)
# with D[ξ] = (A·Δ·Aᵀ)[ξ] as a (K, tiles) matrix: 16 GEMMs over the tiles for the 36
# multiply-adds per tile and channel pair of DESIGN.md's ∂L/∂w = x ⋆ δ. A tile hanging over
# the bottom/right edge gets Δ = 0 at the outputs that do not exist, so what it read
# beyond them adds nothing. F(4×4, 3×3) is the same with its A (6×4), G and 4×4 Δ: 36 GEMMs
# for the 144 multiply-adds per 4×4 tile (_grad_block4, _weight_grad_row4).

cdef inline void _grad_block2(const floating[:, :, :, ::1] dy, Py_ssize_t r0, Py_ssize_t Tb,
                              Py_ssize_t TH, Py_ssize_t TW, floating* s) noexcept nogil:
    """s[ξ·K·Tb + k·Tb + tb] = (A·Δ·Aᵀ)[ξ] (4×4) for the Tb tiles tb of a block (laid out as
    in _input_block2), every output channel k: Δ = dy[n, k, 2ti + (0..1), 2tj + (0..1)],
    zero outside OH×OW. Per chunk of CH tiles, channel and piece, Δ's two rows go into `dt`
    (_piece_rows); then, with A (4×2) applied to a 2-vector v,
        A·v = (v0,  v0 + v1,  v0 − v1,  −v1)
    along each row of Δ (into e) and then, for the whole chunk, down each column of e."""
    cdef Py_ssize_t K = dy.shape[1], ld = K * Tb
    cdef Py_ssize_t chunk, c0, nc, k, i, j, t, rr, pj, cnt, npc
    cdef Py_ssize_t pc[4 * CH]
    cdef floating dt[2][2 * CH]
    cdef floating e[8][CH]
    cdef floating* so
    cdef floating v0, v1
    for chunk in range((Tb + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(Tb - c0, <Py_ssize_t>CH)
        npc = _pieces(c0, nc, r0, TH, TW, &pc[0])
        for k in range(K):
            i = 0
            for pj in range(npc):       # the pieces: A along Δ's rows into e[4rr + a][i + t]
                cnt = pc[4 * pj + 3]
                _piece_rows(dy, pc[4 * pj], k, 2 * pc[4 * pj + 1], 2 * pc[4 * pj + 2], 2,
                            2 * cnt, &dt[0][0], 2 * CH)
                for rr in range(2):
                    for t in range(cnt):
                        v0 = dt[rr][2 * t]
                        v1 = dt[rr][2 * t + 1]
                        e[4 * rr][i + t] = v0
                        e[4 * rr + 1][i + t] = v0 + v1
                        e[4 * rr + 2][i + t] = v0 - v1
                        e[4 * rr + 3][i + t] = -v1
                i = i + cnt
            for j in range(4):          # A down column j of e: D[j], D[4 + j], D[8 + j], D[12 + j]
                so = s + j * ld + k * Tb + c0
                for i in range(nc):
                    v0 = e[j][i]
                    v1 = e[4 + j][i]
                    so[i] = v0
                    so[4 * ld + i] = v0 + v1
                    so[8 * ld + i] = v0 - v1
                    so[12 * ld + i] = -v1


cdef inline void _grad_block4(const floating[:, :, :, ::1] dy, Py_ssize_t r0, Py_ssize_t Tb,
                              Py_ssize_t TH, Py_ssize_t TW, floating* s) noexcept nogil:
    """s[ξ·K·Tb + k·Tb + tb] = (A·Δ·Aᵀ)[ξ] (6×6) for the Tb tiles tb of a block (laid out as
    in _input_block4), every output channel k: Δ = dy[n, k, 4ti + (0..3), 4tj + (0..3)], zero
    outside OH×OW. Per chunk of CH tiles, channel and piece, Δ's four rows go into `dt`
    (_piece_rows); then, with A (6×4) applied to a 4-vector v,
        A·v = (v0,  v0 + v1 + v2 + v3,  v0 − v1 + v2 − v3,  v0 + 2v1 + 4v2 + 8v3,
               v0 − 2v1 + 4v2 − 8v3,  v3)
    along each row of Δ (into e) and then, for the whole chunk, down each column of e."""
    cdef Py_ssize_t K = dy.shape[1], ld = K * Tb
    cdef Py_ssize_t chunk, c0, nc, k, i, j, t, rr, pj, cnt, npc
    cdef Py_ssize_t pc[4 * CH]
    cdef floating dt[4][4 * CH]
    cdef floating e[24][CH]
    cdef floating* so
    cdef floating* s0
    cdef floating* s1
    cdef floating* s2
    cdef floating v0, v1, v2, v3, p02, p13, q02, q13
    for chunk in range((Tb + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(Tb - c0, <Py_ssize_t>CH)
        npc = _pieces(c0, nc, r0, TH, TW, &pc[0])
        for k in range(K):
            i = 0
            for pj in range(npc):       # the pieces: A along Δ's rows into e[6rr + a][i + t]
                cnt = pc[4 * pj + 3]
                _piece_rows(dy, pc[4 * pj], k, 4 * pc[4 * pj + 1], 4 * pc[4 * pj + 2], 4,
                            4 * cnt, &dt[0][0], 4 * CH)
                for rr in range(4):
                    for t in range(cnt):
                        v0 = dt[rr][4 * t]
                        v1 = dt[rr][4 * t + 1]
                        v2 = dt[rr][4 * t + 2]
                        v3 = dt[rr][4 * t + 3]
                        p02 = v0 + v2
                        p13 = v1 + v3
                        q02 = v0 + <floating>4 * v2
                        q13 = <floating>2 * v1 + <floating>8 * v3
                        e[6 * rr][i + t] = v0
                        e[6 * rr + 1][i + t] = p02 + p13
                        e[6 * rr + 2][i + t] = p02 - p13
                        e[6 * rr + 3][i + t] = q02 + q13
                        e[6 * rr + 4][i + t] = q02 - q13
                        e[6 * rr + 5][i + t] = v3
                i = i + cnt
            for j in range(6):          # A down column j of e: D[j], D[6 + j], ...
                so = s + j * ld + k * Tb + c0
                s0 = so
                s1 = so + 6 * ld
                s2 = so + 12 * ld
                for i in range(nc):
                    v0 = e[j][i]
                    v1 = e[6 + j][i]
                    v2 = e[12 + j][i]
                    v3 = e[18 + j][i]
                    s0[i] = v0
                    s1[i] = (v0 + v2) + (v1 + v3)
                    s2[i] = (v0 + v2) - (v1 + v3)
                s0 = so + 18 * ld
                s1 = so + 24 * ld
                s2 = so + 30 * ld
                for i in range(nc):
                    v0 = e[j][i]
                    v1 = e[6 + j][i]
                    v2 = e[12 + j][i]
                    v3 = e[18 + j][i]
                    s0[i] = (v0 + <floating>4 * v2) + (<floating>2 * v1 + <floating>8 * v3)
                    s1[i] = (v0 + <floating>4 * v2) - (<floating>2 * v1 + <floating>8 * v3)
                    s2[i] = v3


cdef inline void _grad_tiles(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] dy,
                             Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW,
                             Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t m, bint vec,
                             bint rows_vec, floating* s) noexcept nogil:
    """A block's transformed tiles for ∂L/∂w, F(m×m, 3×3): V (T², C, Tb) at s and
    D (T², K, Tb) right after it, at s + T²·C·Tb (_input_block2/_grad_block2, or for m = 4
    ext/winograd4.h's vector transforms when vec and float32, else _grad_block4 and
    _input_block4 or, when rows_vec and float32, winograd4.h's mg_wino4_input_rows)."""
    cdef Py_ssize_t C = x.shape[1], K = dy.shape[1], do = (m + 2) * (m + 2) * C * Tb
    if m == 2:
        _input_block2(x, r0, Tb, TH, TW, ph, pw, s)
        _grad_block2(dy, r0, Tb, TH, TW, s + do)
    elif floating is float and vec:                 # ext/winograd4.h, 16 tiles a vector
        mg_wino4_input(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], r0, Tb, TH, TW, ph, pw, s)
        mg_wino4_grad(&dy[0, 0, 0, 0], K, dy.shape[2], dy.shape[3], r0, Tb, TH, TW, s + do)
    else:
        if floating is float and rows_vec:          # ext/winograd4.h, a tile row a vector
            mg_wino4_input_rows(&x[0, 0, 0, 0], C, x.shape[2], x.shape[3], r0, Tb, TH, TW, ph,
                                pw, s)
        else:
            _input_block4(x, r0, Tb, TH, TW, ph, pw, s)
        _grad_block4(dy, r0, Tb, TH, TW, s + do)


def conv2d_weight_grad_winograd(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                                const floating[:, :, :, ::1] dy,  # IN  (N, K, OH, OW) δ
                                floating[:, ::1] acc,             # OUT (threads, T²·K·C) = Σ Mw
                                floating[:, ::1] scratch,         # TMP (threads, T²·(C + K)·rows·TW)
                                unsigned char[::1] started,       # TMP (threads,) zeros
                                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t rows, Py_ssize_t m,
                                size_t gemm, bint ilp64, int num_threads, bint vec=False,
                                bint rows_vec=False):
    """Per thread t, acc[t] (T², K, C) = Σ over its blocks of tiles of D[ξ] @ V[ξ]ᵀ (the
    comment above), F(m×m, 3×3) for m = 2 or 4 (T = m + 2): the blocks of tile rows as in
    conv2d_forward_winograd, V (T², C, Tb) and D (T², K, Tb) in the thread's scratch row.
    A thread's first block writes its row (β = 0: no zeroing pass over acc, which is
    18 MiB for 256 channels in F(4×4)), the later ones add to it; a thread that got no
    block zeroes its row. The caller adds the thread rows in a fixed order and transforms
    back (winograd_weight_grad)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t K = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t P = (m + 2) * (m + 2)
    cdef Py_ssize_t TH = (OH + m - 1) // m, TW = (OW + m - 1) // m, R = N * TH
    cdef Py_ssize_t nitems = (R + rows - 1) // rows
    cdef Py_ssize_t item, t, r0, r1, xi, Tb, do
    cdef floating beta
    with nogil:
        for item in prange(nitems, schedule='static', num_threads=num_threads):
            t = threadid()
            beta = 0 if _first_block(started, t) else 1
            r0 = item * rows
            r1 = min(r0 + rows, R)
            Tb = (r1 - r0) * TW
            do = P * C * Tb
            _grad_tiles(x, dy, r0, Tb, TH, TW, ph, pw, m, vec, rows_vec, &scratch[t, 0])
            for xi in range(P):
                # (K, Tb) @ (Tb, C) -> (K, C), accumulated
                _gemm(gemm, ilp64, NO_TRANS, TRANS, K, C, Tb, &scratch[t, do + xi * K * Tb], Tb,
                      &scratch[t, xi * C * Tb], Tb, beta, &acc[t, xi * K * C], C)
        _zero_unstarted_rows(acc, started)              # threads without a block


def conv2d_weight_grad_winograd_points(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                                       const floating[:, :, :, ::1] dy,  # IN  (N, K, OH, OW) δ
                                       floating[:, ::1] acc,             # OUT (T², K·C) Σ Mw
                                       floating[::1] buf,                # TMP every block's V, D
                                       Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t rows,
                                       Py_ssize_t m, size_t gemm, bint ilp64, int num_threads,
                                       bint vec=False, bint rows_vec=False):
    """acc[ξ] (K, C) = Σ over all blocks of D[ξ] @ V[ξ]ᵀ, the sums of
    conv2d_weight_grad_winograd split the other way: by point instead of by block.

    First every block of tile rows (as in conv2d_forward_winograd) is transformed, in
    parallel, into its own stretch of buf: block b, whose tiles start at tile j0 = b·rows·TW,
    at T²·(C + K)·j0, V (T², C, Tb) then D (T², K, Tb). Then the T² GEMMs are split over the
    threads by point ξ, each adding every block's D[ξ] (K, Tb) @ V[ξ]ᵀ (Tb, C) into acc[ξ]
    in block order (β = 0 for the first). No thread keeps a (T², K, C) partial of its own:
    where K·C is large against the tiles (ResNet-18's 256 × 8² layers), those partials —
    written and read again for every block, then added — are most of the memory traffic,
    and buf is smaller than they are. The caller transforms back with
    winograd_weight_grad(acc as (1, T², K, C))."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t K = dy.shape[1], OH = dy.shape[2], OW = dy.shape[3]
    cdef Py_ssize_t P = (m + 2) * (m + 2)
    cdef Py_ssize_t TH = (OH + m - 1) // m, TW = (OW + m - 1) // m, R = N * TH
    cdef Py_ssize_t nitems = (R + rows - 1) // rows
    cdef Py_ssize_t item, r0, xi, Tb, off
    with nogil:
        for item in prange(nitems, schedule='static', num_threads=num_threads):
            r0 = item * rows
            Tb = (min(r0 + rows, R) - r0) * TW
            off = P * (C + K) * r0 * TW
            _grad_tiles(x, dy, r0, Tb, TH, TW, ph, pw, m, vec, rows_vec, &buf[off])
        for xi in prange(P, schedule='static', num_threads=num_threads):
            for item in range(nitems):
                r0 = item * rows
                Tb = (min(r0 + rows, R) - r0) * TW
                off = P * (C + K) * r0 * TW
                # (K, Tb) @ (Tb, C) -> (K, C), added to the blocks before
                _gemm(gemm, ilp64, NO_TRANS, TRANS, K, C, Tb, &buf[off + P * C * Tb + xi * K * Tb],
                      Tb, &buf[off + xi * C * Tb], Tb, 0 if item == 0 else 1, &acc[xi, 0], C)


cdef inline floating _partials(const floating[:, :, :, ::1] m, Py_ssize_t xi, Py_ssize_t k,
                               Py_ssize_t c) noexcept nogil:
    """Σ_t m[t, xi, k, c]: the threads' partial sums of one entry, in thread order."""
    cdef Py_ssize_t t
    cdef floating acc = m[0, xi, k, c]
    for t in range(1, m.shape[0]):
        acc = acc + m[t, xi, k, c]
    return acc


cdef inline void _weight_grad_row(const floating[:, :, :, ::1] m, floating[:, :, :, ::1] dw,
                                  Py_ssize_t k) noexcept nogil:
    """dw[k, c] = Gᵀ · (Σ_t m[t, ·, k, c]) · G for every c (winograd_weight_grad)."""
    cdef Py_ssize_t C = m.shape[3], c, q, p
    cdef floating h[3][4]
    cdef floating g[16]
    cdef floating s
    for c in range(C):
        for q in range(16):
            g[q] = _partials(m, q, k, c)
        for q in range(4):
            s = (g[4 + q] + g[8 + q]) * <floating>0.5
            h[0][q] = g[q] + s
            h[1][q] = (g[4 + q] - g[8 + q]) * <floating>0.5
            h[2][q] = s + g[12 + q]
        for p in range(3):
            s = (h[p][1] + h[p][2]) * <floating>0.5
            dw[k, c, p, 0] = h[p][0] + s
            dw[k, c, p, 1] = (h[p][1] - h[p][2]) * <floating>0.5
            dw[k, c, p, 2] = s + h[p][3]


cdef inline void _weight_grad_row4(const floating[:, :, :, ::1] m, floating[:, :, :, ::1] dw,
                                   Py_ssize_t k) noexcept nogil:
    """dw[k, c] = Gᵀ · M · G for every c, M = Σ_t m[t, ·, k, c] (the threads' partial sums,
    added in thread order as they are read), F(4×4): with G = D⁻¹·G' as in
    _weight_tiles4, Gᵀ·M·G = G'ᵀ·(S ⊙ M)·G' / 576, S[a, a'] = 576 / (D[a]·D[a']), and G'ᵀ
    applied to a 6-vector v is
        (v0 − v1 − v2 + v3 + v4,  −v1 + v2 + 2v3 − 2v4,  −v1 − v2 + 4v3 + 4v4 + v5).
    In chunks of CH channels: G'ᵀ down each column a of S ⊙ M into h[3a + p], then along
    each row p of h."""
    cdef Py_ssize_t C = m.shape[3], T = m.shape[0], chunk, c0, nc, i, a, p, t
    cdef floating h[18][CH]
    cdef floating ms[6][CH]
    cdef floating v[6]
    cdef floating d[6]
    cdef floating sc[6]
    cdef floating v0, v1, v2, v3, v4, v5
    cdef const floating* mo
    d[:] = [4, 6, 6, 24, 24, 1]
    for chunk in range((C + CH - 1) // CH):
        c0 = chunk * CH
        nc = min(C - c0, <Py_ssize_t>CH)
        for a in range(6):                  # column a of G'ᵀ·(S ⊙ M): h[3a + p]
            for p in range(6):
                sc[p] = <floating>576 / (d[p] * d[a])
                mo = &m[0, 6 * p + a, k, c0]
                for i in range(nc):
                    ms[p][i] = mo[i]
                for t in range(1, T):
                    mo = &m[t, 6 * p + a, k, c0]
                    for i in range(nc):
                        ms[p][i] = ms[p][i] + mo[i]
            for i in range(nc):
                v0 = ms[0][i] * sc[0]
                v1 = ms[1][i] * sc[1]
                v2 = ms[2][i] * sc[2]
                v3 = ms[3][i] * sc[3]
                v4 = ms[4][i] * sc[4]
                v5 = ms[5][i] * sc[5]
                h[3 * a][i] = v0 - v1 - v2 + v3 + v4
                h[3 * a + 1][i] = -v1 + v2 + <floating>2 * v3 - <floating>2 * v4
                h[3 * a + 2][i] = -v1 - v2 + <floating>4 * v3 + <floating>4 * v4 + v5
        for i in range(nc):                 # row p of h·G', / 576
            for p in range(3):
                v0 = h[p][i]
                v1 = h[3 + p][i]
                v2 = h[6 + p][i]
                v3 = h[9 + p][i]
                v4 = h[12 + p][i]
                v5 = h[15 + p][i]
                dw[k, c0 + i, p, 0] = (v0 - v1 - v2 + v3 + v4) / <floating>576
                dw[k, c0 + i, p, 1] = (-v1 + v2 + <floating>2 * v3 - <floating>2 * v4) / <floating>576
                dw[k, c0 + i, p, 2] = (-v1 - v2 + <floating>4 * v3 + <floating>4 * v4 + v5) / <floating>576


def winograd_weight_grad(const floating[:, :, :, ::1] m,  # IN  (threads, T², K, C) partial Σ D[ξ] @ V[ξ]ᵀ
                         floating[:, :, :, ::1] dw,        # OUT (K, C, 3, 3)
                         int num_threads, bint vec=False):
    """dw[k, c] = Gᵀ · M[·, k, c] · G, M = Σ_t m[t] (the threads' partial sums of
    conv2d_weight_grad_winograd, added in thread order): F(2×2)'s (T² = 16: 4×4 → 3×3;
    with the rows M_a of the 4×4 matrix, h = Gᵀ·M is (M0 + (M1 + M2)/2, (M1 − M2)/2,
    (M1 + M2)/2 + M3), and the same along each row of h) or F(4×4)'s (T² = 36:
    _weight_grad_row4). One thread per k. vec: as winograd_weights' (mg_winok_weight_grad)."""
    cdef Py_ssize_t K = m.shape[2], k
    cdef bint four = m.shape[1] == 36
    vec = vec and mg_winok_ready() == 1
    with nogil:
        for k in prange(K, schedule='static', num_threads=num_threads):
            if floating is float and vec:
                mg_winok_weight_grad(&m[0, 0, 0, 0], m.shape[0], m.shape[1], K, m.shape[3], k,
                                     &dw[0, 0, 0, 0])
            elif four:
                _weight_grad_row4(m, dw, k)
            else:
                _weight_grad_row(m, dw, k)
