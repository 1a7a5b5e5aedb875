# A large matrix product on the OpenMP threads: C = op(A) · op(B), its rows (or columns)
# cut into one block per thread, each block one single-threaded GEMM call.
#
#     C[r0:r1, :] = op(A)[r0:r1, :] · op(B)        (split by rows, when m ≥ n)
#     C[:, c0:c1] = op(A) · op(B)[:, c0:c1]        (split by columns, otherwise)
#
# Every element of C is still one dot product over all of k in one GEMM call, so the
# blocks only choose which thread computes it. Why not OpenBLAS's own threads: minigrad's
# other kernels run on OpenMP's, and two thread pools on the same cores wait on each other
# (an idle OpenMP thread spins for a while before it sleeps; OpenBLAS's threads spin too).
# With every multi-threaded product of a training step on the OpenMP threads, one pool
# does all of the step's work (minigrad/_blas.py, benchmarks/RESULTS.md: "One thread pool").
#
# Contract: minigrad/_blas.py (matmul) passes C-contiguous 2-d arrays of one dtype, op(A)
# (m×k) and op(B) (k×n) with k ≥ 1, C (m×n) to be overwritten, all sizes < 2³¹ unless the
# GEMM takes 64-bit integers; bounds checks are off by default (see setup.py). It holds
# OpenBLAS at one thread while this runs (_blas.single_threaded).
from cython.parallel cimport prange

ctypedef fused floating:
    float
    double

include "_gemm.pxi"

cdef enum:
    ALIGN = 16       # block edges fall on multiples of 16 rows/columns (the SIMD panels)


def gemm_split(const floating[:, ::1] a, bint trans_a,    # IN  A (m, k), or Aᵀ stored as (k, m)
               const floating[:, ::1] b, bint trans_b,    # IN  B (k, n), or Bᵀ stored as (n, k)
               floating[:, ::1] c,                        # OUT C (m, n)
               size_t gemm, bint ilp64, int num_threads):
    """C = op(A) · op(B) (op: the transpose where trans_a / trans_b), C's rows (when
    m ≥ n) or columns cut into num_threads blocks whose edges fall on multiples of 16,
    one single-threaded GEMM call (the CBLAS GEMM at address `gemm`) per block."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1]
    cdef Py_ssize_t k = a.shape[0] if trans_a else a.shape[1]
    cdef Py_ssize_t lda = a.shape[1], ldb = b.shape[1], ldc = c.shape[1]
    cdef int ta = TRANS if trans_a else NO_TRANS, tb = TRANS if trans_b else NO_TRANS
    cdef bint by_rows = m >= n
    cdef Py_ssize_t length = m if by_rows else n
    cdef Py_ssize_t chunk = (length + num_threads - 1) // num_threads
    chunk = (chunk + ALIGN - 1) // ALIGN * ALIGN
    cdef Py_ssize_t parts = (length + chunk - 1) // chunk
    cdef Py_ssize_t t, lo, hi
    with nogil:
        for t in prange(parts, schedule='static', num_threads=num_threads):
            lo = t * chunk
            hi = min(length, lo + chunk)
            if by_rows:      # rows lo..hi of op(A): row lo of A, or column lo of the stored Aᵀ
                _gemm(gemm, ilp64, ta, tb, hi - lo, n, k,
                      &a[0, 0] + (lo if trans_a else lo * lda), lda, &b[0, 0], ldb,
                      0, &c[0, 0] + lo * ldc, ldc)
            else:            # columns lo..hi of op(B): column lo of B, or row lo of the stored Bᵀ
                _gemm(gemm, ilp64, ta, tb, m, hi - lo, k, &a[0, 0], lda,
                      &b[0, 0] + (lo * ldb if trans_b else lo), ldb,
                      0, &c[0, 0] + lo, ldc)


# ---- products with one thin dimension (a batch): ext/thin_gemm.h ---------------------------

cdef extern from "thin_gemm.h" nogil:
    int MG_THIN_BUILD
    int mg_thin_level()
    void mg_gemm_small_k(const float* a, const float* b, Py_ssize_t ldb, float* c, Py_ssize_t ldc,
                         Py_ssize_t m, Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1,
                         Py_ssize_t chunk, float* bp)
    void mg_gemm_small_m(const float* a, const float* b, Py_ssize_t ldb, float* c,
                         Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t k, Py_ssize_t j0, Py_ssize_t j1,
                         Py_ssize_t chunk, Py_ssize_t kb)
    void mg_gemm_small_n(const float* a, const float* b, float* c, Py_ssize_t n, Py_ssize_t k,
                         Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t kb)

cdef enum:
    PANEL = 48       # ext/thin_gemm.h's column panel: each thread's columns start on one


def thin_available():
    """True when this build has ext/thin_gemm.h's AVX-512 loops and this CPU runs them."""
    return bool(MG_THIN_BUILD) and mg_thin_level() == 2


