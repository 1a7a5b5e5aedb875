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
# C-contiguous arrays of one dtype with the shapes below, acc zeroed; bounds checks are off
# by default (see setup.py). The GEMM runs single-threaded inside the OpenMP loop over
# samples (see _gemm.pxi).
from cython.parallel cimport prange, threadid
cimport cython

ctypedef fused floating:
    float
    double

include "_gemm.pxi"


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
                              floating[:, ::1] acc,           # OUT (threads, C·K + K), zeroed:
                                                              #     per-thread ∂L/∂wᵀ (C, K), ∂L/∂b
                              bint need_dx, bint need_dw, bint need_db,
                              size_t gemm, bint ilp64, int num_threads):
    """∂L/∂x[n] = wᵀ @ δ[n]; ∂L/∂wᵀ += x[n] @ δ[n]ᵀ and ∂L/∂b += Σ δ[n] into the thread's
    row of acc (the caller adds the rows in a fixed order)."""
    cdef Py_ssize_t N = dy.shape[0], K = dy.shape[1], L = dy.shape[2], C = w.shape[1]
    cdef Py_ssize_t n, k, l, t
    cdef double s
    with nogil:
        for n in prange(N, schedule='static', num_threads=num_threads):
            t = threadid()
            if need_dx:
                # (C, K) @ (K, L) -> (C, L)
                _gemm(gemm, ilp64, TRANS, NO_TRANS, C, L, K, &w[0, 0], C, &dy[n, 0, 0], L,
                      0, &dx[n, 0, 0], L)
            if need_dw:
                # (C, L) @ (L, K) -> (C, K), accumulated
                _gemm(gemm, ilp64, NO_TRANS, TRANS, C, K, L, &x[n, 0, 0], L, &dy[n, 0, 0], L,
                      1, &acc[t, 0], K)
            if need_db:
                for k in range(K):
                    s = 0
                    for l in range(L):
                        s = s + dy[n, k, l]
                    acc[t, C * K + k] += <floating>s
