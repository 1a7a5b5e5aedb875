/* The direct convolution of small layers, vectorised over 16 output channels
 * (mg_conv_k16) or over 16 output pixels of a row (mg_conv_w16_*, further down).
 *
 *   y[k, i', j'] = b[k] + Σ_c Σ_p Σ_q x_pad[c, i'·sh + p·dh, j'·sw + q·dw] · w[k, c, p, q]
 *
 * for one sample, exactly the forward formula (DESIGN.md, seed 001), with the sum over k
 * done 16 output channels at a time: for a run of J output pixels of one row, each tap
 * (c, p, q) loads the 16 weights w[k0 … k0+15, c, p, q] once (wt is w transposed to
 * (c, p, q, k)) and adds them, times each pixel's input value, into J accumulators of 16
 * channels. No im2col matrix, no GEMM call: for LeNet's second layer (K = 16 outputs,
 * 6×5×5 taps, 10×10 outputs) the im2col copy cost as much as the multiplications.
 *
 * x_pad is the sample already zero-padded (C, Hp, Wp), wide enough that the last run of
 * J pixels of a row may read past OW without leaving the buffer (the caller sizes it).
 *
 * Portable: GCC compiles these kernels three times (AVX-512, AVX2+FMA, baseline x86-64)
 * and the loader picks the one this CPU runs (target_clones); mg_simd_level says which,
 * so the Python side uses this kernel only where vector units make it pay. Elsewhere
 * (other compilers or CPUs) it is one plain build and mg_simd_level() is 0.
 */
#ifndef MINIGRAD_DIRECT16_H
#define MINIGRAD_DIRECT16_H
#include <string.h>

#define MG_K16_RUN 10                      /* J: output pixels per run (LeNet's rows) */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MG_K16_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define MG_AVX512 __attribute__((target("arch=x86-64-v4")))
/* keeps v in a register: GCC would otherwise fold its load into each of the FMAs that
 * use it, loading it again for each (AVX-512 code only: 32 vector registers) */
#define MG_IN_REGISTER(v) __asm__("" : "+v"(v))
static int mg_simd_level(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return 1;
    return 0;
}
#else
#define MG_K16_CLONES
#define MG_AVX512
#define MG_IN_REGISTER(v) ((void)0)
static int mg_simd_level(void) { return 0; }
#endif

typedef float mg_v16 __attribute__((vector_size(64)));

MG_K16_CLONES
static void mg_conv_k16(const float *xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                        const float *wt, Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw,
                        const float *bias,             /* K floats, or NULL */
                        float *y, Py_ssize_t OH, Py_ssize_t OW,
                        Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw)
{
    for (Py_ssize_t oi = 0; oi < OH; oi++)
    for (Py_ssize_t oj0 = 0; oj0 < OW; oj0 += MG_K16_RUN) {
        Py_ssize_t jn = OW - oj0 < MG_K16_RUN ? OW - oj0 : MG_K16_RUN;
        for (Py_ssize_t k0 = 0; k0 < K; k0 += 16) {
            mg_v16 acc[MG_K16_RUN], b0;
            if (bias) memcpy(&b0, bias + k0, sizeof b0); else b0 = (mg_v16){0};
            for (int j = 0; j < MG_K16_RUN; j++)
                acc[j] = b0;
            for (Py_ssize_t c = 0; c < C; c++)
            for (Py_ssize_t p = 0; p < kh; p++) {
                const float *xr = xp + (c * Hp + oi * sh + p * dh) * Wp + oj0 * sw;
                const float *wr = wt + ((c * kh + p) * kw) * K + k0;
                for (Py_ssize_t q = 0; q < kw; q++) {
                    mg_v16 wv;
                    memcpy(&wv, wr + q * K, sizeof wv);
                    const float *xq = xr + q * dw;
                    for (int j = 0; j < MG_K16_RUN; j++)
                        acc[j] += wv * xq[j * sw];
                }
            }
            for (Py_ssize_t j = 0; j < jn; j++)            /* (pixel, channel) -> NCHW */
                for (int kk = 0; kk < 16; kk++)
                    y[((k0 + kk) * OH + oi) * OW + oj0 + j] = acc[j][kk];
        }
    }
}

