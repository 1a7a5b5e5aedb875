"""NumPy's own OpenBLAS, for the kernels that call GEMM from inside their OpenMP loops.

NumPy's wheels bundle OpenBLAS (numpy.libs/libscipy_openblas64_-*.so on Linux,
numpy/.dylibs on macOS) and export its CBLAS GEMM under a prefixed name. We look the
library up next to NumPy (and, on Linux, among the libraries already mapped into the
process), dlopen it — which returns the copy NumPy already loaded, so there is one
OpenBLAS and one thread pool — and hand the addresses of sgemm/dgemm to the Cython
kernels as integers. No new dependency: the alternative, scipy.linalg.cython_blas,
would bring SciPy's own OpenBLAS copy with a second thread pool to control.

Threads. The kernels parallelise over samples with OpenMP, and each OpenMP thread calls
GEMM on its own small block: that GEMM must run on one thread (one layer of parallelism;
OpenBLAS threads synchronise by spinning and collapse under load: benchmarks/RESULTS.md,
"One OpenBLAS thread inside the kernels"). In OpenBLAS's pthreads builds the thread count
is process-wide — `openblas_set_num_threads_local` there sets the global count too — so
`single_threaded()` sets it to 1 while any kernel of this kind runs (reference-counted
across Python threads) and restores it afterwards, as scikit-learn does around its
OpenMP + BLAS loops with threadpoolctl. A NumPy matmul that another Python thread runs
during that window uses one thread; its results are unchanged.

A large product (Linear's, matmul's: ≥ SMALL_GEMM_FLOPS) runs on the OpenMP threads too,
one single-threaded GEMM per block of C's rows or columns (split_matmul): OpenBLAS's own
threads never run during a training step, so no second pool spins against the kernels'.

When no usable OpenBLAS is found (another BLAS, another platform), `available()` is
False and the ops use np.matmul instead (the 'gemm' path). Every candidate is checked
with a small product against NumPy before it is trusted.
"""
import ctypes
import glob
import os
import threading

import numpy as np

# (sgemm, dgemm, set_num_threads, get_num_threads, 64-bit integer arguments)
_SYMBOLS = [
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_",            # NumPy ≥ 2 wheels (ILP64)
     "scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_", True),
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm",                  # scipy-openblas32
     "scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads", False),
    ("cblas_sgemm64_", "cblas_dgemm64_",                        # NumPy 1.2x wheels (ILP64)
     "openblas_set_num_threads64_", "openblas_get_num_threads64_", True),
    ("cblas_sgemm", "cblas_dgemm",                              # a system OpenBLAS (LP64)
     "openblas_set_num_threads", "openblas_get_num_threads", False),
]


def _candidate_paths():
    """OpenBLAS libraries next to NumPy, then any mapped into this process."""
    here = os.path.dirname(np.__file__)
    paths = []
    for pattern in (os.path.join(here, os.pardir, "numpy.libs", "*openblas*"),
                    os.path.join(here, ".dylibs", "*openblas*")):
        paths += sorted(glob.glob(pattern))
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "openblas" in os.path.basename(path) and path not in paths:
                    paths.append(path)
    except OSError:
        pass
    return [os.path.realpath(p) for p in paths]


def _check(lib, sgemm, dgemm, ilp64):
    """True when a 2×3 @ 3×2 product through both pointers matches NumPy's."""
    i = ctypes.c_int64 if ilp64 else ctypes.c_int
    for fn, dt, ct in ((sgemm, np.float32, ctypes.c_float), (dgemm, np.float64, ctypes.c_double)):
        fn.restype = None
        fn.argtypes = [ctypes.c_int] * 3 + [i] * 3 + [ct, ctypes.c_void_p, i, ctypes.c_void_p, i,
                                                      ct, ctypes.c_void_p, i]
        a = np.arange(6, dtype=dt).reshape(2, 3) + 1
        b = np.arange(6, dtype=dt).reshape(3, 2) - 2
        c = np.full((2, 2), 7, dt)
        fn(101, 111, 111, 2, 2, 3, 1.0, a.ctypes.data, 3, b.ctypes.data, 2, 0.0, c.ctypes.data, 2)
        if not np.array_equal(c, a @ b):
            return False
    return True


