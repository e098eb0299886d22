"""The benchmark and soak scripts run (a handful of ticks; their timings are not asserted)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from tests._support import ROOT

BENCHMARK = ROOT / "benchmarks" / "interpreter_vs_reference.py"


def run_script(*args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """``python ARGS...`` from the repository root; a non-zero exit fails with its stderr."""
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return done


def test_the_interpreter_benchmark_runs_on_a_few_ticks() -> None:
    done = run_script(str(BENCHMARK), "--ticks", "8", "--actor", "onnx", timeout=120)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("quadruped: 8 ticks")
    assert any("onnx.reference.ReferenceEvaluator, compiled file" in line for line in lines)
    # Both engines computed the same thing: our NumPy run of the same ONNX actor matches.
    assert "max |difference| to the evaluator, ReferenceInterpreter, actor as ONNX in NumPy" in (
        done.stdout
    )
    assert lines[-1].startswith("speed-up: ")


SOAK = ROOT / "benchmarks" / "soak.py"


def load_script(path: Path) -> Any:
    """A benchmark script as a module (registered, so that its dataclasses resolve)."""
    name = f"exploy_dsl_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_soak() -> Any:
    return load_script(SOAK)


def test_the_soak_runs_on_a_few_ticks() -> None:
    done = run_script(
        str(SOAK), "--ticks", "1500", "--window", "600", "--checkpoints", "2", timeout=120
    )
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


SPEED = ROOT / "benchmarks" / "speed.py"
# Every row of issue 12's table, in its order.
SPEED_ROWS = (
    "policy step / actor alone",
    "apply-only step / no-compute file of the same signature",
    "nodes excl. Constant/Identity (after ORT ALL)",
    "session creation / traced file's",
    "`exploy-dsl compile` whole process, ONNX actor / traced file's export",
    "`exploy-dsl --help`",
    "`from exploy_dsl import Runtime`",
    "`Runtime.step` / bare `session.run` with the same feeds",
    "reference interpreter / onnx.reference on the file (speed)",
    "batched policy step at batch 4096 / actor alone at batch 4096",
)


@pytest.mark.torch
def test_the_speed_benchmark_prints_every_row_of_the_table(tmp_path: Path) -> None:
    figures = tmp_path / "speed.json"
    done = run_script(str(SPEED), "--quick", "--json", str(figures), timeout=180)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("quadruped, actor 48-512-256-128-12 ELU; onnxruntime ")
    header = [cell.strip() for cell in lines[1].split("|")[1:-1]]
    assert header == ["measure", "now", "alternative", "floor", "goal", "met?"]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines[3:]]
    assert [row[0] for row in rows] == list(SPEED_ROWS)
    assert all(row[5] in ("yes", "no", "n/a") for row in rows)
    batched = rows[-1]
    assert batched[1] == "n/a (no batched build)" or re.fullmatch(r"[\d.]+x", batched[1])
    written = json.loads(figures.read_text(encoding="utf-8"))
    assert [row["measure"] for row in written["rows"]] == list(SPEED_ROWS)
    assert written["settings"]["rounds"] == 3


@pytest.mark.torch
def test_the_no_compute_file_has_the_signature_and_does_no_work(compiled: dict[str, Any]) -> None:
    speed = load_script(SPEED)
    model = compiled["quadruped"].model
    empty = speed.no_compute_file(model)
    onnx.checker.check_model(empty, full_check=True)
    assert [(v.name, v.type) for v in empty.graph.input] == [
        (v.name, v.type) for v in model.graph.input
    ]
    assert [(v.name, v.type) for v in empty.graph.output] == [
        (v.name, v.type) for v in model.graph.output
    ]
    assert {n.op_type for n in empty.graph.node} == {"Constant", "Identity"}
    session = speed.session(empty.SerializeToString())
    rng = np.random.default_rng(0)
    feeds = {
        v.name: rng.normal(size=v.shape).astype(np.float32)
        for v in (*session.get_inputs(), *session.get_overridable_initializers())
        if v.name != "ctx.step_count"
    }
    assert {"memory.actions.in", "memory.joint_pos.processed_actions.in"} <= set(feeds)
    feeds["ctx.step_count"] = np.array(0, np.int32)
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, feeds), strict=True))
    shapes = {
        o.name: tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in model.graph.output
    }
    for name, value in results.items():
        assert value.shape == shapes[name]
        if name.startswith("memory."):
            np.testing.assert_array_equal(value, feeds[name[: -len(".out")] + ".in"])
        else:
            assert not value.any()


@pytest.mark.torch
def test_the_speed_benchmark_counts_the_nodes_inside_the_if(compiled: dict[str, Any]) -> None:
    graph = compiled["quadruped"].model.graph
    ops = load_script(SPEED).op_types(graph)
    # The actor's MatMuls live in the If's policy branch only, not at the top level.
    assert "MatMul" not in {n.op_type for n in graph.node}
    assert ops.count("If") == 1 and "MatMul" in ops


def test_the_runtime_step_benchmark_runs_on_a_few_rounds() -> None:
    script = str(ROOT / "benchmarks" / "runtime_step.py")
    done = run_script(script, "--rounds", "3", "--calls", "5", timeout=300)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Runtime.step / session.run with the same feeds: quadruped")
    assert [line.split()[0] for line in lines[1:]] == ["policy", "apply-only", "tick"]
    assert all(re.search(r" \d+\.\d{3}x  \(session.run ", line) for line in lines[1:])


BATCH = ROOT / "benchmarks" / "batch_throughput.py"


def test_the_batch_throughput_benchmark_runs_on_a_small_batch() -> None:
    done = run_script(str(BATCH), "--batch", "64", "--rounds", "2", "--calls", "2", timeout=300)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("quadruped, file compiled for batch 64; actor 48-512-256-128-12")
    assert re.match(r"policy step / actor alone: \d+\.\d+x \(rounds ", lines[4])
    assert lines[-1].startswith("decimation cycle (1 policy + 3 apply-only) / actor alone: ")


def test_the_batch_throughput_measure_returns_the_ratios_for_a_dynamic_file() -> None:
    result = load_script(BATCH).measure(16, 2, dynamic=True, calls=1)
    assert result["batch"] == 16 and result["dynamic"] is True
    assert set(result) >= {"actor_s", "policy_s", "apply_s", "policy_ratio", "cycle_ratio"}
    assert result["policy_ratio"] > 0 and result["cycle_ratio"] > result["policy_ratio"]


REWRITES = ROOT / "benchmarks" / "rewrites.py"


def test_the_rewrites_benchmark_runs_and_finds_the_same_bytes() -> None:
    done = run_script(str(REWRITES), "--rounds", "1", "--calls", "5", timeout=300)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("quadruped, actor 48-512-256-128-12 (ELU)")
    assert lines[1] == "same bytes on every output: True"
    assert re.match(r"nodes without rewrites +file +\d+ \(\+\d+ Identity\)", lines[2])
    assert re.match(r"with rewrites +policy step / actor alone \d+\.\d+x, apply-only", lines[-1])