/* The direct forward of larger layers (ResNet's stride-2 3×3 convolutions), vectorised
 * over 32 output channels in two vectors and tiled over 8 output pixels:
 *
 *   y[k, j] = b[k] + Σ_t x_pad[pix[j] + tap[t]] · w[k, t]
 *
 * the forward formula with the output pixels flattened, j = i'·OW + j', and the taps
 * t = (c, p, q): pix[j] = i'·sh·Wp + j'·sw is where pixel j's window starts in the padded
 * sample (C, Hp, Wp), tap[t] = c·Hp·Wp + p·dh·Wp + q·dw where tap t lies in a window. A
 * tile of 8 consecutive pixels (they may span rows: any OW, any stride; a 4×4 plane is two
 * tiles) × 32 channels is 16 accumulators; per tap it loads the 32 weights (wp is w as
 * (K/32, T, 32): a block's weights one stream) and 8 inputs, each broadcast, for 16
 * multiply-adds — no im2col matrix and no packing of it. Each sum runs over t in order.
 * pix has P rounded up to a multiple of 8 entries (the extra ones any valid offset; their
 * sums are dropped).
 *
 * The call computes S samples (the padded ones ldx floats apart, y's (K, P) ldy apart),
 * a block of 32 channels at a time and its taps in chunks of CT: a chunk's weights (CT·32
 * floats) stay in L1 while every tile of the S samples uses them, where a block's would
 * not (T·32 floats: 288 KB for ResNet-18's 256 → 512). Between chunks a tile's sums wait
 * in part (S · P rounded up to 8 · 32 floats) as they are; the last chunk stores them. */
#define MG_K32_PIX 8

/* Rows 0 … 7 of a 16 × 16 block (pixel r: 16 channels; rows 8 … 15 zero) stored
 * transposed: channel kk's first n pixels at y[kk·ldy …]. The transpose swaps, for d = 8,
 * 4, 2, 1, bit d of the row index with bit d of the lane index: rows i and i + d (bit d of
 * i clear) trade row i's lanes with bit d set for row i + d's lanes with bit d clear — a
 * few dozen two-input shuffles in place of 128 lane extracts and scalar stores. */
#define MG_SWAP8(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23), \
                       __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31)
#define MG_SWAP4(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27), \
                       __builtin_shufflevector(a, b, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31)
#define MG_SWAP2(a, b) __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29), \
                       __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31)
#define MG_SWAP1(a, b) __builtin_shufflevector(a, b, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30), \
                       __builtin_shufflevector(a, b, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31)
#define MG_SWAP_STAGE(m, d, SWAP)                                                          \
    for (int i = 0; i < 16; i++)                                                           \
        if (!(i & d)) {                                                                    \
            mg_v16 pair[2] = {SWAP(m[i], m[i + d])};                                       \
            m[i] = pair[0];                                                                \
            m[i + d] = pair[1];                                                            \
        }
static inline void mg_store_t16(const mg_v16 *rows, float *y, Py_ssize_t ldy, Py_ssize_t n)
{
    mg_v16 m[16];
    for (int i = 0; i < 16; i++)
        m[i] = i < MG_K32_PIX ? rows[i] : (mg_v16){0};
    MG_SWAP_STAGE(m, 8, MG_SWAP8)
    MG_SWAP_STAGE(m, 4, MG_SWAP4)
    MG_SWAP_STAGE(m, 2, MG_SWAP2)
    MG_SWAP_STAGE(m, 1, MG_SWAP1)
    if (n == MG_K32_PIX)                  /* (a constant size: stores, not a memcpy call) */
        for (int kk = 0; kk < 16; kk++)
            memcpy(y + kk * ldy, &m[kk], MG_K32_PIX * sizeof(float));
    else
        for (int kk = 0; kk < 16; kk++)
            for (Py_ssize_t r = 0; r < n; r++)
                y[kk * ldy + r] = m[kk][r];
}

