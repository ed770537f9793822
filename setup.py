"""Build script: the convengine package plus its private extension convengine._C.

_C is built from engine/**/*.cpp (the pure C++ engine) and csrc/*.cpp (the pybind11 boundary).
Hot kernels come in ISA variants inside one build: a source named `*__avx2.cpp` or
`*__avx512.cpp` is compiled with that ISA's flags, everything else for baseline x86-64, and the
variant is chosen at import time from CPU detection. Never compile for the build machine's own
CPU (no native -march): the build must run on any x86-64 CPU.
"""

import os
import re
from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import Extension, find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))

# Flags per ISA suffix. AVX-512 files prefer 512-bit vectors (GCC would otherwise stay at 256).
# -Wno-(maybe-)uninitialized: GCC 12 warns about the `__Y = __Y` idiom inside its own
# avx512fintrin.h (_mm512_undefined_*) wherever such an intrinsic is inlined, hundreds of false
# positives about code that is not ours. Shared kernel bodies (*_impl.inc) are also compiled for
# ref and AVX2, where the warnings stay on.
ISA_FLAGS = {
    "avx2": ["-mavx2", "-mfma", "-mf16c"],
    "avx512": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mfma", "-mf16c",
               "-mprefer-vector-width=512", "-Wno-maybe-uninitialized",
               "-Wno-uninitialized"],
}
ISA_SUFFIX = re.compile(r"__(%s)\.cpp$" % "|".join(ISA_FLAGS))


def read_version():
    with open(os.path.join(HERE, "python", "convengine", "_version.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


class IsaBuildExt(build_ext):
    """build_ext that adds ISA flags to each source whose name asks for them."""

    def build_extensions(self):
        compile_one = self.compiler._compile

        def compile_with_isa_flags(obj, src, ext, cc_args, extra_postargs, pp_opts):
            match = ISA_SUFFIX.search(src)
            flags = list(extra_postargs) + (ISA_FLAGS[match.group(1)] if match else [])
            compile_one(obj, src, ext, cc_args, flags, pp_opts)

        self.compiler._compile = compile_with_isa_flags
        super().build_extensions()


def sources():
    # Relative paths: setuptools rejects absolute ones in an sdist build.
    found = glob("engine/**/*.cpp", recursive=True) + glob("csrc/*.cpp")
    return sorted(found)


def headers():
    # Headers and the per-ISA .inc bodies: a change to any of them makes build_ext rebuild the
    # extension (it compares only these and the sources with the built library).
    return sorted(glob("engine/**/*.h", recursive=True) + glob("engine/**/*.inc", recursive=True)
                  + glob("csrc/*.h"))


extension = Pybind11Extension(
    "convengine._C",
    sources(),
    include_dirs=["engine"],
    depends=headers(),
    cxx_std=17,
    # -fno-trapping-math: no kernel reads the floating-point exception flags, and GCC's default
    # assumption that they matter keeps it from vectorising selects such as x > 0 ? x : a * x
    # on AVX2 and baseline (only AVX-512's masked arithmetic escapes it).
    # -Wno-psabi: the ref/AVX2 builds of the vector-type kernels pass 64-byte GCC vectors by
    # value between internal-linkage functions, which GCC flags as an ABI change; no such
    # function crosses a file (see the ISA rule above), so no ABI is involved.
    extra_compile_args=["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
                        "-Wno-psabi"],
    extra_link_args=["-fopenmp"],
)


# convengine._transforms: the data-augmentation loops (resampling, elastic warp, blur), in
# Cython under csrc/ (typed memoryviews, nogil), C only; NumPy is used at run time, not built
# against.
def transforms_extension():
    from Cython.Build import cythonize

    ext = Extension("convengine._transforms", ["csrc/transforms.pyx"],
                    extra_compile_args=["-O3", "-fno-math-errno"])
    return cythonize([ext], language_level=3, quiet=True)


# Compile sources in parallel (CONVENGINE_BUILD_JOBS=N to choose; default: all cores).
ParallelCompile("CONVENGINE_BUILD_JOBS", default=0).install()

setup(
    name="convengine",
    version=read_version(),
    description="Fast, tested CPU convolution engine with a PyTorch-like autograd layer",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=find_packages("python"),
    ext_modules=[extension] + transforms_extension(),
    cmdclass={"build_ext": IsaBuildExt},
    install_requires=["numpy>=1.22"],
    extras_require={
        # test: torch is the oracle for every op, scipy.ndimage for the augmentation kernels;
        # matplotlib so the plotting code (bench --plot, Grad-CAM overlays, history) runs too.
        "test": ["pytest>=7", "hypothesis>=6", "pytest-benchmark>=4", "torch==2.13.0",
                 "scipy>=1.9", "matplotlib>=3.5"],
        # `convengine bench`: threadpoolctl holds numpy's BLAS to --threads and names its
        # kernel; tqdm draws the progress bar; matplotlib draws --plot.
        "bench": ["threadpoolctl>=3", "tqdm>=4"],
        "plot": ["matplotlib>=3.5"],
        # examples/: figures; scikit-image only for denoise_ct.py --radon skimage
        "examples": ["matplotlib>=3.5", "scikit-image>=0.19"],
    },
    entry_points={"console_scripts": ["convengine=convengine.__main__:main"]},
    zip_safe=False,
)
