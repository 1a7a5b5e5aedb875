# The direct convolution of small float32 layers vectorised over 16 output channels ('k16')
# or over runs of 16 output pixels of a row ('w16'): the Cython entry point around the C
# loops of ext/direct16.h (which states the formula and the vector scheme). Forward only;
# minigrad/kernels.py decides which layers take it.
#
# Contract: the Python side (minigrad/ops/conv_dispatch.py) validates every shape and
# integer, passes C-contiguous float32 arrays, and allocates the outputs and the scratch
# memory; bounds checks are off by default (see setup.py).
from cython.parallel cimport prange, threadid
from libc.string cimport memcpy, memset
cimport cython


cdef extern from "direct16.h" nogil:
    int mg_simd_level()
    int MG_K16_RUN
    void mg_conv_k16(const float* xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                     const float* wt, Py_ssize_t K, Py_ssize_t kh, Py_ssize_t kw,
                     const float* bias, float* y, Py_ssize_t OH, Py_ssize_t OW,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw)
    void mg_conv_w16_8(const float* xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                       const float* wt, Py_ssize_t K, Py_ssize_t Kp, Py_ssize_t kh, Py_ssize_t kw,
                       const float* bias, float* y, Py_ssize_t OH, Py_ssize_t OW,
                       Py_ssize_t sh, Py_ssize_t dh, Py_ssize_t dw)
    void mg_conv_w16_16(const float* xp, Py_ssize_t C, Py_ssize_t Hp, Py_ssize_t Wp,
                        const float* wt, Py_ssize_t K, Py_ssize_t Kp, Py_ssize_t kh, Py_ssize_t kw,
                        const float* bias, float* y, Py_ssize_t OH, Py_ssize_t OW,
                        Py_ssize_t sh, Py_ssize_t dh, Py_ssize_t dw)


def simd_level():
    """2: AVX-512, 1: AVX2 + FMA, 0: neither (or a build without the dispatch), for
    conv2d_forward_direct16's vector code."""
    return mg_simd_level()


def k16_run():
    """Output pixels per run of mg_conv_k16 (the caller pads rows to a multiple)."""
    return MG_K16_RUN


cdef void _pad_sample(const float[:, :, :, ::1] x, Py_ssize_t n, float[:, ::1] scratch,
                      Py_ssize_t t, Py_ssize_t Hp, Py_ssize_t Wp,
                      Py_ssize_t ph, Py_ssize_t pw) noexcept nogil:
    """scratch[t] as (C, Hp, Wp) = sample n zero-padded: ph rows above, pw columns left,
    zeros below and right up to Hp×Wp (the direct loops then need no bounds)."""
    cdef Py_ssize_t C = x.shape[1], H = x.shape[2], W = x.shape[3], c, i
    cdef float* end = &scratch[t, C * Hp * Wp - 1]
    memset(&scratch[t, 0], 0, C * Hp * Wp * sizeof(float))
    for c in range(C):
        for i in range(H):
            end = &scratch[t, (c * Hp + ph + i) * Wp + pw + W - 1]
            memcpy(&scratch[t, (c * Hp + ph + i) * Wp + pw], &x[n, c, i, 0], W * sizeof(float))


def conv2d_forward_direct16(const float[:, :, :, ::1] x,   # IN  (N, C, H, W)
                            const float[:, ::1] wt,         # IN  (C·kh·kw, Kp) w as (c, p, q, k)
                            const float[::1] b,             # IN  (K,) bias, or (0,) for none
                            float[:, :, :, ::1] y,          # OUT (N, K, OH, OW)
                            float[:, ::1] scratch,          # TMP (threads, C·Hp·Wp)
                            Py_ssize_t kh, Py_ssize_t kw,
                            Py_ssize_t sh, Py_ssize_t sw,
                            Py_ssize_t ph, Py_ssize_t pw,
                            Py_ssize_t dh, Py_ssize_t dw,
                            Py_ssize_t Hp, Py_ssize_t Wp, int kb, int num_threads):
    """y[n] = b + x_pad[n] ⋆ w by direct16.h's loops, one sample per thread at a time: the
    sample is first copied into the thread's zero-padded (C, Hp, Wp) scratch, with Hp, Wp
    covering the padding and the last run's overhang (so the loops need no bounds).
    kb = 0: mg_conv_k16, vectorised over 16 output channels (K % 16 == 0, Kp = K);
    kb = 8 or 16: mg_conv_w16_<kb>, over runs of 16 output pixels (sw = 1), kb output
    channels at a time (Kp: K rounded up to a multiple of kb, wt zero there)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t K = y.shape[1], OH = y.shape[2], OW = y.shape[3], Kp = wt.shape[1]
    cdef Py_ssize_t n, t
    cdef const float* bias = &b[0] if b.shape[0] > 0 else NULL
    with nogil:
        for n in prange(N, schedule='static', num_threads=num_threads):
            t = threadid()
            _pad_sample(x, n, scratch, t, Hp, Wp, ph, pw)
            if kb == 0:
                mg_conv_k16(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, kh, kw, bias,
                            &y[n, 0, 0, 0], OH, OW, sh, sw, dh, dw)
            elif kb == 8:
                mg_conv_w16_8(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, Kp, kh, kw, bias,
                              &y[n, 0, 0, 0], OH, OW, sh, dh, dw)
            else:
                mg_conv_w16_16(&scratch[t, 0], C, Hp, Wp, &wt[0, 0], K, Kp, kh, kw, bias,
                               &y[n, 0, 0, 0], OH, OW, sh, dh, dw)