MG_K16_CLONES
static void mg_conv_k32(const float *xp, Py_ssize_t ldx, Py_ssize_t S,
                        const Py_ssize_t *pix, Py_ssize_t P,
                        const Py_ssize_t *tap, Py_ssize_t T, Py_ssize_t CT,
                        const float *wp, Py_ssize_t K, const float *bias,
                        float *part, float *y, Py_ssize_t ldy)
{
    const int R = MG_K32_PIX;
    Py_ssize_t Pr = (P + R - 1) / R * R;
    for (Py_ssize_t k0 = 0; k0 < K; k0 += 32)
    for (Py_ssize_t t0 = 0; t0 < T; t0 += CT) {
        Py_ssize_t t1 = T - t0 < CT ? T : t0 + CT;
        const float *wk = wp + k0 * T;
        mg_v16 b0 = {0}, b1 = {0};
        if (bias) {
            memcpy(&b0, bias + k0, sizeof b0);
            memcpy(&b1, bias + k0 + 16, sizeof b1);
        }
        for (Py_ssize_t s = 0; s < S; s++)
        for (Py_ssize_t j0 = 0; j0 < P; j0 += R) {
            const float *xr[MG_K32_PIX];
            mg_v16 a0[MG_K32_PIX], a1[MG_K32_PIX];
            float *pt = part + (s * Pr + j0) * 32;          /* the tile's sums over t < t0 */
            for (int r = 0; r < R; r++) {
                xr[r] = xp + s * ldx + pix[j0 + r];
                if (t0 == 0) {
                    a0[r] = b0;
                    a1[r] = b1;
                } else {
                    memcpy(&a0[r], pt + 32 * r, sizeof a0[r]);
                    memcpy(&a1[r], pt + 32 * r + 16, sizeof a1[r]);
                }
            }
            for (Py_ssize_t t = t0; t < t1; t++) {
                mg_v16 w0, w1;
                memcpy(&w0, wk + 32 * t, sizeof w0);
                memcpy(&w1, wk + 32 * t + 16, sizeof w1);
                Py_ssize_t o = tap[t];
                for (int r = 0; r < R; r++) {
                    float xv = xr[r][o];
                    a0[r] += w0 * xv;
                    a1[r] += w1 * xv;
                }
            }
            if (t1 < T) {
                for (int r = 0; r < R; r++) {
                    memcpy(pt + 32 * r, &a0[r], sizeof a0[r]);
                    memcpy(pt + 32 * r + 16, &a1[r], sizeof a1[r]);
                }
            } else {                                        /* -> (K, P) */
                Py_ssize_t jn = P - j0 < R ? P - j0 : R;
                mg_store_t16(a0, y + s * ldy + k0 * P + j0, P, jn);
                mg_store_t16(a1, y + s * ldy + (k0 + 16) * P + j0, P, jn);
            }
        }
    }
}

/* ∂L/∂w of the same layers by the same tile with the roles of pixels and taps swapped
 * (DESIGN.md's ∂L/∂w = x ⋆ δ, the pixels flattened as in mg_conv_k32):
 *
 *   ∂L/∂w[k, t] = Σ_n Σ_j δ[n, k, j] · x_pad[n, pix[j] + tap[t]]
 *
 * A tile is 8 taps × 32 output channels in 16 accumulators; per output pixel j it loads
 * δ's 32 channels at j (dp is δ of the S samples as (K/32, S·P, 32): a block's channels
 * one stream, pixel after pixel) and the 8 taps' inputs of pixel j's window, each
 * broadcast, for 16 multiply-adds. acc (K/32, Tr, 32), Tr = T rounded up to 8 (tap has Tr
 * entries; the extra ones any valid offset, their sums dropped) receives += the sums over
 * the S samples in order: one chain per element across the calls of a thread. */
MG_K16_CLONES
static void mg_wgrad_k32(const float *xp, Py_ssize_t ldx, Py_ssize_t S,
                         const Py_ssize_t *pix, Py_ssize_t P,
                         const Py_ssize_t *tap, Py_ssize_t Tr,
                         const float *dp, Py_ssize_t K, float *acc)
{
    const int R = MG_K32_PIX;
    for (Py_ssize_t k0 = 0; k0 < K; k0 += 32) {
        const float *dk = dp + k0 * S * P;
        float *ak = acc + k0 * Tr;
        for (Py_ssize_t t0 = 0; t0 < Tr; t0 += R) {
            const float *xr[MG_K32_PIX];
            mg_v16 a0[MG_K32_PIX], a1[MG_K32_PIX];
            for (int r = 0; r < R; r++) {
                xr[r] = xp + tap[t0 + r];
                memcpy(&a0[r], ak + (t0 + r) * 32, sizeof a0[r]);
                memcpy(&a1[r], ak + (t0 + r) * 32 + 16, sizeof a1[r]);
            }
            for (Py_ssize_t s = 0; s < S; s++) {
                const float *ds = dk + s * P * 32;
                for (Py_ssize_t j = 0; j < P; j++) {
                    mg_v16 d0, d1;
                    memcpy(&d0, ds + 32 * j, sizeof d0);
                    memcpy(&d1, ds + 32 * j + 16, sizeof d1);
                    Py_ssize_t o = s * ldx + pix[j];
                    for (int r = 0; r < R; r++) {
                        float xv = xr[r][o];
                        a0[r] += d0 * xv;
                        a1[r] += d1 * xv;
                    }
                }
            }
            for (int r = 0; r < R; r++) {
                memcpy(ak + (t0 + r) * 32, &a0[r], sizeof a0[r]);
                memcpy(ak + (t0 + r) * 32 + 16, &a1[r], sizeof a1[r]);
            }
        }
    }
}

