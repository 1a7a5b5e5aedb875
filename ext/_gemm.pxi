# The CBLAS GEMM called by address from inside the OpenMP loops (the 'blas' and 'winograd'
# kernels), shared by the modules that `include "_gemm.pxi"`; the includer defines the
# fused type `floating` (float, double) first.
#
# The GEMM is CBLAS's, row-major: C (m×n) = α·op(A) (m×k) · op(B) (k×n) + β·C. The caller
# passes its address as an integer (ILP64: 64-bit integer arguments, as in NumPy's wheels;
# else 32-bit) and makes sure it runs single-threaded while these loops call it (one layer
# of parallelism: the OpenMP threads; see minigrad/_blas.py).
from libc.stdint cimport int64_t
from libc.string cimport memset

cdef enum:
    ROW_MAJOR = 101
    NO_TRANS = 111
    TRANS = 112

ctypedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float*,
                           int64_t, const float*, int64_t, float, float*, int64_t) noexcept nogil
ctypedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*, int64_t) noexcept nogil
ctypedef void (*sgemm32_t)(int, int, int, int, int, int, float, const float*,
                           int, const float*, int, float, float*, int) noexcept nogil
ctypedef void (*dgemm32_t)(int, int, int, int, int, int, double, const double*,
                           int, const double*, int, double, double*, int) noexcept nogil


cdef inline void _gemm(size_t fn, bint ilp64, int ta, int tb,
                       Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                       floating beta, floating* c, Py_ssize_t ldc) noexcept nogil:
    """C = op(A)·op(B) + β·C, row-major, through the GEMM at address fn."""
    if floating is float:
        if ilp64:
            (<sgemm64_t>fn)(ROW_MAJOR, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
        else:
            (<sgemm32_t>fn)(ROW_MAJOR, ta, tb, <int>m, <int>n, <int>k, 1, a, <int>lda,
                            b, <int>ldb, beta, c, <int>ldc)
    else:
        if ilp64:
            (<dgemm64_t>fn)(ROW_MAJOR, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
        else:
            (<dgemm32_t>fn)(ROW_MAJOR, ta, tb, <int>m, <int>n, <int>k, 1, a, <int>lda,
                            b, <int>ldb, beta, c, <int>ldc)


# ---- per-thread partial sums that the GEMMs write ------------------------------------------
# A kernel that sums ∂L/∂w over its blocks gives each thread a row of `acc`: the thread's
# first block writes the row (β = 0), the later ones add to it (β = 1), so no zeroing pass
# over acc precedes the loop; `started` (one byte per thread, zeros) records which rows were
# written, and the rows of threads that got no block are zeroed after it.

cdef inline bint _first_block(unsigned char[::1] started, Py_ssize_t t) noexcept nogil:
    """Whether this is thread t's first block (marking it started)."""
    cdef bint first = not started[t]
    started[t] = 1
    return first


cdef inline void _zero_unstarted_rows(floating[:, ::1] acc,
                                      const unsigned char[::1] started) noexcept nogil:
    """acc[t] = 0 for every thread t that got no block."""
    cdef Py_ssize_t t
    for t in range(acc.shape[0]):
        if not started[t]:
            memset(&acc[t, 0], 0, acc.shape[1] * sizeof(floating))
