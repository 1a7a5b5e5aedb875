# Activation kernels: the pointwise functions of minigrad/ops/activation.py and their
# backward, one pass each over C-contiguous 1-d views, and erf (NumPy has none).
#
# erf(x) = 2/√π ∫₀ˣ e^(−t²) dt comes from the C library (C99 <math.h>), correctly rounded
# to an ulp or two, which the exact GELU y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)), needs to
# agree with PyTorch to float64 precision.
#
# Backward kernels load δ before the test, so the choice is a select between registers
# (a vector blend), not a branch around the load (see relu_backward in elementwise.pyx).
#
# Contract: the Python side passes C-contiguous 1-d views of matching length and dtype;
# bounds checks are off by default (see setup.py).
from cython.parallel cimport prange
from libc.math cimport erf as c_erf, erff as c_erff, exp, expf
cimport cython

ctypedef fused floating:
    float
    double

# Work smaller than this runs on one thread: spinning up a team costs more.
cdef enum:
    GRAIN = 32768

cdef double INV_SQRT_2 = 0.70710678118654752440
cdef double INV_SQRT_2PI = 0.39894228040143267794


cdef inline int _threads(Py_ssize_t n, int num_threads) noexcept nogil:
    return num_threads if n >= GRAIN else 1


def erf(const floating[::1] x,      # IN  (n,)
        floating[::1] y,            # OUT (n,) y = erf(x)
        int num_threads):
    """y[i] = erf(x[i]) (erff for float32, erf for float64)."""
    cdef Py_ssize_t i, n = x.shape[0]
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            if floating is float:
                y[i] = c_erff(x[i])
            else:
                y[i] = c_erf(x[i])


def hardtanh_forward(const floating[::1] x, floating[::1] y, double lo, double hi, int num_threads):
    """y = min(max(x, lo), hi); NaN stays NaN."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating a = <floating>lo, b = <floating>hi, v
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            v = x[i]
            v = a if v < a else v
            y[i] = b if v > b else v


def hardtanh_backward(const floating[::1] x, const floating[::1] dy, floating[::1] dx,
                      double lo, double hi, int num_threads):
    """∂L/∂x = δ where lo < x < hi, else 0."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating a = <floating>lo, b = <floating>hi, g
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            g = dy[i]
            dx[i] = g if (x[i] > a and x[i] < b) else 0


def leaky_relu_forward(const floating[::1] x, floating[::1] y, double slope, int num_threads):
    """y = x for x > 0, slope·x otherwise."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s = <floating>slope, v, w
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            v = x[i]
            w = s * v                   # both sides first: a select, not a mispredicted branch
            y[i] = v if v > 0 else w


def leaky_relu_backward(const floating[::1] x, const floating[::1] dy, floating[::1] dx,
                        double slope, int num_threads):
    """∂L/∂x = δ for x > 0, slope·δ otherwise."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s = <floating>slope, g, h
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            g = dy[i]
            h = s * g
            dx[i] = g if x[i] > 0 else h


def silu_forward(const floating[::1] x, floating[::1] y, floating[::1] sig, int num_threads):
    """sig = σ(x) = 1/(1 + e^−x) (e^−x = inf gives 0, no NaN), y = x·σ(x)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            if floating is float:
                s = 1.0 / (1.0 + expf(-x[i]))
            else:
                s = 1.0 / (1.0 + exp(-x[i]))
            sig[i] = s
            y[i] = x[i] * s


def silu_backward(const floating[::1] x, const floating[::1] sig, const floating[::1] dy,
                  floating[::1] dx, int num_threads):
    """∂L/∂x = δ · σ(x) · (1 + x · (1 − σ(x)))."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            s = sig[i]
            dx[i] = dy[i] * (s * (1 + x[i] * (1 - s)))


def gelu_forward(const floating[::1] x, floating[::1] y, floating[::1] cdf, int num_threads):
    """cdf = Φ(x) = ½(1 + erf(x/√2)), y = x·Φ(x)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating c
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            if floating is float:
                c = 0.5 * (1.0 + c_erff(x[i] * <float>INV_SQRT_2))
            else:
                c = 0.5 * (1.0 + c_erf(x[i] * INV_SQRT_2))
            cdf[i] = c
            y[i] = x[i] * c


def gelu_backward(const floating[::1] x, const floating[::1] cdf, const floating[::1] dy,
                  floating[::1] dx, int num_threads):
    """∂L/∂x = δ · (Φ(x) + x·φ(x)), φ(x) = e^(−x²/2)/√(2π)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v, pdf
    with nogil:
        for i in prange(n, schedule='static', num_threads=_threads(n, num_threads)):
            v = x[i]
            if floating is float:
                pdf = <float>INV_SQRT_2PI * expf(-0.5 * v * v)
            else:
                pdf = INV_SQRT_2PI * exp(-0.5 * v * v)
            dx[i] = dy[i] * (cdf[i] + v * pdf)
