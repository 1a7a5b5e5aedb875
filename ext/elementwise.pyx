# Elementwise kernels: the sum of two arrays, the fused ReLU forward and its backward mask,
# the SGD momentum step; a fill, a copy between strided 4-d views and a concatenation (the
# slicing, padding and cat ops of minigrad/ops/shape.py).
#
# Contract: the Python side (minigrad/ops/elementwise.py, minigrad/ops/shape.py) passes
# C-contiguous 1-d views of matching length and dtype (the copy: 4-d views of one shape
# and dtype that do not overlap); bounds checks are off by default (see setup.py).
from cython.parallel cimport parallel, prange, threadid
cimport cython.view
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
cimport cython

ctypedef fused floating:
    float
    double

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MINIGRAD_HAVE_OPENMP 1
    #else
    #define MINIGRAD_HAVE_OPENMP 0
    #endif
    """
    const int MINIGRAD_HAVE_OPENMP


cdef extern from *:
    """
    #ifndef MINIGRAD_BOUNDSCHECK
    #define MINIGRAD_BOUNDSCHECK 0
    #endif
    """
    const int MINIGRAD_BOUNDSCHECK


def openmp_enabled():
    """True when this extension was compiled with OpenMP."""
    return MINIGRAD_HAVE_OPENMP == 1


cdef extern from *:
    """
    #ifdef MINIGRAD_KEEP_APART
    #include <sys/types.h>
    int mg_keep_apart_enabled(void);
    pid_t mg_gettid(void);
    #else
    static int mg_keep_apart_enabled(void) { return 0; }
    #if defined(__linux__)
    #include <sys/syscall.h>
    #include <unistd.h>
    static int mg_gettid(void) { return (int)syscall(SYS_gettid); }
    #else
    static int mg_gettid(void) { return -1; }
    #endif
    #endif
    #if defined(__linux__)
    #include <sched.h>
    static int mg_getcpu(void) { return sched_getcpu(); }
    #else
    static int mg_getcpu(void) { return -1; }
    #endif
    """
    int mg_keep_apart_enabled() nogil
    int mg_gettid() nogil
    int mg_getcpu() nogil


def team_probe(int num_threads):
    """One parallel region of `num_threads` threads, started as every kernel starts one.

    Returns (tids, cpus, keeping_apart, start_cpu): each thread's Linux thread id and the
    CPU it ran its share on (lists indexed by thread number, length num_threads; -1 for a
    thread the runtime did not start, and off Linux, where neither is known); whether this
    module's regions keep the workers off their main thread's CPU (ext/omp/keep_apart.c;
    False without OpenMP or off Linux); and the CPU the calling thread was on just before
    it started the region (-1 off Linux), the one keep_apart.c compares the workers' with.
    The calling thread is not pinned, so the scheduler may move it between then and its
    share: cpus[0] can differ from start_cpu. For the tests of that placement; nothing else
    depends on it.
    """
    if num_threads < 1 or num_threads > 1024:
        raise ValueError(f"team_probe(): num_threads must be in 1..1024, got {num_threads}")
    cdef int[::1] tids = cython.view.array(shape=(num_threads,), itemsize=sizeof(int), format="i")
    cdef int[::1] cpus = cython.view.array(shape=(num_threads,), itemsize=sizeof(int), format="i")
    tids[:] = -1
    cpus[:] = -1
    cdef int t = 0, start_cpu
    with nogil:
        start_cpu = mg_getcpu()
        with parallel(num_threads=num_threads):
            t = threadid()
            if t < num_threads:
                tids[t] = mg_gettid()
                cpus[t] = mg_getcpu()
    return list(tids), list(cpus), bool(mg_keep_apart_enabled()), start_cpu


def boundscheck_enabled():
    """True when the kernels were built with MINIGRAD_BOUNDSCHECK=1 (a developer build)."""
    return MINIGRAD_BOUNDSCHECK == 1


def _probe(const double[::1] x, Py_ssize_t i):
    """x[i] with the build's bounds checking: IndexError out of range in a checked build
    (used by the tests to prove the switch works; never called by the library)."""
    return x[i]


def _probe_unchecked(const double[::1] x, Py_ssize_t i):
    """x[i] read through a raw pointer, which no build checks: in CI's sanitizer pass
    (bounds checks on as well) an index out of range must be AddressSanitizer's to catch,
    as it is for the C in ext/direct16.h. Never called by the library."""
    cdef const double* p = &x[0]
    return p[i]


# Work smaller than this runs on one thread: spinning up a team costs more.
cdef enum:
    GRAIN = 32768


def add(const floating[::1] a,              # IN  (n,)
        const floating[::1] b,              # IN  (n,)
        floating[::1] out,                  # OUT (n,) (may be a or b itself)
        int num_threads):
    """out = a + b, split over the threads: NumPy's add runs on one core, and a training
    step adds whole activations (a residual connection, a gradient reaching a tensor from
    two uses). Each element is read before it is written, so out may alias a or b."""
    cdef Py_ssize_t i, n = a.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    with nogil:
        for i in prange(n, schedule='static', num_threads=nt):
            out[i] = a[i] + b[i]


def relu_forward(const floating[::1] x,      # IN  (n,)
                 floating[::1] y,            # OUT (n,)
                 int num_threads):
    """y = max(x, 0); NaN stays NaN (as IEEE and PyTorch have it)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    with nogil:
        for i in prange(n, schedule='static', num_threads=nt):
            y[i] = x[i] if not (x[i] <= 0) else 0