/* The same formula vectorised the other way: over 16 consecutive output pixels of a row
 * (column stride 1), for layers with few output channels (LeNet's first: K = 6). For a run
 * of 16 pixels, each tap (c, p, q) loads the 16 inputs x_pad[c, i'·sh + p·dh, j0+q·dw …
 * j0+q·dw+15] once and adds them, times w[k, c, p, q], into KB accumulators (one per
 * output channel k of the block); the accumulators are the output rows themselves, so
 * they are stored as they are. wt is w as (c, p, q, k) with K padded with zeros to a
 * multiple of KB; y_ld is the output's row stride (OH·OW). KB is a compile-time 8 or 16
 * so that the accumulators stay in registers. */
#define MG_W16_KERNEL(KB)                                                                  \
MG_K16_CLONES                                                                              \
static void mg_conv_w16_##KB(const float *xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,  \
                             const float *wt, Py_ssize_t K, Py_ssize_t Kp,                 \
                             Py_ssize_t kh, Py_ssize_t kw, const float *bias,              \
                             float *y, Py_ssize_t OH, Py_ssize_t OW,                       \
                             Py_ssize_t sh, Py_ssize_t dh, Py_ssize_t dw)                  \
{                                                                                          \
    for (Py_ssize_t k0 = 0; k0 < K; k0 += KB)                                              \
    for (Py_ssize_t oi = 0; oi < OH; oi++)                                                 \
    for (Py_ssize_t oj0 = 0; oj0 < OW; oj0 += 16) {                                        \
        Py_ssize_t jn = OW - oj0 < 16 ? OW - oj0 : 16;                                     \
        mg_v16 acc[KB];                                                                    \
        for (int kk = 0; kk < KB; kk++) {                                                  \
            float b = (bias && k0 + kk < K) ? bias[k0 + kk] : 0.0f;                        \
            acc[kk] = (mg_v16){0} + b;                                                     \
        }                                                                                  \
        for (Py_ssize_t c = 0; c < C; c++)                                                 \
        for (Py_ssize_t p = 0; p < kh; p++) {                                              \
            const float *xr = xp + (c * Hp + oi * sh + p * dh) * Wp + oj0;                 \
            const float *wr = wt + ((c * kh + p) * kw) * Kp + k0;                          \
            for (Py_ssize_t q = 0; q < kw; q++) {                                          \
                mg_v16 xv;                                                                 \
                memcpy(&xv, xr + q * dw, sizeof xv);                                       \
                for (int kk = 0; kk < KB; kk++)                                            \
                    acc[kk] += xv * wr[q * Kp + kk];                                       \
            }                                                                              \
        }                                                                                  \
        for (int kk = 0; kk < KB && k0 + kk < K; kk++)                                     \
            memcpy(y + (k0 + kk) * OH * OW + oi * OW + oj0, &acc[kk], jn * sizeof(float)); \
    }                                                                                      \
}
MG_W16_KERNEL(8)
MG_W16_KERNEL(16)

/* The forward at stride 1 (any dilation) over the same flat streams as mg_wgrad_w16 below:
 *
 *   y[k, f] = b[k] + Σ_t w[k, t] · xs[off[t] + f],   off[t] = c·ldx + p·dh·Wp + q·dw
 *
 * for every position f = (sample·Hp + i')·Wp + j' of the group's padded grid (those with
 * j' ≥ OW or i' ≥ OH are computed and dropped by the caller). Runs of RUNS·16 consecutive
 * positions × KB output channels are summed in RUNS·KB vector accumulators: each tap
 * loads RUNS x vectors and broadcasts KB weights (wt is w as (t, k), K padded to Kp) for
 * RUNS·KB multiply-adds. ys (K rows of ldy) receives the sums of f < L (L a multiple of
 * 16·RUNS, ldy ≥ L). The row kernel mg_conv_w16_<KB> above does the same sums one output
 * row at a time; the flat streams also pack several small planes into one run. */