def _find():
    for path in _candidate_paths():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for s, d, set_nt, get_nt, ilp64 in _SYMBOLS:
            try:
                fns = [getattr(lib, name) for name in (s, d, set_nt, get_nt)]
            except AttributeError:
                continue
            fns[2].argtypes, fns[2].restype = [ctypes.c_int], None
            fns[3].argtypes, fns[3].restype = [], ctypes.c_int
            try:
                ok = _check(lib, fns[0], fns[1], ilp64)
            except Exception:                    # pragma: no cover - a broken library
                ok = False
            if ok:
                addr = {np.dtype(np.float32): ctypes.cast(fns[0], ctypes.c_void_p).value,
                        np.dtype(np.float64): ctypes.cast(fns[1], ctypes.c_void_p).value}
                return dict(path=path, gemm=addr, ilp64=ilp64, set_threads=fns[2],
                            get_threads=fns[3])
    return None


_lib = None if os.environ.get("MINIGRAD_NO_BLAS_KERNELS") == "1" else _find()


def available():
    """True when the kernels can call NumPy's OpenBLAS GEMM directly."""
    return _lib is not None


def gemm(dtype):
    """(address of the CBLAS GEMM for dtype, whether it takes 64-bit integers)."""
    return _lib["gemm"][np.dtype(dtype)], _lib["ilp64"]


def info():
    """Where the GEMM comes from, for benchmarks and bug reports."""
    if _lib is None:
        return "np.matmul (no OpenBLAS found next to NumPy)"
    return f"{os.path.basename(_lib['path'])} ({'ILP64' if _lib['ilp64'] else 'LP64'})"


_lock = threading.Lock()
_users = 0
_saved = 1


class _SingleThreaded:
    """The context manager single_threaded() returns (a class rather than a generator: it
    wraps every kernel call, several hundred per training step)."""
    __slots__ = ()

    def __enter__(self):
        global _users, _saved
        with _lock:
            if _users == 0:
                _saved = _get_threads()
                if _saved != 1:
                    _set_threads(1)
            _users += 1

    def __exit__(self, *exc):
        global _users
        with _lock:
            _users -= 1
            if _users == 0 and _saved != 1:
                _set_threads(_saved)


_SINGLE_THREADED = _SingleThreaded()
_get_threads = _set_threads = None
if _lib is not None:
    _get_threads, _set_threads = _lib["get_threads"], _lib["set_threads"]


def single_threaded():
    """OpenBLAS on one thread while the block runs (reference-counted across threads)."""
    return _SINGLE_THREADED


# Products below this many flops run on one OpenBLAS thread: waking a second thread costs
# more than it saves, and under load OpenBLAS's spinning threads collapse (a LeNet step's
# 64×400×120 Linear took 1.5 ms instead of 0.04 ms next to the OpenMP kernels).
SMALL_GEMM_FLOPS = 1 << 26


