"""The whole `convengine bench --suite full` as pytest-benchmark tests, one per case and
implementation, grouped by case so that pytest-benchmark compares convengine with each reference:

    pytest benchmarks/bench_suite.py --benchmark-only [-k conv/resnet_l1]

The cases, their shapes and their references are the CLI's own (convengine.bench), so the two
never drift apart. Each test first checks the implementation's result against convengine's.
"""

import pytest

from convengine import get_num_threads
from convengine.bench import select_cases
from convengine.bench.report import MISMATCH_LIMIT
from convengine.bench.runner import max_relative_error, thread_limits

CASES = select_cases("full")
IMPLEMENTATIONS = ("convengine", "numpy", "torch", "torch_cl")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(benchmark, case, impl):
    threads = get_num_threads()
    with thread_limits(threads):
        impls = case.setup(threads)
        if impl not in impls:
            pytest.skip(f"{case.name} has no {impl} implementation here")
        fn = impls[impl]
        if impl != "convengine":
            error = max_relative_error(fn(), impls["convengine"]())
            assert error <= MISMATCH_LIMIT, f"{impl} differs from convengine by {error:.1e}"
        benchmark.group = case.name
        benchmark.extra_info.update(threads=threads, gflop=case.flops / 1e9)
        benchmark.pedantic(fn, warmup_rounds=1, rounds=5, iterations=1)
