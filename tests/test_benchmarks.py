"""The benchmark and soak scripts run (a handful of ticks; their timings are not asserted)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from typing import Any

import pytest

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


SOAK = ROOT / "benchmarks" / "soak.py"


def load_soak() -> Any:
    spec = importlib.util.spec_from_file_location("exploy_dsl_soak", SOAK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_soak_runs_on_a_few_ticks() -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--ticks", "1500", "--window", "600", "--checkpoints", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "soak: examples/quadruped.py (seeded ONNX actor), 1500 ticks = 2 pass(es) of a "
        "600-tick window (+300), "
    )
    assert lines[1].startswith("RSS before: ")
    assert re.match(
        r"memory: RSS [\d.]+ MiB after the first pass, [\d.]+ MiB at the end", lines[-2]
    )
    assert lines[-1] == "drift: none; every pass equals a fresh Runtime's outputs exactly"


def test_the_soak_reports_state_that_survives_a_reset(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    soak = load_soak()
    # A planted bug: reset() rewinds the tick but keeps the memory of the previous episode, so
    # the second pass starts from the state the first one ended with.
    monkeypatch.setattr(soak.Runtime, "reset", lambda self: setattr(self, "tick", self._first_tick))
    assert soak.main(["--ticks", "1200", "--window", "600", "--checkpoints", "1"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"drift: pass 2 first differs from a fresh Runtime \(max [\d.e+-]+\)", out)


def test_the_soak_fails_on_memory_growth_beyond_the_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    soak = load_soak()
    assert soak.main(["--ticks", "400", "--window", "200", "--max-growth-mib", "-1"]) == 1
    assert "exceeds --max-growth-mib -1.0" in capsys.readouterr().out
