# BatchNorm kernels over the channel axis of an (N, C, L) array (L = H·W, or 1).
#
# The formulas (minigrad/ops/norm.py, BatchNorm), per channel c over its n = N·L values,
# with x̂ = (x − μ) / σ̂, σ̂ = √(σ² + eps), γ, β the weight and bias:
#
#   forward     μ = ⟨x⟩,  σ² = ⟨(x − μ)²⟩ (biased),  y = γ · x̂ + β
#   backward    ∂L/∂β = Σ δ,  ∂L/∂γ = Σ δ · x̂,
#               ∂L/∂x = γ/σ̂ · (δ − ⟨δ⟩ − x̂ · ⟨δ · x̂⟩)          (training)
#               ∂L/∂x = γ/σ̂ · δ                                  (evaluation)
#
# NumPy computes these in about eight passes over the activation with a temporary array
# each. Here:
#
#   batchnorm_stats       one pass: Σ (x − s) and Σ (x − s)² in double precision, with the
#                         shift s = the channel's first value (so that the difference of
#                         the two sums does not cancel when |μ| ≫ σ); then
#                         μ = s + Σ(x − s)/n,  σ² = Σ(x − s)²/n − (Σ(x − s)/n)²
#                         The pass goes channel by channel (each thread its channels), or,
#                         on short rows, through memory in order (each thread its rows,
#                         partial sums per channel, added up after): see `by_rows`. Rows
#                         under 32 values (planes of 4×4 and below) go by blocks of whole
#                         channels, a block's values of every sample side by side: the
#                         flat loops, MINIGRAD_BN_FLAT (so the elementwise passes too).
#   batchnorm_affine      one pass: y = a · (x − μ) + β with a = γ/σ̂  (= γ x̂ + β), and
#                         max(y, 0) in the same pass for BatchNorm followed by ReLU
#                         (min(max(y, 0), hi) for ReLU6)
#   batchnorm_grad_sums   one pass over x and δ: Σ δ and Σ δ · (x − μ)  (∂L/∂β and σ̂ · ∂L/∂γ)
#                         — with `mask` r, of δ where r > 0 (BatchNorm followed by ReLU:
#                         ReLU's backward read in, never written out; with `hi`, where
#                         0 < r < hi, ReLU6's; so batchnorm_input_grad)
#   batchnorm_input_grad  one pass: ∂L/∂x = a · δ + k · (x − μ) + m, with, from the line
#                         above, a = γ/σ̂, k = −a · ∂L/∂γ / (n σ̂), m = −a · ∂L/∂β / n
#                         (training; k = m = 0 in evaluation)
#
# so the forward saves x itself (the graph holds it anyway) instead of a copy x̂.
#
# Contract: the Python side (minigrad/ops/norm.py) passes C-contiguous arrays of one dtype,
# x and δ of shape (N, C, L) with N·L ≥ 1, the per-channel arrays of shape (C,); bounds
# checks are off by default (see setup.py). Threads split the channels (reductions
# channel by channel; every pass on short rows, by blocks of channels), or the (n, c) rows
# (the elementwise passes, and the reductions through memory in order).
from cython.parallel cimport prange, threadid
from libc.math cimport sqrt
from libc.stdlib cimport calloc, free, malloc
cimport cython

ctypedef fused floating:
    float
    double

# Work smaller than this runs on one thread: spinning up a team costs more. The
# elementwise passes go in blocks of about ROW_BLOCK values.
cdef enum:
    GRAIN = 32768
    ROW_BLOCK = 4096

# The reductions (Σ per channel) go through memory in order, each thread a range of (n, c)
# rows with partial sums per channel, when rows are shorter than ROWS_MAX_L values and
# the pass would otherwise follow at least ROWS_MIN_STREAMS streams at once. Channel by
# channel, a pass walks the N rows of a channel side by side, C·L values apart: N
# streams per array read, each a few cache lines a row on small planes. With many
# streams the hardware prefetcher loses them (cold, 128×64×7²: 0.37–0.39 ms channel by
# channel, 0.12–0.14 ms in order; 128×32×14²: 0.41, 0.20); with few it keeps up and the
# channel order was the faster one (8×256×16²: 0.12 against 0.17; 32×144×16² for μ, σ²
# (32 streams): 0.26 against 0.35, for the backward's sums over x and δ (64): 0.65
# against 0.37). Longer rows stream well either way.
cdef enum:
    ROWS_MAX_L = 1024
    ROWS_MIN_STREAMS = 48


