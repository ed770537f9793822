"""The benchmark machinery (convengine.bench and `convengine bench`), on tiny cases.

These check that results are checked, timed, reported and saved correctly; they never assert a
speed."""

import gc
import json
import subprocess
import sys

import numpy as np
import pytest

from convengine.bench import report, run_suite, select_cases
from convengine.bench.cases import Case
from convengine.bench.memory import peak_extra_memory
from convengine.bench.runner import max_relative_error
from convengine.bench.timing import time_call


def tiny_case(name="tiny/add", wrong=False):
    def setup(threads):
        a = np.arange(1000, dtype=np.float32)
        return {
            "convengine": lambda: a + a,
            "numpy": lambda: a * (3 if wrong else 2),
        }

    return Case(name, "tiny", 1000.0, setup)


def test_time_call_repeats_and_summarises():
    calls = []
    timing = time_call(lambda: calls.append(1), warmup=2, min_repeats=7, min_time=0)
    assert len(timing.samples) == 7 and len(calls) == 9
    assert timing.min <= timing.median
    assert timing.spread >= 0


def test_peak_extra_memory_sees_a_large_allocation():
    gc.collect()  # nothing freed while measuring shrinks the starting point
    measured = peak_extra_memory(lambda: np.ones(256 * 2**20 // 8).sum())
    if measured is None:
        pytest.skip("this kernel cannot reset the peak resident set")
    assert measured >= 128 * 2**20


def test_max_relative_error():
    assert max_relative_error(np.ones(3), np.ones(3)) == 0
    assert max_relative_error(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(0.5)
    assert max_relative_error(np.ones(3), np.ones(4)) == float("inf")


def test_run_suite_checks_times_and_reports():
    run = run_suite([tiny_case()], threads=1, min_time=0.01)
    assert run["machine"]["threads"] == 1 and run["machine"]["fma_peak_gflops"] > 0
    rows = {r["impl"]: r for r in run["results"]}
    assert set(rows) == {"convengine", "numpy"}
    assert rows["numpy"]["max_rel_error"] == 0
    assert rows["convengine"]["gflops"] > 0 and rows["convengine"]["repeats"] >= 5
    table = report.format_table(run)
    assert "tiny/add" in table and "geometric mean" in table
    json.dumps(run)  # everything in a run is JSON-serialisable


def test_a_wrong_result_is_flagged():
    run = run_suite([tiny_case(wrong=True)], threads=1, min_time=0.01)
    assert "results differ from a reference" in report.format_table(run)


def test_comparison_with_an_earlier_run():
    run = run_suite([tiny_case()], threads=1, min_time=0.01)
    assert "new/old" in report.format_comparison(run, run)
    other = {"results": []}
    assert "no case in common" in report.format_comparison(other, run)


def test_suites_and_filters():
    quick = select_cases("quick")
    full = select_cases("full")
    assert quick and set(c.name for c in quick) <= set(c.name for c in full)
    assert all(c.group == "gemm" for c in select_cases("gemm"))
    assert [c.name for c in select_cases("full", "square_512")] == ["gemm/square_512"]
    with pytest.raises(ValueError, match="unknown suite 'fast'"):
        select_cases("fast")
    with pytest.raises(ValueError, match="not a valid regex"):
        select_cases("full", "(")


def test_bench_command_end_to_end(tmp_path):
    out = tmp_path / "run.json"
    command = [sys.executable, "-m", "convengine", "bench", "--suite", "elementwise",
               "--filter", "add", "--threads", "1", "--min-time", "0.01", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "elementwise/add" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["machine"]["threads"] == 1
    again = subprocess.run(command[:-2] + ["--compare", str(out)], capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0 and "new/old" in again.stdout


@pytest.mark.parametrize("args, message", [
    (["--filter", "no-such-case"], "no case of suite"),
    (["--threads", "0"], "must be >= 1"),
    (["--compare", "/nonexistent.json"], "not a JSON file written by --json"),
])
def test_bench_command_rejects_bad_arguments(args, message):
    result = subprocess.run([sys.executable, "-m", "convengine", "bench", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert message in result.stderr


def test_plot_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    run = run_suite([tiny_case()], threads=1, min_time=0.01)
    path = tmp_path / "ratios.png"
    report.save_plot(run, path)
    assert path.stat().st_size > 1000
