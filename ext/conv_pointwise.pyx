# The 1×1 convolution (stride 1, no padding, one group) as a plain GEMM per sample.
#
# With F_h = F_w = 1, S = 1, P = 0 the correlation of DESIGN.md,
#     y[n,k,i,j] = b[k] + Σ_c x[n,c,i,j] · w[k,c,0,0],
# is, for each sample, one matrix product over the channel axis: with x[n] read as a
# (C, H·W) matrix and w as (K, C),
#     y[n] = w · x[n] + b              (K, C) @ (C, H·W) -> (K, H·W)
# and its gradients
#     ∂L/∂x[n] = wᵀ · δ[n]             (C, K) @ (K, H·W) -> (C, H·W)
#     ∂L/∂wᵀ   = Σ_n x[n] · δ[n]ᵀ      (C, H·W) @ (H·W, K) -> (C, K)
#     ∂L/∂b    = Σ_n Σ_ij δ[n,k,i,j]
# NCHW already stores x[n], y[n], δ[n] as those row-major matrices, so no im2col copy is
# made: the GEMM reads and writes the tensors in place.
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py, path 'pointwise') passes
# C-contiguous arrays of one dtype with the shapes below (acc need not be zeroed: see
# _gemm.pxi's partial sums); bounds checks are off by default (see setup.py). The GEMM runs
# single-threaded inside the OpenMP loop over samples (see _gemm.pxi).
from cython.parallel cimport prange, threadid
cimport cython

ctypedef fused floating:
    float
    double

include "_gemm.pxi"
include "_sums.pxi"


def conv2d_forward_pointwise(const floating[:, :, ::1] x,   # IN  (N, C, L)  L = H·W
                             const floating[:, ::1] w,      # IN  (K, C)
                             const floating[::1] b,         # IN  (K,) bias, or (0,) for none
                             floating[:, :, ::1] y,         # OUT (N, K, L)
                             size_t gemm, bint ilp64, int num_threads):
    """y[n] = w (K, C) @ x[n] (C, L) + b, one GEMM per sample, threads over samples."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], K = w.shape[0]
    cdef Py_ssize_t n, k, l
    cdef bint has_bias = b.shape[0] > 0
    cdef floating beta = 1 if has_bias else 0
    with nogil:
        for n in prange(N, schedule='static', num_threads=num_threads):
            if has_bias:
                for k in range(K):
                    for l in range(L):
                        y[n, k, l] = b[k]
            # (K, C) @ (C, L) -> (K, L), on top of the bias (β = 1) when there is one
            _gemm(gemm, ilp64, NO_TRANS, NO_TRANS, K, L, C, &w[0, 0], C, &x[n, 0, 0], L,
                  beta, &y[n, 0, 0], L)


def conv2d_backward_pointwise(const floating[:, :, ::1] x,    # IN  (N, C, L) (any, if not need_dw)
                              const floating[:, :, ::1] dy,   # IN  (N, K, L) δ
                              const floating[:, ::1] w,       # IN  (K, C)
                              floating[:, :, ::1] dx,         # OUT (N, C, L) ∂L/∂x, if need_dx
                              floating[:, ::1] acc,           # OUT (threads, C·K + K):
                                                              #     per-thread ∂L/∂wᵀ (C, K), ∂L/∂b
                              unsigned char[::1] started,     # TMP (threads,) zeros
                              bint need_dx, bint need_dw, bint need_db,
                              size_t gemm, bint ilp64, int num_threads):
    """∂L/∂x[n] = wᵀ @ δ[n]; ∂L/∂wᵀ += x[n] @ δ[n]ᵀ and ∂L/∂b += Σ δ[n] into the thread's
    row of acc (the caller adds the rows in a fixed order). A thread's first sample writes
    its row (β = 0: no zeroing pass over acc), a thread without a sample zeroes it."""
    cdef Py_ssize_t N = dy.shape[0], K = dy.shape[1], L = dy.shape[2], C = w.shape[1]
    cdef Py_ssize_t n, k, l, t
    cdef double s
    cdef bint first
    with nogil:
        for n in prange(N, schedule='static', num_threads=num_threads):
            t = threadid()
            first = _first_block(started, t)
            if need_dx:
                # (C, K) @ (K, L) -> (C, L)
                _gemm(gemm, ilp64, TRANS, NO_TRANS, C, L, K, &w[0, 0], C, &dy[n, 0, 0], L,
                      0, &dx[n, 0, 0], L)
            if need_dw:
                # (C, L) @ (L, K) -> (C, K), accumulated
                _gemm(gemm, ilp64, NO_TRANS, TRANS, C, K, L, &x[n, 0, 0], L, &dy[n, 0, 0], L,
                      0 if first else 1, &acc[t, 0], K)
            if need_db:
                for k in range(K):
                    s = _row_sum(&dy[n, k, 0], L)
                    if first:
                        acc[t, C * K + k] = <floating>s
                    else:
                        acc[t, C * K + k] += <floating>s
        _zero_unstarted_rows(acc, started)              # threads without a sample


# ---- small planes: the batch in the GEMM's long side ----------------------------------------
#
# On a plane of a few pixels (DenseNet's 4×4 and 2×2) the per-sample products above are
# K × L GEMMs with L = 16 or 4 columns, and each call packs all of w again for them. Laid
# out channel-major over the whole batch — xs (C, N·L) with xs[c, n·L + l] = x[n, c, l],
# the same for δ as ds (K, N·L) — the same sums are one product per pass:
#     ys  = w · xs                (K, C) @ (C, N·L)     then y[n, k, l] = ys[k, n·L + l] + b[k]
#     dxs = wᵀ · ds               (C, K) @ (K, N·L)     then ∂L/∂x[n, c, l] = dxs[c, n·L + l]
#     ∂L/∂w = ds · xsᵀ            (K, N·L) @ (N·L, C)   (no partial sums: a fixed order)
#     ∂L/∂b[k] = Σ_j ds[k, j]
# each thread one block of the product's rows (w packed once per thread), with the copies
# in and out split over the threads too.

cdef void _gather(const floating[:, :, ::1] a, floating[:, ::1] out,
                  int num_threads) noexcept nogil:
    """out (C, N·L) = a (N, C, L) channel-major: out[c, n·L + l] = a[n, c, l]."""
    cdef Py_ssize_t N = a.shape[0], C = a.shape[1], L = a.shape[2], c, n, l
    for c in prange(C, schedule='static', num_threads=num_threads):
        for n in range(N):
            for l in range(L):
                out[c, n * L + l] = a[n, c, l]


def conv2d_forward_pointwise_batched(const floating[:, :, ::1] x,   # IN  (N, C, L)
                                     const floating[:, ::1] w,      # IN  (K, C)
                                     const floating[::1] b,         # IN  (K,) or (0,)
                                     floating[:, :, ::1] y,         # OUT (N, K, L)
                                     floating[:, ::1] xs,           # TMP (C, N·L)
                                     floating[:, ::1] ys,           # TMP (K, N·L)
                                     size_t gemm, bint ilp64, int num_threads):
    """y = w @ x + b over the whole batch at once: ys = w (K, C) @ xs (C, N·L), each
    thread a block of K rows, then y[n, k, l] = ys[k, n·L + l] + b[k]."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], L = x.shape[2], K = w.shape[0]
    cdef Py_ssize_t NL = N * L, k, n, l, k0, k1
    cdef int t
    cdef bint has_bias = b.shape[0] > 0
    cdef floating bk
    with nogil:
        _gather(x, xs, num_threads)
        for t in prange(num_threads, schedule='static', num_threads=num_threads):
            # thread t's block of rows, assigned here so that it is private to the thread
            # (a helper writing it through a pointer would share it, and two threads could
            # then run the same rows: OpenBLAS's β = 0 zeroes, then adds — twice)
            k0 = K * t // num_threads
            k1 = K * (t + 1) // num_threads
            if k1 > k0:
                _gemm(gemm, ilp64, NO_TRANS, NO_TRANS, k1 - k0, NL, C, &w[k0, 0], C,
                      &xs[0, 0], NL, 0, &ys[k0, 0], NL)
        for k in prange(K, schedule='static', num_threads=num_threads):
            bk = b[k] if has_bias else 0
            for n in range(N):
                for l in range(L):
                    y[n, k, l] = ys[k, n * L + l] + bk


