/* Winograd's kernel transforms for float32, vectorised over 16 kernels: the same formulas,
 * in the same order, as ext/winograd.pyx's _weight_tiles (F(2×2)), _weight_tiles4 (F(4×4))
 * and _weight_grad_row / _weight_grad_row4 (their adjoints, ∂L/∂w), which stay the plain
 * form and the path of other CPUs and of float64:
 *
 *   forward   u[ξ, k, c] = (G · g · Gᵀ)[ξ],  g = w[k, c]  (flip: rot180(w[c, k]))
 *             F(2×2): G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]
 *             F(4×4): 576 · G·g·Gᵀ = S ⊙ (G'·g·G'ᵀ), G' = [[1,0,0], [−1,−1,−1], [−1,1,−1],
 *                     [1,2,4], [1,−2,4], [0,0,1]], S[a, b] = 576 / (D[a]·D[b]),
 *                     D = (4, 6, 6, 24, 24, 1)
 *   adjoint   dw[k, c] = Gᵀ · M[·, k, c] · G,  M = Σ_t m[t] (the threads' partial sums, added
 *             in thread order); F(4×4): G'ᵀ·(S ⊙ M)·G' / 576
 *
 * Lane i of a vector is kernel (or channel) c0 + i. The plain loops go one kernel's 9 taps
 * at a time into the T² rows of u, and on ResNet-18's 256- and 512-channel layers they ran at
 * 2–5 GB/s written (12 % of a training step, benchmarks/RESULTS.md session 25): here the
 * 9 taps of 16 kernels are 9 gathers, the transform runs in registers, and each row ξ of
 * the 16 kernels is one 64-byte store.
 *
 * target("avx512f") with fp-contract off: no product and sum are fused into an FMA (which
 * rounds once), so every value is the plain loops' own, bit for bit. The gathers' lane
 * offsets are 32-bit (the caller passes weights of fewer than 2³¹ / 16 elements).
 * mg_winok_ready() says whether this build has them; the caller also checks that the CPU
 * does (direct16.h's mg_simd_level).
 */
#ifndef MINIGRAD_WINO_KERNELS_H
#define MINIGRAD_WINO_KERNELS_H
#include <stdint.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#include <immintrin.h>

static int mg_winok_ready(void) { return 1; }

/* the 9 taps g[3p + q] of kernels c0 … c0 + nc − 1 of row k (lanes i ≥ nc read nothing):
 * w is (Kw, Cw, 3, 3); g = w[k, c0 + i] or, with flip, rot180(w[c0 + i, k]) */
__attribute__((target("avx512f"), optimize("fp-contract=off")))
static inline void mg_winok_taps(const float *w, Py_ssize_t Cw, Py_ssize_t k, Py_ssize_t c0,
                                 Py_ssize_t nc, int flip, __m512 *g)
{
    const __mmask16 keep = (__mmask16)((1u << nc) - 1);
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 zero = _mm512_setzero_ps();
    if (flip) {                             /* g[t] = w[c0 + i, k, 8 − t] */
        const float *b = w + (c0 * Cw + k) * 9;
        const __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)(Cw * 9)));
        for (int t = 0; t < 9; t++)
            g[t] = _mm512_mask_i32gather_ps(zero, keep, idx, b + 8 - t, 4);
    } else {                                /* g[t] = w[k, c0 + i, t] */
        const float *b = w + (k * Cw + c0) * 9;
        const __m512i idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(9));
        for (int t = 0; t < 9; t++)
            g[t] = _mm512_mask_i32gather_ps(zero, keep, idx, b + t, 4);
    }
}

/* u[ξ·ld + c] for ξ < 16 (F(2×2)) or 36 (F(4×4)), c < nc, of row k: u points at u[0, k, c0]
 * and ld = K_u·C_u is the distance between rows ξ; w (Kw, Cw, 3, 3) as mg_winok_taps. */
