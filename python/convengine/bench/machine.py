"""What the benchmark ran on: CPU, kernel variant, threads, library versions, FMA peak."""

import os
import platform
import time

import numpy as np

from .. import _C
from ..runtime import info


def fma_peak_gflops(threads, repeats=5, iterations=2_000_000):
    """Best FP32 GFLOP/s of a pure-FMA loop on `threads` threads with the active ISA."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        flops = _C.fma_probe(threads, iterations)
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def blas_info():
    """numpy's BLAS library, version, kernel and threads (needs threadpoolctl), or None."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas":
            return {k: pool.get(k) for k in ("internal_api", "version", "architecture",
                                              "num_threads")}
    return None


def torch_version():
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def torch_backends():
    """What torch's CPU operators run on, as far as torch tells: oneDNN (mkldnn, torch's
    convolution and pooling backend on x86) and the BLAS/threading libraries it was built with."""
    try:
        import torch
    except ImportError:
        return None
    libraries = [line.strip() for line in torch.__config__.parallel_info().splitlines()
                 if "Library" in line or line.startswith("OpenMP")]
    return {
        "onednn_available": torch.backends.mkldnn.is_available(),
        "onednn_enabled": bool(torch.backends.mkldnn.enabled),
        "libraries": libraries,
        "allocator": "default CPU allocator (glibc malloc)",
    }


def machine_info(threads):
    facts = info()
    return {
        "cpu": facts["cpu"],
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "isa": facts["isa"],
        "threads": threads,
        "fma_peak_gflops": fma_peak_gflops(threads),
        "convengine": facts["version"],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_blas": blas_info(),
        "torch": torch_version(),
        "torch_backends": torch_backends(),
        "openblas_env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                         if k in os.environ},
    }
