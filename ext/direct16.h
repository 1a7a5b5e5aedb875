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

#endif
