"""The self-test a file carries: recorded at compile time, replayed by Runtime and `run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler import compile_program, random_stream, save_trace
from compiler.cli._main import main
from exploy_dsl import FileContractError, Runtime, SelfTestError
from exploy_dsl.contract._self_test import SELF_TEST_KEY, decode_self_test, encode_self_test
from tests._support import EXAMPLES, Compiled

QUADRUPED = str(EXAMPLES / "quadruped.py")


def with_self_test(compiled: Compiled, ticks: int = 24) -> onnx.ModelProto:
    program = compiled.program_file.program
    stream = random_stream(program, ticks, seed=3, mean_episode=10)
    return compile_program(program, compiled.actor.model, self_test=stream)


def set_metadata(model: onnx.ModelProto, key: str, value: str) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    (prop,) = [p for p in copy.metadata_props if p.key == key]
    prop.value = value
    return copy


@pytest.mark.parametrize("name", ["quadruped", "tutorial"])
def test_a_file_with_a_self_test_replays_it_and_leaves_the_runtime_as_it_was(
    compiled: dict[str, Compiled], name: str
) -> None:
    model = with_self_test(compiled[name])
    runtime = Runtime(model)
    runtime.step({w.name: np.zeros(w.shape, w.np_dtype) for w in runtime.contract.inputs})
    tick, memory = runtime.tick, {k: v.copy() for k, v in runtime.memory.items()}

    report = runtime.self_test()

    assert (report.ticks, report.first_tick, report.max_abs_diff) == (24, 0, 0.0)
    assert str(report).startswith("self-test ok: 24 ticks (random (seed 3), first call k=0)")
    assert runtime.tick == tick
    assert all(np.array_equal(runtime.memory[k], v) for k, v in memory.items())


def test_the_record_holds_every_input_and_output_with_its_resets(
    compiled: dict[str, Compiled],
) -> None:
    program = compiled["quadruped"].program_file.program
    stream = random_stream(program, 24, seed=3, mean_episode=10)
    model = compile_program(program, compiled["quadruped"].actor.model, self_test=stream)
    text = {p.key: p.value for p in model.metadata_props}[SELF_TEST_KEY]
    record = decode_self_test(text, "file")

    assert record.ticks == 24 and np.array_equal(record.reset, stream.reset)
    assert stream.episodes > 1  # the replay must reset memory as the record says
    for name, values in stream.inputs.items():
        assert np.array_equal(record.inputs[name], values)
    runtime = Runtime(compiled["quadruped"].model)
    for t in range(stream.ticks):
        if stream.reset[t]:
            runtime.reset()
        outputs = runtime.step(stream.at(t))
        assert set(record.outputs) == set(outputs)
        for name, value in outputs.items():
            assert np.array_equal(record.outputs[name][t], value), (t, name)
    assert encode_self_test(record) == text  # stable: the same record, the same bytes


def test_the_self_test_changes_nothing_else_and_compiles_to_the_same_bytes(
    compiled: dict[str, Compiled],
) -> None:
    first, second = with_self_test(compiled["tutorial"]), with_self_test(compiled["tutorial"])
    assert first.SerializeToString(deterministic=True) == second.SerializeToString(
        deterministic=True
    )
    without = [p for p in first.metadata_props if p.key != SELF_TEST_KEY]
    assert [(p.key, p.value) for p in without] == [
        (p.key, p.value) for p in compiled["tutorial"].model.metadata_props
    ]
    assert first.graph == compiled["tutorial"].model.graph


def test_outputs_that_differ_from_the_record_refuse_to_start(
    compiled: dict[str, Compiled],
) -> None:
    model = with_self_test(compiled["quadruped"])
    text = {p.key: p.value for p in model.metadata_props}[SELF_TEST_KEY]
    record = decode_self_test(text, "file")
    outputs = dict(record.outputs)
    effort = outputs["output.joint_targets.joint_pos.effort"].copy()
    effort[5, 0, 4] += 0.01  # what another engine computing FR_thigh differently would give
    outputs["output.joint_targets.joint_pos.effort"] = effort
    changed = type(record)(
        record.source, record.first_tick, record.reset, record.inputs, outputs, 1e-4, 1e-4
    )
    broken = set_metadata(model, SELF_TEST_KEY, encode_self_test(changed))

    with pytest.raises(
        SelfTestError,
        match=r"failed at tick 5 \(ctx.step_count \d+, (policy|apply-only) step\): "
        r"output.joint_targets.joint_pos.effort\[4\] = FR_thigh is .* but the file recorded .* "
        r"do not start the robot",
    ):
        Runtime(broken).self_test()
    assert Runtime(broken).self_test(atol=0.1).ticks == 24  # a looser tolerance, on purpose


def test_a_file_without_a_self_test_or_with_a_damaged_one_is_refused(
    compiled: dict[str, Compiled],
) -> None:
    with pytest.raises(SelfTestError, match=r"carries no self-test .* --self-test random"):
        Runtime(compiled["tutorial"].model).self_test()
    model = with_self_test(compiled["tutorial"])
    with pytest.raises(FileContractError, match=r"has format 7; this exploy-dsl reads format 1"):
        Runtime(set_metadata(model, SELF_TEST_KEY, '{"format": 7}')).self_test()
    text = {p.key: p.value for p in model.metadata_props}[SELF_TEST_KEY]
    cut = text.replace('"inputs": {"foo"', '"inputs": {"fooo"')
    with pytest.raises(FileContractError, match=r"self-test's inputs \['bar_baz_group.bar'"):
        Runtime(set_metadata(model, SELF_TEST_KEY, cut)).self_test()


def test_compile_and_run_self_test_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    trace = tmp_path / "inputs.npz"
    save_trace(random_stream(compiled["quadruped"].program_file.program, 40, seed=1), trace)
    actor = tmp_path / "actor.onnx"
    onnx.save(compiled["quadruped"].actor.model, str(actor))
    out = tmp_path / "q.onnx"
    args = ["compile", QUADRUPED, "--actor", str(actor), "-o", str(out)]
    assert main([*args, "--self-test", str(trace), "--self-test-ticks", "16"]) == 0
    capsys.readouterr()
    assert (
        decode_self_test(
            {p.key: p.value for p in onnx.load(str(out)).metadata_props}[SELF_TEST_KEY], "f"
        ).source
        == "trace 'inputs.npz'"
    )

    assert main(["run", str(out), "--self-test", "--ticks", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("self-test ok: 16 ticks (trace 'inputs.npz', first call k=0)")

    assert main(["run", str(compiled["quadruped"].path), "--self-test"]) == 2
    assert "carries no self-test" in capsys.readouterr().err
    assert main([*args, "--self-test", "random", "--self-test-ticks", "0"]) == 2
    assert "--self-test-ticks must be 1 to 200, got 0" in capsys.readouterr().err
    assert main([*args[:-1], str(trace), "--self-test", str(trace)]) == 2
    assert "is the same file as the --self-test trace" in capsys.readouterr().err
