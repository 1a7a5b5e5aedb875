"""minigrad/_malloc.py: freed arrays, large ones included, are reused, not page-faulted
back in (glibc's mmap and trim thresholds, raised at import)."""
import os
import subprocess
import sys

import pytest

_REUSE = r"""
import resource, sys
import numpy as np
import minigrad
from minigrad import _malloc
if not _malloc.tuned:
    print("untuned"); sys.exit(0)
try:                                     # 4 KiB pages, so that faults count pages
    np._core.multiarray._set_madvise_hugepage(False)
except AttributeError:
    np.core.multiarray._set_madvise_hugepage(False)
n = (400 << 20) // 4                     # 400 MiB of float32: a VGG fc6 gradient's size
a = np.ones(n, np.float32); del a        # the heap grows to hold it, then keeps it
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(n, np.float32)               # the same size again: the freed memory
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults, n * 4 // 4096)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.skipif(os.environ.get("MINIGRAD_SANITIZED") == "1",
                    reason="under .ci/sanitize malloc is ASan's own allocator, not glibc's")
def test_a_freed_400_mib_array_is_reused_without_page_faults():
    """Allocating, touching and freeing 400 MiB, then allocating it again, faults in
    almost none of its 102,400 pages (with glibc's defaults, or a 64 MiB mmap
    threshold, every one)."""
    out = subprocess.run([sys.executable, "-c", _REUSE], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    if out == ["untuned"]:
        pytest.skip("not glibc, or MINIGRAD_MALLOC_TUNING=0")
    faults, pages = map(int, out)
    assert faults < pages // 20, (faults, pages)
