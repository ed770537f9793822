"""Repeated timing with a median, a spread, and a check for other processes using the CPU."""

import dataclasses
import os
import statistics
import time

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclasses.dataclass
class Timing:
    samples: list            # seconds, one per timed call
    other_cpu_load: float    # cores' worth of CPU time other processes used while timing, or nan

    @property
    def median(self):
        return statistics.median(self.samples)

    @property
    def min(self):
        return min(self.samples)

    @property
    def spread(self):
        """Interquartile range relative to the median (0.05: the middle half within 5%)."""
        if len(self.samples) < 4:
            return (max(self.samples) - min(self.samples)) / self.median
        q1, _, q3 = statistics.quantiles(self.samples, n=4)
        return (q3 - q1) / self.median


def _busy_ticks():
    """(ticks every CPU spent busy, ticks this process spent), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)
    return busy, int(own[11]) + int(own[12])  # utime + stime of every thread


def time_call(fn, *, warmup=1, min_repeats=5, max_repeats=50, min_time=0.3):
    """Times fn() after `warmup` calls: at least min_repeats runs and min_time seconds in all
    (capped at max_repeats), each run timed on its own."""
    for _ in range(warmup):
        fn()
    before = _busy_ticks()
    start = time.perf_counter()
    samples = []
    while len(samples) < max_repeats and (
            len(samples) < min_repeats or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    after = _busy_ticks()
    other = float("nan")
    if before and after and wall > 0:
        other_ticks = (after[0] - before[0]) - (after[1] - before[1])
        other = max(0.0, other_ticks / _CLOCK_TICKS / wall)
    return Timing(samples, other)