# The loops, as C functions GCC builds three times (AVX-512, AVX2, baseline x86-64) for the
# loader to pick the one this CPU runs (target_clones, as in ext/direct16.h; one plain build
# elsewhere): each pass is one or two reads and a write per value, which the baseline
# build's two-lane double arithmetic could not keep up with. Each call covers a channel or
# a range of (n, c) rows; rows under MG_BN_VECTOR_MIN_L values take the flat loops below
# (or, summed channel by channel when asked, by_rows = 0, the baseline build, `_short`).
#   channel sums  s1 = Σ (x − s), s2 = Σ (x − s)·(y − t) over channel c's N rows, in double.
#                 For μ and σ² (y = x, t = s) the loops square d = x − s instead: x is
#                 read and converted once, the same numbers bit for bit, 0.71–0.85× the
#                 time on ResNet's and DenseNet's shapes (benchmarks/RESULTS.md, session 22).
#                 As plain loops these are one chain of dependent additions (one per 4
#                 cycles); the `omp simd` reduction lets the compiler keep a partial sum per
#                 vector lane (and unroll), which reorders the additions: the result differs
#                 from a serial sum by rounding only. (Without OpenMP the pragma is ignored.)
#   affine        y = a[c] · (x − μ[c]) + b[c]            over rows r0 … r1−1 (c = r mod C)
#   input grad    dx = a[c] · δ + k[c] · (x − μ[c]) + m[c]  over rows r0 … r1−1
cdef extern from *:
    """
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define MG_BN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define MG_BN_CLONES
    #endif
    #include <stdint.h>
    #include <string.h>
    /* g where 0 < q and not q ≥ hi, else 0 — the backward of ReLU (hi NaN: q ≥ NaN is
       never true, so the test is q > 0) or of ReLU6 (hi = 6: 0 < q < 6), δ masked by the
       forward's output q — as a bitwise and (all ones or all zeros) rather than a select:
       inside the sums' `omp simd` reductions GCC 12 did not vectorise the select (a branch
       per value, half of them mispredicted: 128×16×28², 3.7 ms against 0.23 unmasked).
       The same value as the select, NaN and infinities included. */
    static inline float mg_bn_keep_f(float q, float hi, float g) {
        uint32_t b;
        memcpy(&b, &g, sizeof b);
        b &= 0u - (uint32_t)((q > 0) & !(q >= hi));
        memcpy(&g, &b, sizeof b);
        return g;
    }
    static inline double mg_bn_keep_d(double q, double hi, double g) {
        uint64_t b;
        memcpy(&b, &g, sizeof b);
        b &= (uint64_t)0 - (uint64_t)((q > 0) & !(q >= hi));
        memcpy(&g, &b, sizeof b);
        return g;
    }
    #define MG_BN_KEEP(q, hi, g) _Generic((g), float: mg_bn_keep_f,                     \
                                           double: mg_bn_keep_d)(q, hi, g)
    #define MINIGRAD_BN_LOOPS(SUF, T, ATTR)                                                \
    /* a += Σ (x − s), b += Σ (x − s)·(y − t) over one row of L values (x where 0 < q < hi \
       when q is not NULL); inlined into the builds below, so built for each of them. */  \
    static inline __attribute__((always_inline))                                       \
    void bn_row_reduce_##SUF(const T *xr, const T *yr, const T *qr, T hi,              \
                             Py_ssize_t L, double s, double t, double *pa, double *pb) { \
        double a = *pa, b = *pb;                                                       \
        if (qr)                                                                        \
            _Pragma("omp simd reduction(+:a, b)")                                      \
            for (Py_ssize_t l = 0; l < L; l++) {                                       \
                T g = MG_BN_KEEP(qr[l], hi, xr[l]);  /* x where 0 < q < hi */          \
                double d = (double)g - s;                                              \
                a += d;                                                                \
                b += d * ((double)yr[l] - t);                                          \
            }                                                                          \
        else if (yr == xr && t == s)        /* μ, σ²: d·d, the same number, one read */\
            _Pragma("omp simd reduction(+:a, b)")                                      \
            for (Py_ssize_t l = 0; l < L; l++) {                                       \
                double d = (double)xr[l] - s;                                          \
                a += d;                                                                \
                b += d * d;                                                            \
            }                                                                          \
        else                                                                           \
            _Pragma("omp simd reduction(+:a, b)")                                      \
            for (Py_ssize_t l = 0; l < L; l++) {                                       \
                double d = (double)xr[l] - s;                                          \
                a += d;                                                                \
                b += d * ((double)yr[l] - t);                                          \
            }                                                                          \
        *pa = a;                                                                       \
        *pb = b;                                                                       \
    }                                                                                  \
    ATTR                                                                               \
    static void bn_channel_sums_##SUF(const T *x, const T *y, const T *q, Py_ssize_t qs,\
                                      T hi, Py_ssize_t N,                              \
                                      Py_ssize_t C, Py_ssize_t L, Py_ssize_t c,        \
                                      double s, double t, double *s1, double *s2) {    \
        double a = 0, b = 0;                                                           \
        for (Py_ssize_t n = 0; n < N; n++) {                                           \
            const T *xr = x + (n * C + c) * L, *yr = y + (n * C + c) * L;              \
            const T *qr = q ? q + (n * C + c) * qs : NULL;                             \
            bn_row_reduce_##SUF(xr, yr, qr, hi, L, s, t, &a, &b);                      \
        }                                                                              \
        *s1 = a;                                                                       \
        *s2 = b;                                                                       \
    }                                                                                  \
    ATTR                                                                               \
    static void bn_row_sums_##SUF(const T *x, const T *y, const T *q, Py_ssize_t qs,   \
                                  T hi, Py_ssize_t r0,                                 \
                                  Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L,           \
                                  const double *s, const double *t, double *s1,        \
                                  double *s2) {                                        \
        for (Py_ssize_t r = r0, c = r0 % C; r < r1; r++, c = c + 1 < C ? c + 1 : 0) { \
            double a = 0, b = 0, sc = s[c], tc = t[c];                                 \
            const T *xr = x + r * L, *yr = y + r * L, *qr = q ? q + r * qs : NULL;     \
            bn_row_reduce_##SUF(xr, yr, qr, hi, L, sc, tc, &a, &b);                    \
            s1[c] += a;                                                                \
            s2[c] += b;                                                                \
        }                                                                              \
    }                                                                                  \
    ATTR                                                                               \
    static void bn_affine_rows_##SUF(const T *x, T *y, Py_ssize_t r0, Py_ssize_t r1,   \
                                     Py_ssize_t C, Py_ssize_t L, const T *a,           \
                                     const T *mu, const T *b, int relu, T hi,          \
                                     const T *z) {                                     \
        for (Py_ssize_t r = r0; r < r1; r++) {                                         \
            Py_ssize_t c = r % C;                                                      \
            T ac = a[c], mc = mu[c], bc = b[c];                                        \
            const T *xr = x + r * L, *zr = z ? z + r * L : NULL;                       \
            T *yr = y + r * L;                                                         \
            if (zr)                             /* max(y + z, 0): a residual sum, ReLU */ \
                for (Py_ssize_t l = 0; l < L; l++) {                                   \
                    T v = ac * (xr[l] - mc) + bc;                                      \
                    v = v + zr[l];                                                     \
                    yr[l] = v <= 0 ? (T)0 : v;                                         \
                }                                                                      \
            else if (relu == 2)                 /* min(max(·, 0), hi) as Hardtanh has  \
                                                   it (ReLU6): −0 and NaN stay */      \
                for (Py_ssize_t l = 0; l < L; l++) {                                   \
                    T v = ac * (xr[l] - mc) + bc;                                      \
                    v = v < 0 ? (T)0 : v;                                              \
                    yr[l] = v > hi ? hi : v;                                           \
                }                                                                      \
            else if (relu)                      /* max(·, 0) as ReLU has it: NaN stays */ \
                for (Py_ssize_t l = 0; l < L; l++) {                                   \
                    T v = ac * (xr[l] - mc) + bc;                                      \
                    yr[l] = v <= 0 ? (T)0 : v;                                         \
                }                                                                      \
            else                                                                       \
                for (Py_ssize_t l = 0; l < L; l++)                                     \
                    yr[l] = ac * (xr[l] - mc) + bc;                                    \
        }                                                                              \
    }                                                                                  \
    ATTR                                                                               \
    static void bn_input_grad_rows_##SUF(const T *x, const T *dy, const T *q,          \
                                         Py_ssize_t qs, T hi, T *dx,                   \
                                         Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,   \
                                         Py_ssize_t L, const T *a, const T *k,         \
                                         const T *m, const T *mu) {                    \
        for (Py_ssize_t r = r0; r < r1; r++) {                                         \
            Py_ssize_t c = r % C;                                                      \
            T ac = a[c], kc = k[c], mc = m[c], uc = mu[c];                             \
            const T *xr = x + r * L, *dr = dy + r * L, *qr = q + r * qs;               \
            T *or_ = dx + r * L;                /* δ where 0 < q < hi (ReLU's mask) */ \
            for (Py_ssize_t l = 0; l < L; l++) {                                       \
                T g = MG_BN_KEEP(qr[l], hi, dr[l]);                                    \
                or_[l] = ac * g + kc * (xr[l] - uc) + mc;                              \
            }                                                                          \
        }                                                                              \
    }
    MINIGRAD_BN_LOOPS(f_vec, float, MG_BN_CLONES)
    MINIGRAD_BN_LOOPS(d_vec, double, MG_BN_CLONES)
    MINIGRAD_BN_LOOPS(f_short, float, inline)
    MINIGRAD_BN_LOOPS(d_short, double, inline)
    /* The passes over rows shorter than MG_BN_VECTOR_MIN_L (planes of 4×4 and below),
       with the (N, C, L) array read as N samples of P = C·L values. Each call covers a
       block of channels c0 … c1 − 1, the W = (c1 − c0)·L ≤ MG_BN_FLAT_BLOCK values at
       j = c0·L … of every sample: the block's per-channel numbers are spread over its W
       positions (channel c's at (c − c0)·L … + L − 1) in arrays of the call's own, and,
       for the sums, so are its accumulators. The loop over positions, vectorised, then
       meets no row boundary and, for the sums, no chain of dependent additions within a
       row (each position's sum gets one value per sample); each channel's L sums are
       added in order at the end. x where 0 < q < hi when q is not NULL (q has x's
       layout). A block's values of one sample are 1 KiB (float32) in a row: with 64
       values (a quarter of that) the hardware prefetcher lost the N streams of cold
       activations (32×512×4², all four passes 0.67 ms against 0.56 with 256, 0.64 row by
       row as before), and with 1024 no better than 256. */
    #define MG_BN_FLAT_BLOCK 256
    #define MG_BN_SPREAD(dst, src)                                                     \
        for (Py_ssize_t c = c0; c < c1; c++)                                           \
            for (Py_ssize_t l = 0; l < L; l++)                                         \
                (dst)[(c - c0) * L + l] = (src)[c];
    #define MG_BN_FLAT_SUMS_LOOP(T, W)                                                 \
        for (Py_ssize_t n = 0; n < N; n++) {                                           \
            const T *xr = x + n * P + j, *yr = y + n * P + j;                          \
            if (q) {                                                                   \
                const T *qr = q + n * P + j;                                           \
                for (Py_ssize_t l = 0; l < (W); l++) {                                 \
                    T g = MG_BN_KEEP(qr[l], hi, xr[l]);                                \
                    double d = (double)g - sv[l];                                      \
                    a[l] += d;                                                         \
                    b[l] += d * ((double)yr[l] - tv[l]);                               \
                }                                                                      \
            } else if (same)                    /* μ, σ²: d·d, one read */           \
                for (Py_ssize_t l = 0; l < (W); l++) {                                 \
                    double d = (double)xr[l] - sv[l];                                  \
                    a[l] += d;                                                         \
                    b[l] += d * d;                                                     \
                }                                                                      \
            else                                                                       \
                for (Py_ssize_t l = 0; l < (W); l++) {                                 \
                    double d = (double)xr[l] - sv[l];                                  \
                    a[l] += d;                                                         \
                    b[l] += d * ((double)yr[l] - tv[l]);                               \
                }                                                                      \
        }
    #define MINIGRAD_BN_FLAT(SUF, T)                                                   \
    /* s1[c] = Σ (x − s[c]), s2[c] = Σ (x − s[c])·(y − t[c]) for c0 ≤ c < c1 */          \
    MG_BN_CLONES                                                                       \
    static void bn_flat_sums_##SUF(const T *x, const T *y, const T *q, T hi,           \
                                   const double *s, const double *t, double *s1,       \
                                   double *s2, Py_ssize_t N, Py_ssize_t C,             \
                                   Py_ssize_t L, Py_ssize_t c0, Py_ssize_t c1) {       \
        Py_ssize_t P = C * L, j = c0 * L, W = (c1 - c0) * L;                           \
        double sv[MG_BN_FLAT_BLOCK], tv[MG_BN_FLAT_BLOCK];                             \
        double a[MG_BN_FLAT_BLOCK] = {0}, b[MG_BN_FLAT_BLOCK] = {0};                   \
        int same = y == x && t == s;                                                   \
        MG_BN_SPREAD(sv, s)                                                            \
        MG_BN_SPREAD(tv, t)                                                            \
        if (W == MG_BN_FLAT_BLOCK)                                                     \
            MG_BN_FLAT_SUMS_LOOP(T, MG_BN_FLAT_BLOCK)                                  \
        else                                                                           \
            MG_BN_FLAT_SUMS_LOOP(T, W)                                                 \
        for (Py_ssize_t c = c0; c < c1; c++) {                                         \
            double u = 0, v = 0;                                                       \
            for (Py_ssize_t l = 0; l < L; l++) {                                       \
                u += a[(c - c0) * L + l];                                              \
                v += b[(c - c0) * L + l];                                              \
            }                                                                          \
            s1[c] = u;                                                                 \
            s2[c] = v;                                                                 \
        }                                                                              \
    }                                                                                  \
    /* y = a·(x − μ) + b for channels c0 ≤ c < c1 of every sample, and the ReLU /       \
       ReLU6 / residual forms as bn_affine_rows has them */                            \
    MG_BN_CLONES                                                                       \
    static void bn_flat_affine_##SUF(const T *x, T *y, const T *a, const T *mu,        \
                                     const T *b, int relu, T hi, const T *z,           \
                                     Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,         \
                                     Py_ssize_t c0, Py_ssize_t c1) {                   \
        Py_ssize_t P = C * L, j = c0 * L, W = (c1 - c0) * L;                           \
        T av[MG_BN_FLAT_BLOCK], mv[MG_BN_FLAT_BLOCK], bv[MG_BN_FLAT_BLOCK];            \
        MG_BN_SPREAD(av, a)                                                            \
        MG_BN_SPREAD(mv, mu)                                                           \
        MG_BN_SPREAD(bv, b)                                                            \
        for (Py_ssize_t n = 0; n < N; n++) {                                           \
            const T *restrict xr = x + n * P + j;                                      \
            T *restrict yr = y + n * P + j;                                            \
            if (z) {                            /* max(y + z, 0) */                    \
                const T *restrict zr = z + n * P + j;                                  \
                for (Py_ssize_t l = 0; l < W; l++) {                                   \
                    T v = av[l] * (xr[l] - mv[l]) + bv[l];                             \
                    v = v + zr[l];                                                     \
                    yr[l] = v <= 0 ? (T)0 : v;                                         \
                }                                                                      \
            } else if (relu == 2)               /* min(max(·, 0), hi) */               \
                for (Py_ssize_t l = 0; l < W; l++) {                                   \
                    T v = av[l] * (xr[l] - mv[l]) + bv[l];                             \
                    v = v < 0 ? (T)0 : v;                                              \
                    yr[l] = v > hi ? hi : v;                                           \
                }                                                                      \
            else if (relu)                      /* max(·, 0) */                        \
                for (Py_ssize_t l = 0; l < W; l++) {                                   \
                    T v = av[l] * (xr[l] - mv[l]) + bv[l];                             \
                    yr[l] = v <= 0 ? (T)0 : v;                                         \
                }                                                                      \
            else                                                                       \
                for (Py_ssize_t l = 0; l < W; l++)                                     \
                    yr[l] = av[l] * (xr[l] - mv[l]) + bv[l];                           \
        }                                                                              \
    }                                                                                  \
    /* dx = a·δ + k·(x − μ) + m for channels c0 ≤ c < c1 (δ where 0 < q < hi) */         \
    MG_BN_CLONES                                                                       \
    static void bn_flat_input_grad_##SUF(const T *x, const T *dy, const T *q, T hi,    \
                                         T *dx, const T *a, const T *k, const T *m,    \
                                         const T *mu, Py_ssize_t N, Py_ssize_t C,      \
                                         Py_ssize_t L, Py_ssize_t c0, Py_ssize_t c1) { \
        Py_ssize_t P = C * L, j = c0 * L, W = (c1 - c0) * L;                           \
        T av[MG_BN_FLAT_BLOCK], kv[MG_BN_FLAT_BLOCK], mv[MG_BN_FLAT_BLOCK],            \
          uv[MG_BN_FLAT_BLOCK];                                                        \
        MG_BN_SPREAD(av, a)                                                            \
        MG_BN_SPREAD(kv, k)                                                            \
        MG_BN_SPREAD(mv, m)                                                            \
        MG_BN_SPREAD(uv, mu)                                                           \
        for (Py_ssize_t n = 0; n < N; n++) {                                           \
            const T *restrict xr = x + n * P + j, *restrict dr = dy + n * P + j;       \
            T *restrict or_ = dx + n * P + j;                                          \
            if (q) {                                                                   \
                const T *restrict qr = q + n * P + j;                                  \
                for (Py_ssize_t l = 0; l < W; l++) {                                   \
                    T g = MG_BN_KEEP(qr[l], hi, dr[l]);                                \
                    or_[l] = av[l] * g + kv[l] * (xr[l] - uv[l]) + mv[l];              \
                }                                                                      \
            } else                                                                     \
                for (Py_ssize_t l = 0; l < W; l++) {                                   \
                    T g = dr[l];                                                       \
                    or_[l] = av[l] * g + kv[l] * (xr[l] - uv[l]) + mv[l];              \
                }                                                                      \
        }                                                                              \
    }
    MINIGRAD_BN_FLAT(f, float)
    MINIGRAD_BN_FLAT(d, double)
    /* Rows of fewer values than this (planes of 4×4 and below) take the flat loops: row
       by row, the vector builds' remainder code and the call through the loader cost more
       than they saved (32×1280×2² float32, forward 0.30 ms against 0.16 on the baseline
       build, inlined), and the baseline build paid a dependent addition chain or a
       division and a scalar loop per row (8×512×2², one thread: μ and σ² 21 µs, the
       affine pass 14; by the flat loops 10.6 and 6.4). Only the sums channel by channel
       (by_rows = 0) still take short rows here, on the baseline build. */
    #define MG_BN_VECTOR_MIN_L 32
    #define MG_BN_BY_ROW_LENGTH(SUF, T)                                                \
    static inline void bn_channel_sums_##SUF(const T *x, const T *y, const T *q,       \
                                             Py_ssize_t qs, T hi, Py_ssize_t N,        \
                                             Py_ssize_t C, Py_ssize_t L, Py_ssize_t c, \
                                             double s, double t, double *s1,           \
                                             double *s2) {                             \
        (L >= MG_BN_VECTOR_MIN_L ? bn_channel_sums_##SUF##_vec                         \
                                 : bn_channel_sums_##SUF##_short)(x, y, q, qs, hi, N, C, L,\
                                                                  c, s, t, s1, s2);    \
    }                                                                                  \
    /* (the row passes below see rows of at least MG_BN_VECTOR_MIN_L values only) */   \
    static inline void bn_row_sums_##SUF(const T *x, const T *y, const T *q,           \
                                         Py_ssize_t qs, T hi, Py_ssize_t r0,           \
                                         Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L,    \
                                         const double *s, const double *t, double *s1, \
                                         double *s2) {                                 \
        bn_row_sums_##SUF##_vec(x, y, q, qs, hi, r0, r1, C, L, s, t, s1, s2);          \
    }                                                                                  \
    static inline void bn_affine_rows_##SUF(const T *x, T *y, Py_ssize_t r0,           \
                                            Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L, \
                                            const T *a, const T *mu, const T *b,       \
                                            int relu, T hi, const T *z) {              \
        bn_affine_rows_##SUF##_vec(x, y, r0, r1, C, L, a, mu, b, relu, hi, z);         \
    }                                                                                  \
    static inline void bn_input_grad_rows_##SUF(const T *x, const T *dy, const T *q,   \
                                                Py_ssize_t qs, T hi, T *dx,            \
                                                Py_ssize_t r0,                         \
                                                Py_ssize_t r1, Py_ssize_t C,           \
                                                Py_ssize_t L, const T *a, const T *k,  \
                                                const T *m, const T *mu) {             \
        bn_input_grad_rows_##SUF##_vec(x, dy, q, qs, hi, dx, r0, r1, C, L, a, k, m, mu);\
    }
    MG_BN_BY_ROW_LENGTH(f, float)
    MG_BN_BY_ROW_LENGTH(d, double)
    """
    enum: MG_BN_VECTOR_MIN_L
    enum: MG_BN_FLAT_BLOCK
    void bn_flat_sums_f(const float *x, const float *y, const float *q, float hi,
                        const double *s, const double *t, double *s1, double *s2,
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, Py_ssize_t c0,
                        Py_ssize_t c1) nogil
    void bn_flat_sums_d(const double *x, const double *y, const double *q, double hi,
                        const double *s, const double *t, double *s1, double *s2,
                        Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, Py_ssize_t c0,
                        Py_ssize_t c1) nogil
    void bn_flat_affine_f(const float *x, float *y, const float *a, const float *mu,
                          const float *b, int relu, float hi, const float *z, Py_ssize_t N,
                          Py_ssize_t C, Py_ssize_t L, Py_ssize_t c0, Py_ssize_t c1) nogil
    void bn_flat_affine_d(const double *x, double *y, const double *a, const double *mu,
                          const double *b, int relu, double hi, const double *z, Py_ssize_t N,
                          Py_ssize_t C, Py_ssize_t L, Py_ssize_t c0, Py_ssize_t c1) nogil
    void bn_flat_input_grad_f(const float *x, const float *dy, const float *q, float hi,
                              float *dx, const float *a, const float *k, const float *m,
                              const float *mu, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                              Py_ssize_t c0, Py_ssize_t c1) nogil
    void bn_flat_input_grad_d(const double *x, const double *dy, const double *q, double hi,
                              double *dx, const double *a, const double *k, const double *m,
                              const double *mu, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                              Py_ssize_t c0, Py_ssize_t c1) nogil
    void bn_channel_sums_f(const float *x, const float *y, const float *q, Py_ssize_t qs,
                           float hi, Py_ssize_t N,
                           Py_ssize_t C, Py_ssize_t L, Py_ssize_t c, double s, double t,
                           double *s1, double *s2) nogil
    void bn_channel_sums_d(const double *x, const double *y, const double *q, Py_ssize_t qs,
                           double hi, Py_ssize_t N,
                           Py_ssize_t C, Py_ssize_t L, Py_ssize_t c, double s, double t,
                           double *s1, double *s2) nogil
    void bn_row_sums_f(const float *x, const float *y, const float *q, Py_ssize_t qs,
                       float hi, Py_ssize_t r0,
                       Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L, const double *s,
                       const double *t, double *s1, double *s2) nogil
    void bn_row_sums_d(const double *x, const double *y, const double *q, Py_ssize_t qs,
                       double hi, Py_ssize_t r0,
                       Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L, const double *s,
                       const double *t, double *s1, double *s2) nogil
    void bn_affine_rows_f(const float *x, float *y, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C,
                          Py_ssize_t L, const float *a, const float *mu, const float *b,
                          int relu, float hi, const float *z) nogil
    void bn_affine_rows_d(const double *x, double *y, Py_ssize_t r0, Py_ssize_t r1,
                          Py_ssize_t C, Py_ssize_t L, const double *a, const double *mu,
                          const double *b, int relu, double hi, const double *z) nogil
    void bn_input_grad_rows_f(const float *x, const float *dy, const float *q, Py_ssize_t qs,
                              float hi, float *dx,
                              Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L,
                              const float *a, const float *k, const float *m,
                              const float *mu) nogil
    void bn_input_grad_rows_d(const double *x, const double *dy, const double *q, Py_ssize_t qs,
                              double hi, double *dx,
                              Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t C, Py_ssize_t L,
                              const double *a, const double *k, const double *m,
                              const double *mu) nogil


