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
#   batchnorm_affine      one pass: y = a · (x − μ) + β with a = γ/σ̂  (= γ x̂ + β)
#   batchnorm_grad_sums   one pass over x and δ: Σ δ and Σ δ · (x − μ)  (∂L/∂β and σ̂ · ∂L/∂γ)
#   batchnorm_input_grad  one pass: ∂L/∂x = a · δ + k · (x − μ) + m, with, from the line
#                         above, a = γ/σ̂, k = −a · ∂L/∂γ / (n σ̂), m = −a · ∂L/∂β / n
#                         (training; k = m = 0 in evaluation)
#
# so the forward saves x itself (the graph holds it anyway) instead of a copy x̂.
#
# Contract: the Python side (minigrad/ops/norm.py) passes C-contiguous arrays of one dtype,
# x and δ of shape (N, C, L) with N·L ≥ 1, the per-channel arrays of shape (C,); bounds
# checks are off by default (see setup.py). Threads split the channels (reductions), or
# the (n, c) rows (the elementwise passes).
from cython.parallel cimport prange
cimport cython

ctypedef fused floating:
    float
    double

# Work smaller than this runs on one thread: spinning up a team costs more.
cdef enum:
    GRAIN = 32768

# The sums over one row of L values, s1 += Σ (x − s), s2 += Σ (x − s)·(y − t), in double.
# As plain loops these are one chain of dependent additions (one per 4 cycles); the
# `omp simd` reduction lets the compiler keep a partial sum per vector lane (and unroll),
# which reorders the additions: the result differs from a serial sum by rounding only.
# (Without OpenMP the pragma is ignored and the loop runs serially.)
cdef extern from *:
    """
    #define MINIGRAD_BN_ROW_SUMS(NAME, T)                                              \
    static inline void NAME(const T *x, const T *y, Py_ssize_t L, double s, double t,  \
                            double *s1, double *s2) {                                  \
        double a = 0, b = 0;                                                           \
        _Pragma("omp simd reduction(+:a, b)")                                          \
        for (Py_ssize_t l = 0; l < L; l++) {                                           \
            double d = (double)x[l] - s;                                               \
            a += d;                                                                    \
            b += d * ((double)y[l] - t);                                               \
        }                                                                              \
        *s1 += a;                                                                      \
        *s2 += b;                                                                      \
    }
    MINIGRAD_BN_ROW_SUMS(bn_row_sums_f, float)
    MINIGRAD_BN_ROW_SUMS(bn_row_sums_d, double)
    """
    void bn_row_sums_f(const float *x, const float *y, Py_ssize_t L, double s, double t,
                       double *s1, double *s2) nogil
    void bn_row_sums_d(const double *x, const double *y, Py_ssize_t L, double s, double t,
                       double *s1, double *s2) nogil


cdef inline void row_sums(const floating *x, const floating *y, Py_ssize_t L, double s,
                          double t, double *s1, double *s2) noexcept nogil:
    if floating is float:
        bn_row_sums_f(x, y, L, s, t, s1, s2)
    else:
        bn_row_sums_d(x, y, L, s, t, s1, s2)


def batchnorm_stats(const floating[:, :, ::1] x,     # IN  (N, C, L)
                    floating[::1] mean,              # OUT (C,) μ
                    floating[::1] var,               # OUT (C,) σ², biased
                    int num_threads):
    """μ and the biased σ² of each channel in one pass (shifted sums in double)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t n, c, l
    cdef double s, s1, s2, m, v, count = <double>(N * L)
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    with nogil:
        for c in prange(C, schedule='static', num_threads=nt):
            s = x[0, c, 0]
            s1 = 0
            s2 = 0
            for n in range(N):              # s1 += Σ_l (x − s), s2 += Σ_l (x − s)²
                row_sums(&x[n, c, 0], &x[n, c, 0], L, s, s, &s1, &s2)
            m = s1 / count
            v = s2 / count - m * m
            mean[c] = <floating>(s + m)
            var[c] = <floating>(v if v > 0 else 0)


def batchnorm_affine(const floating[:, :, ::1] x,    # IN  (N, C, L)
                     const floating[::1] mean,       # IN  (C,) μ
                     const floating[::1] a,          # IN  (C,) γ/σ̂
                     const floating[::1] b,          # IN  (C,) β
                     floating[:, :, ::1] y,          # OUT (N, C, L)
                     int num_threads):
    """y = a · (x − μ) + b per channel (= γ · x̂ + β). (Not a · x + (b − a·μ): when
    |μ| ≫ σ the two large terms would cancel, and float32 keep few digits of y.)"""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t r, n, c, l
    cdef floating ac, bc, muc
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    with nogil:
        for r in prange(N * C, schedule='static', num_threads=nt):
            n = r // C
            c = r % C
            ac = a[c]
            bc = b[c]
            muc = mean[c]
            for l in range(L):
                y[n, c, l] = ac * (x[n, c, l] - muc) + bc


def batchnorm_grad_sums(const floating[:, :, ::1] x,     # IN  (N, C, L)
                        const floating[:, :, ::1] dy,    # IN  (N, C, L) δ
                        const floating[::1] mean,        # IN  (C,) μ
                        floating[::1] sum_dy,            # OUT (C,) Σ δ
                        floating[::1] sum_dy_xmu,        # OUT (C,) Σ δ · (x − μ)
                        int num_threads):
    """The two per-channel sums of the backward, in one pass (double accumulators)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t n, c, l
    cdef double s1, s2, mc
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    with nogil:
        for c in prange(C, schedule='static', num_threads=nt):
            mc = mean[c]
            s1 = 0
            s2 = 0
            for n in range(N):              # s1 += Σ_l δ, s2 += Σ_l δ · (x − μ)
                row_sums(&dy[n, c, 0], &x[n, c, 0], L, 0, mc, &s1, &s2)
            sum_dy[c] = <floating>s1
            sum_dy_xmu[c] = <floating>s2


def batchnorm_input_grad(const floating[:, :, ::1] x,    # IN  (N, C, L)
                         const floating[:, :, ::1] dy,   # IN  (N, C, L) δ
                         const floating[::1] mean,       # IN  (C,) μ
                         const floating[::1] a,          # IN  (C,) γ/σ̂
                         const floating[::1] k,          # IN  (C,) −a · ∂L/∂γ / (n σ̂)
                         const floating[::1] m,          # IN  (C,) −a · ∂L/∂β / n
                         floating[:, :, ::1] dx,         # OUT (N, C, L) ∂L/∂x
                         int num_threads):
    """∂L/∂x = a · δ + k · (x − μ) + m per channel
             = γ/σ̂ · (δ − ⟨δ⟩ − x̂ · ⟨δ · x̂⟩)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2]
    cdef Py_ssize_t r, n, c, l
    cdef floating ac, kc, mc, muc
    cdef int nt = num_threads if N * C * L >= GRAIN else 1
    with nogil:
        for r in prange(N * C, schedule='static', num_threads=nt):
            n = r // C
            c = r % C
            ac = a[c]
            kc = k[c]
            mc = m[c]
            muc = mean[c]
            for l in range(L):
                dx[n, c, l] = ac * dy[n, c, l] + kc * (x[n, c, l] - muc) + mc
