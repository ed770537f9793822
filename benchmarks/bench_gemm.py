"""SGEMM benchmark: convengine._C.sgemm against numpy.matmul (OpenBLAS), same run, same inputs.

Two ways to run it:

    pytest benchmarks/bench_gemm.py --benchmark-only          # pytest-benchmark, one test per
                                                              # (shape, implementation, threads)
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gemm.py [--quick]
        [--threads 1 2] [--filter im2col] [--clock cpu]

The script prints a table of GFLOP/s (median of repeated runs, ours and numpy timed alternately
so that both see the same machine state) with 1 and 2 threads, the ratio ours / numpy, which
OpenBLAS kernel numpy used (threadpoolctl), the FP32 FMA peak measured by _C.fma_probe in the
same run, and our 2048^3 single-thread figure as a fraction of it, by wall clock and by thread
CPU time (each against the probe timed by the same clock). Unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE for the run (as above) so that OpenBLAS picks its own kernel for this CPU.

Shapes (issue 3): square 256..2048, and the im2col GEMMs (M, K, N) of convolution layers with
their backward forms: input gradient (K, N) = W^T (K, M) @ dY (M, N), i.e. A transposed, and
weight gradient (M, K) = dY (M, N) @ col^T (N, K), i.e. B transposed. Transposed operands are
stored transposed, as the convolution has them; numpy gets the matching .T views.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pytest

from convengine import _C

try:
    from convengine.bench.shapes import GEMM_IM2COL, GEMM_SQUARE
except ImportError:  # the shared shape table is not there: the shapes
    GEMM_SQUARE = [256, 512, 1024, 2048]
    GEMM_IM2COL = [(64, 576, 25088), (128, 1152, 6272), (256, 2304, 1568), (512, 4608, 392)]

try:
    import threadpoolctl
except ImportError:
    threadpoolctl = None


def cases():
    """(name, m, k, n, trans_a, trans_b): op(A) is m x k, op(B) is k x n."""
    out = [(f"square {s}", s, s, s, False, False) for s in GEMM_SQUARE]
    for m, k, n in GEMM_IM2COL:
        out.append((f"im2col {m}x{k}x{n} fwd", m, k, n, False, False))
        out.append((f"im2col {m}x{k}x{n} bwd-in (At)", k, m, n, True, False))
        out.append((f"im2col {m}x{k}x{n} bwd-w (Bt)", m, n, k, False, True))
    return out


def operands(m, k, n, trans_a, trans_b, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n), dtype=np.float32)
    return a, b, (a.T if trans_a else a), (b.T if trans_b else b)


class blas_threads:
    """numpy's BLAS limited to `n` threads (threadpoolctl), restored on exit."""

    def __init__(self, n):
        self.limiter = threadpoolctl.threadpool_limits(n, user_api="blas") if threadpoolctl else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.limiter is not None:
            self.limiter.restore_original_limits()


def blas_description():
    if threadpoolctl is None:
        return "unknown (pip install threadpoolctl)"
    for pool in threadpoolctl.threadpool_info():
        if pool.get("user_api") == "blas":
            return (f"{pool.get('internal_api')} {pool.get('version')}, kernel "
                    f"{pool.get('architecture')}, threading {pool.get('threading_layer')}")
    return "none found"


