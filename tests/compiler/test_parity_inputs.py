"""Input streams of the parity check: random ones inside declared ranges, recorded traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler import (
    InputStream,
    check_parity,
    compile_program,
    load_trace,
    random_stream,
    save_trace,
)
from compiler.cli._main import main
from compiler.cli._program_file import ProgramFile
from exploy_dsl import Program, RuntimeInputError, TraceFileError, WriteError, op
from tests._support import EXAMPLES, Compiled, mlp_actor

QUADRUPED = str(EXAMPLES / "quadruped.py")


def mixed_program() -> Program:
    """A program with every kind of input: ranges, a quaternion, bool and int32."""
    program = Program("mixed", decimation=3, sim_dt=0.01)
    speed = program.float_command("speed", range=(2.0, 3.0))
    go = program.boolean_command("go")
    mode = program.input("mode", 2, dtype="int32", metadata={"range": [4, 6]})
    quat = program.input("sensor.imu.body.w_Q_b", 4)
    free = program.input("free", 2)
    memory = program.memory("m", 2)
    out = program.output("out", 2)

    @program.observations
    def observations(v: Any) -> list[Any]:
        return [
            ("speed", v[speed]),
            ("mode", op.cast(v[mode], to=np.float32)),
            ("quat", v[quat]),
            ("m", v[memory]),
        ]

    @program.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {memory: op.where(v[go], actions, v[memory] * 0.5)}

    @program.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: v[memory] + v[free]}

    return program


def test_random_inputs_stay_inside_their_declared_ranges(
    example_programs: dict[str, ProgramFile],
) -> None:
    stream = random_stream(example_programs["quadruped"].program, 300, seed=1)
    command = stream.inputs["cmd.se2_velocity.base_velocity"]
    assert command.shape == (300, 1, 3) and command.dtype == np.float32
    for axis, bound in enumerate((1.0, 0.5, 1.0)):  # lin_vel_x, lin_vel_y, ang_vel_z
        values = command[:, 0, axis]
        assert values.min() >= -bound and values.max() <= bound
        assert values.max() - values.min() > bound  # spread over the range, not a point
    quat = stream.inputs["obj.robot.base.w_Q_b"]
    np.testing.assert_allclose(np.linalg.norm(quat, axis=-1), 1.0, rtol=1e-6)
    assert np.abs(stream.inputs["obj.robot.joints.pos"]).max() > 2.0  # standard normal


def test_bool_int_and_float_ranges_are_drawn_in_kind() -> None:
    stream = random_stream(mixed_program(), 200, seed=2)
    speed, go, mode = (stream.inputs[k] for k in ("cmd.float.speed", "cmd.boolean.go", "mode"))
    assert speed.dtype == np.float32 and speed.min() >= 2.0 and speed.max() <= 3.0
    assert go.dtype == np.bool_ and 0 < go.mean() < 1
    assert mode.dtype == np.int32 and set(np.unique(mode)) == {4, 5, 6}
    quat = stream.inputs["sensor.imu.body.w_Q_b"]
    np.testing.assert_allclose(np.linalg.norm(quat, axis=-1), 1.0, rtol=1e-6)


def test_a_program_with_bool_and_int_inputs_keeps_parity() -> None:
    program = mixed_program()
    actor = mlp_actor(9, 2, seed=5).model
    report = check_parity(compile_program(program, actor), program, actor, steps=60)
    assert report.ok, report.render()


def test_episode_lengths_are_seeded_and_random() -> None:
    program = mixed_program()
    a, b = random_stream(program, 300, seed=7), random_stream(program, 300, seed=7)
    np.testing.assert_array_equal(a.reset, b.reset)
    for name in a.inputs:
        np.testing.assert_array_equal(a.inputs[name], b.inputs[name])
    starts = np.flatnonzero(a.reset)
    assert starts[0] == 0 and len(starts) >= 3
    lengths = np.diff(starts)
    assert len(set(lengths.tolist())) > 1  # not one fixed period
    assert any(length % program.decimation for length in lengths)  # resets mid policy step
    other = random_stream(program, 300, seed=8)
    assert not np.array_equal(a.reset, other.reset)


def test_a_trace_round_trips_and_replays_to_the_same_report(
    tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    program = example.program_file.program
    stream = random_stream(program, 40, seed=3)
    path = save_trace(stream, tmp_path / "trace.npz")
    loaded = load_trace(path, program)
    assert loaded.source == f"trace {str(path)!r}"
    np.testing.assert_array_equal(loaded.reset, stream.reset)
    for name, values in stream.inputs.items():
        np.testing.assert_array_equal(loaded.inputs[name], values)
    replayed = check_parity(example.model, program, example.actor.model, inputs=loaded)
    direct = check_parity(example.model, program, example.actor.model, inputs=stream)
    assert replayed.ok and direct.ok
    assert [o.max_abs for o in replayed.runs[0].outputs] == [
        o.max_abs for o in direct.runs[0].outputs
    ]


def test_a_trace_may_leave_out_the_batch_axis_and_the_resets(
    tmp_path: Path, example_programs: dict[str, ProgramFile]
) -> None:
    program = example_programs["quadruped"].program
    stream = random_stream(program, 12, seed=0)
    arrays = {name: value[:, 0] for name, value in stream.inputs.items()}  # [T, n]
    np.savez(tmp_path / "robot_log.npz", **arrays)
    loaded = load_trace(tmp_path / "robot_log.npz", program)
    assert loaded.ticks == 12 and loaded.episodes == 1
    assert loaded.inputs["obj.robot.joints.pos"].shape == (12, 1, 12)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.pop("obj.robot.joints.vel"), r"missing input\(s\) \['obj.robot.joints.vel'\]"),
        (lambda a: a.update(extra=np.zeros(4)), r"unknown array\(s\) \['extra'\]"),
        (
            lambda a: a.update({"obj.robot.joints.pos": np.zeros((5, 1, 12), np.float32)}),
            r"the same leading tick axis",
        ),
        (
            lambda a: a.update({"obj.robot.base.w_Q_b": np.zeros((10, 1, 3), np.float32)}),
            r"'obj.robot.base.w_Q_b' has shape \[10, 1, 3\]; expected \[10, 1, 4\]",
        ),
        (
            lambda a: a.update({"obj.robot.joints.pos": np.zeros((10, 1, 12), np.bool_)}),
            r"'obj.robot.joints.pos' has dtype bool; the wire is float32",
        ),
        (lambda a: a.update(reset=np.zeros(10, np.int64)), r"'reset' is int64\[10\]; expected"),
    ],
)
def test_a_trace_that_does_not_fit_the_program_is_a_user_error(
    tmp_path: Path,
    example_programs: dict[str, ProgramFile],
    edit: Any,
    message: str,
) -> None:
    program = example_programs["quadruped"].program
    arrays: dict[str, Any] = dict(random_stream(program, 10).inputs)
    edit(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(TraceFileError, match=message):
        load_trace(tmp_path / "bad.npz", program)


def test_unreadable_traces_are_user_errors(tmp_path: Path) -> None:
    program = mixed_program()
    with pytest.raises(TraceFileError, match="does not exist"):
        load_trace(tmp_path / "nope.npz", program)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(TraceFileError, match=r"is not a readable \.npz file"):
        load_trace(tmp_path / "text.npz", program)
    with pytest.raises(WriteError, match=r"cannot write '.*t\.npz': folder '.*missing' does not"):
        save_trace(random_stream(program, 3), tmp_path / "missing" / "t.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.npz"]


def test_an_empty_a_truncated_or_a_npy_trace_is_a_user_error(tmp_path: Path) -> None:
    # np.load raised EOFError on an empty file and returned a bare array for a .npy one.
    program = mixed_program()
    save_trace(random_stream(program, 6), tmp_path / "whole.npz")
    data = (tmp_path / "whole.npz").read_bytes()
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with open(tmp_path / "one.npz", "wb") as handle:
        np.save(handle, np.zeros((6, 2), np.float32))
    for name in ("empty.npz", "cut.npz"):
        with pytest.raises(TraceFileError, match=r"is not a readable \.npz file"):
            load_trace(tmp_path / name, program)
    with pytest.raises(TraceFileError, match=r"holds a single array \(a \.npy file\), not an"):
        load_trace(tmp_path / "one.npz", program)


def test_int32_trace_values_beyond_int32_are_refused_not_wrapped(tmp_path: Path) -> None:
    program = mixed_program()
    arrays: dict[str, Any] = dict(random_stream(program, 4).inputs)
    arrays["mode"] = np.full((4, 1, 2), 2**40, np.int64)  # astype(int32) made it 0
    np.savez(tmp_path / "wide.npz", **arrays)
    with pytest.raises(TraceFileError, match=r"'mode' holds values outside int32 \(1099511627776"):
        load_trace(tmp_path / "wide.npz", program)


def test_a_stream_checks_its_own_lengths() -> None:
    with pytest.raises(RuntimeInputError, match="the same leading tick axis"):
        InputStream({"x": np.zeros((3, 1, 2), np.float32)}, np.zeros(4, np.bool_), "test")


def test_the_cli_records_a_trace_and_replays_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    actor = tmp_path / "actor.onnx"
    actor.write_bytes(example.actor.model.SerializeToString())
    trace = tmp_path / "trace.npz"
    common = [str(example.path), QUADRUPED, "--actor", str(actor)]
    assert main(["check", *common, "--steps", "30", "--record-trace", str(trace)]) == 0
    recorded = capsys.readouterr().out
    assert f"wrote trace {trace}" in recorded
    assert main(["check", *common, "--trace", str(trace)]) == 0
    replayed = capsys.readouterr().out
    assert f"inputs: trace {str(trace)!r}, 30 ticks" in replayed
    # The same stream: the same errors, line for line.
    table = [line for line in recorded.splitlines() if line.startswith("  ")]
    assert table == [line for line in replayed.splitlines() if line.startswith("  ")]