def conv2d_backward_pointwise_batched(const floating[:, :, ::1] x,    # IN  (N, C, L) (any, if not need_dw)
                                      const floating[:, :, ::1] dy,   # IN  (N, K, L) δ
                                      const floating[:, ::1] w,       # IN  (K, C)
                                      floating[:, :, ::1] dx,         # OUT (N, C, L), if need_dx
                                      floating[:, ::1] dw,            # OUT (K, C), if need_dw
                                      double[::1] db,                 # OUT (K,), if need_db
                                      floating[:, ::1] xs,            # TMP (C, N·L), if need_dw
                                      floating[:, ::1] ds,            # TMP (K, N·L)
                                      floating[:, ::1] dxs,           # TMP (C, N·L), if need_dx
                                      bint need_dx, bint need_dw, bint need_db,
                                      size_t gemm, bint ilp64, int num_threads):
    """∂L/∂x, ∂L/∂w, ∂L/∂b of y = w @ x + b over the whole batch at once (the products in
    the comment above), each thread a block of the product's rows."""
    cdef Py_ssize_t N = dy.shape[0], K = dy.shape[1], L = dy.shape[2], C = w.shape[1]
    cdef Py_ssize_t NL = N * L, k, c, n, l, j, r0, r1
    cdef int t
    cdef double s
    with nogil:
        _gather(dy, ds, num_threads)
        if need_dw:
            _gather(x, xs, num_threads)
        for t in prange(num_threads, schedule='static', num_threads=num_threads):
            # each block of rows assigned here, private to the thread (see the forward)
            if need_dx:                    # (C, K) @ (K, N·L): rows c of wᵀ
                r0 = C * t // num_threads
                r1 = C * (t + 1) // num_threads
                if r1 > r0:
                    _gemm(gemm, ilp64, TRANS, NO_TRANS, r1 - r0, NL, K, &w[0, r0], C,
                          &ds[0, 0], NL, 0, &dxs[r0, 0], NL)
            if need_dw:                    # (K, N·L) @ (N·L, C): rows k of ∂L/∂w
                r0 = K * t // num_threads
                r1 = K * (t + 1) // num_threads
                if r1 > r0:
                    _gemm(gemm, ilp64, NO_TRANS, TRANS, r1 - r0, C, NL, &ds[r0, 0], NL,
                          &xs[0, 0], NL, 0, &dw[r0, 0], C)
        if need_db:
            for k in prange(K, schedule='static', num_threads=num_threads):
                db[k] = _row_sum(&ds[k, 0], NL)
        if need_dx:
            for c in prange(C, schedule='static', num_threads=num_threads):
                for n in range(N):
                    for l in range(L):
                        dx[n, c, l] = dxs[c, n * L + l]
