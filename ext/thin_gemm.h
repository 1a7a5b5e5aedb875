/* float32 matrix products with one thin dimension — a batch of a few dozen rows — and a
 * large operand or result, as a Linear layer has them:
 *
 *   C[i, j] = Σ_p A[i, p] · B[p, j]        C (m × n), A (m × k), B (k × n), all row by row
 *
 *   mg_gemm_small_k  k thin: ∂L/∂W = Δᵀ X, a large result (VGG's fc1: 4096 × 25088 floats,
 *                    411 MB, from k = 32). The work is mostly writing C, and a general GEMM
 *                    does more than that: OpenBLAS zeroes C for β = 0, then its kernel
 *                    reads C back and writes it again. This loop writes each element once.
 *   mg_gemm_small_m  m thin: ∂L/∂x = δ W, B large (411 MB again), read once along its rows.
 *   mg_gemm_small_n  n thin: the forward yᵀ = W Xᵀ, A large, read once along its rows.
 * For the last two the work is reading the large operand; OpenBLAS first copies all of it
 * into packed panels, these loops read it where it lies.
 *
 * One tile does the arithmetic of all three (mg_sk_tile): R rows × V vectors of 16 columns
 * of C in R·V ≤ 24 accumulators; for each p, V loads of B's row p, R broadcasts of
 * A[i … i+R−1, p] and R·V fused multiply-adds. The loops around it choose the blocking:
 *
 *   small_k  C's columns in chunks; a chunk's rows of B first copied to bp panel by panel
 *            (48 columns, then 16: k × 48 consecutive floats, however far apart B's rows
 *            lie; the chunk stays in L2); then 8 rows × 48 columns at a time along C's rows.
 *   small_m  C's columns in chunks (C's m × chunk block stays in L2), B's rows in blocks of
 *            kb; per block, panel by panel (48, then 16 columns), C's rows 8 at a time, so a
 *            panel of B comes from memory for the first 8 rows and from L1 for the rest.
 *   small_n  B's rows in blocks of kb (in L2); per block, C's rows 12 at a time over 32
 *            columns (12 × 2 accumulators), A's 12 rows read along.
 * Where B's rows come in blocks, each block continues the sums of the block before (the
 * accumulators start from C). Rows left over take the same tile one row at a time; the
 * last n mod 16 columns are summed one by one (mg_sk_columns). Every element of C, in all
 * three, is Σ_p in order p = 0, 1, …, k−1 with one fused multiply-add per term: the same
 * bits whichever loop, blocking or thread computes it.
 *
 * Only where GCC can compile AVX-512 code on x86-64 Linux (MG_THIN_BUILD 1) and the CPU
 * runs it (mg_thin_level() 2); minigrad/_blas.py asks both before it calls these loops,
 * and uses OpenBLAS otherwise.
 */
#ifndef MINIGRAD_THIN_GEMM_H
#define MINIGRAD_THIN_GEMM_H
#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MG_THIN_BUILD 1
#include <immintrin.h>
#define MG_SK_TARGET __attribute__((target("avx512f")))
#define MG_SK_INLINE __attribute__((target("avx512f"), always_inline)) static inline

static int mg_thin_level(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 2 : 0;
}

/* The R × V tile at rows i …, columns j … (V vectors of 16): C = Σ_p A[i+r, p] · B[p, j+16v]
 * over p = 0 … k−1, from 0, or (more) from C's values: a sum continued over a block of p. */
