# cython: language_level=3
"""How long one turn of GNU OpenMP's idle spin takes on this CPU.

An OpenMP thread that finishes a parallel region waits for the next one by spinning
GOMP_SPINCOUNT times on its flag, each turn one CPU "relax" hint (x86: PAUSE), and then
sleeps on a futex. The turn's length is the CPU's: PAUSE takes about 10 ns on some
x86 cores and 40 ns on others, so a spin *count* means a different wait on each machine.
minigrad/__init__.py asks this module for the count that spins for a given time
(spin_count), before libgomp loads and reads the variable. That is why this module is
the one extension compiled without OpenMP (setup.py): importing it must not load libgomp.
"""
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

cdef extern from *:
    """
    /* libgomp's cpu_relax(): "rep; nop" (PAUSE) on x86, a compiler barrier elsewhere */
    #if defined(__x86_64__) || defined(__i386__)
    static inline void mg_relax(void) { __asm__ __volatile__("rep; nop" ::: "memory"); }
    #else
    static inline void mg_relax(void) { __asm__ __volatile__("" ::: "memory"); }
    #endif
    """
    void mg_relax() nogil


cdef double _now() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_MONOTONIC, &t)
    return t.tv_sec + 1e-9 * t.tv_nsec


def turn_seconds(Py_ssize_t turns=2000, int repeats=5):
    """Seconds one relax turn takes: the fastest of `repeats` timings of `turns` turns each
    (the fastest, because an interruption only ever makes a timing longer).

    turns, repeats: positive ints. About turns·repeats·(10–40 ns): 0.1–0.4 ms by default.
    """
    if turns < 1 or repeats < 1:
        raise ValueError(f"turn_seconds(): turns and repeats must be positive, got "
                         f"turns={turns}, repeats={repeats}")
    cdef double best = 1e300, t0, t
    cdef Py_ssize_t i
    cdef int r
    with nogil:
        for r in range(repeats):
            t0 = _now()
            for i in range(turns):
                mg_relax()
            t = _now() - t0
            if t < best:
                best = t
    return best / turns


def spin_count(double seconds, Py_ssize_t lo=1000, Py_ssize_t hi=300000):
    """The GOMP_SPINCOUNT that makes an idle OpenMP thread spin for about `seconds`:
    seconds / turn_seconds(), rounded, kept within [lo, hi] (hi: GNU OpenMP's own default;
    a timing disturbed by the machine's load cannot ask for more, or for next to nothing).

    seconds: positive float; lo ≤ hi: positive ints.
    """
    if not seconds > 0 or lo < 1 or hi < lo:
        raise ValueError(f"spin_count(): need seconds > 0 and 1 ≤ lo ≤ hi, got "
                         f"seconds={seconds!r}, lo={lo}, hi={hi}")
    cdef double turns = seconds / turn_seconds()
    return int(min(max(turns, <double>lo), <double>hi) + 0.5)
