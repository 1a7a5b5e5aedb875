# Special functions NumPy lacks, elementwise over C-contiguous 1-d arrays.
#
# erf(x) = 2/√π ∫₀ˣ e^(−t²) dt, from the C library (C99 <math.h>): correctly rounded
# to within an ulp or two, which the exact GELU y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)),
# needs to agree with PyTorch to float64 precision.
#
# Contract: the Python side (minigrad/ops/activation.py) passes C-contiguous 1-d views
# of matching length and dtype; bounds checks are off by default (see setup.py).
from cython.parallel cimport prange
from libc.math cimport erf as c_erf, erff as c_erff
cimport cython

ctypedef fused floating:
    float
    double

# Work smaller than this runs on one thread: spinning up a team costs more.
cdef enum:
    GRAIN = 32768


def erf(const floating[::1] x,      # IN  (n,)
        floating[::1] y,            # OUT (n,) y = erf(x)
        int num_threads):
    """y[i] = erf(x[i]) (erff for float32, erf for float64)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    with nogil:
        if floating is float:
            for i in prange(n, schedule='static', num_threads=nt):
                y[i] = c_erff(x[i])
        else:
            for i in prange(n, schedule='static', num_threads=nt):
                y[i] = c_erf(x[i])