def gemm_small_k(const float[:, ::1] a,          # IN  A (m, k)
                 const float[:, ::1] b,          # IN  B (k, n)
                 float[:, ::1] c,                # OUT C (m, n)
                 float[:, ::1] scratch,          # TMP (≥ num_threads, ≥ k · chunk) B's packed panels
                 Py_ssize_t chunk, int num_threads):
    """C = A · B by ext/thin_gemm.h (each element one in-order sum over p of fused
    multiply-adds, written once), C's columns cut into num_threads blocks whose edges fall
    on multiples of 48, each block in chunks of `chunk` columns (a multiple of 48). Only
    where thin_available()."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    cdef Py_ssize_t part = 0, parts = 0, t, lo, hi
    if not thin_available():
        raise RuntimeError("gemm_small_k(): this build or CPU has no AVX-512 loops")
    if num_threads >= 1 and n >= 1:
        part = ((n + num_threads - 1) // num_threads + PANEL - 1) // PANEL * PANEL
        parts = (n + part - 1) // part
    if (b.shape[0] != k or c.shape[0] != a.shape[0] or c.shape[1] != b.shape[1] or k < 1
            or m < 1 or n < 1 or chunk < PANEL or chunk % PANEL or num_threads < 1
            or scratch.shape[0] < parts or scratch.shape[1] < k * chunk):
        raise ValueError(f"gemm_small_k(): a ({a.shape[0]}, {a.shape[1]}), b ({b.shape[0]}, "
                         f"{b.shape[1]}), c ({c.shape[0]}, {c.shape[1]}), scratch "
                         f"({scratch.shape[0]}, {scratch.shape[1]}), "
                         f"chunk {chunk}, {num_threads} threads "
                         f"do not fit (A (m, k) · B (k, n) = C (m, n), all non-empty; chunk a "
                         f"positive multiple of {PANEL}; scratch ≥ (threads, k·chunk))")
    with nogil:
        for t in prange(parts, schedule='static', num_threads=num_threads):
            lo = t * part
            hi = min(n, lo + part)
            mg_gemm_small_k(&a[0, 0], &b[0, 0], b.shape[1], &c[0, 0], c.shape[1],
                            m, k, lo, hi, chunk, &scratch[t, 0])


def gemm_small_m(const float[:, ::1] a,          # IN  A (m, k), m small
                 const float[:, ::1] b,          # IN  B (k, n), large: read once
                 float[:, ::1] c,                # OUT C (m, n)
                 Py_ssize_t chunk, Py_ssize_t kb, int num_threads):
    """C = A · B by ext/thin_gemm.h's mg_gemm_small_m (each element one in-order sum over p of
    fused multiply-adds), C's columns cut into num_threads blocks on multiples of 48, each in
    chunks of `chunk` columns, B's rows in blocks of kb. Only where thin_available()."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    cdef Py_ssize_t part, parts, t, lo, hi
    if not thin_available():
        raise RuntimeError("gemm_small_m(): this build or CPU has no AVX-512 loops")
    if (b.shape[0] != k or c.shape[0] != a.shape[0] or c.shape[1] != b.shape[1] or k < 1
            or m < 1 or n < 1 or chunk < 1 or kb < 1 or num_threads < 1):
        raise ValueError(f"gemm_small_m(): a ({a.shape[0]}, {a.shape[1]}), b ({b.shape[0]}, "
                         f"{b.shape[1]}), c ({c.shape[0]}, {c.shape[1]}), chunk {chunk}, kb {kb}, "
                         f"{num_threads} threads do not fit (A (m, k) · B (k, n) = C (m, n), "
                         f"all non-empty; chunk, kb, threads ≥ 1)")
    part = ((n + num_threads - 1) // num_threads + PANEL - 1) // PANEL * PANEL
    parts = (n + part - 1) // part
    with nogil:
        for t in prange(parts, schedule='static', num_threads=num_threads):
            lo = t * part
            hi = min(n, lo + part)
            mg_gemm_small_m(&a[0, 0], &b[0, 0], b.shape[1], &c[0, 0], c.shape[1], m, k,
                            lo, hi, chunk, kb)


def gemm_small_n(const float[:, ::1] a,          # IN  A (m, k), large: read once
                 const float[:, ::1] b,          # IN  B (k, n), n small
                 float[:, ::1] c,                # OUT C (m, n)
                 Py_ssize_t kb, int num_threads):
    """C = A · B by ext/thin_gemm.h's mg_gemm_small_n (each element one in-order sum over p of
    fused multiply-adds), C's rows cut into num_threads blocks on multiples of 12, B's rows in
    blocks of kb. Only where thin_available()."""
    cdef Py_ssize_t m = c.shape[0], n = c.shape[1], k = a.shape[1]
    cdef Py_ssize_t part, parts, t, lo, hi
    if not thin_available():
        raise RuntimeError("gemm_small_n(): this build or CPU has no AVX-512 loops")
    if (b.shape[0] != k or c.shape[0] != a.shape[0] or c.shape[1] != b.shape[1] or k < 1
            or m < 1 or n < 1 or kb < 1 or num_threads < 1):
        raise ValueError(f"gemm_small_n(): a ({a.shape[0]}, {a.shape[1]}), b ({b.shape[0]}, "
                         f"{b.shape[1]}), c ({c.shape[0]}, {c.shape[1]}), kb {kb}, "
                         f"{num_threads} threads do not fit (A (m, k) · B (k, n) = C (m, n), "
                         f"all non-empty; kb, threads ≥ 1)")
    part = ((m + num_threads - 1) // num_threads + 11) // 12 * 12
    parts = (m + part - 1) // part
    with nogil:
        for t in prange(parts, schedule='static', num_threads=num_threads):
            lo = t * part
            hi = min(m, lo + part)
            mg_gemm_small_n(&a[0, 0], &b[0, 0], &c[0, 0], n, k, lo, hi, kb)