/* v in all 16 lanes: a broadcast load (`{0} + v` would add 0.0 first, on the FMA ports) */
#define MG_SPLAT16(v) ((mg_v16){v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v})
#define MG_FLAT_KERNEL(KB, RUNS, TARGET, PIN)                                              \
TARGET                                                                                     \
static void mg_conv_flat_##KB(const float *xs, const Py_ssize_t *off, Py_ssize_t T,        \
                              const float *wt, Py_ssize_t Kp, Py_ssize_t K,                \
                              const float *bias, Py_ssize_t L, float *ys, Py_ssize_t ldy)  \
{                                                                                          \
    for (Py_ssize_t k0 = 0; k0 < K; k0 += KB)                                              \
    for (Py_ssize_t f0 = 0; f0 < L; f0 += 16 * RUNS) {                                     \
        mg_v16 acc[KB][RUNS];                                                              \
        for (int kk = 0; kk < KB; kk++) {                                                  \
            float b = (bias && k0 + kk < K) ? bias[k0 + kk] : 0.0f;                        \
            for (int r = 0; r < RUNS; r++)                                                 \
                acc[kk][r] = (mg_v16){0} + b;                                              \
        }                                                                                  \
        for (Py_ssize_t t = 0; t < T; t++) {                                               \
            const float *xt = xs + off[t] + f0, *wr = wt + t * Kp + k0;                    \
            mg_v16 xv[RUNS];                                                               \
            for (int r = 0; r < RUNS; r++)                                                 \
                memcpy(&xv[r], xt + 16 * r, sizeof xv[r]);                                 \
            for (int kk = 0; kk < KB; kk++) {                                              \
                mg_v16 wv = MG_SPLAT16(wr[kk]);                                            \
                PIN(wv);                                                                   \
                for (int r = 0; r < RUNS; r++)                                             \
                    acc[kk][r] += wv * xv[r];                                              \
            }                                                                              \
        }                                                                                  \
        for (int kk = 0; kk < KB && k0 + kk < K; kk++)                                     \
            memcpy(ys + (k0 + kk) * ldy + f0, acc[kk], sizeof acc[kk]);                    \
    }                                                                                      \
}

/* ∂L/∂w of a stride-1 convolution, vectorised over 16 consecutive positions of a flat
 * stream (the same sums as DESIGN.md's ∂L/∂w = x ⋆ δ):
 *
 *   ∂L/∂w[k, c, p, q] = Σ_n Σ_i' Σ_j' δ[n, k, i', j'] · x_pad[n, c, i' + p·dh, j' + q·dw]
 *
 * The caller lays a group of samples out so that every tap is one contiguous slice:
 * x_pad's planes (Hp × Wp) of the group's samples one after the other per channel
 * (channel c's stream starts at xs + c·ldx), and δ on the same grid (row length Wp, Hp
 * rows per sample, zero where j' ≥ OW or i' ≥ OH), channel k's stream at ds + k·ldd. At
 * stream position f = (sample·Hp + i')·Wp + j', tap t = (c, p, q) then reads x at
 * xs + off[t] + f with off[t] = c·ldx + p·dh·Wp + q·dw: ∂L/∂w[k, t] is the dot product of
 * δ's stream k with x's stream shifted by off[t], over L positions (a multiple of 16).
 * The zeros of δ's padding columns and rows cancel the products that straddle a row or a
 * sample (a row's trailing pad zeros may be the next row's leading ones: the caller's
 * grid, minigrad/kernels.py _flat_grid, shares them where that suffices). KB output
 * channels × 3 taps are summed at once in 3·KB vector accumulators (24 of 32 registers
 * for KB = 8, built for AVX-512 only; KB = 4 for every CPU): each step loads 3 x vectors
 * and KB δ vectors for 3·KB multiply-adds. dw (K, T) receives += the sums; the tap list
 * off is padded to a multiple of 3 (those sums are dropped) and δ's streams to a multiple
 * of KB rows (zero). */
/* The lane sums of v[0 … 7] in one vector's lanes 0 … 7, by halving: each step adds the
 * halves of two vectors into one (4 + 2 + 1 shuffled sums and a last adjacent-lane sum),
 * instead of 8 chains of 15 dependent scalar additions. */