__attribute__((target("avx512f"), optimize("fp-contract=off")))
static void mg_winok_weights(const float *w, Py_ssize_t Kw, Py_ssize_t Cw, Py_ssize_t k,
                             int flip, int four, float *u, Py_ssize_t ld, Py_ssize_t ncols)
{
    const __m512 half = _mm512_set1_ps(0.5f);
    const float d[6] = {4, 6, 6, 24, 24, 1};
    (void)Kw;
    for (Py_ssize_t c0 = 0; c0 < ncols; c0 += 16) {
        Py_ssize_t nc = ncols - c0 < 16 ? ncols - c0 : 16;
        const __mmask16 keep = (__mmask16)((1u << nc) - 1);
        __m512 g[9];
        mg_winok_taps(w, Cw, k, c0, nc, flip, g);
        float *uo = u + c0;
        if (!four) {                        /* _weight_tiles */
            __m512 h[12];
            for (int q = 0; q < 3; q++) {
                h[q] = g[q];
                h[3 + q] = (g[q] + g[3 + q] + g[6 + q]) * half;
                h[6 + q] = (g[q] - g[3 + q] + g[6 + q]) * half;
                h[9 + q] = g[6 + q];
            }
            for (int a = 0; a < 4; a++) {
                __m512 h0 = h[3 * a], h1 = h[3 * a + 1], h2 = h[3 * a + 2];
                _mm512_mask_storeu_ps(uo + (4 * a) * ld, keep, h0);
                _mm512_mask_storeu_ps(uo + (4 * a + 1) * ld, keep, (h0 + h1 + h2) * half);
                _mm512_mask_storeu_ps(uo + (4 * a + 2) * ld, keep, (h0 - h1 + h2) * half);
                _mm512_mask_storeu_ps(uo + (4 * a + 3) * ld, keep, h2);
            }
            continue;
        }
        __m512 h[18];                       /* _weight_tiles4 */
        for (int q = 0; q < 3; q++) {
            __m512 h0 = g[q], h1 = g[3 + q], h2 = g[6 + q];
            h[q] = h0;
            h[3 + q] = -(h0 + h1 + h2);
            h[6 + q] = -(h0 - h1 + h2);
            h[9 + q] = h0 + 2.0f * h1 + 4.0f * h2;
            h[12 + q] = h0 - 2.0f * h1 + 4.0f * h2;
            h[15 + q] = h2;
        }
        for (int a = 0; a < 6; a++) {
            float sa = 576.0f / d[a];
            __m512 h0 = h[3 * a], h1 = h[3 * a + 1], h2 = h[3 * a + 2];
            __m512 t[6] = {h0, -(h0 + h1 + h2), -(h0 - h1 + h2), h0 + 2.0f * h1 + 4.0f * h2,
                           h0 - 2.0f * h1 + 4.0f * h2, h2};
            for (int b = 0; b < 6; b++)
                _mm512_mask_storeu_ps(uo + (6 * a + b) * ld, keep,
                                      t[b] * _mm512_set1_ps(sa / d[b]));
        }
    }
}

/* dw[k, c] (9 values at dw + c·9) for every c < C from m (T, P, K, C), P = 16 or 36: the
 * adjoints above of row k, with the T partials added in order. */
