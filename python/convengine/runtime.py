"""Run-time controls and facts: threads, the active kernel variant, info()."""

import importlib
import numbers
import os
import platform

import numpy as np

from . import _C
from ._version import __version__

__all__ = ["set_num_threads", "get_num_threads", "info"]

# Optional extras and the module each one provides.
OPTIONAL_EXTRAS = {
    "torch": "torch",
    "numba-cuda": "numba.cuda",
    "onnx": "onnx",
    "mpi4py": "mpi4py",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}


def apply_isa_from_environment():
    """Forces the kernel variant named by CONVENGINE_ISA (ref, avx2 or avx512), if set.

    Called once, when convengine is imported. Raises ValueError for an unknown variant or one
    this CPU cannot run.
    """
    forced = os.environ.get("CONVENGINE_ISA", "").strip()
    if forced:
        _C._select_isa(forced, "CONVENGINE_ISA")


def set_num_threads(n):
    """Sets how many threads convengine's kernels use (default: the cores this process may use,
    or OMP_NUM_THREADS when set)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _C.set_num_threads(int(n))


def get_num_threads():
    """How many threads convengine's kernels use."""
    return _C.get_num_threads()


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _extra_status(module_name):
    """The version of an optional extra if it imports, else why not."""
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a broken install can raise anything; report it
        return {"available": False, "error": f"{type(error).__name__}: {error}"}
    top = importlib.import_module(module_name.split(".")[0])
    return {"available": True, "version": getattr(top, "__version__", getattr(module, "__version__", "?"))}


def info():
    """A dict describing this build and machine: version, kernel variants, threads, OpenMP, CPU,
    and which optional extras import. Importing the extras can take a few seconds."""
    compiled = list(_C.compiled_isas())
    return {
        "version": __version__,
        "isa": _C.isa(),
        "compiled_isas": compiled,
        "cpu_supported_isas": [isa for isa in compiled if _C.cpu_supports(isa)],
        "num_threads": get_num_threads(),
        "openmp": {"version": _C.openmp_version(), "library": _C.openmp_library()},
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "extras": {name: _extra_status(module) for name, module in OPTIONAL_EXTRAS.items()},
    }