MG_SK_INLINE void mg_sk_tile(const float *a, ptrdiff_t a_si, ptrdiff_t a_sp,
                             const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                             ptrdiff_t k, const int R, const int V, int more)
{
    __m512 acc[12][3];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = more ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (ptrdiff_t p = 0; p < k; p++) {
        __m512 bv[3];
        for (int v = 0; v < V; v++)
            bv[v] = _mm512_loadu_ps(b + p * ldb + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 av = _mm512_set1_ps(a[r * a_si + p * a_sp]);
            for (int v = 0; v < V; v++)
                acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

/* Rows i … i+R−1 of C, columns jc ≤ j < je: the panels of 48, then of 16, packed in bp
 * (panel after panel, each k rows of its width), then the last columns one by one from b. */
MG_SK_INLINE void mg_sk_rows(const float *a, ptrdiff_t k, const float *bp,
                             const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                             ptrdiff_t jc, ptrdiff_t je, const int R)
{
    ptrdiff_t j = jc;
    for (; j + 48 <= je; j += 48, bp += 48 * k)
        mg_sk_tile(a, k, 1, bp, 48, c + j, ldc, k, R, 3, 0);
    for (; j + 16 <= je; j += 16, bp += 16 * k)
        mg_sk_tile(a, k, 1, bp, 16, c + j, ldc, k, R, 1, 0);
    for (; j < je; j++)                         /* the last n mod 16 columns */
        for (int r = 0; r < R; r++) {
            float s = 0;
            for (ptrdiff_t p = 0; p < k; p++)
                s = __builtin_fmaf(a[r * k + p], b[p * ldb + j], s);
            c[r * ldc + j] = s;
        }
}

/* Columns j0 ≤ j < j1 of C, every row; A (m × k) stored row by row, B[p, j] = b[p·ldb + j],
 * C[i, j] = c[i·ldc + j]; bp: room for k × chunk floats (chunk a multiple of 48). */
MG_SK_TARGET
static void mg_gemm_small_k(const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                            ptrdiff_t m, ptrdiff_t k, ptrdiff_t j0, ptrdiff_t j1,
                            ptrdiff_t chunk, float *bp)
{
    for (ptrdiff_t jc = j0; jc < j1; jc += chunk) {
        ptrdiff_t je = j1 - jc < chunk ? j1 : jc + chunk;
        float *dst = bp;
        ptrdiff_t j = jc;
        for (; j + 16 <= je; j += (je - j >= 48 ? 48 : 16)) {
            ptrdiff_t w = je - j >= 48 ? 48 : 16;
            for (ptrdiff_t p = 0; p < k; p++, dst += w)
                memcpy(dst, b + p * ldb + j, (size_t)w * sizeof(float));
        }
        ptrdiff_t i = 0;
        for (; i + 8 <= m; i += 8)
            mg_sk_rows(a + i * k, k, bp, b, ldb, c + i * ldc, ldc, jc, je, 8);
        for (; i < m; i++)
            mg_sk_rows(a + i * k, k, bp, b, ldb, c + i * ldc, ldc, jc, je, 1);
    }
}
/* One panel (V vectors of columns) of C's rows i0 ≤ i < i1, R rows at a time, then one by
 * one: A[i, p] = a[i·lda + p] for the kk values of p of this block. */
MG_SK_INLINE void mg_sk_panel(const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                              float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t kk,
                              const int R, const int V, int more)
{
    ptrdiff_t i = i0;
    for (; i + R <= i1; i += R)
        mg_sk_tile(a + i * lda, lda, 1, b, ldb, c + i * ldc, ldc, kk, R, V, more);
    for (; i < i1; i++)
        mg_sk_tile(a + i * lda, lda, 1, b, ldb, c + i * ldc, ldc, kk, 1, V, more);
}

/* The last columns jt ≤ j < je of rows i0 ≤ i < i1, one by one (fewer than 16). */
MG_SK_TARGET
static void mg_sk_columns(const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                          float *c, ptrdiff_t ldc, ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t k,
                          ptrdiff_t jt, ptrdiff_t je)
{
    for (ptrdiff_t i = i0; i < i1; i++)
        for (ptrdiff_t j = jt; j < je; j++) {
            float s = 0;
            for (ptrdiff_t p = 0; p < k; p++)
                s = __builtin_fmaf(a[i * lda + p], b[p * ldb + j], s);
            c[i * ldc + j] = s;
        }
}

/* A few rows of C from a large B, read once (∂L/∂x = δ W of a Linear layer: m = the batch):
 * columns j0 ≤ j < j1 of C (m × n) = A (m × k) · B (k × n), all three stored row by row.
 * The columns go in chunks of `chunk` (C's m × chunk block stays in L2), each chunk down
 * B's rows in blocks of kb (B's kb × chunk block read along its rows, once from memory),
 * each block panel by panel (48 columns, then 16) and, within a panel, C's rows 8 at a
 * time, the sums continued from the block before: the panel's kb × 48 floats of B are read
 * from memory for the first 8 rows and from L1 for the others. */
MG_SK_TARGET
static void mg_gemm_small_m(const float *a, const float *b, ptrdiff_t ldb, float *c,
                            ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t k, ptrdiff_t j0, ptrdiff_t j1,
                            ptrdiff_t chunk, ptrdiff_t kb)
{
    for (ptrdiff_t jc = j0; jc < j1; jc += chunk) {
        ptrdiff_t je = j1 - jc < chunk ? j1 : jc + chunk, jt = jc + (je - jc) / 16 * 16;
        for (ptrdiff_t p0 = 0; p0 < k; p0 += kb) {
            ptrdiff_t kk = k - p0 < kb ? k - p0 : kb;
            const float *ap = a + p0, *bp = b + p0 * ldb;
            for (ptrdiff_t j = jc; j < jt; j += (jt - j >= 48 ? 48 : 16)) {
                if (jt - j >= 48)
                    mg_sk_panel(ap, k, bp + j, ldb, c + j, ldc, 0, m, kk, 8, 3, p0 > 0);
                else
                    mg_sk_panel(ap, k, bp + j, ldb, c + j, ldc, 0, m, kk, 8, 1, p0 > 0);
            }
        }
        mg_sk_columns(a, k, b, ldb, c, ldc, 0, m, k, jt, je);
    }
}

/* A few columns of C from a large A, read once (a Linear layer's yᵀ = W Xᵀ: n = the
 * batch): rows i0 ≤ i < i1 of C (m × n) = A (m × k) · B (k × n), all stored row by row. B's
 * rows in blocks of kb (kb × n floats of B, in L2), each block for all the rows, 12 at a
 * time: 12 × 2 accumulators over 32 columns (then 16), A's 12 rows read along, once; the
 * sums continued from the block before. */
MG_SK_TARGET
static void mg_gemm_small_n(const float *a, const float *b, float *c, ptrdiff_t n, ptrdiff_t k,
                            ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t kb)
{
    ptrdiff_t jt = n / 16 * 16;
    for (ptrdiff_t p0 = 0; p0 < k; p0 += kb) {
        ptrdiff_t kk = k - p0 < kb ? k - p0 : kb;
        const float *ap = a + p0, *bp = b + p0 * n;
        for (ptrdiff_t j = 0; j < jt; j += (jt - j >= 32 ? 32 : 16)) {
            if (jt - j >= 32)
                mg_sk_panel(ap, k, bp + j, n, c + j, n, i0, i1, kk, 12, 2, p0 > 0);
            else
                mg_sk_panel(ap, k, bp + j, n, c + j, n, i0, i1, kk, 12, 1, p0 > 0);
        }
    }
    mg_sk_columns(a, k, b, n, c, n, i0, i1, k, jt, n);
}
#else
#define MG_THIN_BUILD 0
static int mg_thin_level(void) { return 0; }
static void mg_gemm_small_k(const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                            ptrdiff_t m, ptrdiff_t k, ptrdiff_t j0, ptrdiff_t j1,
                            ptrdiff_t chunk, float *bp)
{
    (void)chunk; (void)bp; (void)a; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)m; (void)k; (void)j0; (void)j1;               /* never called: level 0 */
}
static void mg_gemm_small_m(const float *a, const float *b, ptrdiff_t ldb, float *c,
                            ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t k, ptrdiff_t j0, ptrdiff_t j1,
                            ptrdiff_t chunk, ptrdiff_t kb)
{
    (void)a; (void)b; (void)ldb; (void)c; (void)ldc; (void)m; (void)k; (void)j0; (void)j1;
    (void)chunk; (void)kb;                              /* never called: level 0 */
}
static void mg_gemm_small_n(const float *a, const float *b, float *c, ptrdiff_t n, ptrdiff_t k,
                            ptrdiff_t i0, ptrdiff_t i1, ptrdiff_t kb)
{
    (void)a; (void)b; (void)c; (void)n; (void)k; (void)i0; (void)i1; (void)kb;
}
#endif
#endif
