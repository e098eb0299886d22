"""exploy_dsl.sim drives the project's robots with the compiled examples; parity along the run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler import check_parity, load_trace
from compiler.cli._main import main
from exploy_dsl.sim import simulate
from tests._support import EXAMPLES, Compiled

QUADRUPED_XML = EXAMPLES / "robots" / "quadruped.xml"
TUTORIAL_XML = EXAMPLES / "robots" / "tutorial.xml"
ROBOTS = {"quadruped": QUADRUPED_XML, "tutorial": TUTORIAL_XML}


def test_the_compiled_quadruped_stays_up_for_5_simulated_seconds(
    compiled: dict[str, Compiled],
) -> None:
    result = simulate(
        compiled["quadruped"].path,
        QUADRUPED_XML,
        seconds=5.0,
        commands={"base_velocity": [0.5, 0, 0]},
    )

    assert result.ok, result.summary()
    assert result.ticks == result.planned_ticks == 1000 and result.seconds == pytest.approx(5.0)
    assert result.base_pos[-1, 2] > 0.25 and math.degrees(result.base_tilt.max()) < 10.0
    assert result.start == "keyframe 'home' (the model's first)"
    assert np.array_equal(result.commands["cmd.se2_velocity.base_velocity"], [[0.5, 0.0, 0.0]])
    summary = result.summary()
    assert "base 'base': stayed up; height 0.2" in summary
    assert (
        "tracking cmd.se2_velocity.base_velocity (commanded -> achieved mean): lin_vel_x +0.50"
        in summary
    )
    assert summary.endswith("verdict: stayed up, finite\n")


def test_the_file_stands_the_quadruped_up_from_a_crouch_with_its_own_pd(
    compiled: dict[str, Compiled],
) -> None:
    result = simulate(compiled["quadruped"].path, QUADRUPED_XML, seconds=2.0, keyframe="crouch")
    assert result.ok, result.summary()
    assert result.base_pos[0, 2] < 0.14 and result.base_pos[-1, 2] > 0.25
    # The file commands efforts only (stiffness 0): its in-graph PD towards the default pose.
    assert np.abs(result.joint_pos[-1] - result.joint_targets[-1]).max() < 0.3


@pytest.mark.parametrize(("first_tick", "settle"), [(0, 0), (1, 8)])
@pytest.mark.parametrize("name", ["quadruped", "tutorial"])
def test_parity_holds_along_a_recorded_sim_trajectory(
    compiled: dict[str, Compiled], tmp_path: Path, name: str, first_tick: int, settle: int
) -> None:
    example = compiled[name]
    result = simulate(
        example.path, ROBOTS[name], seconds=1.5, first_tick=first_tick, settle_physics=settle
    )
    assert result.stopped is None and result.ticks == 300
    trace = tmp_path / "sim.npz"
    result.save_trace(trace)
    program = example.program_file.program

    report = check_parity(
        example.path, program, example.actor.model, inputs=load_trace(trace, program)
    )

    assert report.ok, report.render()
    assert report.stream.ticks == 300 and report.stream.episodes == 1


def test_sim_record_trace_plot_then_check_and_a_self_test_from_the_sim(
    compiled: dict[str, Compiled], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = compiled["quadruped"]
    trace, plot = tmp_path / "sim.npz", tmp_path / "sim.png"
    args = ["sim", str(example.path), str(QUADRUPED_XML), "--seconds", "1"]
    code = main(
        [
            *args,
            "--command",
            "base_velocity=0.3,0,0.2",
            "--record-trace",
            str(trace),
            "--plot",
            str(plot),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert err == ""  # no terminal and a short run: no progress bar
    assert "cmd.se2_velocity.base_velocity = [0.3, 0, 0.2] (command)" in out
    assert f"wrote {trace} (200 ticks; replay it with exploy-dsl check)" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    actor = tmp_path / "actor.onnx"
    onnx.save(example.actor.model, str(actor))
    program = str(EXAMPLES / "quadruped.py")
    assert (
        main(["check", str(example.path), program, "--actor", str(actor), "--trace", str(trace)])
        == 0
    )
    assert "result: OK, parity holds" in capsys.readouterr().out

    with_test = tmp_path / "q.onnx"
    compile_args = ["compile", program, "--actor", str(actor), "-o", str(with_test)]
    assert main([*compile_args, "--self-test", str(trace)]) == 0
    assert main(["run", str(with_test), "--self-test", "--ticks", "1"]) == 0
    assert "self-test ok: 24 ticks (trace 'sim.npz', first call k=0)" in capsys.readouterr().out


def test_a_long_run_shows_a_progress_bar_on_stderr(
    compiled: dict[str, Compiled], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["sim", str(compiled["tutorial"].path), str(TUTORIAL_XML), "--seconds", "10.5"]) == 0
    )
    err = capsys.readouterr().err
    assert "exploy-dsl sim" in err and "2100/2100" in err


def test_importing_exploy_dsl_and_its_sim_package_does_not_import_mujoco() -> None:
    code = (
        "import sys, exploy_dsl, exploy_dsl.sim, compiler.cli; assert 'mujoco' not in sys.modules"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
