"""Hypothesis profiles: `dev` (quick, the default) and `ci` (more examples, no deadline).

Choose one with HYPOTHESIS_PROFILE=ci (the CI script does).
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Under CI's sanitizer pass (.ci/sanitize, MINIGRAD_SANITIZED=1) the ASan runtime is
# preloaded into a CPython that was not built with it. matplotlib's ft2font is C++ that
# throws an exception at import, and ASan's __cxa_throw interceptor then aborts the
# process ("CHECK failed: asan_interceptors.cpp:320 real___cxa_throw != 0"): a crash in
# the sanitizer's set-up, not in minigrad's kernels. TensorFlow's pybind11 modules abort
# the same way on their first C++ exception (where it is installed, e.g. for the
# benchmarks). The tests that need matplotlib (plots and the lecture's animations) or
# TensorFlow (a comparison in test_layout) ask with pytest.importorskip, so they skip
# there, and run in CI's first pass.
if os.environ.get("MINIGRAD_SANITIZED") == "1":
    import sys
    sys.modules["matplotlib"] = None
    sys.modules["tensorflow"] = None

settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """Tests marked slow run only with MINIGRAD_SLOW=1 (e.g. the model zoo's large networks)."""
    if os.environ.get("MINIGRAD_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow; run with MINIGRAD_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
