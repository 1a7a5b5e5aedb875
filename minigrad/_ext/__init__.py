"""Compiled Cython kernels (built from ext/*.pyx by setup.py). They take ndarrays and
integers only; the ops in minigrad.ops validate every argument before calling them."""
