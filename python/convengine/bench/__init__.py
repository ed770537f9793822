"""The benchmark suite behind `convengine bench`: convengine against reference implementations.

Every case first checks that convengine's result matches each reference (the maximum error is
reported), then times every implementation in the same run with the same thread count: warm-up,
repeated runs, median, min and spread. Figures are reported as time, GFLOP/s, the fraction of
this machine's FP32 FMA peak (from a short probe) and the ratio against each reference.
"""

from .runner import run_suite
from .suites import SUITES, select_cases

__all__ = ["run_suite", "SUITES", "select_cases"]
