# Pooling kernels: max pooling with its argmax mask and the backward through it;
# average pooling (fixed, 'same' and adaptive windows) forward and backward.
#
# Contract (minigrad/ops/pool.py keeps it; bounds checks are off by default, see setup.py):
# - activations come as C-contiguous (P, H, W) planes, P = N·C, every plane pooled alike;
# - the windows are described *per axis* by small tables the Python side computes, so
#   one kernel serves every padding form, ceil_mode, 'same' and adaptive pooling:
#       output row i reads the input rows  h = h_lo[i], h_lo[i] + D_h, ... < h_hi[i]
#       output col j reads the input cols  w = w_lo[j], w_lo[j] + D_w, ... < w_hi[j]
#   The tables list real rows/cols only (0 ≤ h < H): padding is never read. For max
#   pooling that *is* padding with −inf; average pooling accounts for padding in its
#   divisor tables instead;
# - the mask is int32: the flat index h·W + w of the winner inside its H·W plane, or −1
#   for a window with no real element (possible only with dilation: its output is −inf
#   and it passes no gradient). The Python op checks H·W < 2³¹.
#
# Every kernel parallelises so that no two threads ever write the same element: the
# forwards over output rows (P·OH of them), the backwards over planes (windows may
# overlap inside a plane, never across planes), or over output rows when the windows
# are 2×2 with stride 2 (two output rows never share an input row).
#
# Branches that depend on the data are avoided where they would mispredict: the max
# updates are selects (cmov/maxss), and max pooling's backward zeroes a plane and then
# scatters δ rather than choosing "δ or 0" per element.
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY
from libc.string cimport memset

import numpy as np

ctypedef fused floating:
    float
    double


cdef extern from *:
    """
    /* Σ a[0..n) with eight independent partial sums (the compiler keeps them in SIMD
       registers whatever the instruction set, and the adds of one element no longer
       wait for the previous one), added up pairwise at the end. Reassociating the
       sum like this is what numpy's pairwise sum also does; the order is fixed, so
       the result does not depend on threads or timing. */
    #define MINIGRAD_SUM(T, name)                                                   \
    static inline T name(const T *a, Py_ssize_t n) {                                \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;          \
        Py_ssize_t i = 0;                                                           \
        for (; i + 8 <= n; i += 8) {                                                \
            s0 += a[i];     s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3];         \
            s4 += a[i + 4]; s5 += a[i + 5]; s6 += a[i + 6]; s7 += a[i + 7];         \
        }                                                                           \
        for (; i < n; i++) s0 += a[i];                                              \
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));                   \
    }
    MINIGRAD_SUM(float, minigrad_sum_f)
    MINIGRAD_SUM(double, minigrad_sum_d)
    """
    float _sum_f "minigrad_sum_f"(const float *a, Py_ssize_t n) noexcept nogil
    double _sum_d "minigrad_sum_d"(const double *a, Py_ssize_t n) noexcept nogil


# Work on fewer input elements than this runs on one thread: waking a team costs more.
cdef enum:
    GRAIN = 32768


cdef inline int _threads(Py_ssize_t work, int num_threads) noexcept nogil:
    return num_threads if work >= GRAIN else 1


# ---- max pooling -------------------------------------------------------------------