def matmul(a, b):
    """np.matmul(a, b): on one OpenBLAS thread when the product is small; a large product of
    two float matrices on the OpenMP threads (split_matmul)."""
    if _lib is None or a.ndim == 0 or b.ndim == 0:
        return np.matmul(a, b)
    m = a.shape[-2] if a.ndim > 1 else 1
    k = a.shape[-1]
    n = b.shape[-1] if b.ndim > 1 else 1
    batch = max(a.size // max(m * k, 1), b.size // max(k * n, 1), 1)
    if 2 * batch * m * k * n >= SMALL_GEMM_FLOPS:
        if b.ndim == 2 and a.ndim >= 2 and a.dtype == b.dtype and a.dtype in _lib["gemm"]:
            if a.ndim == 2:
                return split_matmul(a, b)
            if a.flags.c_contiguous:        # (..., m, k) @ (k, n): one (… · m, k) product
                return split_matmul(a.reshape(-1, k), b).reshape(a.shape[:-1] + (n,))
        return np.matmul(a, b)
    with single_threaded():
        return np.matmul(a, b)


_INT32_MAX = 2**31 - 1


def _stored(a):
    """(a C-contiguous array holding `a` or its transpose, whether it is the transpose)."""
    if a.flags.c_contiguous:
        return a, False
    if a.T.flags.c_contiguous:
        return a.T, True
    return np.ascontiguousarray(a), False


# Products with one thin dimension (a batch) on ext/thin_gemm.h's loops, where this build
# and CPU have them (AVX-512), float32, on the OpenMP threads (benchmarks/RESULTS.md:
# "small_k, small_m, small_n"; benchmarks/thin_gemm.py):
#   'small_k'  k thin, a large result m·n ≥ SMALL_K_MIN_OUTPUT: a Linear layer's ∂L/∂W = Δᵀ X.
#              Written once, where OpenBLAS zeroes C and writes it again (VGG-11's fc1:
#              4096 × 25088 from k = 32, 42 ms against 69).
#   'small_m'  m ≤ SMALL_M_MAX, B large (k·n ≥ THIN_MIN_OPERAND): ∂L/∂x = δ W. B read once
#              along its rows, unpacked (OpenBLAS copies all of it into panels first; fc1:
#              59 ms against 74). Even with OpenBLAS at m = 64, behind at 128.
#   'small_n'  n ≤ SMALL_N_MAX, A large (m·k ≥ THIN_MIN_OPERAND): the forward yᵀ = W Xᵀ.
#              Likewise A (fc1: 41 ms against 59); behind OpenBLAS at n = 128.
# The thin operand is copied C-contiguous first if it is a transposed view; the large one
# must be stored row by row.
SMALL_K_MAX = 64
SMALL_K_MIN_OUTPUT = 1 << 20
SMALL_K_CHUNK_BYTES = 768 << 10
SMALL_M_MAX = 32
SMALL_N_MAX = 64
THIN_MIN_OPERAND = 1 << 22
SMALL_M_CHUNK, SMALL_M_KB = 1536, 32        # C's columns per chunk, B's rows per block
SMALL_N_KB = 1024                           # B's rows per block
_thin_loops = None


def thin(m, k, n, dtype, a_transposed=False, b_transposed=False):
    """Which of ext/thin_gemm.h's loops split_matmul gives an (m, k) @ (k, n) product of this
    dtype ('small_k', 'small_m', 'small_n'), or None for OpenBLAS. a_transposed /
    b_transposed: the operand is the transpose of a C-contiguous array."""
    global _thin_loops
    if _thin_loops is None:
        from ._ext import gemm as kernel
        _thin_loops = kernel.thin_available()
    if not _thin_loops or np.dtype(dtype) != np.float32 or min(m, k, n) < 1:
        return None
    if k <= SMALL_K_MAX and m * n >= SMALL_K_MIN_OUTPUT and not b_transposed:
        return "small_k"
    if m <= SMALL_M_MAX and k * n >= THIN_MIN_OPERAND and not b_transposed:
        return "small_m"
    if n <= SMALL_N_MAX and m * k >= THIN_MIN_OPERAND and not a_transposed:
        return "small_n"
    return None


def _thin_matmul(loop, a, sa, b, sb, c):
    """C = a @ b by `loop` (thin()'s answer); sa, sb: the C-contiguous arrays holding a, b."""
    from ._ext import gemm as kernel
    from .threads import get_num_threads
    nt = get_num_threads()
    k = a.shape[1]
    if loop == "small_k":
        chunk = max(48, SMALL_K_CHUNK_BYTES // (k * a.itemsize) // 48 * 48)
        kernel.gemm_small_k(np.ascontiguousarray(a), sb, c, np.empty((nt, k * chunk), a.dtype),
                            chunk, nt)
    elif loop == "small_m":
        kernel.gemm_small_m(np.ascontiguousarray(a), sb, c, SMALL_M_CHUNK, SMALL_M_KB, nt)
    else:
        kernel.gemm_small_n(sa, np.ascontiguousarray(b), c, SMALL_N_KB, nt)
    return c


def split_matmul(a, b):
    """a @ b for float matrices a (m, k), b (k, n) of one dtype (float32 or float64), k ≥ 1:
    C's rows (or columns, when n > m) cut into one block per OpenMP thread, each block a
    single-threaded GEMM (ext/gemm.pyx). The same numbers as np.matmul's OpenBLAS threads
    (each element one dot product in one GEMM call), without a second thread pool next to
    the kernels' OpenMP threads. Returns a new C-contiguous (m, n) array."""
    from ._ext import gemm as kernel
    from .threads import get_num_threads
    (sa, ta), (sb, tb) = _stored(a), _stored(b)
    c = np.empty((a.shape[0], b.shape[1]), a.dtype)
    fn, ilp64 = gemm(a.dtype)
    if 0 in a.shape + b.shape or (not ilp64 and max(sa.shape + sb.shape + c.shape) > _INT32_MAX):
        return np.matmul(a, b, out=c)                   # an empty product; 32-bit sizes exceeded
    loop = thin(a.shape[0], a.shape[1], b.shape[1], a.dtype, ta, tb) if b.dtype == a.dtype else None
    if loop is not None:
        return _thin_matmul(loop, a, sa, b, sb, c)
    with single_threaded():
        kernel.gemm_split(sa, ta, sb, tb, c, fn, ilp64, get_num_threads())
    return c
