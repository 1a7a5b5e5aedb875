/* Winograd F(4×4, 3×3)'s tile transforms for float32, vectorised over 16 tiles: the same
 * formulas, in the same order, as ext/winograd.pyx's _input_block4, _output_block4 and
 * _grad_block4 (which stay the plain form, and the path of other CPUs and of float64):
 *
 *   input   V[6a + j][c, tile] = (Bᵀ · d · B)[a, j],  d = x_pad[n, c, 4ti − ph + (0..5), 4tj − pw + (0..5)]
 *   output  y[n, k, 4ti + a, 4tj + b] = (Aᵀ · M[·, k, tile] · A)[a, b] / 576 + bias[k]
 *   δ       D[6a + j][k, tile] = (A · Δ · Aᵀ)[a, j],  Δ = δ[n, k, 4ti + (0..3), 4tj + (0..3)]
 *
 * with Bᵀ's rows applied to a 6-vector v (first along each row of d, then down each column):
 *
 *   (4v0 − 5v2 + v4,  (v3 + v4) − 4(v1 + v2),  (v4 − v3) + 4(v1 − v2),
 *    (v4 − v2) + 2(v3 − v1),  (v4 − v2) − 2(v3 − v1),  4v1 − 5v3 + v5)
 *
 * and Aᵀ's and A's likewise (at each macro below). On small planes a tile row is two to
 * four tiles, and the scalar loops, which take a tile row's patches as one piece, run loops
 * a few iterations long per piece and channel. Here lane i of a vector is tile i of a chunk
 * of up to 16 tiles (which may span tile rows and samples, as on a 4×4 plane): entry
 * d[r][j] of all 16 patches is one masked gather — lane i reads x at base[i] + r·W + j,
 * base[i] its patch's origin, and a lane whose (row, column) falls in the padding reads 0 —,
 * the transforms run in registers, and each output (a, b) of the 16 tiles is one masked
 * scatter. The origins and masks depend on the chunk only, so they are made once
 * (mg_wino4_lanes) and serve every channel: channel c reads at x + c·H·W; the rows of the
 * channels a few ahead are prefetched (the gathers' lanes miss one by one, and the hardware
 * cannot guess the next channel's rows).
 *
 * On wide tile rows (a 32×32 plane: 8 tiles a row) the gathers cost more than the scalar
 * loops, but the input transform still pays vectorised another way: mg_wino4_input_rows
 * takes a tile row's patches a vector, each patch row read by masked loads and split into
 * its entries 4t + q by permutes.
 *
 * Offsets are 32-bit: the caller passes x, y and δ of fewer than 2³¹ elements.
 * AVX-512 only (GCC on x86-64 Linux, as direct16.h); mg_wino4_ready() says whether this
 * build has it, and the caller also checks that the CPU does (direct16.h's mg_simd_level).
 */
#ifndef MINIGRAD_WINOGRAD4_H
#define MINIGRAD_WINOGRAD4_H
#include <stdint.h>
#include <string.h>

/* the origins and masks of a chunk of nc ≤ 16 tiles: tiles c0 … c0 + nc − 1 of a block of
 * tile rows that starts at tile row r0 (TW tiles a row, TH rows a sample); tile tb is
 * tile tj = tb mod TW of row ti of sample n (tile row r0 + tb div TW = n·TH + ti).
 * base[i] = n·C·H·W + (4ti − ph)·W + (4tj − pw); bit i of rmask[r] (cmask[j]) is set when
 * row 4ti − ph + r (column 4tj − pw + j) lies inside the plane. Lanes i ≥ nc: no bits. */
#define MG_WINO4_LINES 192                 /* ≤ 16 lanes × 6 rows × 2 ends */

