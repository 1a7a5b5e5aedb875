"""minigrad: a small, readable autodiff tensor framework for CNNs with Cython kernels.

A first look::

    import minigrad as mg
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2x
"""
import os as _os

# How long an OpenMP thread busy-waits for more work after a parallel region before it
# sleeps. A training step runs hundreds of short regions with a little Python between
# them; a thread that went to sleep in such a gap costs a futex wake-up (tens of µs on a
# VM) before the next region can start, so the wait should outlast the gaps. GNU OpenMP
# counts it in turns of the CPU's spin hint (GOMP_SPINCOUNT, default 300,000), and a turn
# takes 10–40 ns depending on the CPU: we time the turn (ext/spin.pyx, built without OpenMP
# so that libgomp has not read the variable yet) and spin for about _SPIN_SECONDS. Longer
# waits would steal the cores from a NumPy matmul on OpenBLAS's threads right after a
# kernel; minigrad's own large products run on the OpenMP threads (_blas.split_matmul).
# benchmarks/RESULTS.md: GOMP_SPINCOUNT. A policy or spin count the user exported wins.
_SPIN_SECONDS = 300e-6
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    try:
        from ._ext import spin as _spin
        _os.environ["GOMP_SPINCOUNT"] = str(_spin.spin_count(_SPIN_SECONDS))
    except ImportError:     # pragma: no cover - no kernels built: the import below explains
        pass

from . import _malloc
_malloc.tune()          # reuse freed activation memory instead of page-faulting it back in

try:
    from ._ext import elementwise as _elementwise_kernels  # noqa: F401
except ImportError as e:  # pragma: no cover - exercised by hand
    raise ImportError(
        "minigrad's compiled kernels (minigrad/_ext/*.so) are missing or were built for "
        "another Python. Build them from the project's root with\n"
        "    pip install -e .\n"
        "(or `python setup.py build_ext --inplace`); a C compiler, Cython>=3 and numpy are "
        f"needed. The original error was: {e}") from None

from .autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, detect_anomaly
from .tensor import (Tensor, tensor, zeros, ones, full, zeros_like, ones_like, randn, rand,
                     arange, from_numpy)
from ._device import device
from .random import manual_seed
from .threads import set_num_threads, get_num_threads
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from .ops.elementwise import exp, log, sqrt, abs, clip, relu, sigmoid, tanh, where
from .ops.elementwise import clip as clamp
from .ops.reduce import sum, mean, max, min, var, amax, amin
from .ops.shape import reshape, flatten, squeeze, unsqueeze, transpose, permute, cat, stack
from .ops.linalg import matmul
from . import nn
from . import optim, data
from .serialization import save, load

# dtypes under PyTorch's names (NumPy's scalar types): float32/float, float64/double,
# float16/half, int64/long, int32/int, int16/short, int8, uint8, bool
from ._device import DTYPES as _DTYPES
globals().update(_DTYPES)
del _DTYPES
__version__ = "0.1.0"