def max_pool2d_forward(const floating[:, :, ::1] x,        # IN  (P, H, W)
                       const Py_ssize_t[::1] h_lo,          # IN  (OH,) first real row of window i
                       const Py_ssize_t[::1] h_hi,          # IN  (OH,) end (exclusive) of its rows
                       Py_ssize_t dh,                       # IN  dilation D_h (row step)
                       const Py_ssize_t[::1] w_lo,          # IN  (OW,)
                       const Py_ssize_t[::1] w_hi,          # IN  (OW,)
                       Py_ssize_t dw,                       # IN  dilation D_w
                       floating[:, :, ::1] y,               # OUT (P, OH, OW)
                       int[:, :, ::1] mask,                 # OUT (P, OH, OW) flat index of the winner
                       int num_threads):
    """y[p,i,j] = max of x[p,h,w] over the window (i,j); mask[p,i,j] = h·W + w of the winner.

    Scan order is row-major; the winner is the first element strictly greater than all
    before it, or the last NaN (a NaN wins its window: `v > best or v != v`, as PyTorch).
    An all −inf window returns −inf and the index of its first element.
    """
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef Py_ssize_t r, p, i, j, h, w
    cdef int arg
    cdef floating v, best
    cdef int nt = _threads(P * H * W, num_threads)
    with nogil:
        for r in prange(P * OH, schedule='static', num_threads=nt):
            p = r // OH
            i = r - p * OH
            for j in range(OW):
                best = -INFINITY
                arg = -1
                if h_lo[i] < h_hi[i] and w_lo[j] < w_hi[j]:
                    arg = <int>(h_lo[i] * W + w_lo[j])
                h = h_lo[i]
                while h < h_hi[i]:
                    w = w_lo[j]
                    while w < w_hi[j]:
                        v = x[p, h, w]
                        # both selects compile to cmov/maxss: no branch to mispredict
                        arg = <int>(h * W + w) if v > best else arg
                        best = v if v > best else best
                        if v != v:                       # NaN wins (rare: a predictable branch)
                            best = v
                            arg = <int>(h * W + w)
                        w = w + dw
                    h = h + dh
                y[p, i, j] = best
                mask[p, i, j] = arg


