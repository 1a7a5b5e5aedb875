"""Builds ext/*.pyx into minigrad/_ext/*.so.

Cython 3, -O3, OpenMP where the compiler has it (a serial build otherwise, with a
warning); the Cython sources are translated and the C compiled one per CPU at a time.
Environment switches, for developers:

  MINIGRAD_BOUNDSCHECK=1   compile the kernels with bounds checks on (an index outside
                           0 .. n-1, negative ones included, is an IndexError),
                           at -O3 like the plain build: at -O1 the reductions of two
                           kernels that agree bit for bit at -O3 (BatchNorm + ReLU6 and
                           BatchNorm then hardtanh) rounded differently, and the suite checks
                           that they agree
  MINIGRAD_SANITIZE=1      compile and link the kernels with AddressSanitizer and
                           UndefinedBehaviorSanitizer (-fsanitize=address,undefined
                           -fno-omit-frame-pointer -g); CPython is not built with ASan, so
                           run Python with LD_PRELOAD=$(cc -print-file-name=libasan.so)
                           (.ci/sanitize does it all)
  MINIGRAD_NO_OPENMP=1     force a serial build
  MINIGRAD_ONLY=conv,pool  build only these extensions (quicker edit-compile loops)
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools.command.build_ext import build_ext
from setuptools import Extension, setup


def _compiler_has_openmp():
    """True when the C compiler accepts -fopenmp and links a tiny OpenMP program."""
    if os.environ.get("MINIGRAD_NO_OPENMP") == "1" or sys.platform == "win32":
        return False
    cc = os.environ.get("CC", "cc")
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        ok = subprocess.run([cc, "-fopenmp", src, "-o", os.path.join(tmp, "omp")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        return ok
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


openmp = _compiler_has_openmp()
if not openmp:
    warnings.warn("minigrad: building the kernels without OpenMP (serial). "
                  "Install a compiler with OpenMP support for multi-threaded kernels.")

boundscheck = os.environ.get("MINIGRAD_BOUNDSCHECK") == "1"
sanitize = os.environ.get("MINIGRAD_SANITIZE") == "1"
sanitizer_flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                   "-fno-omit-frame-pointer", "-g"] if sanitize else []
only = {s.strip() for s in os.environ.get("MINIGRAD_ONLY", "").split(",") if s.strip()}

# Build from the Cython sources; an unpacked tree that has only the generated C files
# (ext/*.c, written by an earlier cythonize) builds from those. With neither there is no
# kernel to build: stop here rather than produce a wheel whose `import minigrad` fails.
sources = sorted(glob.glob(os.path.join("ext", "*.pyx")))
from_c = not sources
if from_c:
    sources = sorted(glob.glob(os.path.join("ext", "*.c")))
if not sources:
    sys.exit(f"minigrad setup.py: no kernel sources in {os.path.abspath('ext')} "
             f"(expected ext/*.pyx, or the generated ext/*.c). minigrad cannot work without "
             f"its compiled kernels; build from a complete source tree or sdist.")

# ext/spin.pyx times the CPU's spin-wait hint before libgomp loads (minigrad/__init__.py):
# it must not link OpenMP.
SERIAL = {"spin"}

# Every OpenMP module on Linux starts its parallel regions through ext/omp/keep_apart.c
# (the linker's --wrap): a worker thread that finds itself on its main thread's CPU moves
# off it (the file says why). The file is compiled once, before the modules are built side
# by side, and each module links that one object (BuildExt below). Listed among each
# module's sources it was compiled by every module to the same build/temp path, and a
# module's link could read the object while another module's assembler had just truncated
# it: ld takes an empty object without a word, and that module was left with
# __wrap_GOMP_parallel undefined (`import minigrad` failed; CI saw it once).
KEEP_APART = os.path.join("ext", "omp", "keep_apart.c")
keep_apart = openmp and sys.platform.startswith("linux")
APART = set()          # the modules that link keep_apart's object

extensions = []
for path in sources:
    name = os.path.splitext(os.path.basename(path))[0]
    if only and name not in only:
        continue
    omp = ["-fopenmp"] if openmp and name not in SERIAL else []
    apart = bool(omp) and keep_apart
    if apart:
        APART.add(f"minigrad._ext.{name}")
    extensions.append(Extension(
        f"minigrad._ext.{name}",
        [path],
        include_dirs=[np.get_include()],
        depends=sorted(glob.glob(os.path.join("ext", "*.h")) + glob.glob(os.path.join("ext", "*.pxi")))
        + ([KEEP_APART] if apart else []),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
        + ([("MINIGRAD_KEEP_APART", "1")] if apart else []),
        extra_compile_args=["-O3"] + omp + sanitizer_flags,
        # --require-defined: a module whose link did not get the wrapper fails to build
        # (rather than to import)
        extra_link_args=omp + sanitizer_flags + (["-Wl,--wrap=GOMP_parallel",
                                                  "-Wl,--require-defined=__wrap_GOMP_parallel"]
                                                 if apart else []),
    ))

directives = {
    "language_level": 3,
    "boundscheck": boundscheck,
    "wraparound": False,         # the plain build's: with boundscheck on, a negative index
                                 # is an IndexError too (wrapping it would hide the bug)
    "initializedcheck": boundscheck,
    "cdivision": not boundscheck,
    "embedsignature": True,
}

# The directives are baked into the generated C: re-cythonize when the mode changes.
mode = f"boundscheck={boundscheck} openmp={openmp}" + (" sanitize=True" if sanitize else "")
marker = os.path.join("ext", ".build_mode")
previous = open(marker).read() if os.path.exists(marker) else None
force = previous != mode

for ext in extensions:
    ext.define_macros.append(("MINIGRAD_BOUNDSCHECK", "1" if boundscheck else "0"))

# Packing an sdist (or writing metadata) compiles nothing: skip cythonize, which takes
# a while and would write ext/*.c that the sdist leaves out anyway.
packaging_only = (any(a in ("sdist", "egg_info", "dist_info") for a in sys.argv[1:])
                  and not any(a in ("build", "build_ext", "bdist_wheel", "install", "develop",
                                    "editable_wheel") for a in sys.argv[1:]))

# Record the mode only when this run regenerates the C (pip runs setup.py for metadata
# first; a marker written then would make the real build skip the re-cythonize).
if force and extensions and not (from_c or packaging_only):
    with open(marker, "w") as f:
        f.write(mode)

if from_c:
    warnings.warn("minigrad: no ext/*.pyx found; compiling the generated ext/*.c as they are "
                  "(the Cython directives they were generated with apply).")

class BuildExt(build_ext):
    """build_ext that compiles ext/omp/keep_apart.c once, serially, before the modules are
    built (side by side), and hands each module in APART that one object to link."""

    def build_extensions(self):
        todo = [ext for ext in self.extensions if ext.name in APART]
        if todo:
            objects = self.compiler.compile(     # with the OpenMP modules' own flags
                [KEEP_APART], output_dir=self.build_temp,
                macros=[("MINIGRAD_KEEP_APART", "1")],
                extra_postargs=todo[0].extra_compile_args, debug=self.debug)
            for ext in todo:
                ext.extra_objects = [o for o in ext.extra_objects if o not in objects] + objects
        super().build_extensions()


setup(
    cmdclass={"build_ext": BuildExt},
    # compile the extensions side by side (one per CPU): a fresh install waits on the
    # compiler more than on anything else
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
    ext_modules=(extensions if from_c or packaging_only
                 else cythonize(extensions, compiler_directives=directives, force=force,
                                nthreads=os.cpu_count() or 1)),
)
