"""Run-time controls: kernel variant choice at import, threads, info() and the CLI."""

import json
import os
import subprocess
import sys

import pytest

import convengine as ce
from convengine import _C


def run_python(code, **env):
    """Runs `code` in a fresh interpreter (the ISA is chosen once, at import)."""
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True,
                          text=True, timeout=120)


def test_default_isa_is_the_best_supported():
    supported = [isa for isa in _C.compiled_isas() if _C.cpu_supports(isa)]
    result = run_python("import convengine as ce; print(ce.info()['isa'])", CONVENGINE_ISA="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == supported[-1]


@pytest.mark.parametrize("isa", [i for i in _C.compiled_isas() if _C.cpu_supports(i)])
def test_forcing_a_supported_isa(isa):
    result = run_python("from convengine import _C; print(_C.isa())", CONVENGINE_ISA=isa)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == isa


def test_forcing_an_unknown_isa_fails_clearly_at_import():
    result = run_python("import convengine", CONVENGINE_ISA="sse9")
    assert result.returncode != 0
    assert "ValueError: CONVENGINE_ISA='sse9' is not a known ISA; expected one of ref, avx2, avx512" in result.stderr


def test_forcing_an_unsupported_isa_fails_clearly():
    unsupported = [i for i in _C.compiled_isas() if not _C.cpu_supports(i)]
    if not unsupported:
        pytest.skip("this CPU supports every compiled variant")
    result = run_python("import convengine", CONVENGINE_ISA=unsupported[0])
    assert result.returncode != 0
    assert "this CPU does not support it" in result.stderr


def test_select_isa_rejects_unknown_names():
    with pytest.raises(ValueError, match="not a known ISA"):
        _C._select_isa("neon")
    with pytest.raises(ValueError, match="unknown ISA"):
        _C.cpu_supports("neon")


def test_thread_count_round_trips_and_validates():
    original = ce.get_num_threads()
    try:
        ce.set_num_threads(1)
        assert ce.get_num_threads() == 1
        ce.set_num_threads(3)
        assert ce.get_num_threads() == 3
    finally:
        ce.set_num_threads(original)
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        ce.set_num_threads(0)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        ce.set_num_threads(1.5)
    assert ce.get_num_threads() == original


def test_default_threads_honour_omp_num_threads():
    result = run_python("import convengine as ce; print(ce.get_num_threads())", OMP_NUM_THREADS="1")
    assert result.stdout.strip() == "1", result.stderr
    without = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", "import convengine as ce; print(ce.get_num_threads())"],
                            env=without, capture_output=True, text=True, timeout=120)
    assert int(result.stdout) == len(os.sched_getaffinity(0))


def test_info_reports_build_and_extras():
    facts = ce.info()
    assert facts["version"] == ce.__version__
    assert facts["isa"] == _C.isa()
    assert facts["compiled_isas"] == ["ref", "avx2", "avx512"]
    assert "ref" in facts["cpu_supported_isas"]
    assert facts["num_threads"] == ce.get_num_threads()
    assert facts["openmp"]["version"] >= 201107
    assert set(facts["extras"]) == {"torch", "numba-cuda", "onnx", "mpi4py", "matplotlib", "tqdm"}
    for status in facts["extras"].values():
        assert ("version" in status) == status["available"]


@pytest.mark.parametrize("args", [["info"], ["info", "--json"]])
def test_info_command(args):
    result = subprocess.run([sys.executable, "-m", "convengine", *args], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if "--json" in args:
        assert json.loads(result.stdout)["isa"] == _C.isa()
    else:
        assert f"kernel variant : {_C.isa()}" in result.stdout


def test_cli_without_command_shows_usage():
    result = subprocess.run([sys.executable, "-m", "convengine"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "usage: convengine" in result.stderr
