"""Only the extensions live here (the BIRD parse core and the rtnetlink route decoder);
all metadata is in pyproject.toml.

NODESTATUS_DEBUG=1 builds with bounds checks, line tracing and -O0 -g;
NODESTATUS_ANNOTATE=1 also writes the Cython HTML annotation;
NODESTATUS_SYMBOLS=1 keeps the symbols of the optimised build (for perf and callgrind).
A failed compile fails the build: there is no pure-Python fallback on purpose.
"""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("NODESTATUS_DEBUG") == "1"
directives = {"language_level": 3, "embedsignature": True}
macros = []
cflags = ["-O3"]
# Python's own CFLAGS carry -g: stripped, the two modules are 0.6 MB instead of 4 MB in the
# wheel and the image. The debug build keeps its symbols.
ldflags = [] if os.environ.get("NODESTATUS_SYMBOLS") == "1" else ["-s"]
if debug:
    directives.update(linetrace=True, profile=True, boundscheck=True, wraparound=True)
    macros.append(("CYTHON_TRACE", "1"))
    cflags = ["-O0", "-g"]
    ldflags = []

ext = Extension(
    "nodestatus._birdparse",
    ["src/_birdparse.pyx"],
    define_macros=macros,
    extra_compile_args=cflags,
    extra_link_args=ldflags,
)

rtnl = Extension(
    "nodestatus._rtnl",
    ["src/_rtnl.pyx"],
    define_macros=macros,
    extra_compile_args=cflags,
    extra_link_args=ldflags,
)

setup(
    ext_modules=cythonize(
        [ext, rtnl],
        compiler_directives=directives,
        annotate=debug or os.environ.get("NODESTATUS_ANNOTATE") == "1",
    )
)