def max_pool2d_2x2_forward(const floating[:, :, ::1] x,    # IN  (P, H, W), H ≥ 2·OH, W ≥ 2·OW
                           floating[:, :, ::1] y,           # OUT (P, OH, OW)
                           int[:, :, ::1] mask,             # OUT (P, OH, OW)
                           int num_threads):
    """The same as max_pool2d_forward for 2×2 windows, stride 2, no padding, no dilation:
    y[p,i,j] = max(x[p,2i,2j], x[p,2i,2j+1], x[p,2i+1,2j], x[p,2i+1,2j+1]), same tie/NaN rule."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef Py_ssize_t r, p, i, j, h, w
    cdef int arg
    cdef floating v, best
    cdef int nt = _threads(P * H * W, num_threads)
    with nogil:
        for r in prange(P * OH, schedule='static', num_threads=nt):
            p = r // OH
            i = r - p * OH
            h = 2 * i
            for j in range(OW):
                w = 2 * j
                best = x[p, h, w]
                arg = <int>(h * W + w)
                v = x[p, h, w + 1]
                arg = <int>(h * W + w + 1) if v > best else arg
                best = v if v > best else best
                if v != v:
                    best = v
                    arg = <int>(h * W + w + 1)
                v = x[p, h + 1, w]
                arg = <int>((h + 1) * W + w) if v > best else arg
                best = v if v > best else best
                if v != v:
                    best = v
                    arg = <int>((h + 1) * W + w)
                v = x[p, h + 1, w + 1]
                arg = <int>((h + 1) * W + w + 1) if v > best else arg
                best = v if v > best else best
                if v != v:
                    best = v
                    arg = <int>((h + 1) * W + w + 1)
                y[p, i, j] = best
                mask[p, i, j] = arg


def max_pool2d_backward(const floating[:, :, ::1] dy,      # IN  (P, OH, OW) δ = ∂L/∂y
                        const int[:, :, ::1] mask,          # IN  (P, OH, OW) from the forward
                        floating[:, :, ::1] dx,             # OUT (P, H, W) ∂L/∂x (need not be zeroed)
                        int num_threads):
    """∂L/∂x[p, k // W, k % W] = Σ over outputs (i,j) with mask[p,i,j] = k of δ[p,i,j]

    (seed 004's upsample(δ)): δ goes to the winner only; overlapping windows that share
    a winner accumulate. One thread owns a whole plane, so the += never races.
    """
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t OH = dy.shape[1], OW = dy.shape[2]
    cdef Py_ssize_t p, i, j
    cdef int k
    cdef floating* plane
    cdef int nt = _threads(P * H * W, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            plane = &dx[p, 0, 0]
            memset(plane, 0, H * W * sizeof(floating))
            for i in range(OH):
                for j in range(OW):
                    k = mask[p, i, j]
                    if k >= 0:
                        plane[k] = plane[k] + dy[p, i, j]


# ---- max pooling over a tap table -----------------------------------------------------
#
# The forward above walks each window's rows and columns from the tables: a scalar loop
# whose every step is a compare, two selects and a NaN test, 4–5 cycles per tap. On the
# planes of GoogLeNet's pools (3×3 at stride 1 and 2 on 32×32 … 4×4 planes, hundreds of
# channels) that was most of a step's pooling time. Here the windows are a table instead:
# idx[t, o] is the flat index h·W + w of the t-th real input (row-major) of output o's
# window (o = i·OW + j), the window's last input repeated where it has fewer than T
# (ops/pool.py's _tap_table). The loop runs over the outputs of a whole plane at once, per
# tap, without a branch — a load through the table, a compare, two selects —, which GCC
# vectorises (AVX-512 and AVX2 get their own build: target_clones, as in ext/batchnorm.pyx):
#     y[o] = −∞, mask[o] = idx[0, o]
#     for t = 0 … T − 1, for every o:
#         v = x[idx[t, o]]
#         if v > y[o] or v is NaN:  y[o] = v, mask[o] = idx[t, o]
# The inputs of a window are visited in row-major order, so the winner is the table walk's:
# the first strict maximum, or the last NaN (a repeated last input changes neither).
# Padding is not in the table: −∞ never wins.
cdef extern from *:
    """
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define MG_POOL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define MG_POOL_CLONES
    #endif
    #define MINIGRAD_MAX_TAPS(SUF, T)                                                   \
    MG_POOL_CLONES                                                                     \
    static void max_pool_taps_##SUF(const T *x, T *y, int *mask, Py_ssize_t g0,        \
                                    Py_ssize_t g1, Py_ssize_t P, Py_ssize_t G,         \
                                    Py_ssize_t HW, Py_ssize_t O, Py_ssize_t taps,      \
                                    const int *idx) {                                  \
        for (Py_ssize_t gi = g0; gi < g1; gi++) {       /* G planes, the last maybe fewer */ \
            Py_ssize_t p = gi * G, n = (P - p < G ? P - p : G) * O;                    \
            const T *xp = x + p * HW;                                                  \
            T *yp = y + p * O;                                                         \
            int *mp = mask + p * O;                                                    \
            for (Py_ssize_t o = 0; o < n; o++) {                                       \
                yp[o] = -INFINITY;                                                     \
                mp[o] = idx[o];                                                        \
            }                                                                          \
            for (Py_ssize_t t = 0; t < taps; t++) {                                    \
                const int *it = idx + t * G * O;                                       \
                _Pragma("omp simd")                                                    \
                for (Py_ssize_t o = 0; o < n; o++) {                                   \
                    int k = it[o];                                                     \
                    T v = xp[k];                                                       \
                    int c = (v > yp[o]) | (v != v);                                    \
                    yp[o] = c ? v : yp[o];                                             \
                    mp[o] = c ? k : mp[o];                                             \
                }                                                                      \
            }                                                                          \
            for (Py_ssize_t g = 1; g * O < n; g++)      /* into each plane's own index */ \
                for (Py_ssize_t o = g * O; o < (g + 1) * O; o++)                       \
                    mp[o] -= (int)(g * HW);                                            \
        }                                                                              \
    }
    MINIGRAD_MAX_TAPS(f, float)
    MINIGRAD_MAX_TAPS(d, double)
    """
    void max_pool_taps_f(const float *x, float *y, int *mask, Py_ssize_t g0, Py_ssize_t g1,
                         Py_ssize_t P, Py_ssize_t G, Py_ssize_t HW, Py_ssize_t O,
                         Py_ssize_t taps, const int *idx) nogil
    void max_pool_taps_d(const double *x, double *y, int *mask, Py_ssize_t g0, Py_ssize_t g1,
                         Py_ssize_t P, Py_ssize_t G, Py_ssize_t HW, Py_ssize_t O,
                         Py_ssize_t taps, const int *idx) nogil


def max_pool2d_taps_forward(const floating[:, :, ::1] x,   # IN  (P, H, W)
                            const int[:, ::1] idx,          # IN  (T, G·OH·OW) flat index of tap t of output o
                            Py_ssize_t G,                   # IN  planes a column of idx covers
                            floating[:, :, ::1] y,          # OUT (P, OH, OW)
                            int[:, :, ::1] mask,            # OUT (P, OH, OW) flat index of the winner
                            int num_threads):
    """The same y and mask as max_pool2d_forward, the windows given as a tap table (see
    above) over groups of G planes: column g·OH·OW + o of idx lists the inputs of output
    o of the group's plane g, as indices g·H·W + h·W + w into the group's G planes (on
    planes of few outputs one loop then covers several planes; the last group may have
    fewer). y[p, o] = max over t of x[p, idx[t, o]]; mask the winner's index h·W + w in
    its own plane. The Python side builds idx from the geometry; this function checks its
    shape and that every index lies in its column's plane, since the loop reads x[idx]
    unchecked."""
    cdef Py_ssize_t P = x.shape[0], HW = x.shape[1] * x.shape[2]
    cdef Py_ssize_t O = y.shape[1] * y.shape[2], T = idx.shape[0]
    cdef Py_ssize_t blk, g0, B, t, o, groups
    cdef int bad = 0
    cdef int nt = _threads(P * HW, num_threads)
    if (T < 1 or G < 1 or idx.shape[1] != G * O or y.shape[0] != P or mask.shape[0] != P
            or mask.shape[1] != y.shape[1] or mask.shape[2] != y.shape[2]):
        raise ValueError(f"max_pool2d_taps_forward: idx must be (T ≥ 1, G·OH·OW = {G}·{O}), "
                         f"y and mask (P = {P}, OH, OW); got idx ({idx.shape[0]}, "
                         f"{idx.shape[1]}), y ({y.shape[0]}, {y.shape[1]}, {y.shape[2]}), "
                         f"mask ({mask.shape[0]}, {mask.shape[1]}, {mask.shape[2]})")
    for t in range(T):
        for o in range(G * O):
            bad |= idx[t, o] < (o // O) * HW or idx[t, o] >= (o // O + 1) * HW
    if bad:
        raise ValueError("max_pool2d_taps_forward: an index of idx outside its column's plane")
    if P == 0 or O == 0:
        return
    groups = (P + G - 1) // G
    B = max(1, min(max(1, 4096 // (G * O)), (groups + nt - 1) // nt))   # groups per block: ~4096 outputs
    with nogil:
        for blk in prange((groups + B - 1) // B, schedule='static', num_threads=nt):
            g0 = blk * B
            if floating is float:
                max_pool_taps_f(&x[0, 0, 0], &y[0, 0, 0], &mask[0, 0, 0], g0,
                                min(g0 + B, groups), P, G, HW, O, T, &idx[0, 0])
            else:
                max_pool_taps_d(&x[0, 0, 0], &y[0, 0, 0], &mask[0, 0, 0], g0,
                                min(g0 + B, groups), P, G, HW, O, T, &idx[0, 0])


# ---- max pooling, 3×3 windows at stride 1 with one pixel of padding ('3x3') --------------
#
# GoogLeNet's inception blocks pool 3×3 at stride 1 with one pixel of padding (the output
# as large as the input) on planes of 8×8 … 2×2 with hundreds of channels. Through the tap
# table each of the nine taps of every output is a gather, and gathers are slow here
# (16×256×8²: 0.9 ms for 262k outputs). The 3×3 window is separable instead: its maximum
# is the maximum over its three rows of each row's maximum over three columns, and so is
# its winner — row-major order gives the same first strict maximum and the same last NaN
# when each row's three columns, then the three rows' winners, are visited in order with
# the table walk's test (v > best or v is NaN). Over a block of whole planes, as the flat
# run of values it is (position f, row i, column j):
#     h[f] = the winner of x[f − 1], x[f], x[f + 1]   (its column offset q: 0, 1, 2)
#     y[f] = the winner of h[f − W], h[f], h[f + W]   (its row offset r)
#     mask[f] = (i + r − 1)·W + (j + q − 1)
# each a loop over every f at once, contiguous loads (vectorised); a neighbour outside
# the plane (j = 0 or W − 1, i = 0 or H − 1: the padding) is −∞, which never wins. Where
# all of a window's inputs are −∞ nothing wins and the mask keeps its first real input:
# q starts at 1 on the first column (0 elsewhere), r at 1 on the first row.
cdef extern from *:
    """
    /* b, k ← v, t where v wins over b (the table walk's test: v > b, or v is NaN) */
    #define MG_TAKE(v, t, b, k)                                                        \
        {                                                                              \
            _Bool c_ = ((v) > b) || ((v) != (v));    /* (as `|` GCC 12 left it scalar) */ \
            b = c_ ? (v) : b;                                                          \
            k = c_ ? (t) : k;                                                          \
        }
    #define MINIGRAD_MAX_3X3(SUF, T)                                                    \
    /* h and q of the columns at x[g], j its column (lo, hi: whether x[g ∓ 1] may be    \
       read at all: the first and last value of x are read alone) */                   \
    static inline void mg_cols3_##SUF(const T *x, Py_ssize_t g, Py_ssize_t j,           \
                                      Py_ssize_t W, int lo, int hi, T *h, int *q) {    \
        T b = -INFINITY, c = x[g];                                                     \
        int k = j == 0;                                                                \
        T l = (lo && j > 0) ? x[g - 1] : (T)-INFINITY;                                 \
        T r = (hi && j < W - 1) ? x[g + 1] : (T)-INFINITY;                             \
        MG_TAKE(l, 0, b, k)                                                            \
        MG_TAKE(c, 1, b, k)                                                            \
        MG_TAKE(r, 2, b, k)                                                            \
        *h = b;                                                                        \
        *q = k;                                                                        \
    }                                                                                  \
    MG_POOL_CLONES                                                                     \
    static void max_pool_3x3_##SUF(const T *x, T *y, int *mask, Py_ssize_t f0,         \
                                   Py_ssize_t f1, Py_ssize_t N, Py_ssize_t H,          \
                                   Py_ssize_t W, T *restrict hb, int *restrict qb,     \
                                   const int *restrict jc, const int *restrict ir) {   \
        const Py_ssize_t n = f1 - f0;                   /* whole planes: f0 = p0·H·W */ \
        T *hv = hb + W;                                 /* W values of −∞ each side */ \
        int *hq = qb + W;                                                              \
        for (Py_ssize_t l = 0; l < W; l++) {                                           \
            hb[l] = hb[W + n + l] = -INFINITY;                                         \
            qb[l] = qb[W + n + l] = 0;                                                 \
        }                                                                              \
        Py_ssize_t a = f0 == 0, e = f1 == N ? n - 1 : n;  /* (x[−1], x[N] not read) */ \
        if (a)                                                                         \
            mg_cols3_##SUF(x, f0, jc[0], W, 0, 1, &hv[0], &hq[0]);                     \
        if (e < n)                                                                     \
            mg_cols3_##SUF(x, f0 + e, jc[e], W, 1, 0, &hv[e], &hq[e]);                 \
        _Pragma("omp simd")                                                            \
        for (Py_ssize_t f = a; f < e; f++) {            /* each row's three columns */ \
            Py_ssize_t g = f0 + f;                                                     \
            int j = jc[f];                                                             \
            T xl = x[g - 1], xc = x[g], xr = x[g + 1], b = -INFINITY;                  \
            int k = j == 0;                                                            \
            T l = j > 0 ? xl : (T)-INFINITY;                                           \
            T r = j < W - 1 ? xr : (T)-INFINITY;                                       \
            MG_TAKE(l, 0, b, k)                                                        \
            MG_TAKE(xc, 1, b, k)                                                       \
            MG_TAKE(r, 2, b, k)                                                        \
            hv[f] = b;                                                                 \
            hq[f] = k;                                                                 \
        }                                                                              \
        _Pragma("omp simd")                                                            \
        for (Py_ssize_t f = 0; f < n; f++) {            /* the three rows' winners */  \
            int i = ir[f], j = jc[f];                                                  \
            T hu = hv[f - W], hc = hv[f], hd = hv[f + W], b = -INFINITY;               \
            int qu = hq[f - W], qc = hq[f], qd = hq[f + W];                            \
            int k = i == 0;                                                            \
            T u = i > 0 ? hu : (T)-INFINITY;                                           \
            T d = i < H - 1 ? hd : (T)-INFINITY;                                       \
            MG_TAKE(u, 0, b, k)                                                        \
            MG_TAKE(hc, 1, b, k)                                                       \
            MG_TAKE(d, 2, b, k)                                                        \
            int q = k == 0 ? qu : (k == 1 ? qc : qd);                                  \
            y[f0 + f] = b;                                                             \
            mask[f0 + f] = (i + k - 1) * (int)W + (j + q - 1);                         \
        }                                                                              \
    }
    MINIGRAD_MAX_3X3(f, float)
    MINIGRAD_MAX_3X3(d, double)
    """
    void max_pool_3x3_f(const float *x, float *y, int *mask, Py_ssize_t f0, Py_ssize_t f1,
                        Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, float *hb, int *qb,
                        const int *jc, const int *ir) nogil
    void max_pool_3x3_d(const double *x, double *y, int *mask, Py_ssize_t f0, Py_ssize_t f1,
                        Py_ssize_t N, Py_ssize_t H, Py_ssize_t W, double *hb, int *qb,
                        const int *jc, const int *ir) nogil


def max_pool2d_3x3_forward(const floating[:, :, ::1] x,   # IN  (P, H, W)
                           floating[:, :, ::1] y,          # OUT (P, H, W)
                           int[:, :, ::1] mask,            # OUT (P, H, W) flat index of the winner
                           int num_threads):
    """The y and mask of max_pool2d_forward for 3×3 windows at stride 1 with one pixel of
    padding on every side (the output as large as the input), by the separable passes
    above, each thread its blocks of whole planes (about 4096 values a block)."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2], HW = H * W
    cdef Py_ssize_t G, nb, blk, f, t, n
    cdef int nt = _threads(P * HW, num_threads)
    if (y.shape[0] != P or y.shape[1] != H or y.shape[2] != W or mask.shape[0] != P
            or mask.shape[1] != H or mask.shape[2] != W):
        raise ValueError(f"max_pool2d_3x3_forward: y and mask must have x's shape "
                         f"{(P, H, W)}; got y {tuple(y.shape)[:3]}, mask {tuple(mask.shape)[:3]}")
    if P == 0 or HW == 0:
        return
    G = max(1, min(4096 // HW, (P + nt - 1) // nt))            # planes per block
    nb = (P + G - 1) // G
    n = G * HW
    dt = np.float32 if floating is float else np.float64
    cdef int[::1] jc = np.empty(n, np.intc), ir = np.empty(n, np.intc)
    cdef floating[:, ::1] hb = np.empty((nt, n + 2 * W), dt)
    cdef int[:, ::1] qb = np.empty((nt, n + 2 * W), np.intc)
    for f in range(n):                                  # column and row of each position
        jc[f] = <int>(f % W)
        ir[f] = <int>((f // W) % H)
    with nogil:
        for blk in prange(nb, schedule='static', num_threads=nt):
            t = threadid()
            if floating is float:
                max_pool_3x3_f(&x[0, 0, 0], &y[0, 0, 0], &mask[0, 0, 0], blk * G * HW,
                               min(blk * G + G, P) * HW, P * HW, H, W, &hb[t, 0], &qb[t, 0],
                               &jc[0], &ir[0])
            else:
                max_pool_3x3_d(&x[0, 0, 0], &y[0, 0, 0], &mask[0, 0, 0], blk * G * HW,
                               min(blk * G + G, P) * HW, P * HW, H, W, &hb[t, 0], &qb[t, 0],
                               &jc[0], &ir[0])


# ---- average pooling ---------------------------------------------------------------

def avg_pool2d_forward(const floating[:, :, ::1] x,        # IN  (P, H, W)
                       const Py_ssize_t[::1] h_lo,          # IN  (OH,) first real row of window i
                       const Py_ssize_t[::1] h_hi,          # IN  (OH,) end (exclusive)
                       const Py_ssize_t[::1] h_div,         # IN  (OH,) row factor of the divisor
                       const Py_ssize_t[::1] w_lo,          # IN  (OW,)
                       const Py_ssize_t[::1] w_hi,          # IN  (OW,)
                       const Py_ssize_t[::1] w_div,         # IN  (OW,) column factor of the divisor
                       floating[:, :, ::1] y,               # OUT (P, OH, OW)
                       int num_threads):
    """y[p,i,j] = (Σ_{h_lo[i] ≤ h < h_hi[i]} Σ_{w_lo[j] ≤ w < w_hi[j]} x[p,h,w]) / (h_div[i]·w_div[j])

    The divisor is separable for every rule the Python side offers (count_include_pad,
    real elements only, adaptive windows, divisor_override as h_div = d, w_div = 1).
    Windows of one row and one column each (adaptive pooling to a larger plane, e.g. VGG's
    1×1 → 7×7 on small images) take a loop without the window sums, the same numbers
    (0 + x[p,h,w]) / divisor."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef Py_ssize_t r, p, i, j, h, w
    cdef floating s
    cdef int nt = _threads(P * (H * W + OH * OW), num_threads)
    cdef bint single = True
    for i in range(OH):
        single = single and h_hi[i] - h_lo[i] == 1
    for j in range(OW):
        single = single and w_hi[j] - w_lo[j] == 1
    with nogil:
        if single:
            for r in prange(P * OH, schedule='static', num_threads=nt):
                p = r // OH
                i = r - p * OH
                h = h_lo[i]
                for j in range(OW):
                    s = 0
                    y[p, i, j] = (s + x[p, h, w_lo[j]]) / <floating>(h_div[i] * w_div[j])
        else:
            for r in prange(P * OH, schedule='static', num_threads=nt):
                p = r // OH
                i = r - p * OH
                for j in range(OW):
                    s = 0
                    for h in range(h_lo[i], h_hi[i]):
                        for w in range(w_lo[j], w_hi[j]):
                            s = s + x[p, h, w]
                    y[p, i, j] = s / <floating>(h_div[i] * w_div[j])


def avg_pool2d_2x2_forward(const floating[:, :, ::1] x,    # IN  (P, H, W), H ≥ 2·OH, W ≥ 2·OW
                           floating[:, :, ::1] y,           # OUT (P, OH, OW)
                           Py_ssize_t divisor,              # IN  4, or divisor_override
                           int num_threads):
    """y[p,i,j] = (x[p,2i,2j] + x[p,2i,2j+1] + x[p,2i+1,2j] + x[p,2i+1,2j+1]) / divisor"""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef Py_ssize_t r, p, i, j, h, w
    cdef floating d = <floating>divisor
    cdef int nt = _threads(P * H * W, num_threads)
    with nogil:
        for r in prange(P * OH, schedule='static', num_threads=nt):
            p = r // OH
            i = r - p * OH
            h = 2 * i
            for j in range(OW):
                w = 2 * j
                y[p, i, j] = (x[p, h, w] + x[p, h, w + 1] + x[p, h + 1, w] + x[p, h + 1, w + 1]) / d


def avg_pool2d_backward(const floating[:, :, ::1] dy,      # IN  (P, OH, OW) δ
                        const Py_ssize_t[::1] h_lo,         # IN  (OH,) the forward's tables
                        const Py_ssize_t[::1] h_hi,
                        const Py_ssize_t[::1] h_div,
                        const Py_ssize_t[::1] w_lo,
                        const Py_ssize_t[::1] w_hi,
                        const Py_ssize_t[::1] w_div,
                        floating[:, :, ::1] dx,             # OUT (P, H, W) (need not be zeroed)
                        int num_threads):
    """∂L/∂x[p,h,w] = Σ over windows (i,j) containing (h,w) of δ[p,i,j] / (h_div[i]·w_div[j])

    (seed 004: δ/(m·n) spread over the window; overlapping windows accumulate, one
    thread per plane so the += never races).

    Windows of one input each, in order (adaptive pooling to a larger plane: VGG's 1×1 →
    7×7 on small images) go the other way round: each input sums the windows on it, rows i
    then columns j, in a register, the same additions in the same order as the += above."""
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t OH = dy.shape[1], OW = dy.shape[2]
    cdef Py_ssize_t p, i, j, h, w, i0, j0, ii, jj
    cdef floating g, s
    cdef int nt = _threads(P * (H * W + OH * OW), num_threads)
    cdef bint single = True
    for i in range(OH):
        single = single and h_hi[i] - h_lo[i] == 1 and (i == 0 or h_lo[i] >= h_lo[i - 1])
    for j in range(OW):
        single = single and w_hi[j] - w_lo[j] == 1 and (j == 0 or w_lo[j] >= w_lo[j - 1])
    with nogil:
        if single:
            for p in prange(P, schedule='static', num_threads=nt):
                i = 0
                for h in range(H):
                    i0 = i                          # the windows i0 ≤ i' < i sit on row h
                    while i < OH and h_lo[i] == h:
                        i = i + 1
                    j = 0
                    for w in range(W):
                        j0 = j                      # ... and j0 ≤ j' < j on column w
                        while j < OW and w_lo[j] == w:
                            j = j + 1
                        s = 0
                        for ii in range(i0, i):
                            for jj in range(j0, j):
                                s = s + dy[p, ii, jj] / <floating>(h_div[ii] * w_div[jj])
                        dx[p, h, w] = s
        else:
            for p in prange(P, schedule='static', num_threads=nt):
                memset(&dx[p, 0, 0], 0, H * W * sizeof(floating))
                for i in range(OH):
                    for j in range(OW):
                        g = dy[p, i, j] / <floating>(h_div[i] * w_div[j])
                        for h in range(h_lo[i], h_hi[i]):
                            for w in range(w_lo[j], w_hi[j]):
                                dx[p, h, w] = dx[p, h, w] + g


def avg_pool2d_2x2_backward(const floating[:, :, ::1] dy,  # IN  (P, OH, OW)
                            floating[:, :, ::1] dx,         # OUT (P, H, W) (need not be zeroed)
                            Py_ssize_t divisor,             # IN  4, or divisor_override
                            int num_threads):
    """∂L/∂x = δ[p,i,j] / divisor on each of the four inputs of window (i,j); 0 on rows/cols
    past 2·OH, 2·OW. Each dx element is written exactly once."""
    cdef Py_ssize_t P = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t OH = dy.shape[1], OW = dy.shape[2]
    cdef Py_ssize_t r, p, i, j, h, w, hh
    cdef floating g, d = <floating>divisor
    cdef int nt = _threads(P * H * W, num_threads)
    with nogil:
        for r in prange(P * OH, schedule='static', num_threads=nt):
            p = r // OH
            i = r - p * OH
            h = 2 * i
            for j in range(OW):
                w = 2 * j
                g = dy[p, i, j] / d
                dx[p, h, w] = g
                dx[p, h, w + 1] = g
                dx[p, h + 1, w] = g
                dx[p, h + 1, w + 1] = g
            for w in range(2 * OW, W):                       # columns right of the last window
                dx[p, h, w] = 0
                dx[p, h + 1, w] = 0
            if i == OH - 1:
                for hh in range(2 * OH, H):
                    memset(&dx[p, hh, 0], 0, W * sizeof(floating))


def avg_pool2d_plane_forward(const floating[:, ::1] x,     # IN  (P, H·W) whole planes
                             floating[::1] y,               # OUT (P,)
                             Py_ssize_t divisor,            # IN  H·W, or divisor_override
                             int num_threads):
    """One window covering the whole plane (global average pooling):
    y[p] = Σ_k x[p,k] / divisor, the sum vectorised (see _sum_f/_sum_d)."""
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1]
    cdef Py_ssize_t p
    cdef int nt = _threads(P * n, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            if floating is float:
                y[p] = _sum_f(&x[p, 0], n) / <floating>divisor
            else:
                y[p] = _sum_d(&x[p, 0], n) / <floating>divisor


def avg_pool2d_plane_backward(const floating[::1] dy,      # IN  (P,) δ
                              floating[:, ::1] dx,          # OUT (P, H·W)
                              Py_ssize_t divisor,           # IN  as in the forward
                              int num_threads):
    """∂L/∂x[p,k] = δ[p] / divisor for every element k of the plane."""
    cdef Py_ssize_t P = dx.shape[0], n = dx.shape[1]
    cdef Py_ssize_t p, k
    cdef floating g
    cdef int nt = _threads(P * n, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            g = dy[p] / <floating>divisor
            for k in range(n):
                dx[p, k] = g