__attribute__((target("avx512f"), optimize("fp-contract=off")))
static void mg_winok_weight_grad(const float *m, Py_ssize_t T, Py_ssize_t P, Py_ssize_t K,
                                 Py_ssize_t C, Py_ssize_t k, float *dw)
{
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i idx9 = _mm512_mullo_epi32(lane, _mm512_set1_epi32(9));
    const __m512 half = _mm512_set1_ps(0.5f), c576 = _mm512_set1_ps(576.0f);
    const float d[6] = {4, 6, 6, 24, 24, 1};
    const Py_ssize_t ld = K * C, part = P * K * C;
    for (Py_ssize_t c0 = 0; c0 < C; c0 += 16) {
        Py_ssize_t nc = C - c0 < 16 ? C - c0 : 16;
        const __mmask16 keep = (__mmask16)((1u << nc) - 1);
        const float *mo = m + k * C + c0;
        float *out = dw + (k * C + c0) * 9;
        __m512 M[36];
        for (Py_ssize_t xi = 0; xi < P; xi++) {          /* Σ_t m[t, ξ, k, c], in order */
            __m512 acc = _mm512_maskz_loadu_ps(keep, mo + xi * ld);
            for (Py_ssize_t t = 1; t < T; t++)
                acc = acc + _mm512_maskz_loadu_ps(keep, mo + t * part + xi * ld);
            M[xi] = acc;
        }
        if (P == 16) {                      /* _weight_grad_row */
            __m512 h[3][4];
            for (int q = 0; q < 4; q++) {
                __m512 s = (M[4 + q] + M[8 + q]) * half;
                h[0][q] = M[q] + s;
                h[1][q] = (M[4 + q] - M[8 + q]) * half;
                h[2][q] = s + M[12 + q];
            }
            for (int p = 0; p < 3; p++) {
                __m512 s = (h[p][1] + h[p][2]) * half;
                _mm512_mask_i32scatter_ps(out + 3 * p, keep, idx9, h[p][0] + s, 4);
                _mm512_mask_i32scatter_ps(out + 3 * p + 1, keep, idx9, (h[p][1] - h[p][2]) * half, 4);
                _mm512_mask_i32scatter_ps(out + 3 * p + 2, keep, idx9, s + h[p][3], 4);
            }
            continue;
        }
        __m512 h[18];                       /* _weight_grad_row4 */
        for (int a = 0; a < 6; a++) {
            __m512 v[6];
            for (int p = 0; p < 6; p++)
                v[p] = M[6 * p + a] * _mm512_set1_ps(576.0f / (d[p] * d[a]));
            h[3 * a] = v[0] - v[1] - v[2] + v[3] + v[4];
            h[3 * a + 1] = -v[1] + v[2] + 2.0f * v[3] - 2.0f * v[4];
            h[3 * a + 2] = -v[1] - v[2] + 4.0f * v[3] + 4.0f * v[4] + v[5];
        }
        for (int p = 0; p < 3; p++) {
            __m512 v0 = h[p], v1 = h[3 + p], v2 = h[6 + p], v3 = h[9 + p], v4 = h[12 + p],
                   v5 = h[15 + p];
            _mm512_mask_i32scatter_ps(out + 3 * p, keep, idx9,
                                      (v0 - v1 - v2 + v3 + v4) / c576, 4);
            _mm512_mask_i32scatter_ps(out + 3 * p + 1, keep, idx9,
                                      (-v1 + v2 + 2.0f * v3 - 2.0f * v4) / c576, 4);
            _mm512_mask_i32scatter_ps(out + 3 * p + 2, keep, idx9,
                                      (-v1 - v2 + 4.0f * v3 + 4.0f * v4 + v5) / c576, 4);
        }
    }
}

#else
static int mg_winok_ready(void) { return 0; }

/* never called: mg_winok_ready() is 0 */
static void mg_winok_weights(const float *w, Py_ssize_t Kw, Py_ssize_t Cw, Py_ssize_t k,
                             int flip, int four, float *u, Py_ssize_t ld, Py_ssize_t ncols)
{ (void)w; (void)Kw; (void)Cw; (void)k; (void)flip; (void)four; (void)u; (void)ld; (void)ncols; }

static void mg_winok_weight_grad(const float *m, Py_ssize_t T, Py_ssize_t P, Py_ssize_t K,
                                 Py_ssize_t C, Py_ssize_t k, float *dw)
{ (void)m; (void)T; (void)P; (void)K; (void)C; (void)k; (void)dw; }
#endif

#endif