#define MG_HALVES(a, b, ...) (__builtin_shufflevector(a, b, __VA_ARGS__))
static inline void mg_hsum8(const mg_v16 *v, float *out)
{
    mg_v16 u[4], z[2], y, r;
    for (int i = 0; i < 4; i++)           /* lanes 0-7: v[2i]'s halves, 8-15: v[2i+1]'s */
        u[i] = MG_HALVES(v[2 * i], v[2 * i + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
             + MG_HALVES(v[2 * i], v[2 * i + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int i = 0; i < 2; i++)           /* quarters: v[4i], v[4i+2], v[4i+1], v[4i+3] */
        z[i] = MG_HALVES(u[2 * i], u[2 * i + 1], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27)
             + MG_HALVES(u[2 * i], u[2 * i + 1], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    /* pairs of lanes: v0, v4, v2, v6, v1, v5, v3, v7 */
    y = MG_HALVES(z[0], z[1], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29)
      + MG_HALVES(z[0], z[1], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    r = y + MG_HALVES(y, y, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
    out[0] = r[0]; out[4] = r[2]; out[2] = r[4]; out[6] = r[6];
    out[1] = r[8]; out[5] = r[10]; out[3] = r[12]; out[7] = r[14];
}

#define MG_WGRAD_KERNEL(KB, TARGET, PIN)                                                   \
TARGET                                                                                     \
static void mg_wgrad_w16_##KB(const float *xs, const Py_ssize_t *off, Py_ssize_t T,        \
                              const float *ds, Py_ssize_t ldd, Py_ssize_t K,               \
                              Py_ssize_t L, float *dw)                                     \
{                                                                                          \
    for (Py_ssize_t k0 = 0; k0 < K; k0 += KB)                                              \
    for (Py_ssize_t t0 = 0; t0 < T; t0 += 3) {                                             \
        mg_v16 acc[KB][3];                                                                 \
        const float *x0 = xs + off[t0], *x1 = xs + off[t0 + 1], *x2 = xs + off[t0 + 2];    \
        const float *d0 = ds + k0 * ldd;                                                   \
        for (int kk = 0; kk < KB; kk++)                                                    \
            acc[kk][0] = acc[kk][1] = acc[kk][2] = (mg_v16){0};                            \
        for (Py_ssize_t f = 0; f < L; f += 16) {                                           \
            mg_v16 a, b, c;                                                                \
            memcpy(&a, x0 + f, sizeof a);                                                  \
            memcpy(&b, x1 + f, sizeof b);                                                  \
            memcpy(&c, x2 + f, sizeof c);                                                  \
            for (int kk = 0; kk < KB; kk++) {                                              \
                mg_v16 d;                                                                  \
                memcpy(&d, d0 + kk * ldd + f, sizeof d);                                   \
                PIN(d);                                                                    \
                acc[kk][0] += d * a;                                                       \
                acc[kk][1] += d * b;                                                       \
                acc[kk][2] += d * c;                                                       \
            }                                                                              \
        }                                                                                  \
        for (int j = 0; j < 3 && t0 + j < T; j++) {                                        \
            mg_v16 v[8];                                                                   \
            float sum[8];                                                                  \
            for (int kk = 0; kk < 8; kk++)                                                 \
                v[kk] = kk < KB ? acc[kk % KB][j] : (mg_v16){0};                           \
            mg_hsum8(v, sum);                                                              \
            for (int kk = 0; kk < KB && k0 + kk < K; kk++)                                 \
                dw[(k0 + kk) * T + t0 + j] += sum[kk];                                     \
        }                                                                                  \
    }                                                                                      \
}
/* Σ v[0 … n−1] in 16 lanes (then added up): the streams' copy of δ also gives ∂L/∂b. */
MG_K16_CLONES
static float mg_sum(const float *v, Py_ssize_t n)
{
    mg_v16 acc = {0}, t;
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(&t, v + i, sizeof t);
        acc += t;
    }
    float s = 0.0f;
    for (int l = 0; l < 16; l++)
        s += acc[l];
    for (; i < n; i++)
        s += v[i];
    return s;
}

#define MG_NO_PIN(v) ((void)0)
MG_WGRAD_KERNEL(4, MG_K16_CLONES, MG_NO_PIN)         /* any CPU (AVX2: 12 of 16 registers) */
MG_WGRAD_KERNEL(8, MG_AVX512, MG_IN_REGISTER)        /* AVX-512 only (simd level 2) */
MG_FLAT_KERNEL(4, 2, MG_K16_CLONES, MG_NO_PIN)       /* any CPU: 4 × 32 positions */
MG_FLAT_KERNEL(8, 3, MG_AVX512, MG_IN_REGISTER)      /* AVX-512 only: 8 × 48 positions */

#endif