def fma_peak(threads, repeats=7, iterations=2_000_000):
    """Best GFLOP/s of _C.fma_probe (independent FMA chains, active ISA) on `threads` threads,
    by wall clock."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        flops = _C.fma_probe(threads, iterations)
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


# The CPU-time clock of one-thread runs. A one-thread sgemm, a one-thread fma_probe and numpy with
# its BLAS limited to one thread all run on the calling thread, so its CPU time is exactly what
# they got: time-slicing with other processes does not inflate it. (time.process_time would also
# charge the idle OpenMP and OpenBLAS worker threads of the process, which spin for a while after
# a multi-threaded call: that made the probe look slower than the GEMM, over 100% of "peak".)
CPU_CLOCK = time.thread_time


def square_2048_report(repeats=9, probe_repeats=15):
    """Lines stating our single-thread 2048^3 GFLOP/s as a percentage of the FMA peak, once by
    wall clock and once by thread CPU time, each against the probe timed by the same clock in
    the same runs (median of the GEMM runs, best of the probe runs)."""
    a, b, _, _ = operands(2048, 2048, 2048, False, False)
    flops = 2.0 * 2048 ** 3
    wall, cpu = [], []
    _C.sgemm(a, b)
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), CPU_CLOCK()
        _C.sgemm(a, b)
        cpu.append(CPU_CLOCK() - c0)
        wall.append(time.perf_counter() - w0)
    peak_wall = peak_cpu = 0.0
    for _ in range(probe_repeats):
        w0, c0 = time.perf_counter(), CPU_CLOCK()
        probe_flops = _C.fma_probe(1, 2_000_000)
        peak_cpu = max(peak_cpu, probe_flops / (CPU_CLOCK() - c0) / 1e9)
        peak_wall = max(peak_wall, probe_flops / (time.perf_counter() - w0) / 1e9)
    lines = []
    for name, samples, peak in (("wall clock", wall, peak_wall),
                                ("thread CPU time", cpu, peak_cpu)):
        ours = flops / statistics.median(samples) / 1e9
        lines.append(f"square 2048, 1 thread, by {name}: {ours:.1f} GFLOP/s = "
                     f"{100 * ours / peak:.1f}% of the FMA peak ({peak:.1f} GFLOP/s: _C.fma_probe "
                     f"by {name}, best of {probe_repeats})")
    return lines


# ---- pytest-benchmark --------------------------------------------------------------------------

CASES = cases()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("impl", ["convengine", "numpy"])
@pytest.mark.parametrize("case", CASES, ids=[c[0].replace(" ", "_") for c in CASES])
def test_sgemm(benchmark, case, impl, threads):
    name, m, k, n, ta, tb = case
    a, b, a_op, b_op = operands(m, k, n, ta, tb)
    original = _C.get_num_threads()
    _C.set_num_threads(threads)
    try:
        with blas_threads(threads):
            if impl == "convengine":
                benchmark(lambda: _C.sgemm(a, b, trans_a=ta, trans_b=tb))
            else:
                benchmark(lambda: np.matmul(a_op, b_op))
    finally:
        _C.set_num_threads(original)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["gflops_median"] = 2.0 * m * n * k / benchmark.stats.stats.median / 1e9


# ---- the table ---------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_ticks():
    """(CPU ticks all processes spent busy, ticks this process spent), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    return sum(fields) - fields[3] - fields[4], int(own[11]) + int(own[12])


