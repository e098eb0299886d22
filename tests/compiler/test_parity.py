"""The parity checker passes faithful files and fails, naming the port, files with planted bugs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from compiler import ParityReport, check_parity, compile_program, load_actor, random_stream
from compiler.build._actor import Actor
from compiler.cli._main import main
from exploy_dsl import ActorError, FileContractError, Program, UsageError
from tests._support import EXAMPLES, Compiled, mlp_actor
from tests.compiler import _mutations as plant

QUADRUPED = str(EXAMPLES / "quadruped.py")
TUTORIAL = str(EXAMPLES / "tutorial.py")
EFFORT = "output.joint_targets.joint_pos.effort"
POS = "output.joint_targets.joint_pos.pos"
VEL = "output.joint_targets.joint_pos.vel"


def tiny_program(
    *,
    decimation: int = 2,
    init: float = 0.0,
    scale: float = 2.0,
    x_name: str = "x",
    metadata: dict[str, Any] | None = None,
) -> Program:
    """obs = [x, m]; m <- scale * actions; y = m + 1. Variants differ in one declared thing."""
    program = Program("tiny", decimation=decimation, sim_dt=0.01, metadata=metadata)
    x = program.input(x_name, 3)
    m = program.memory("m", 2, init=init)
    y = program.output("y", 2)

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [("x", v[x]), ("m", v[m])]

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {m: actions * scale}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {y: v[m] + 1.0}

    return program


@pytest.fixture(scope="module")
def tiny_file() -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(file compiled from tiny_program(), its ONNX actor)."""
    actor = mlp_actor(5, 2, seed=3).model
    return compile_program(tiny_program(), actor), actor


def run_check(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    example: Compiled,
    model: onnx.ModelProto,
    *extra: str,
) -> tuple[int, str]:
    """``exploy-dsl check`` on ``model`` (written to tmp) with the example's ONNX actor."""
    file = tmp_path / "planted.onnx"
    actor = tmp_path / "actor.onnx"
    onnx.save(model, str(file))
    onnx.save(example.actor.model, str(actor))
    program = str(EXAMPLES / f"{example.name}.py")
    code = main(["check", str(file), program, "--actor", str(actor), *extra])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def first_line(out: str, convention: int) -> str:
    """The report's "first divergence" line of the run starting at ``convention``."""
    block = out.split(f"parity, first call k={convention}")[1]
    return next(line for line in block.splitlines() if "first divergence" in line)


# -- faithful files pass ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tutorial", "quadruped"])
def test_a_faithful_example_passes_300_ticks_with_resets_both_conventions(
    compiled: dict[str, Compiled], name: str
) -> None:
    example = compiled[name]
    report = check_parity(example.path, example.program_file.program, example.actor.model)
    assert report.ok, report.render()
    assert report.ticks == 300
    assert report.stream.episodes >= 3
    assert [run.first_tick for run in report.runs] == [0, 1]
    assert all(
        run.ok and len(run.outputs) == len(example.model.graph.output) for run in report.runs
    )
    assert report.render().endswith("result: OK, parity holds\n")


def test_resets_bring_back_the_initial_values_and_the_first_tick(
    compiled: dict[str, Compiled],
) -> None:
    # Tick 0 of every episode is a policy step (k=0) or apply-only (k=1), on both sides.
    example = compiled["quadruped"]
    report = check_parity(
        example.model, example.program_file.program, example.actor.model, keep_history=True
    )
    run = report.runs[1]
    reference, compiled_values = run.history["output.joint_targets.joint_pos.pos"]
    starts = np.flatnonzero(report.stream.reset)
    assert len(starts) >= 3
    q0 = example.program_file.module.DEFAULT_POS
    for tick in starts:  # first call k=1: apply-only, so the default pose is commanded
        np.testing.assert_allclose(reference[tick], q0)
        np.testing.assert_allclose(compiled_values[tick], q0)


def test_the_check_cli_passes_a_faithful_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["tutorial"]
    code, out = run_check(capsys, tmp_path, example, example.model)
    assert code == 0, out
    assert "parity, first call k=0 (our runtime): ok" in out
    assert "parity, first call k=1 (exploy's C++ controller): ok" in out


# -- planted bugs fail, and the report names the port -------------------------------------------