def add_relu(const floating[::1] a,         # IN  (n,)
             const floating[::1] b,         # IN  (n,)
             floating[::1] out,             # OUT (n,) (may be a or b itself)
             int num_threads):
    """out = max(a + b, 0) in one pass — a residual connection and the ReLU after it
    (ResNet's y = relu(F(x) + x)) without the sum ever stored. The same numbers as add
    then relu_forward: the float sum rounded once, NaN kept."""
    cdef Py_ssize_t i, n = a.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    cdef floating s
    with nogil:
        for i in prange(n, schedule='static', num_threads=nt):
            s = a[i] + b[i]
            out[i] = s if not (s <= 0) else 0


def relu_backward(const floating[::1] y,     # IN  (n,) the forward's output
                  const floating[::1] dy,    # IN  (n,) δ = ∂L/∂y
                  floating[::1] dx,          # OUT (n,) ∂L/∂x
                  int num_threads):
    """∂L/∂x = δ where y > 0, else 0.

    δ is loaded before the test so that the choice is a select between two registers
    (a vector blend), not a branch around the load: with about half the activations at
    zero the branch was mispredicted half the time (measured, 256×6×28×28 float32:
    2.7 ms branching vs 0.15 ms, the forward 0.11 ms)."""
    cdef Py_ssize_t i, n = y.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    cdef floating g
    with nogil:
        for i in prange(n, schedule='static', num_threads=nt):
            g = dy[i]
            dx[i] = g if y[i] > 0 else 0


def sgd_momentum_step(floating[::1] p,            # IN/OUT (n,) the parameter
                      const floating[::1] g,      # IN     (n,) its gradient
                      floating[::1] buf,          # IN/OUT (n,) the momentum buffer b
                      double lr, double momentum, double dampening, double weight_decay,
                      bint nesterov, bint first, int num_threads):
    """torch.optim.SGD's update with momentum (minigrad/optim/sgd.py) in one pass:

        g ← g + weight_decay · p
        b ← g  (first step)   or   b ← momentum · b + (1 − dampening) · g
        p ← p − lr · (g + momentum · b  if nesterov, else b)

    (The NumPy form makes a temporary array per line: for VGG-11's 25088×4096 weight,
    400 MB each, every step.)"""
    cdef Py_ssize_t i, n = p.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    cdef floating gi, bi
    cdef floating a = <floating>lr, mu = <floating>momentum
    cdef floating d = <floating>(1 - dampening), wd = <floating>weight_decay
    with nogil:
        for i in prange(n, schedule='static', num_threads=nt):
            gi = g[i]
            if wd != 0:
                gi = gi + wd * p[i]
            if first:
                bi = gi
            else:
                bi = mu * buf[i] + d * gi
            buf[i] = bi
            if nesterov:
                p[i] = p[i] - a * (gi + mu * bi)
            else:
                p[i] = p[i] - a * bi


def fill(floating[::1] out,                 # OUT (n,)
         floating value, int num_threads):
    """out[:] = value, split over the threads (NumPy's fill and zeros run on one core)."""
    cdef Py_ssize_t i, n = out.shape[0]
    cdef int nt = num_threads if n >= GRAIN else 1
    with nogil:
        for i in prange(n, schedule='static', num_threads=nt):
            out[i] = value


def copy4(const floating[:, :, :, :] src,   # IN  (A, B, H, W), any strides
          floating[:, :, :, :] dst,         # OUT (A, B, H, W), any strides, not overlapping src
          int num_threads):
    """dst[a, b, i, j] = src[a, b, i, j], one thread per (a, b) plane: the copy of a strided
    view (x[:, :, ::2, ::2], a padded tensor's interior) that NumPy makes on one core."""
    cdef Py_ssize_t A = src.shape[0], B = src.shape[1], H = src.shape[2], W = src.shape[3]
    cdef Py_ssize_t ab, a, b, i, j
    cdef int nt = num_threads if A * B * H * W >= GRAIN else 1
    with nogil:
        for ab in prange(A * B, schedule='static', num_threads=nt):
            a = ab // B
            b = ab % B
            for i in range(H):
                for j in range(W):
                    dst[a, b, i, j] = src[a, b, i, j]


def concat_rows(list srcs,                   # IN  K arrays, each C-contiguous (A, B_k), non-empty
                floating[:, ::1] out,        # OUT (A, Σ B_k)
                int num_threads):
    """out[a, o_k : o_k + B_k] = srcs[k][a, :], o_k = Σ_{l<k} B_l: the concatenation along
    an axis d of C-contiguous arrays, each viewed as (A, B_k) = (the axes before d, d and
    the ones after), rows split over the threads (np.concatenate copies on one core;
    DenseNet concatenates at every layer)."""
    cdef Py_ssize_t K = len(srcs), A = out.shape[0], k, a, o = 0
    cdef const floating[:, ::1] v
    cdef const floating** ptr = <const floating**>malloc(max(K, 1) * sizeof(floating*))
    cdef Py_ssize_t* width = <Py_ssize_t*>malloc(max(K, 1) * sizeof(Py_ssize_t))
    cdef Py_ssize_t* off = <Py_ssize_t*>malloc(max(K, 1) * sizeof(Py_ssize_t))
    cdef int nt = num_threads if A * out.shape[1] >= GRAIN else 1
    if ptr == NULL or width == NULL or off == NULL:
        free(ptr); free(width); free(off)
        raise MemoryError("concat_rows(): no memory for the source table")
    try:
        for k in range(K):
            v = srcs[k]                         # (the list keeps the arrays alive)
            ptr[k] = &v[0, 0]
            width[k] = v.shape[1]
            off[k] = o
            o = o + v.shape[1]
        with nogil:
            for a in prange(A, schedule='static', num_threads=nt):
                for k in range(K):
                    memcpy(&out[a, off[k]], ptr[k] + a * width[k], width[k] * sizeof(floating))
    finally:
        free(ptr)
        free(width)
        free(off)
