/* A float32 matrix product whose inner dimension is small and whose result is large:
 *
 *   C[i, j] = Σ_p A[i, p] · B[p, j]        C (m × n), A (m × k), B (k × n), k ≤ a few dozen
 *
 * A Linear layer's weight gradient is one: ∂L/∂W = Δᵀ X with k = the batch (VGG's first
 * fully connected layer: 4096 × 25088 from k = 32 rows). Each element of C is a short dot
 * product, so the work is mostly writing C: 411 MB there, 32 multiply-adds per element. A
 * general GEMM does more than that: OpenBLAS zeroes C for β = 0, then its kernel reads C
 * back and writes it again, and it packs A's panels for every block of C. This loop writes
 * each element of C once and packs only B, a chunk of columns at a time.
 *
 * Scheme: C's columns [j0, j1) in chunks of `chunk` columns. A chunk's rows of B are first
 * copied to bp panel by panel (48 columns, then 16: k × 48 consecutive floats, however far
 * apart B's rows lie; the chunk stays in L2). Then the chunk is computed 8 rows of C at a
 * time, panel after panel along the rows: 24 accumulators (8 rows × three 16-lane
 * vectors); for p = 0 … k−1 three loads of the panel's row p, eight broadcasts of
 * A[i … i+7, p] and 24 fused multiply-adds; then the 24 vectors are stored. Rows left over
 * take the same tile one row at a time; the last n mod 16 columns are summed one by one.
 * Each element is Σ_p in order p = 0, 1, …, k−1, one fused multiply-add per term.
 *
 * Only where GCC can compile AVX-512 code on x86-64 Linux (MG_SMALL_K_BUILD 1) and the CPU
 * runs it (mg_small_k_level() 2); minigrad/_blas.py asks both before it calls
 * mg_gemm_small_k, and uses OpenBLAS otherwise.
 */
#ifndef MINIGRAD_SMALL_K_H
#define MINIGRAD_SMALL_K_H
#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define MG_SMALL_K_BUILD 1
#include <immintrin.h>
#define MG_SK_TARGET __attribute__((target("avx512f")))
#define MG_SK_INLINE __attribute__((target("avx512f"), always_inline)) static inline

static int mg_small_k_level(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 2 : 0;
}

/* The R × V tile at rows i …, columns j … (V vectors of 16): C = Σ_p A[i+r, p] · B[p, j+16v]. */
MG_SK_INLINE void mg_sk_tile(const float *a, ptrdiff_t a_si, ptrdiff_t a_sp,
                             const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                             ptrdiff_t k, const int R, const int V)
{
    __m512 acc[8][3];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++)
            acc[r][v] = _mm512_setzero_ps();
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
        mg_sk_tile(a, k, 1, bp, 48, c + j, ldc, k, R, 3);
    for (; j + 16 <= je; j += 16, bp += 16 * k)
        mg_sk_tile(a, k, 1, bp, 16, c + j, ldc, k, R, 1);
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
#else
#define MG_SMALL_K_BUILD 0
static int mg_small_k_level(void) { return 0; }
static void mg_gemm_small_k(const float *a, const float *b, ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                            ptrdiff_t m, ptrdiff_t k, ptrdiff_t j0, ptrdiff_t j1,
                            ptrdiff_t chunk, float *bp)
{
    (void)chunk; (void)bp; (void)a; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)m; (void)k; (void)j0; (void)j1;               /* never called: level 0 */
}
#endif
#endif