static Py_ssize_t mg_wino4_lanes(Py_ssize_t c0, Py_ssize_t nc, Py_ssize_t r0, Py_ssize_t TH,
                                 Py_ssize_t TW, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t ph, Py_ssize_t pw, int span, int32_t *base,
                                 uint16_t *rmask, uint16_t *cmask, int32_t *lines)
{
    Py_ssize_t nl = 0;
    for (int r = 0; r < 6; r++)
        rmask[r] = cmask[r] = 0;
    for (Py_ssize_t i = 0; i < 16; i++) {
        base[i] = 0;
        if (i >= nc)
            continue;
        Py_ssize_t tb = c0 + i, q = tb / TW, row = r0 + q, n = row / TH;
        Py_ssize_t i0 = 4 * (row - n * TH) - ph, j0 = 4 * (tb - q * TW) - pw;
        base[i] = (int32_t)((n * C * H + i0) * W + j0);
        for (int r = 0; r < span; r++) {
            if (i0 + r >= 0 && i0 + r < H)
                rmask[r] |= (uint16_t)(1u << i);
            if (j0 + r >= 0 && j0 + r < W)
                cmask[r] |= (uint16_t)(1u << i);
        }
    }
    /* where the chunk reads (the first and last column inside the plane of each of its rows),
     * for mg_wino4_input to prefetch a few channels ahead */
    for (int r = 0; r < span && lines; r++)
        for (Py_ssize_t i = 0; i < nc; i++) {
            if (!(rmask[r] >> i & 1))
                continue;
            Py_ssize_t j0 = 0, j1 = span - 1;      /* the first and last column inside */
            while (j0 < span && !(cmask[j0] >> i & 1)) j0++;
            while (j1 >= 0 && !(cmask[j1] >> i & 1)) j1--;
            if (j0 > j1)
                continue;
            int32_t ends[2] = {base[i] + (int32_t)(r * W + j0), base[i] + (int32_t)(r * W + j1)};
            for (int e = 0; e < 2; e++)
                if (nl == 0 || (lines[nl - 1] >> 4) != (ends[e] >> 4))
                    lines[nl++] = ends[e];
        }
    return nl;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>

static int mg_wino4_ready(void) { return 1; }

#define MG_WINO4_AHEAD 6                    /* channels the prefetches run ahead */

/* idx[span·r + j] = base + r·ld + j and mk[span·r + j] = rmask[r] & cmask[j]: where lane i
 * reads (or writes) entry (r, j) of its tile, and whether that entry lies in the plane */
__attribute__((target("avx512f")))
static inline void mg_wino4_entries(const int32_t *base, const uint16_t *rmask,
                                    const uint16_t *cmask, int span, Py_ssize_t ld,
                                    __m512i *idx, __mmask16 *mk)
{
    const __m512i b = _mm512_loadu_si512((const void *)base);
    for (int r = 0; r < span; r++)
        for (int j = 0; j < span; j++) {
            idx[span * r + j] = _mm512_add_epi32(b, _mm512_set1_epi32((int)(r * ld + j)));
            mk[span * r + j] = (__mmask16)(rmask[r] & cmask[j]);
        }
}

/* Bᵀ's rows applied to (v0 … v5), into o[0] … o[5] */
#define MG_BT6(v0, v1, v2, v3, v4, v5, o)                                                   \
    do {                                                                                    \
        __m512 p_ = (v4) - (v2), q_ = (v3) - (v1);                                           \
        (o)[0] = 4.0f * (v0) - 5.0f * (v2) + (v4);                                          \
        (o)[1] = ((v3) + (v4)) - 4.0f * ((v1) + (v2));                                      \
        (o)[2] = ((v4) - (v3)) + 4.0f * ((v1) - (v2));                                      \
        (o)[3] = p_ + 2.0f * q_;                                                            \
        (o)[4] = p_ - 2.0f * q_;                                                            \
        (o)[5] = 4.0f * (v1) - 5.0f * (v3) + (v5);                                          \
    } while (0)

/* s[ξ·ld + c·Tb + i] = V[ξ][c, tile i] for the chunk's nc tiles (s already points at the
 * chunk's first tile), every channel c < C; x is x[0, 0, 0, 0] of the (N, C, H, W) input,
 * base/rmask/cmask from mg_wino4_lanes. */
__attribute__((target("avx512f")))
static void mg_wino4_input_chunk(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           const int32_t *base, const uint16_t *rmask, const uint16_t *cmask,
                           const int32_t *lines, Py_ssize_t nl,
                           Py_ssize_t nc, float *s, Py_ssize_t ld, Py_ssize_t Tb)
{
    __m512i idx[36];
    __mmask16 mk[36];
    __m512 e[36];                           /* d·B: e[6r + j] = (d·B)[r, j] */
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 keep = (__mmask16)((1u << nc) - 1);
    mg_wino4_entries(base, rmask, cmask, 6, W, idx, mk);
    for (Py_ssize_t c = 0; c < C; c++) {
        const float *xc = x + c * H * W;
        if (c + MG_WINO4_AHEAD < C)
            for (Py_ssize_t l = 0; l < nl; l++)
                _mm_prefetch((const char *)(xc + MG_WINO4_AHEAD * H * W + lines[l]), _MM_HINT_T0);
        for (int r = 0; r < 6; r++) {       /* along row r of each patch: d[r]·B */
            __m512 d[6];
            for (int j = 0; j < 6; j++)
                d[j] = _mm512_mask_i32gather_ps(zero, mk[6 * r + j], idx[6 * r + j], xc, 4);
            MG_BT6(d[0], d[1], d[2], d[3], d[4], d[5], &e[6 * r]);
        }
        for (int j = 0; j < 6; j++) {       /* down column j of d·B: V[j], V[6 + j], … */
            __m512 o[6];
            MG_BT6(e[j], e[6 + j], e[12 + j], e[18 + j], e[24 + j], e[30 + j], o);
            float *so = s + j * ld + c * Tb;
            for (int a = 0; a < 6; a++)
                _mm512_mask_storeu_ps(so + 6 * a * ld, keep, o[a]);
        }
    }
}

/* The input transform of a block, as _input_block4 (the same s layout and formulas), for
 * wide tile rows, where the gathers cost more than they save: lane t of a vector is tile
 * tj0 + t of a piece of up to 16 consecutive tiles of one tile row. Row r of the piece's
 * patches is 4·cnt + 2 consecutive values of an input row, read as five vectors by masked
 * loads (lanes outside the plane read 0: the padding); entry d[r][q] of the patches, lane
 * t = the row's value 4t + q, comes out of four of them by two-source permutes (d[r][4]
 * and d[r][5] are d[r][0] and d[r][1] one tile on), and the transforms run in registers
 * as in mg_wino4_input_chunk; each V[ξ] row of the piece is one masked store. */
__attribute__((target("avx512f")))
static void mg_wino4_input_rows(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW,
                                Py_ssize_t ph, Py_ssize_t pw, float *s)
{
    const Py_ssize_t ld = C * Tb;
    /* lanes 0–7 of stride4[q]: entries q, q + 4, …, q + 28 of the pair (a, b) of vectors */
    __m512i stride4[4];
    for (int q = 0; q < 4; q++)
        stride4[q] = _mm512_setr_epi32(q, q + 4, q + 8, q + 12, q + 16, q + 20, q + 24, q + 28,
                                       q, q + 4, q + 8, q + 12, q + 16, q + 20, q + 24, q + 28);
    const __m512i next0 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __m512i next1 = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17);
    for (Py_ssize_t tb0 = 0; tb0 < Tb; ) {
        Py_ssize_t r = r0 + tb0 / TW, tj0 = tb0 % TW;
        Py_ssize_t cnt = TW - tj0 < Tb - tb0 ? TW - tj0 : Tb - tb0;
        if (cnt > 16)
            cnt = 16;
        Py_ssize_t n = r / TH, ti = r - n * TH;
        Py_ssize_t ih0 = 4 * ti - ph, iw0 = 4 * tj0 - pw, lim = 4 * cnt + 2;
        /* the piece's columns a ≤ j < e (of 0 … lim − 1) lie inside the plane */
        Py_ssize_t a = -iw0 > 0 ? -iw0 : 0, e = W - iw0 < lim ? W - iw0 : lim;
        __mmask16 cols[5];
        for (int k = 0; k < 5; k++) {
            Py_ssize_t lo = a - 16 * k, hi = e - 16 * k;
            lo = lo < 0 ? 0 : lo > 16 ? 16 : lo;
            hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
            cols[k] = hi > lo ? (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
        }
        const __mmask16 keep = (__mmask16)((1u << cnt) - 1);
        for (Py_ssize_t c = 0; c < C; c++) {
            const float *xc = x + (n * C + c) * H * W;
            __m512 ev[36];                  /* d·B: ev[6r + j] = (d·B)[r, j] */
            for (int rr = 0; rr < 6; rr++) {
                Py_ssize_t ih = ih0 + rr;
                __m512 v[5];
                if (ih >= 0 && ih < H) {    /* (masked lanes are not read) */
                    const float *p = xc + ih * W + iw0;
                    for (int k = 0; k < 5; k++)
                        v[k] = _mm512_maskz_loadu_ps(cols[k], p + 16 * k);
                } else {
                    for (int k = 0; k < 5; k++)
                        v[k] = _mm512_setzero_ps();
                }
                __m512 d[6];
                for (int q = 0; q < 4; q++)     /* d[q] lane t = row value 4t + q */
                    d[q] = _mm512_shuffle_f32x4(_mm512_permutex2var_ps(v[0], stride4[q], v[1]),
                                                _mm512_permutex2var_ps(v[2], stride4[q], v[3]),
                                                0x44);
                d[4] = _mm512_permutex2var_ps(d[0], next0, v[4]);   /* 4t + 4 */
                d[5] = _mm512_permutex2var_ps(d[1], next1, v[4]);   /* 4t + 5 */
                MG_BT6(d[0], d[1], d[2], d[3], d[4], d[5], &ev[6 * rr]);
            }
            for (int j = 0; j < 6; j++) {   /* down column j of d·B: V[j], V[6 + j], … */
                __m512 o[6];
                MG_BT6(ev[j], ev[6 + j], ev[12 + j], ev[18 + j], ev[24 + j], ev[30 + j], o);
                float *so = s + j * ld + c * Tb + tb0;
                for (int a2 = 0; a2 < 6; a2++)
                    _mm512_mask_storeu_ps(so + 6 * a2 * ld, keep, o[a2]);
            }
        }
        tb0 += cnt;
    }
}
#undef MG_BT6

/* Aᵀ's rows applied to (v0 … v5): (v0 + v1 + v2 + v3 + v4,  (v1 − v2) + 2(v3 − v4),
 * (v1 + v2) + 4(v3 + v4),  (v1 − v2) + 8(v3 − v4) + v5), into o[0], o[1], o[2], o[3] */
#define MG_AT6(v0, v1, v2, v3, v4, v5, o)                                                   \
    do {                                                                                    \
        __m512 sp_ = (v1) + (v2), dm_ = (v1) - (v2), sq_ = (v3) + (v4), dq_ = (v3) - (v4);  \
        (o)[0] = (v0) + sp_ + sq_;                                                          \
        (o)[1] = dm_ + 2.0f * dq_;                                                          \
        (o)[2] = sp_ + 4.0f * sq_;                                                          \
        (o)[3] = dm_ + 8.0f * dq_ + (v5);                                                   \
    } while (0)

/* y[n, k, 4ti + a, 4tj + b] = (Aᵀ · M[·, k, tile] · A)[a, b] / 576 + bias[k] for the
 * chunk's nc tiles (m already points at the chunk's first tile: M[ξ, k, i] at
 * m[ξ·ld + k·Tb + i]), every output channel k < K, as _output_block4; y is y[0, 0, 0, 0]
 * of the (N, K, OH, OW) output, base/rmask/cmask from mg_wino4_lanes over the output
 * plane (span 4, no padding): each output (a, b) of the 16 tiles is one masked scatter. */
__attribute__((target("avx512f")))
static void mg_wino4_output_chunk(const float *m, Py_ssize_t ld, Py_ssize_t Tb, Py_ssize_t K,
                                  const float *bias, float *y, Py_ssize_t OH, Py_ssize_t OW,
                                  const int32_t *base, const uint16_t *rmask,
                                  const uint16_t *cmask, Py_ssize_t nc)
{
    __m512i idx[16];
    __mmask16 mk[16];
    /* only the chunk's nc tiles are read: M's last rows end at the scratch row's end */
    const __mmask16 keep = (__mmask16)((1u << nc) - 1);
    mg_wino4_entries(base, rmask, cmask, 4, OW, idx, mk);
    for (Py_ssize_t k = 0; k < K; k++) {
        __m512 f[24];                       /* Aᵀ·M: f[6a + j] */
        const float *mk0 = m + k * Tb;
        const __m512 bk = _mm512_set1_ps(bias ? bias[k] : 0.0f);
        for (int j = 0; j < 6; j++) {
            __m512 v[6], o[4];
            for (int r = 0; r < 6; r++)
                v[r] = _mm512_maskz_loadu_ps(keep, mk0 + (6 * r + j) * ld);
            MG_AT6(v[0], v[1], v[2], v[3], v[4], v[5], o);
            for (int a = 0; a < 4; a++)
                f[6 * a + j] = o[a];
        }
        float *yk = y + k * OH * OW;
        for (int a = 0; a < 4; a++) {       /* row a of (Aᵀ·M)·A */
            __m512 o[4];
            MG_AT6(f[6 * a], f[6 * a + 1], f[6 * a + 2], f[6 * a + 3], f[6 * a + 4], f[6 * a + 5], o);
            for (int j = 0; j < 4; j++)
                _mm512_mask_i32scatter_ps(yk, mk[4 * a + j], idx[4 * a + j],
                                          o[j] / 576.0f + bk, 4);
        }
    }
}
#undef MG_AT6

/* A (6×4) applied to (v0 … v3): (v0,  (v0 + v2) + (v1 + v3),  (v0 + v2) − (v1 + v3),
 * (v0 + 4v2) + (2v1 + 8v3),  (v0 + 4v2) − (2v1 + 8v3),  v3), into o[0] … o[5] */
#define MG_A4(v0, v1, v2, v3, o)                                                            \
    do {                                                                                    \
        __m512 p02_ = (v0) + (v2), p13_ = (v1) + (v3);                                      \
        __m512 q02_ = (v0) + 4.0f * (v2), q13_ = 2.0f * (v1) + 8.0f * (v3);                 \
        (o)[0] = (v0);                                                                      \
        (o)[1] = p02_ + p13_;                                                               \
        (o)[2] = p02_ - p13_;                                                               \
        (o)[3] = q02_ + q13_;                                                               \
        (o)[4] = q02_ - q13_;                                                               \
        (o)[5] = (v3);                                                                      \
    } while (0)

/* s[ξ·ld + k·Tb + i] = (A · Δ · Aᵀ)[ξ] for the chunk's nc tiles (s already points at the
 * chunk's first tile), every channel k < K, Δ = dy[n, k, 4ti + (0..3), 4tj + (0..3)] (zero
 * outside OH×OW), as _grad_block4; dy is dy[0, 0, 0, 0], base/rmask/cmask from
 * mg_wino4_lanes over δ's plane (span 4, no padding): each Δ[r][j] of the 16 tiles is one
 * masked gather. */
__attribute__((target("avx512f")))
static void mg_wino4_grad_chunk(const float *dy, Py_ssize_t K, Py_ssize_t OH, Py_ssize_t OW,
                          const int32_t *base, const uint16_t *rmask, const uint16_t *cmask,
                          Py_ssize_t nc, float *s, Py_ssize_t ld, Py_ssize_t Tb)
{
    __m512i idx[16];
    __mmask16 mk[16];
    __m512 e[24];                           /* A along Δ's rows: e[6r + a] */
    const __m512 zero = _mm512_setzero_ps();
    const __mmask16 keep = (__mmask16)((1u << nc) - 1);
    mg_wino4_entries(base, rmask, cmask, 4, OW, idx, mk);
    for (Py_ssize_t k = 0; k < K; k++) {
        const float *dk = dy + k * OH * OW;
        for (int r = 0; r < 4; r++) {
            __m512 v[4];
            for (int j = 0; j < 4; j++)
                v[j] = _mm512_mask_i32gather_ps(zero, mk[4 * r + j], idx[4 * r + j], dk, 4);
            MG_A4(v[0], v[1], v[2], v[3], &e[6 * r]);
        }
        for (int j = 0; j < 6; j++) {       /* A down column j of e: D[j], D[6 + j], … */
            __m512 o[6];
            MG_A4(e[j], e[6 + j], e[12 + j], e[18 + j], o);
            float *so = s + j * ld + k * Tb;
            for (int a = 0; a < 6; a++)
                _mm512_mask_storeu_ps(so + 6 * a * ld, keep, o[a]);
        }
    }
}
#undef MG_A4

/* The block entry points (ext/winograd.pyx's _input_block4, _output_block4 and
 * _grad_block4 with their layouts): the Tb tiles of a block of tile rows from tile row r0
 * (TW tiles a row, TH rows a sample), in chunks of 16 — each chunk's origins and masks
 * made once, then every channel. */
static void mg_wino4_input(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW,
                           Py_ssize_t ph, Py_ssize_t pw, float *s)
{
    int32_t base[16], lines[MG_WINO4_LINES];
    uint16_t rmask[6], cmask[6];
    for (Py_ssize_t c0 = 0; c0 < Tb; c0 += 16) {
        Py_ssize_t nc = Tb - c0 < 16 ? Tb - c0 : 16;
        Py_ssize_t nl = mg_wino4_lanes(c0, nc, r0, TH, TW, C, H, W, ph, pw, 6, base, rmask,
                                       cmask, lines);
        mg_wino4_input_chunk(x, C, H, W, base, rmask, cmask, lines, nl, nc, s + c0, C * Tb, Tb);
    }
}

static void mg_wino4_output(const float *m, Py_ssize_t Tb, const float *bias, float *y,
                            Py_ssize_t K, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t r0,
                            Py_ssize_t TH, Py_ssize_t TW)
{
    int32_t base[16];
    uint16_t rmask[6], cmask[6];
    for (Py_ssize_t c0 = 0; c0 < Tb; c0 += 16) {
        Py_ssize_t nc = Tb - c0 < 16 ? Tb - c0 : 16;
        mg_wino4_lanes(c0, nc, r0, TH, TW, K, OH, OW, 0, 0, 4, base, rmask, cmask, NULL);
        mg_wino4_output_chunk(m + c0, K * Tb, Tb, K, bias, y, OH, OW, base, rmask, cmask, nc);
    }
}

static void mg_wino4_grad(const float *dy, Py_ssize_t K, Py_ssize_t OH, Py_ssize_t OW,
                          Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW, float *s)
{
    int32_t base[16];
    uint16_t rmask[6], cmask[6];
    for (Py_ssize_t c0 = 0; c0 < Tb; c0 += 16) {
        Py_ssize_t nc = Tb - c0 < 16 ? Tb - c0 : 16;
        mg_wino4_lanes(c0, nc, r0, TH, TW, K, OH, OW, 0, 0, 4, base, rmask, cmask, NULL);
        mg_wino4_grad_chunk(dy, K, OH, OW, base, rmask, cmask, nc, s + c0, K * Tb, Tb);
    }
}

#else
static int mg_wino4_ready(void) { return 0; }

/* never called: mg_wino4_ready() is 0 */
static void mg_wino4_input_rows(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW,
                                Py_ssize_t ph, Py_ssize_t pw, float *s)
{ (void)x; (void)C; (void)H; (void)W; (void)r0; (void)Tb; (void)TH; (void)TW; (void)ph; (void)pw; (void)s; }

static void mg_wino4_input(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW,
                           Py_ssize_t ph, Py_ssize_t pw, float *s)
{ (void)x; (void)C; (void)H; (void)W; (void)r0; (void)Tb; (void)TH; (void)TW; (void)ph; (void)pw; (void)s; }

static void mg_wino4_output(const float *m, Py_ssize_t Tb, const float *bias, float *y,
                            Py_ssize_t K, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t r0,
                            Py_ssize_t TH, Py_ssize_t TW)
{ (void)m; (void)Tb; (void)bias; (void)y; (void)K; (void)OH; (void)OW; (void)r0; (void)TH; (void)TW; }

static void mg_wino4_grad(const float *dy, Py_ssize_t K, Py_ssize_t OH, Py_ssize_t OW,
                          Py_ssize_t r0, Py_ssize_t Tb, Py_ssize_t TH, Py_ssize_t TW, float *s)
{ (void)dy; (void)K; (void)OH; (void)OW; (void)r0; (void)Tb; (void)TH; (void)TW; (void)s; }
#endif

#endif
