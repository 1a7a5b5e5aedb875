"""minigrad: a small, readable autodiff tensor framework for CNNs with Cython kernels.

A first look::

    import minigrad as mg
    x = mg.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2x
"""
import os as _os

# How long an OpenMP thread busy-waits for more work after a parallel region before it
# sleeps. GNU OpenMP's default (300,000 spins, milliseconds) steals the cores NumPy's
# BLAS threads need for the next matmul; sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs
# a futex wake-up per region, and a training step runs dozens of short regions back to
# back. A short spin does both (benchmarks/RESULTS.md: GOMP_SPINCOUNT). Set before
# libgomp loads with our kernels; a policy or spin count the user exported wins.
if "OMP_WAIT_POLICY" not in _os.environ:
    _os.environ.setdefault("GOMP_SPINCOUNT", "3000")

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
