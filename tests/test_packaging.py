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


_OMP_MODULE = """void mg_add_one(float *a, int n) {
    #pragma omp parallel for
    for (int i = 0; i < n; i++) a[i] += 1.0f;
}
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ext/omp/keep_apart.c is Linux-only")
def test_keep_apart_is_compiled_once_and_linked_into_every_openmp_module(tmp_path):
    # Each OpenMP module links ext/omp/keep_apart.c's object (the --wrap of GOMP_parallel).
    # The modules are built side by side: were the file among each module's sources, every
    # module would compile it to the same object path, and one module's link could read it
    # just as another's assembler had truncated it (ld takes an empty object silently; the
    # module then failed to import). So: one compile, before the modules, and each OpenMP
    # module's link names that object and requires the wrapper to be defined.
    tree = _tree(tmp_path)
    (tree / "minigrad" / "_ext").mkdir()
    (tree / "ext" / "omp").mkdir()
    shutil.copy(ROOT / "ext" / "omp" / "keep_apart.c", tree / "ext" / "omp" / "keep_apart.c")
    for name in ("alpha", "beta", "gamma", "spin"):          # spin: the serial module
        (tree / "ext" / f"{name}.c").write_text(_OMP_MODULE)
    r = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-j", "4"],
                       cwd=tree, capture_output=True, text=True, timeout=300)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    if "-fopenmp" not in log:
        pytest.skip("the compiler has no OpenMP: setup.py built serial modules")
    lines = log.splitlines()
    compiles = [l for l in lines if " -c ext/omp/keep_apart.c" in l]
    assert len(compiles) == 1, compiles
    obj = compiles[0].split(" -o ", 1)[1].split()[0]
    for name in ("alpha", "beta", "gamma", "spin"):
        link = [l for l in lines if " -shared" in l and f"/ext/{name}.o" in l]
        assert len(link) == 1, (name, link)
        if name == "spin":
            assert "keep_apart" not in link[0] and "--wrap" not in link[0], link[0]
        else:
            assert obj in link[0].split(), (name, obj, link[0])
            assert "-Wl,--wrap=GOMP_parallel" in link[0], link[0]
            assert "-Wl,--require-defined=__wrap_GOMP_parallel" in link[0], link[0]
    nm = shutil.which("nm")
    if nm:
        for name in ("alpha", "beta", "gamma"):
            (so,) = (tree / "minigrad" / "_ext").glob(f"{name}.*.so")
            syms = subprocess.run([nm, str(so)], capture_output=True, text=True).stdout
            assert any(s.split()[-1:] == ["__wrap_GOMP_parallel"] and s.split()[-2] in "tT"
                       for s in syms.splitlines() if s.strip()), (so, syms)