def time_pair(ours, theirs, min_repeats, budget_s, rounds=3, pause_s=0.2, clock=time.perf_counter):
    """Median seconds of ours() and theirs(), and the CPU (in cores) other processes used
    meanwhile.

    The two run in alternating blocks (ours x r, theirs x r, `rounds` times), each block after a
    pause and one untimed warm-up call: after a call OpenBLAS's worker threads spin for a while
    (and OpenMP's, briefly), and timing one library while the other's threads still spin would
    charge it for them. r is chosen from the warm-up so that the whole pair takes about
    budget_s, with at least min_repeats timed runs per implementation. `clock` times each run
    (CPU_CLOCK: the CPU time the calling thread got, for single-threaded runs on a busy machine)."""
    samples = {0: [], 1: []}
    repeats = None
    other_ticks, timed = 0, 0.0
    for _ in range(rounds):
        for which, fn in ((0, ours), (1, theirs)):
            time.sleep(pause_s)
            t0 = time.perf_counter()
            fn()
            warm = time.perf_counter() - t0
            if repeats is None:
                per_block = budget_s / (2 * rounds)
                repeats = max(-(-min_repeats // rounds), min(15, int(per_block / max(warm, 1e-6))))
            before = _busy_ticks()
            block_start = time.perf_counter()
            for _ in range(repeats):
                t0 = clock()
                fn()
                samples[which].append(clock() - t0)
            timed += time.perf_counter() - block_start
            after = _busy_ticks()
            if before and after:
                other_ticks += (after[0] - before[0]) - (after[1] - before[1])
    others = max(0.0, other_ticks / _TICKS / timed) if timed > 0 else float("nan")
    return statistics.median(samples[0]), statistics.median(samples[1]), others


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time 1-thread runs by wall clock (default) or by the calling thread's "
                             "CPU time, which other processes sharing the cores do not inflate")
    args = parser.parse_args(argv)

    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"warning: {var}={os.environ[var]} is set; OpenBLAS will not pick its own "
                  f"kernel (run with env -u {var})", file=sys.stderr)
    budget = 0.6 if args.quick else 2.0
    min_repeats = 3 if args.quick else 9
    original = _C.get_num_threads()

    print(f"convengine ISA: {_C.isa()}, block sizes {_C.gemm_block_sizes(_C.isa())}")
    print(f"numpy {np.__version__}, BLAS: {blas_description()}")
    peaks = {t: fma_peak(t) for t in args.threads}
    print("FMA peak (_C.fma_probe by wall clock, best of 7): " +
          ", ".join(f"{peaks[t]:.1f} GFLOP/s on {t} thread{'s' * (t > 1)}" for t in args.threads))
    print()
    header = f"{'case':36s} {'m':>5s} {'k':>5s} {'n':>6s}"
    for t in args.threads:
        header += f" | {t}T ours  numpy  ratio"
    header += " | other"
    print(header)
    print("-" * len(header))
    ratios = {t: [] for t in args.threads}
    square_2048_1t = False  # the row ran with one thread: report it against the peak
    try:
        for name, m, k, n, ta, tb in cases():
            if args.filter not in name:
                continue
            a, b, a_op, b_op = operands(m, k, n, ta, tb)
            flops = 2.0 * m * n * k
            row = f"{name:36s} {m:5d} {k:5d} {n:6d}"
            busiest = 0.0
            for t in args.threads:
                _C.set_num_threads(t)
                with blas_threads(t):
                    clock = (CPU_CLOCK if t == 1 and args.clock == "cpu"
                             else time.perf_counter)
                    ours, theirs, others = time_pair(
                        lambda: _C.sgemm(a, b, trans_a=ta, trans_b=tb),
                        lambda: np.matmul(a_op, b_op), min_repeats, budget, clock=clock)
                busiest = max(busiest, others)
                g_ours, g_np = flops / ours / 1e9, flops / theirs / 1e9
                ratios[t].append(g_ours / g_np)
                row += f" | {g_ours:7.1f} {g_np:6.1f} {g_ours / g_np:6.2f}"
                if name == "square 2048" and t == 1:
                    square_2048_1t = True
            print(row + f" | {busiest:4.2f}", flush=True)
    finally:
        _C.set_num_threads(original)
    print("(GFLOP/s, medians; ratio = ours / numpy; other = cores' worth of CPU that other processes "
          "used while the row was timed" + ("; 1-thread columns timed by thread CPU time)"
                                             if args.clock == "cpu" else ")"))
    print()
    for t in args.threads:
        if ratios[t]:
            print(f"{t} thread(s): ratio ours/numpy min {min(ratios[t]):.2f}, median "
                  f"{statistics.median(ratios[t]):.2f}, max {max(ratios[t]):.2f}")
    if square_2048_1t:
        # Measured again, by both clocks at once, each against the probe timed by that clock
        # (a table figure by CPU time against a probe by wall clock would mix the two).
        _C.set_num_threads(1)
        try:
            for line in square_2048_report():
                print(line)
        finally:
            _C.set_num_threads(original)


if __name__ == "__main__":
    main()