def test_a_changed_action_scale_is_found_at_the_first_policy_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    code, out = run_check(
        capsys, tmp_path, example, plant.change_action_constant(example.model, 0.25, 0.26)
    )
    assert code == 1
    line = first_line(out, 0)
    assert f"tick 0 (episode 1, ctx.step_count 0, policy step), {POS}[" in line
    assert f"also out of tolerance: {EFFORT}, memory.joint_pos.processed_actions.out" in line
    # With exploy's convention the first policy step is the fourth call (k=4).
    assert "tick 3 (episode 1, ctx.step_count 4, policy step)" in first_line(out, 1)
    assert "file against program: ok" in out
    # Even with an ONNX actor: fed the file's own actions, the stages alone diverge.
    assert "  stages fed the file's own actions: FAIL, first divergence: tick 0 " in out
    assert "  actor on the same observations: ok (max abs " in out
    assert out.splitlines()[-1].endswith(
        "fed the file's own actions, the program's stages still diverge from the file (first "
        f"call k=0 (our runtime), tick 0 on {POS}), so the difference lies in the file's "
        "stages or stitching"
    )
    assert out.splitlines()[-1].startswith("result: FAIL")


def test_two_swapped_outputs_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    code, out = run_check(capsys, tmp_path, example, plant.swap_outputs(example.model, POS, VEL))
    assert code == 1
    for convention in (0, 1):
        line = first_line(out, convention)
        assert f"tick 0 (episode 1, ctx.step_count {convention}" in line
        assert f"{POS}[" in line and f"also out of tolerance: {VEL}" in line
    assert f"{EFFORT}" not in first_line(out, 0)


