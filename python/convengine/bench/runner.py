"""Runs cases: check each reference against convengine, then time every implementation."""

import contextlib
import math

import numpy as np

from ..runtime import get_num_threads, set_num_threads
from .machine import machine_info
from .memory import peak_extra_memory
from .timing import time_call

# Another process using more than this many cores' worth of CPU while a case was timed makes
# its figures suspect; the report flags it.
CONTENTION_LIMIT = 0.25


def max_relative_error(ours, reference):
    """max |ours - reference| / max(|reference|, tiny), over all elements."""
    ours = np.asarray(ours, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if ours.shape != reference.shape:
        return math.inf
    scale = max(float(np.max(np.abs(reference))) if reference.size else 0.0, 1e-30)
    return float(np.max(np.abs(ours - reference))) / scale if ours.size else 0.0


@contextlib.contextmanager
def thread_limits(threads):
    """convengine, torch and numpy's BLAS all on `threads` threads for the block."""
    previous = get_num_threads()
    set_num_threads(threads)
    torch_previous = None
    try:
        import torch
        torch_previous = torch.get_num_threads()
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=threads)
    except ImportError:
        limiter = contextlib.nullcontext()
    try:
        with limiter:
            yield
    finally:
        set_num_threads(previous)
        if torch is not None:
            torch.set_num_threads(torch_previous)


def run_case(case, threads, peak_gflops, min_time):
    """One result dict per implementation of `case`."""
    impls = case.setup(threads)
    results, ours = [], None
    for name, fn in impls.items():
        # The first call is the one that allocates workspaces and caches: measure its memory,
        # and check its result against convengine's.
        output = []
        memory = peak_extra_memory(lambda: output.append(fn()))
        if ours is None:
            ours = output[0]
        error = max_relative_error(output[0], ours) if name != "convengine" else 0.0
        del output
        timing = time_call(fn, min_time=min_time)
        gflops = case.flops / timing.median / 1e9 if case.flops else None
        results.append({
            "case": case.name,
            "group": case.group,
            "impl": name,
            "median_s": timing.median,
            "min_s": timing.min,
            "spread": timing.spread,
            "repeats": len(timing.samples),
            "gflops": gflops,
            "peak_fraction": gflops / peak_gflops if gflops and peak_gflops else None,
            "max_rel_error": error,
            "peak_extra_memory_bytes": memory,
            "other_cpu_load": timing.other_cpu_load,
        })
    return results


def run_suite(cases, threads, min_time=0.3, progress=None):
    """Runs every case on `threads` threads; returns {"machine": ..., "results": [...]}.

    progress(i, n, case) is called before each case.
    """
    with thread_limits(threads):
        machine = machine_info(threads)
        results = []
        for i, case in enumerate(cases):
            if progress:
                progress(i, len(cases), case)
            results.extend(run_case(case, threads, machine["fma_peak_gflops"], min_time))
    return {"machine": machine, "results": results}
