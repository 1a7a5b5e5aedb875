"""Keep freed array memory in the process instead of returning it to the OS.

A training step allocates and frees the same large arrays (activations, gradients) every
iteration. With glibc's defaults, arrays above a dynamic threshold are mmap'ed and
munmap'ed each time, and the heap top is trimmed, so every step pays a page fault per
4 KiB page it writes (benchmarks/RESULTS.md: malloc thresholds). Raising glibc's mmap and trim thresholds makes freed chunks reusable,
as a caching allocator would. Resident memory then stays at the peak of a step rather than
shrinking between steps.

Set MINIGRAD_MALLOC_TUNING=0 to leave the allocator alone. Does nothing off glibc.
"""
import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Arrays up to 1 GiB come from the reusable heap, and up to 1 GiB of free heap is kept
# before any is returned. VGG-11's first fully connected layer has a 25088 × 4096 weight
# (392 MiB in float32): with 64 MiB here its gradient was mmap'ed fresh every step, and
# page-faulting it in cost more than the product that writes it (the 32-row ∂L/∂W GEMM:
# 85 ms into a new array, 53 ms into a reused one; the step 473 → 423–431 ms, peak
# resident memory 1662 → 1667 MiB; benchmarks/RESULTS.md: malloc thresholds).
MMAP_THRESHOLD = 1 << 30
TRIM_THRESHOLD = 1 << 30

tuned = False


def tune():
    """Apply the thresholds once (glibc only). Returns True when they were applied."""
    global tuned
    if tuned or os.environ.get("MINIGRAD_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return tuned
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):         # musl and others: no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return tuned
