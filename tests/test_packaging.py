"""Packaging (issue 16): setup.py never builds a minigrad without its kernels.

The sdist itself (what it holds, that it installs in a clean venv and imports from another
directory) is checked by the packaging block of .ci/run, which needs PyPI and `build`.
"""
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

pytest.importorskip("Cython")


def _tree(tmp_path, ext_files=()):
    """A copy of the build files with only `ext_files` (copied from ext/) in ext/."""
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "ext").mkdir()
    (tmp_path / "minigrad").mkdir()
    (tmp_path / "minigrad" / "__init__.py").write_text("")
    for name in ext_files:
        shutil.copy(ROOT / "ext" / name, tmp_path / "ext" / name)
    return tmp_path


def test_setup_py_fails_loudly_without_pyx_or_generated_c(tmp_path):
    tree = _tree(tmp_path, ["_gemm.pxi", "direct16.h"])          # headers, but no kernel source
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext"], cwd=tree,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0, r.stdout + r.stderr
    assert "no kernel sources" in r.stderr and "ext/*.pyx" in r.stderr, r.stderr
    assert not (tree / "build").exists()