def test_a_wrong_decimation_in_the_mod_is_found_on_the_first_extra_policy_step(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    code, out = run_check(capsys, tmp_path, example, plant.set_mod_divisor(example.model, 3))
    assert code == 1
    # k=3: the file runs the policy, the program does not; actions is the first output.
    assert "tick 3 (episode 1, ctx.step_count 3, apply-only step), actions[" in first_line(out, 0)
    assert "tick 2 (episode 1, ctx.step_count 3, apply-only step), actions[" in first_line(out, 1)
    # The metadata still says 4: only running the file finds this.
    assert "file against program: ok" in out


def test_a_changed_initial_value_is_reported_naming_the_memory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    wire = "memory.joint_pos.processed_actions.in"
    code, out = run_check(
        capsys, tmp_path, example, plant.set_initial_value(example.model, wire, 1, 0.9)
    )
    assert code == 1
    assert (
        "memory initial value 'joint_pos.processed_actions': the initializer "
        "'memory.joint_pos.processed_actions.in' differs from the program's init at 1 "
        "element(s): FL_thigh (index 1): file 0.9, program 0.8"
    ) in out
    # Our convention overwrites the memory before it is used; exploy's applies it first.
    assert "parity, first call k=0 (our runtime): ok" in out
    assert f"tick 0 (episode 1, ctx.step_count 1, apply-only step), {POS}[1] = FL_thigh: " in (
        first_line(out, 1)
    )


def test_a_broken_memory_wire_is_found_on_that_memory(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    broken = plant.feed_memory_from(example.model, "memory.actions.out", "memory.actions.in")
    code, out = run_check(capsys, tmp_path, example, broken)
    assert code == 1
    line = first_line(out, 0)
    assert "tick 0 (episode 1, ctx.step_count 0, policy step), memory.actions.out[" in line
    assert "also out of tolerance" not in line
    # The lost actions show up in the observation from the next policy step on.
    block = out.split("parity, first call k=0")[1].split("parity, first call k=1")[0]
    (obs_row,) = [line for line in block.splitlines() if line.startswith("  obs ")]
    assert "obs[3" in obs_row and "= actions[" in obs_row and "FAIL on" in obs_row


def test_swapped_memory_outputs_in_the_tutorial_are_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["tutorial"]
    swapped = plant.swap_outputs(
        example.model, "memory.actions.out", "memory.processed_actions.out"
    )
    code, out = run_check(capsys, tmp_path, example, swapped)
    assert code == 1
    assert "policy step), memory.actions.out[" in first_line(out, 0)


# -- the file against the program ---------------------------------------------------------------


def test_a_file_from_another_decimation_is_reported(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = tiny_file
    report = check_parity(model, tiny_program(decimation=3), actor, steps=40)
    assert not report.ok
    assert [str(m) for m in report.static] == ["decimation 'decimation': file 2, program 3"]
    first = report.runs[0].first
    assert first is not None and (first.tick, first.output) == (2, "actions")


def test_a_program_constant_the_file_lacks_fails_parity_only(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = tiny_file
    report = check_parity(model, tiny_program(scale=3.0), actor, steps=20)
    assert report.static == ()
    first = report.runs[0].first
    assert first is not None
    assert (first.tick, first.output, first.element) == (0, "y", first.element)
    assert first.element.startswith("y[") and first.also == ("memory.m.out",)


def test_metadata_and_wire_differences_are_listed(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = tiny_file
    report = check_parity(model, tiny_program(metadata={"env_name": "Env"}), actor, steps=8)
    assert [(m.what, m.name) for m in report.static] == [("metadata", "env_name")]
    assert "missing in the file; program: Env" in report.render()
    other = check_parity(model, tiny_program(x_name="x2"), actor, steps=8)
    assert [(m.what, m.name, m.detail) for m in other.static] == [
        ("input", "x2", "declared by the program, missing in the file"),
        ("input", "x", "in the file, not declared by the program"),
    ]
    assert all(run.skipped and "inputs differ" in run.skipped for run in other.runs)
    assert "not run: the file's inputs differ from the program's (x2, x)" in other.render()


@pytest.mark.parametrize(
    ("declared", "stored"),
    [(1.0, "true"), (1, "1.0"), ([0.0, 1.0], "[false, true]"), ({"on": 0}, '{"on": false}')],
)
def test_a_metadata_value_of_another_json_type_is_reported(declared: Any, stored: str) -> None:
    # Python's == takes true for 1 and 1 for 1.0; exploy's JSON reader does not.
    program, actor = tiny_program(metadata={"version": declared}), mlp_actor(5, 2, seed=3).model
    model = compile_program(program, actor)
    (entry,) = [p for p in model.metadata_props if p.key == "version"]
    entry.value = stored
    report = check_parity(model, program, actor, steps=8)
    assert [(m.what, m.name) for m in report.static] == [("metadata", "version")]


def test_a_stamped_file_for_an_older_onnxruntime_still_matches_its_program() -> None:
    # The export date and the target's lower opset are not differences from the program.
    program, actor = tiny_program(), mlp_actor(5, 2, seed=3).model
    model = compile_program(program, actor, stamp=True, target="onnxruntime==1.16")
    report = check_parity(model, program, actor, steps=30)
    assert report.ok, report.render()


def test_an_initial_value_differing_only_in_the_program_is_reported(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = tiny_file
    report = check_parity(model, tiny_program(init=0.5), actor, steps=8)
    (mismatch,) = [m for m in report.static if m.what == "memory initial value"]
    assert mismatch.name == "m"
    assert mismatch.detail.endswith(
        "differs from the program's init at 2 element(s): index 0: file 0, program 0.5, "
        "index 1: file 0, program 0.5"
    )


@pytest.mark.parametrize("seed", [-1, "a", 1.5])
def test_a_seed_numpy_refuses_is_a_usage_error(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto], seed: object
) -> None:
    model, actor = tiny_file
    with pytest.raises(UsageError, match=r"^the seed must be an int >= 0, got "):
        check_parity(model, tiny_program(), actor, steps=4, seed=seed)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match=r"^the seed must be an int >= 0"):
        random_stream(tiny_program(), 4, seed=seed)  # type: ignore[arg-type]


# -- the actor alone ----------------------------------------------------------------------------


def test_an_onnx_actor_is_not_compared_alone_and_the_report_says_why(
    compiled: dict[str, Compiled],
) -> None:
    example = compiled["tutorial"]
    report = check_parity(example.model, example.program_file.program, example.actor.model, steps=8)
    assert report.actor.status == "skipped"
    assert "actor alone: skipped: the actor is ONNX (ModelProto): there is no torch module" in (
        report.render()
    )


@pytest.fixture(scope="module")
def tutorial_torch() -> tuple[Program, Actor]:
    """The tutorial program and its default torch actor, exported once (TorchScript, fast)."""
    pytest.importorskip("torch")
    from compiler.cli._program_file import load_program_file

    loaded = load_program_file(TUTORIAL)
    module = loaded.default_actor()
    return loaded.program, load_actor(module, n_obs=10, exporter="torchscript")


def test_a_faithful_export_passes_alone_and_blames_the_stitching(
    tutorial_torch: tuple[Program, Actor],
) -> None:
    program, actor = tutorial_torch
    model = compile_program(program, actor)
    good = check_parity(model, program, actor, steps=40)
    assert good.ok and good.actor.status == "ok", good.render()
    assert good.actor.errors is not None and good.actor.errors.max_abs < 1e-5
    broken = check_parity(plant.swap_outputs(model, "out", "memory.actions.out"), program, actor)
    assert broken.actor.status == "ok" and not broken.ok
    assert broken.verdict().endswith(
        "the program's stages still diverge from the file (first call k=0 (our runtime), tick 0 "
        "on out), so the difference lies in the file's stages or stitching"
    )


def test_an_exporter_bug_is_told_apart_from_a_stitching_bug(
    tutorial_torch: tuple[Program, Actor],
) -> None:
    program, actor = tutorial_torch
    bad = dataclasses.replace(actor, model=plant.scale_initializer(actor.model, 1.5))
    report = check_parity(compile_program(program, bad), program, bad, steps=40)
    assert report.actor.status == "fail"
    text = report.render()
    assert "actor alone: FAIL: exported ONNX (torch module Sequential (torchscript export))" in text
    assert "first out of tolerance: sample 0, actions[" in text
    assert "an exporter problem" in report.verdict()


# -- user errors --------------------------------------------------------------------------------


def test_user_errors_are_our_errors(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto], tmp_path: Path
) -> None:
    model, actor = tiny_file
    with pytest.raises(FileContractError, match="does not exist"):
        check_parity(tmp_path / "missing.onnx", tiny_program(), actor)
    with pytest.raises(UsageError, match=r"steps must be an int >= 1, got 0\. Fix: e\.g\. steps"):
        check_parity(model, tiny_program(), actor, steps=0)
    with pytest.raises(UsageError, match=r"atol must be a finite number >= 0, got -1\. Fix"):
        check_parity(model, tiny_program(), actor, atol=-1)
    with pytest.raises(UsageError, match=r"rtol must be a finite number >= 0, got inf"):
        check_parity(model, tiny_program(), actor, rtol=float("inf"))
    with pytest.raises(UsageError, match=r"each of first_ticks must be an int >= 0, got -1"):
        check_parity(model, tiny_program(), actor, first_ticks=(-1,))
    with pytest.raises(UsageError, match=r"first_ticks must name at least one start tick"):
        check_parity(model, tiny_program(), actor, first_ticks=())
    with pytest.raises(ActorError, match="observation size mismatch"):
        check_parity(model, tiny_program(), mlp_actor(7, 2).model)


def test_any_start_convention_can_be_checked(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = tiny_file
    report = check_parity(model, tiny_program(), actor, steps=12, first_ticks=(3,))
    assert report.ok and [run.label for run in report.runs] == ["first call k=3"]


def test_an_input_stream_can_be_given_and_cut(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    model, actor = tiny_file
    stream = random_stream(tiny_program(), 50, seed=4)
    report: ParityReport = check_parity(model, tiny_program(), actor, inputs=stream, steps=20)
    assert report.ok and report.ticks == 20 and report.stream.source == "random (seed 4)"


def test_the_tolerance_is_atol_plus_rtol_times_the_reference(
    tiny_file: tuple[onnx.ModelProto, onnx.ModelProto],
) -> None:
    # One policy step: m = 2.0001 a against 2 a differs by 5e-5 relative, 4.5e-5 absolute,
    # and y = m + 1 (about 0.19 here) by 2.1e-4 relative.
    model, actor = tiny_file
    changed = tiny_program(scale=2.0001)
    report = check_parity(model, changed, actor, steps=1)
    assert not report.ok
    assert [o.name for o in report.runs[0].outputs if not o.ok] == ["y", "memory.m.out"]
    assert check_parity(model, changed, actor, steps=1, rtol=1e-3).ok
    assert check_parity(model, changed, actor, steps=1, atol=1e-4, rtol=0).ok
    assert not check_parity(model, changed, actor, steps=1, atol=1e-5, rtol=1e-4).ok


def test_checking_with_another_actor_than_the_file_was_compiled_with_says_so() -> None:
    from compiler.cli._program_file import load_program_file
    from tests._support import EXAMPLES, mlp_actor

    program = load_program_file(EXAMPLES / "quadruped.py").program
    compiled_with, other = mlp_actor(48, 12, seed=1).model, mlp_actor(48, 12, seed=2).model
    model = compile_program(program, compiled_with)
    same = check_parity(model, program, compiled_with, steps=12)
    assert same.ok and same.notes == ()
    wrong = check_parity(model, program, other, steps=12)
    assert not wrong.ok
    assert "is not the one the file was compiled with" in wrong.render()
    assert "pass the actor the file was compiled with: --actor PATH" in wrong.notes[0]
