"""The benchmark scripts run (a handful of ticks; their timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys

from tests._support import ROOT

BENCHMARK = ROOT / "benchmarks" / "interpreter_vs_reference.py"


def test_the_interpreter_benchmark_runs_on_a_few_ticks() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--ticks", "8", "--actor", "onnx"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("quadruped: 8 ticks")
    assert any("onnx.reference.ReferenceEvaluator, compiled file" in line for line in lines)
    # Both engines computed the same thing: our NumPy run of the same ONNX actor matches.
    assert "max |difference| to the evaluator, ReferenceInterpreter, actor as ONNX in NumPy" in (
        done.stdout
    )
    assert lines[-1].startswith("speed-up: ")