cdef inline void channel_sums(const floating *x, const floating *y, const floating *q,
                              Py_ssize_t qs, floating hi, Py_ssize_t N, Py_ssize_t C,
                              Py_ssize_t L, Py_ssize_t c, double s, double t, double *s1,
                              double *s2) noexcept nogil:
    if floating is float:
        bn_channel_sums_f(x, y, q, qs, hi, N, C, L, c, s, t, s1, s2)
    else:
        bn_channel_sums_d(x, y, q, qs, hi, N, C, L, c, s, t, s1, s2)


cdef inline Py_ssize_t row_blocks(Py_ssize_t R, Py_ssize_t L, int nt) noexcept nogil:
    """Rows per block of the elementwise passes: about ROW_BLOCK values, and every thread
    at least one block."""
    cdef Py_ssize_t rows = max(1, ROW_BLOCK // max(L, 1))
    return max(1, min(rows, (R + nt - 1) // nt))


cdef inline bint rows_first(Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, int arrays,
                            int by_rows) noexcept nogil:
    """Whether a reduction over `arrays` arrays of shape (N, C, L) goes through memory in
    order (see ROWS_MAX_L; as one flat stream where `flat` says so): by_rows 1 or 0
    decides, −1 (the default) leaves it to the row length and the streams a
    channel-by-channel pass would follow."""
    if by_rows >= 0:
        return by_rows != 0
    return flat(C, L) or (L < ROWS_MAX_L and N * arrays >= ROWS_MIN_STREAMS)


cdef inline bint flat(Py_ssize_t C, Py_ssize_t L) noexcept nogil:
    """Whether (N, C, L) arrays go through the flat loops (MINIGRAD_BN_FLAT): rows shorter
    than MG_BN_VECTOR_MIN_L."""
    return L < MG_BN_VECTOR_MIN_L


cdef inline Py_ssize_t flat_channels(Py_ssize_t C, Py_ssize_t L, int nt) noexcept nogil:
    """Channels per block of the flat loops: as many whole rows as MG_BN_FLAT_BLOCK holds,
    but no more than a thread's share of the C channels."""
    return max(1, min(MG_BN_FLAT_BLOCK // L, (C + nt - 1) // nt))


cdef int flat_sums(const floating *x, const floating *y, const floating *q, floating hi,
                   Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, double *s, double *t,
                   double *s1, double *s2, int nt) noexcept nogil:
    """The sums of sums_per_channel on short rows (see `flat`; q, if not NULL, of x's
    layout): each thread its blocks of whole channels (MINIGRAD_BN_FLAT), the same
    numbers for any number of threads."""
    cdef Py_ssize_t cb = flat_channels(C, L, nt), blk, c0
    for blk in prange((C + cb - 1) // cb, schedule='static', num_threads=nt):
        c0 = blk * cb
        if floating is float:
            bn_flat_sums_f(x, y, q, hi, s, t, s1, s2, N, C, L, c0, min(c0 + cb, C))
        else:
            bn_flat_sums_d(x, y, q, hi, s, t, s1, s2, N, C, L, c0, min(c0 + cb, C))
    return 0


cdef int row_order_sums(const floating *x, const floating *y, const floating *q, Py_ssize_t qs,
                        floating hi, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L, double *s, double *t,
                        double *s1, double *s2, int nt) noexcept nogil:
    """s1[c] = Σ (x − s[c]), s2[c] = Σ (x − s[c]) · (y − t[c]) over channel c's values
    (x taken as 0 unless 0 < q < hi, when q is not NULL; row r's q at q + r · qs),
    for every c, in one pass through memory in order: each thread sums its blocks of
    (n, c) rows into partial sums of its own (nt × 2C doubles), which are then added
    thread by thread (a fixed order: the same numbers every call). −1 when the partial
    sums cannot be allocated."""
    cdef Py_ssize_t R = N * C, B = row_blocks(R, L, nt), blk, r0, c
    cdef int i
    cdef double *part = <double *>calloc(<size_t>nt * 2 * C, sizeof(double))
    if part == NULL:
        return -1
    for blk in prange((R + B - 1) // B, schedule='static', num_threads=nt):
        r0 = blk * B
        i = threadid()
        if floating is float:
            bn_row_sums_f(x, y, q, qs, hi, r0, min(r0 + B, R), C, L, s, t, &part[2 * i * C],
                          &part[(2 * i + 1) * C])
        else:
            bn_row_sums_d(x, y, q, qs, hi, r0, min(r0 + B, R), C, L, s, t, &part[2 * i * C],
                          &part[(2 * i + 1) * C])
    for c in range(C):
        s1[c] = 0
        s2[c] = 0
    for i in range(nt):
        for c in range(C):
            s1[c] += part[2 * i * C + c]
            s2[c] += part[(2 * i + 1) * C + c]
    free(part)
    return 0


cdef int sums_per_channel(const floating *x, const floating *y, const floating *q,
                          Py_ssize_t qs, floating hi, Py_ssize_t N, Py_ssize_t C,
                          Py_ssize_t L, double *s, double *t, double *s1, double *s2, int nt,
                          bint rows) noexcept nogil:
    """s1[c] = Σ (x − s[c]), s2[c] = Σ (x − s[c]) · (y − t[c]) over channel c's values (x
    taken as 0 unless 0 < q < hi, when q is not NULL), every c: through memory in order
    (rows: row_order_sums, or flat_sums on short rows) or channel by channel, each thread
    its channels. −1 when memory for the partial sums cannot be had."""
    cdef Py_ssize_t c
    cdef double a, b
    if rows and flat(C, L):
        return flat_sums(x, y, q if qs != 0 else NULL, hi, N, C, L, s, t, s1, s2, nt)
    if rows:
        return row_order_sums(x, y, q, qs, hi, N, C, L, s, t, s1, s2, nt)
    for c in prange(C, schedule='static', num_threads=nt):
        a = 0                               # (assigned here, so private to the thread)
        b = 0
        channel_sums(x, y, q, qs, hi, N, C, L, c, s[c], t[c], &a, &b)
        s1[c] = a
        s2[c] = b
    return 0


cdef void flat_affine(const floating *x, floating *y, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                      const floating *a, const floating *mu, const floating *b, int mode,
                      floating hi, const floating *z, int nt) noexcept nogil:
    """batchnorm_affine's pass on short rows (see `flat`): each thread its blocks of
    whole channels of every sample (MINIGRAD_BN_FLAT)."""
    cdef Py_ssize_t cb = flat_channels(C, L, nt), blk, c0
    for blk in prange((C + cb - 1) // cb, schedule='static', num_threads=nt):
        c0 = blk * cb
        if floating is float:
            bn_flat_affine_f(x, y, a, mu, b, mode, hi, z, N, C, L, c0, min(c0 + cb, C))
        else:
            bn_flat_affine_d(x, y, a, mu, b, mode, hi, z, N, C, L, c0, min(c0 + cb, C))


cdef void flat_input_grad(const floating *x, const floating *dy, const floating *q, floating hi,
                          floating *dx, Py_ssize_t N, Py_ssize_t C, Py_ssize_t L,
                          const floating *a, const floating *k, const floating *m,
                          const floating *mu, int nt) noexcept nogil:
    """batchnorm_input_grad's pass on short rows (see `flat`; q, if not NULL, of x's
    layout): each thread its blocks of whole channels of every sample."""
    cdef Py_ssize_t cb = flat_channels(C, L, nt), blk, c0
    for blk in prange((C + cb - 1) // cb, schedule='static', num_threads=nt):
        c0 = blk * cb
        if floating is float:
            bn_flat_input_grad_f(x, dy, q, hi, dx, a, k, m, mu, N, C, L, c0, min(c0 + cb, C))
        else:
            bn_flat_input_grad_d(x, dy, q, hi, dx, a, k, m, mu, N, C, L, c0, min(c0 + cb, C))

cdef int _stats(const floating[:, :, ::1] x, floating *mean, floating *var, int num_threads,
                int by_rows) except -1:
    """batchnorm_stats into mean[0 … C−1], var[0 … C−1]."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t c
    cdef double m, v, count = <double>(N * L)
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    cdef int err
    cdef double *buf = <double *>calloc(<size_t>3 * C, sizeof(double))   # s, then s1, s2
    if buf == NULL:
        raise MemoryError()
    with nogil:
        for c in range(C):
            buf[c] = x[0, c, 0]             # s1 = Σ (x − s), s2 = Σ (x − s)²
        err = sums_per_channel(&x[0, 0, 0], &x[0, 0, 0], NULL, 0, 0, N, C, L, buf, buf,
                               &buf[C], &buf[2 * C], nt, rows_first(N, C, L, 1, by_rows))
        if not err:
            for c in range(C):
                m = buf[C + c] / count
                v = buf[2 * C + c] / count - m * m
                mean[c] = <floating>(buf[c] + m)
                var[c] = <floating>(v if v > 0 else 0)
    free(buf)
    if err:
        raise MemoryError()
    return 0


def batchnorm_stats(const floating[:, :, ::1] x,     # IN  (N, C, L)
                    floating[::1] mean,              # OUT (C,) μ
                    floating[::1] var,               # OUT (C,) σ², biased
                    int num_threads,
                    int by_rows=-1):                 # IN  1 through memory in order, 0 by
                                                     #     channel, −1 by the row length
    """μ and the biased σ² of each channel in one pass (shifted sums in double)."""
    _stats(x, &mean[0], &var[0], num_threads, by_rows)


cdef int _affine(const floating[:, :, ::1] x, const floating *mean, const floating *a,
                 const floating *b, floating[:, :, ::1] y, int num_threads, bint relu,
                 const floating[:, :, ::1] z, object hi) except -1:
    """batchnorm_affine with the per-channel numbers at mean, a, b (C each)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t blk, r0, R = N * C
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    cdef Py_ssize_t B = row_blocks(R, L, nt)
    cdef const floating* zp = NULL
    cdef int mode = (2 if hi is not None else 1) if relu else 0
    cdef floating h = 0 if hi is None else <floating>float(hi)
    if hi is not None and (not relu or z is not None):
        raise ValueError("batchnorm_affine(): hi goes with relu and without z")
    if z is not None:
        if z.shape[0] != N or z.shape[1] != C or z.shape[2] != L:
            raise ValueError(f"batchnorm_affine(): z of shape {tuple(z.shape)[:3]} for x of "
                             f"shape {(N, C, L)}")
        zp = &z[0, 0, 0]
    if flat(C, L):
        with nogil:
            flat_affine(&x[0, 0, 0], &y[0, 0, 0], N, C, L, a, mean, b, mode, h, zp, nt)
        return 0
    with nogil:
        for blk in prange((R + B - 1) // B, schedule='static', num_threads=nt):
            r0 = blk * B
            if floating is float:
                bn_affine_rows_f(&x[0, 0, 0], &y[0, 0, 0], r0, min(r0 + B, R), C, L, a, mean, b,
                                 mode, h, zp)
            else:
                bn_affine_rows_d(&x[0, 0, 0], &y[0, 0, 0], r0, min(r0 + B, R), C, L, a, mean, b,
                                 mode, h, zp)
    return 0


def batchnorm_affine(const floating[:, :, ::1] x,    # IN  (N, C, L)
                     const floating[::1] mean,       # IN  (C,) μ
                     const floating[::1] a,          # IN  (C,) γ/σ̂
                     const floating[::1] b,          # IN  (C,) β
                     floating[:, :, ::1] y,          # OUT (N, C, L)
                     int num_threads,
                     bint relu=False,                # IN  y = max(·, 0) as well
                     const floating[:, :, ::1] z=None,    # IN  (N, C, L): y = max(· + z, 0)
                     hi=None):                       # IN  relu: y = min(max(·, 0), hi)
    """y = a · (x − μ) + b per channel (= γ · x̂ + β). (Not a · x + (b − a·μ): when
    |μ| ≫ σ the two large terms would cancel, and float32 keep few digits of y.)
    relu: y = max(a · (x − μ) + b, 0) in the same pass, bit for bit what ReLU's kernel
    (ext/elementwise.pyx) makes of the first (a NaN stays NaN): BatchNorm followed by ReLU
    without writing and reading the activation in between. z (x's shape): y =
    max(a · (x − μ) + b + z, 0), bit for bit add_relu's of the BatchNorm output and z — a
    residual block's end, relu(bn(·) + identity), in one pass. hi (with relu, not z): y =
    min(max(a · (x − μ) + b, 0), hi), bit for bit Hardtanh's (0, hi) of the first (−0 and
    NaN stay): BatchNorm followed by ReLU6 (hi = 6)."""
    _affine(x, &mean[0], &a[0], &b[0], y, num_threads, relu, z, hi)


cdef const floating *_mask(const floating[:, :, ::1] mask, Py_ssize_t N, Py_ssize_t C,
                           Py_ssize_t L, str fn, Py_ssize_t *qs,
                           floating **ones) except NULL:
    """The mask the backward passes read, row r's at q + r · qs: the mask's data (qs = L),
    or without one a row of L ones (qs = 0; *ones to be freed). The two passes always take
    the masked loops, whose additions — vectorised by the compiler — then come in the same
    order with and without ReLU's mask, on every build: BatchNormReLU's gradients equal
    ReLU's backward followed by BatchNorm's bit for bit. A ValueError unless the mask has
    x's shape."""
    cdef Py_ssize_t l
    ones[0] = NULL
    if mask is None:
        ones[0] = <floating *>malloc(<size_t>L * sizeof(floating))
        if ones[0] == NULL:
            raise MemoryError()
        for l in range(L):
            ones[0][l] = 1
        qs[0] = 0
        return ones[0]
    if mask.shape[0] != N or mask.shape[1] != C or mask.shape[2] != L:
        raise ValueError(f"{fn}(): mask of shape {tuple(mask.shape)[:3]} for x of shape "
                         f"{(N, C, L)}")
    qs[0] = L
    return &mask[0, 0, 0]


cdef double _upper(object hi, object mask, str fn) except? -1:
    """The masked loops' upper bound: NaN for none (r ≥ NaN is never true: the mask is
    r > 0, ReLU's), else hi (0 < r < hi, ReLU6's with hi = 6). hi needs a mask."""
    if hi is None:
        return float("nan")
    if mask is None:
        raise ValueError(f"{fn}(): hi={hi} needs a mask")
    return float(hi)


cdef int _grad_sums(const floating[:, :, ::1] x, const floating[:, :, ::1] dy,
                    const floating *mean, floating *sum_dy, floating *sum_dy_xmu, int num_threads,
                    int by_rows, const floating[:, :, ::1] mask, object hi) except -1:
    """batchnorm_grad_sums with μ at mean and the sums into sum_dy, sum_dy_xmu (C each)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t c
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    cdef int err = 0
    cdef Py_ssize_t qs
    cdef floating *ones
    cdef floating h = <floating>_upper(hi, mask, "batchnorm_grad_sums")     # (before the ones row)
    cdef const floating *q = _mask(mask, N, C, L, "batchnorm_grad_sums", &qs, &ones)
    cdef bint rows = rows_first(N, C, L, 2 if mask is None else 3, by_rows)
    cdef double *buf = <double *>calloc(<size_t>4 * C, sizeof(double))   # 0, μ, then the sums
    try:
        if buf == NULL:
            raise MemoryError()
        with nogil:
            for c in range(C):
                buf[C + c] = mean[c]        # s1 = Σ δ, s2 = Σ δ · (x − μ)
            err = sums_per_channel(&dy[0, 0, 0], &x[0, 0, 0], q, qs, h, N, C, L, buf,
                                   &buf[C], &buf[2 * C], &buf[3 * C], nt, rows)
            if not err:
                for c in range(C):
                    sum_dy[c] = <floating>buf[2 * C + c]
                    sum_dy_xmu[c] = <floating>buf[3 * C + c]
        if err:
            raise MemoryError()
    finally:
        free(buf)
        free(ones)
    return 0


def batchnorm_grad_sums(const floating[:, :, ::1] x,     # IN  (N, C, L)
                        const floating[:, :, ::1] dy,    # IN  (N, C, L) δ
                        const floating[::1] mean,        # IN  (C,) μ
                        floating[::1] sum_dy,            # OUT (C,) Σ δ
                        floating[::1] sum_dy_xmu,        # OUT (C,) Σ δ · (x − μ)
                        int num_threads,
                        int by_rows=-1,                  # IN  as batchnorm_stats has it
                        const floating[:, :, ::1] mask=None,  # IN (N, C, L) r: δ where r > 0
                        hi=None):                        # IN  δ where 0 < r < hi
    """The two per-channel sums of the backward, in one pass (double accumulators).
    mask (x's shape, the output r = max(y, 0) of BatchNorm followed by ReLU): the sums of
    ReLU's backward of δ, δ where r > 0 and 0 elsewhere, without writing it out; with hi
    (r = min(max(y, 0), hi), ReLU6's), of δ where 0 < r < hi."""
    _grad_sums(x, dy, &mean[0], &sum_dy[0], &sum_dy_xmu[0], num_threads, by_rows, mask, hi)


cdef int _input_grad(const floating[:, :, ::1] x, const floating[:, :, ::1] dy,
                     const floating *mean, const floating *a, const floating *k,
                     const floating *m, floating[:, :, ::1] dx, int num_threads,
                     const floating[:, :, ::1] mask, object hi) except -1:
    """batchnorm_input_grad with the per-channel numbers at mean, a, k, m (C each)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t blk, r0, R = N * C
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    cdef Py_ssize_t B = row_blocks(R, L, nt)
    cdef Py_ssize_t qs
    cdef floating *ones
    cdef floating h = <floating>_upper(hi, mask, "batchnorm_input_grad")     # (before the ones row)
    cdef const floating *q = _mask(mask, N, C, L, "batchnorm_input_grad", &qs, &ones)
    try:
        if flat(C, L):
            with nogil:
                flat_input_grad(&x[0, 0, 0], &dy[0, 0, 0], q if qs != 0 else NULL, h,
                                &dx[0, 0, 0], N, C, L, a, k, m, mean, nt)
            return 0
        with nogil:
            for blk in prange((R + B - 1) // B, schedule='static', num_threads=nt):
                r0 = blk * B
                if floating is float:
                    bn_input_grad_rows_f(&x[0, 0, 0], &dy[0, 0, 0], q, qs, h, &dx[0, 0, 0], r0,
                                         min(r0 + B, R), C, L, a, k, m, mean)
                else:
                    bn_input_grad_rows_d(&x[0, 0, 0], &dy[0, 0, 0], q, qs, h, &dx[0, 0, 0], r0,
                                         min(r0 + B, R), C, L, a, k, m, mean)
    finally:
        free(ones)
    return 0


def batchnorm_input_grad(const floating[:, :, ::1] x,    # IN  (N, C, L)
                         const floating[:, :, ::1] dy,   # IN  (N, C, L) δ
                         const floating[::1] mean,       # IN  (C,) μ
                         const floating[::1] a,          # IN  (C,) γ/σ̂
                         const floating[::1] k,          # IN  (C,) −a · ∂L/∂γ / (n σ̂)
                         const floating[::1] m,          # IN  (C,) −a · ∂L/∂β / n
                         floating[:, :, ::1] dx,         # OUT (N, C, L) ∂L/∂x
                         int num_threads,
                         const floating[:, :, ::1] mask=None,  # IN (N, C, L) r: δ where r > 0
                         hi=None):                       # IN  δ where 0 < r < hi
    """∂L/∂x = a · δ + k · (x − μ) + m per channel
             = γ/σ̂ · (δ − ⟨δ⟩ − x̂ · ⟨δ · x̂⟩).
    mask: as batchnorm_grad_sums has it (δ where r > 0, 0 elsewhere: ReLU's backward
    first, in the same pass)."""
    _input_grad(x, dy, &mean[0], &a[0], &k[0], &m[0], dx, num_threads, mask, hi)


cdef int _channels(str fn, str name, Py_ssize_t got, Py_ssize_t C) except -1:
    """A ValueError unless a (C,) argument has C entries."""
    if got != C:
        raise ValueError(f"{fn}(): {name} has {got} entries for {C} channels")
    return 0


cdef int _same_shape(str fn, str name, Py_ssize_t[8] shape, Py_ssize_t N, Py_ssize_t C,
                     Py_ssize_t L) except -1:
    """A ValueError unless an (N, C, L) argument has x's shape."""
    if shape[0] != N or shape[1] != C or shape[2] != L:
        raise ValueError(f"{fn}(): {name} of shape {(shape[0], shape[1], shape[2])} for x of "
                         f"shape {(N, C, L)}")
    return 0


def batchnorm_forward(const floating[:, :, ::1] x,       # IN  (N, C, L)
                      floating[:, :, ::1] y,             # OUT (N, C, L)
                      floating[::1] mean,                # OUT (C,) the μ used (IN: see below)
                      floating[::1] inv_std,             # OUT (C,) the 1/σ̂ used (IN: below)
                      const floating[::1] weight,        # IN  (C,) γ, or None (1)
                      const floating[::1] bias,          # IN  (C,) β, or None (0)
                      double eps,
                      bint training,
                      floating[:] running_mean,          # IN/OUT (C,) or None
                      floating[:] running_var,           # IN/OUT (C,) or None
                      double momentum,
                      int num_threads,
                      bint relu=False,                   # as batchnorm_affine has them
                      const floating[:, :, ::1] z=None,
                      hi=None):
    """BatchNorm's forward in one call: the statistics, the running ones, 1/σ̂ and the
    affine pass, with the per-channel arithmetic in x's dtype as NumPy rounds it
    (ops/norm.py's numpy path): training, μ and σ² by batchnorm_stats and, where given,
        running_mean ← running_mean · (1 − m) + m · μ
        running_var  ← running_var · (1 − m) + (m · σ²) · n/(n − 1)      (n = N·L)
    evaluation, μ = running_mean and σ² = running_var; then 1/σ̂ = 1 / √(σ² + eps) and
    batchnorm_affine's y with a = γ/σ̂, b = β. Evaluation without running statistics (both
    None) takes μ and 1/σ̂ as given in mean and inv_std (statistics of another dtype,
    SyncBatchNorm's global ones, rounded to x's by the caller)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c, n = N * L
    cdef floating keep = <floating>(1 - momentum), mom = <floating>momentum
    cdef floating unbias = <floating>(n / (n - 1.0)) if n > 1 else 0, t
    cdef floating *buf
    _same_shape("batchnorm_forward", "y", y.shape, N, C, L)
    _channels("batchnorm_forward", "mean", mean.shape[0], C)
    _channels("batchnorm_forward", "inv_std", inv_std.shape[0], C)
    if weight is not None:
        _channels("batchnorm_forward", "weight", weight.shape[0], C)
    if bias is not None:
        _channels("batchnorm_forward", "bias", bias.shape[0], C)
    if running_mean is not None:
        _channels("batchnorm_forward", "running_mean", running_mean.shape[0], C)
    if running_var is not None:
        _channels("batchnorm_forward", "running_var", running_var.shape[0], C)
    if training and n < 2:
        raise ValueError(f"batchnorm_forward(): training needs more than 1 value per channel, "
                         f"got x of shape {(N, C, L)}")
    if not training and (running_mean is None) != (running_var is None):
        raise ValueError("batchnorm_forward(): evaluation takes both running_mean and "
                         "running_var, or neither (μ and 1/σ̂ given)")
    buf = <floating *>malloc(<size_t>3 * C * sizeof(floating))       # σ², a, b
    if buf == NULL:
        raise MemoryError()
    try:
        if training:
            _stats(x, &mean[0], buf, num_threads, -1)
            with nogil:
                for c in range(C):
                    if running_mean is not None:
                        running_mean[c] = running_mean[c] * keep
                        running_mean[c] = running_mean[c] + mom * mean[c]
                    if running_var is not None:
                        t = mom * buf[c]
                        t = t * unbias
                        running_var[c] = running_var[c] * keep
                        running_var[c] = running_var[c] + t
        elif running_mean is not None:
            for c in range(C):
                mean[c] = running_mean[c]
                buf[c] = running_var[c]
        with nogil:
            for c in range(C):
                if training or running_mean is not None:
                    inv_std[c] = <floating>1 / <floating>sqrt(buf[c] + <floating>eps)
                buf[C + c] = inv_std[c] if weight is None else inv_std[c] * weight[c]
                buf[2 * C + c] = 0 if bias is None else bias[c]
        _affine(x, &mean[0], &buf[C], &buf[2 * C], y, num_threads, relu, z, hi)
    finally:
        free(buf)


def batchnorm_backward(const floating[:, :, ::1] x,      # IN  (N, C, L)
                       const floating[:, :, ::1] dy,     # IN  (N, C, L) δ
                       const floating[::1] mean,         # IN  (C,) μ
                       const floating[::1] inv_std,      # IN  (C,) 1/σ̂
                       const floating[::1] weight,       # IN  (C,) γ, or None (1)
                       floating[:, :, ::1] dx,           # OUT (N, C, L) ∂L/∂x, or None
                       floating[::1] dw,                 # OUT (C,) ∂L/∂γ = Σ δ · x̂
                       floating[::1] db,                 # OUT (C,) ∂L/∂β = Σ δ
                       bint training,
                       int num_threads,
                       const floating[:, :, ::1] mask=None,   # as batchnorm_grad_sums has them
                       hi=None):
    """BatchNorm's backward in one call: batchnorm_grad_sums' Σ δ and Σ δ · (x − μ), then
    ∂L/∂γ = Σ δ · (x − μ) · 1/σ̂ and, when dx is given, batchnorm_input_grad with
    a = γ/σ̂ and (training; n = N·L) k = ((−a · ∂L/∂γ) · 1/σ̂) / n, m = (−a · ∂L/∂β) / n
    (k = m = 0 in evaluation): the per-channel arithmetic in x's dtype as NumPy rounds it
    (ops/norm.py)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], c
    cdef floating n = <floating>(N * L), a, na
    cdef floating *buf
    _same_shape("batchnorm_backward", "dy", dy.shape, N, C, L)
    if dx is not None:
        _same_shape("batchnorm_backward", "dx", dx.shape, N, C, L)
    _channels("batchnorm_backward", "mean", mean.shape[0], C)
    _channels("batchnorm_backward", "inv_std", inv_std.shape[0], C)
    _channels("batchnorm_backward", "dw", dw.shape[0], C)
    _channels("batchnorm_backward", "db", db.shape[0], C)
    if weight is not None:
        _channels("batchnorm_backward", "weight", weight.shape[0], C)
    _grad_sums(x, dy, &mean[0], &db[0], &dw[0], num_threads, -1, mask, hi)
    for c in range(C):
        dw[c] = dw[c] * inv_std[c]
    if dx is None:
        return
    buf = <floating *>malloc(<size_t>3 * C * sizeof(floating))       # a, k, m
    if buf == NULL:
        raise MemoryError()
    try:
        with nogil:
            for c in range(C):
                a = inv_std[c] if weight is None else inv_std[c] * weight[c]
                buf[c] = a
                if training:
                    na = -a
                    buf[C + c] = ((na * dw[c]) * inv_std[c]) / n
                    buf[2 * C + c] = (na * db[c]) / n
                else:
                    buf[C + c] = 0
                    buf[2 * C + c] = 0
        _input_grad(x, dy, &mean[0], buf, &buf[C], &buf[2 * C], dx, num_threads, mask, hi)
    finally:
        free(buf)
