"""Stage tracing: reads and writes, operators on Vars, onnxscript, where errors point."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnxscript import FLOAT, script
from onnxscript import opset20 as os_op

import exploy_dsl
from exploy_dsl import DeclarationError, Program, StageError, TracedProgram, call_script, op, trace
from tests._support import run, session

THIS_FILE = Path(__file__).resolve()


def marker_line(tag: str) -> int:
    """The line of this file that ends with the comment ``# line: <tag>``."""
    wanted = f"# line: {tag}"
    lines = THIS_FILE.read_text().splitlines()
    hits = [i for i, text in enumerate(lines, start=1) if text.rstrip().endswith(wanted)]
    assert len(hits) == 1, f"marker {wanted!r} found {len(hits)} times"
    return hits[0]


def at_this_file(line: int) -> str:
    """A regex for ``<this file>:<line>``, relative or absolute as the message shows it."""
    shown = {os.path.relpath(THIS_FILE), str(THIS_FILE)}
    return "(" + "|".join(re.escape(f"{path}:{line}") for path in shown) + ")"


class Ports:
    """A small complete program; each test replaces the stage it is about."""

    def __init__(self) -> None:
        self.program = Program("p", decimation=2, sim_dt=0.01)
        self.pos = self.program.input("obj.robot.joints.pos", 2)
        self.wide = self.program.input("wide", 3)
        self.count = self.program.input("count", 2, dtype="int32")
        self.flag = self.program.input("flag", 1, dtype="bool")
        self.last = self.program.memory("actions", 2)
        self.target = self.program.memory("target", 2, init=[0.5, -0.5])
        self.out = self.program.output("out", 2)

    def stages(
        self,
        observations: Callable[..., Any] | None = None,
        process: Callable[..., Any] | None = None,
        apply: Callable[..., Any] | None = None,
    ) -> Program:
        """Register the given stages, or plain valid ones for those left out."""
        self.program.observations(
            observations or (lambda v: [("pos", v[self.pos]), ("last", v[self.last])])
        )
        self.program.process_actions(n_actions=2)(
            process or (lambda v, a: {self.last: a, self.target: a})
        )
        self.program.apply_actions(apply or (lambda v: {self.out: v[self.target]}))
        return self.program


@pytest.fixture
def ports() -> Ports:
    return Ports()


def run_stage(graph: exploy_dsl.StageGraph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return run(session(graph.model), {name: feeds[name] for name in graph.reads})


# -- a valid program ----------------------------------------------------------------------------


def test_each_stage_becomes_a_standalone_graph_over_what_it_reads_and_writes(ports: Ports) -> None:
    traced = trace(ports.stages())
    assert isinstance(traced, TracedProgram)
    assert traced.stage("observations").reads == ("obj.robot.joints.pos", "memory.actions")
    assert traced.stage("observations").writes == ("obs",)
    assert traced.stage("process_actions").reads == ("actions",)
    assert traced.stage("process_actions").writes == ("memory.actions", "memory.target")
    assert traced.stage("apply_actions").reads == ("memory.target",)
    assert traced.stage("apply_actions").writes == ("out",)
    assert (traced.n_obs, traced.n_actions) == (4, 2)
    assert [(t.name, t.start, t.size) for t in traced.obs_terms] == [("pos", 0, 2), ("last", 2, 2)]
    feeds = {"obj.robot.joints.pos": np.float32([[1, 2]]), "memory.actions": np.float32([[3, 4]])}
    np.testing.assert_array_equal(
        run_stage(traced.stage("observations"), feeds)["obs"], [[1, 2, 3, 4]]
    )


def test_stages_may_read_ports_by_name_or_memory_by_wire_name(ports: Ports) -> None:
    program = ports.stages(
        observations=lambda v: [("a", v["obj.robot.joints.pos"]), ("b", v["memory.target"])],
        apply=lambda v: {"out": v["target"]},
    )
    traced = trace(program)
    assert traced.stage("observations").reads == ("obj.robot.joints.pos", "memory.target")
    assert traced.stage("apply_actions").writes == ("out",)


def test_apply_actions_may_write_memory_and_constants_are_broadcast(ports: Ports) -> None:
    traced = trace(ports.stages(apply=lambda v: {ports.out: 1.5, ports.target: [0.0, 1.0]}))
    result = run_stage(traced.stage("apply_actions"), {})
    np.testing.assert_array_equal(result["out"], np.full((1, 2), 1.5, np.float32))
    # memory writes leave the stage graph as memory.<name>.out, so they never clash with reads
    np.testing.assert_array_equal(result["memory.target.out"], [[0.0, 1.0]])


def test_a_stage_may_read_and_write_the_same_memory(ports: Ports) -> None:
    traced = trace(
        ports.stages(
            apply=lambda v: {ports.out: v[ports.target], ports.target: v[ports.target] * 0.5}
        )
    )
    assert traced.stage("apply_actions").reads == ("memory.target",)
    assert traced.stage("apply_actions").writes == ("out", "memory.target")
    result = run_stage(traced.stage("apply_actions"), {"memory.target": np.float32([[2.0, 4.0]])})
    np.testing.assert_array_equal(result["out"], [[2.0, 4.0]])
    np.testing.assert_array_equal(result["memory.target.out"], [[1.0, 2.0]])


# -- reading what was not declared --------------------------------------------------------------


def test_reading_an_undeclared_name_names_it_and_suggests_close_matches(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("pos", v["obj.robot.joints.poss"])]  # line: undeclared read

    program = ports.stages(observations=observations)
    line = marker_line("undeclared read")
    with pytest.raises(
        StageError,
        match=(
            r"^observations stage 'observations' at "
            + at_this_file(line)
            + r".*'obj.robot.joints.poss' is not declared in program 'p'\. "
            r"Did you mean 'obj.robot.joints.pos'\?.*Fix: declare it"
        ),
    ):
        trace(program)


def test_reading_an_undeclared_memory_suggests_the_memory(ports: Ports) -> None:
    program = ports.stages(apply=lambda v: {ports.out: v["memory.targte"]})
    with pytest.raises(StageError, match=r"'memory.targte' is not declared.*Did you mean 'target'"):
        trace(program)


def test_reading_an_input_under_the_memory_prefix_is_refused(ports: Ports) -> None:
    program = ports.stages(apply=lambda v: {ports.out: v["memory.wide"]})
    with pytest.raises(StageError, match=r"'memory.wide' is not declared in program 'p'"):
        trace(program)


def test_reading_an_output_is_refused(ports: Ports) -> None:
    program = ports.stages(apply=lambda v: {ports.out: v[ports.out]})
    with pytest.raises(StageError, match=r"reads output 'out'; outputs are write-only.*memory"):
        trace(program)


def test_a_port_of_another_program_is_refused(ports: Ports) -> None:
    stranger = Program("other", decimation=1, sim_dt=0.01).input("obj.robot.joints.pos", 2)
    program = ports.stages(observations=lambda v: [("pos", v[stranger])])
    with pytest.raises(StageError, match=r"is not a port of program 'p' \(declared on another"):
        trace(program)


def test_an_index_that_is_not_a_port_is_refused(ports: Ports) -> None:
    program = ports.stages(observations=lambda v: [("pos", v[3])])
    with pytest.raises(StageError, match=r"key 3 of type int is not a port"):
        trace(program)


# -- shapes and dtypes --------------------------------------------------------------------------


def test_a_shape_mismatch_names_the_stage_and_the_users_line(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        both = v[ports.pos] + v[ports.wide]  # line: shape mismatch
        return [("both", both)]

    program = ports.stages(observations=observations)
    line = marker_line("shape mismatch")
    with pytest.raises(StageError, match=r"^observations stage 'observations' failed at ") as info:
        trace(program)
    message = str(info.value)
    assert re.search(at_this_file(line), message), message
    assert "both = v[ports.pos] + v[ports.wide]" in message
    assert re.search(r"Add.*\[1\]\[2\].*\[1\]\[3\]", message), message


def test_a_shape_mismatch_in_a_helper_points_at_the_helper_line(ports: Ports) -> None:
    def helper(x: Any, y: Any) -> Any:
        return op.concat([x, y], axis=0)  # line: helper mismatch

    def apply(v: Any) -> dict[Any, Any]:
        return {ports.out: helper(v[ports.pos], v[ports.wide])}

    program = ports.stages(apply=apply)
    with pytest.raises(StageError, match=r"^apply_actions stage 'apply' failed at ") as info:
        trace(program)
    assert re.search(at_this_file(marker_line("helper mismatch")), str(info.value))


def test_writing_a_value_of_the_wrong_shape_names_port_and_shapes(ports: Ports) -> None:
    def apply(v: Any) -> dict[Any, Any]:
        return {ports.out: v[ports.wide]}

    program = ports.stages(apply=apply)
    line = apply.__code__.co_firstlineno
    with pytest.raises(
        StageError,
        match=(
            r"apply_actions stage 'apply' \(" + at_this_file(line) + r"\) write to 'out': "
            r"value has shape \[1, 3\], the output is declared \[1, 2\]"
        ),
    ):
        trace(program)


def test_writing_a_constant_that_does_not_fit_is_refused(ports: Ports) -> None:
    program = ports.stages(apply=lambda v: {ports.out: [1.0, 2.0, 3.0]})
    with pytest.raises(StageError, match=r"constant of shape \[3\] does not fit \[1, 2\]"):
        trace(program)


def test_writing_the_wrong_dtype_tells_how_to_cast(ports: Ports) -> None:
    program = ports.stages(process=lambda v, a: {ports.last: v[ports.count]})
    with pytest.raises(
        StageError, match=r"write to 'actions': value has dtype int32, the memory is float32\. "
    ):
        trace(program)


def test_an_observation_term_must_be_float32(ports: Ports) -> None:
    program = ports.stages(observations=lambda v: [("count", v[ports.count])])
    with pytest.raises(StageError, match=r"term 'count' has dtype int32; observation terms are"):
        trace(program)


# -- writes -------------------------------------------------------------------------------------


def test_writing_an_undeclared_name_names_it(ports: Ports) -> None:
    program = ports.stages(process=lambda v, a: {"memory.actoins": a})
    with pytest.raises(
        StageError,
        match=r"process_actions stage '<lambda>' \(.*\) writes: 'memory.actoins' is not declared"
        r".*Did you mean 'actions'",
    ):
        trace(program)


@pytest.mark.parametrize(
    ("target", "kind", "fix"),
    [
        ("wide", "input", "inputs come from the robot and cannot be written"),
        ("out", "output", "outputs are written by apply_actions"),
    ],
)
def test_process_actions_may_only_write_memory(
    ports: Ports, target: str, kind: str, fix: str
) -> None:
    program = ports.stages(process=lambda v, a: {ports.last: a, target: op.identity(v[ports.pos])})
    with pytest.raises(
        StageError,
        match=rf"process_actions stage .* writes {kind} '{target}'; this stage may only write "
        rf"memory\. Fix: {fix}",
    ):
        trace(program)


def test_apply_actions_may_not_write_an_input(ports: Ports) -> None:
    program = ports.stages(apply=lambda v: {ports.out: 0.0, ports.pos: 0.0})
    with pytest.raises(
        StageError, match=r"writes input 'obj.robot.joints.pos'; this stage may only write output"
    ):
        trace(program)


def test_a_port_written_twice_is_refused(ports: Ports) -> None:
    program = ports.stages(apply=lambda v: {ports.out: 0.0, "out": 1.0})
    with pytest.raises(StageError, match=r"writes 'out' twice"):
        trace(program)


def test_an_output_apply_actions_never_writes_is_named(ports: Ports) -> None:
    ports.program.output("effort", 2)

    def apply(v: Any) -> dict[Any, Any]:
        return {ports.out: v[ports.target]}

    with pytest.raises(
        StageError,
        match=r"apply_actions stage 'apply' \(.*\) never writes output\(s\) 'effort'; every "
        r"output needs a value at every tick",
    ):
        trace(ports.stages(apply=apply))


@pytest.mark.parametrize(
    ("missing", "fix"),
    [
        ("observations", r"@program\.observations above a `def observations\(v\)`"),
        (
            "process_actions",
            r"@program\.process_actions\(n_actions=N\) above a `def process_actions\(v, actions\)`",
        ),
        ("apply_actions", r"@program\.apply_actions above a `def apply_actions\(v\)`"),
    ],
)
def test_a_missing_stage_is_named_with_its_decorator(ports: Ports, missing: str, fix: str) -> None:
    program = ports.program
    if missing != "observations":
        program.observations(lambda v: [("pos", v[ports.pos])])
    if missing != "process_actions":
        program.process_actions(n_actions=2)(lambda v, a: {ports.last: a})
    if missing != "apply_actions":
        program.apply_actions(lambda v: {ports.out: v[ports.target]})
    with pytest.raises(StageError, match=rf"program 'p' has no {missing} stage\. Fix: add {fix}"):
        trace(program)


@pytest.mark.parametrize(
    ("stage", "result", "match"),
    [
        ("observations", None, r"returned NoneType; expected a list of \(name, value\) pairs"),
        ("observations", [], r"returned no observation terms"),
        ("observations", [("a", 1, 2)], r"observation item \('a', 1, 2\) is not a \(name, value\)"),
        ("apply", [1.0], r"returned list; expected a dict mapping declared ports"),
    ],
)
def test_a_stage_returning_the_wrong_kind_of_value_is_explained(
    ports: Ports, stage: str, result: object, match: str
) -> None:
    program = ports.stages(**{stage: lambda *args: result})
    with pytest.raises(StageError, match=match):
        trace(program)


@pytest.mark.parametrize(
    ("terms", "match"),
    [
        ([("pos", "p"), ("pos", "p")], r"term 'pos' appears twice"),
        ([("base vel", "p")], r"term name 'base vel' must be letters, digits and '_'"),
        ([("pos\n", "p")], r"term name 'pos\\n' must be letters, digits and '_'"),
    ],
)
def test_observation_term_names_are_checked(ports: Ports, terms: list[Any], match: str) -> None:
    def observations(v: Any) -> list[Any]:
        return [(name, v[ports.pos]) for name, _ in terms]

    with pytest.raises(StageError, match=match):
        trace(ports.stages(observations=observations))


def test_a_var_captured_from_another_trace_is_refused(ports: Ports) -> None:
    kept: list[Any] = []

    def observations(v: Any) -> list[Any]:
        kept.append(v[ports.pos])
        return [("pos", v[ports.pos])]

    program = ports.stages(observations=observations, apply=lambda v: {ports.out: kept[0]})
    with pytest.raises(StageError, match=r"apply_actions stage .* cannot be built.*captured"):
        trace(program)


def test_a_python_error_in_a_stage_is_reported_at_the_users_line(ports: Ports) -> None:
    def process(v: Any, a: Any) -> dict[Any, Any]:
        scale = {"x": 1.0}["y"]  # line: python error
        return {ports.last: a * scale}

    line = marker_line("python error")
    with pytest.raises(
        StageError,
        match=r"process_actions stage 'process' failed at " + at_this_file(line) + r".*KeyError",
    ):
        trace(ports.stages(process=process))


def test_a_term_clip_of_strings_is_a_stage_error_at_the_users_line(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [exploy_dsl.term("pos", v[ports.pos], clip=("lo", "hi"))]  # line: term clip

    line = marker_line("term clip")
    with pytest.raises(
        StageError,
        match=r"^observations stage 'observations' at "
        + at_this_file(line)
        + r".*: term 'pos' clip must be a pair \(lo, hi\) of numbers with lo < hi, got "
        r"\('lo', 'hi'\)\. Fix: e\.g\. clip=\(-1\.0, 1\.0\)\.$",
    ):
        trace(ports.stages(observations=observations))


def test_a_term_scale_that_is_no_number_is_a_stage_error_at_the_users_line(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [exploy_dsl.term("pos", v[ports.pos], scale="abc")]  # line: term scale

    line = marker_line("term scale")
    with pytest.raises(
        StageError,
        match=r"^observations stage 'observations' at "
        + at_this_file(line)
        + r".*: term 'pos' scale must be a finite number or a sequence of finite numbers, "
        r"got 'abc'\. Fix: e\.g\. scale=2\.0, or one factor per element\.$",
    ):
        trace(ports.stages(observations=observations))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip": (1.0, -1.0)}, r"term 'pos' clip must be a pair .* got \(1\.0, -1\.0\)"),
        ({"clip": (0.0, float("nan"))}, r"term 'pos' clip must be a pair .* got \(0\.0, nan\)"),
        ({"clip": 5.0}, r"term 'pos' clip must be a pair \(lo, hi\) .* got 5\.0"),
        ({"scale": [1.0, float("inf")]}, r"term 'pos' scale must be .* got \[1\.0, inf\]"),
        ({"scale": [1.0, 2.0, 3.0]}, r"term 'pos' scale has 3 entries; expected 1 or 2"),
    ],
)
def test_term_clip_and_scale_mistakes_are_stage_errors(
    ports: Ports, kwargs: dict[str, Any], message: str
) -> None:
    program = ports.stages(observations=lambda v: [exploy_dsl.term("pos", v[ports.pos], **kwargs)])
    with pytest.raises(StageError, match=r"^observations stage '<lambda>' .*" + message):
        trace(program)


def test_a_term_made_outside_a_stage_checks_its_clip_too() -> None:
    with pytest.raises(StageError, match=r"^term 'x' clip must be a pair \(lo, hi\)"):
        exploy_dsl.Term("x", 0.0, clip=("a", "b"))  # type: ignore[arg-type]
    assert exploy_dsl.term("x", 0.0, clip=[-1, 1]).clip == (-1.0, 1.0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="columns (co_positions) are new in 3.11")
def test_a_stage_error_points_at_the_column_too(ports: Ports) -> None:
    def process(v: Any, a: Any) -> dict[Any, Any]:
        gain = 1.0 + {"kp": 1.0}["kd"]  # line: column
        return {ports.last: a * gain}

    line = marker_line("column")
    column = THIS_FILE.read_text().splitlines()[line - 1].index('{"kp"') + 1
    with pytest.raises(
        StageError,
        match=r"process_actions stage 'process' failed at "
        + at_this_file(line)
        + f":{column} "
        + r"\(`gain = 1\.0 \+ \{\"kp\": 1\.0\}\[\"kd\"\]  # line: column`\): KeyError: 'kd'$",
    ):
        trace(ports.stages(process=process))


def test_a_helper_installed_in_site_packages_is_pointed_at(ports: Ports, tmp_path: Path) -> None:
    # The user's own pip-installed package is the user's code, not a library.
    folder = tmp_path / "lib" / "python3" / "site-packages"
    folder.mkdir(parents=True)
    helper = folder / "my_policy_helpers.py"
    helper.write_text('def gain():\n    return {"kp": 1.0}["kd"]\n')
    spec = importlib.util.spec_from_file_location("my_policy_helpers", helper)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    program = ports.stages(process=lambda v, a: {ports.last: a * module.gain()})
    with pytest.raises(
        StageError,
        match=r"process_actions stage '<lambda>' failed at .*site-packages/my_policy_helpers\.py:2"
        r"(:\d+)? \(`return \{\"kp\": 1\.0\}\[\"kd\"\]`\): KeyError: 'kd'$",
    ):
        trace(program)


def test_trace_refuses_what_is_not_a_program() -> None:
    with pytest.raises(StageError, match=r"expected an exploy_dsl.Program, got str"):
        trace("examples/quadruped.py")  # type: ignore[arg-type]


def test_a_stage_decorator_refuses_a_non_function(ports: Ports) -> None:
    with pytest.raises(DeclarationError, match=r"@program.apply_actions must decorate a function"):
        ports.program.apply_actions(42)  # type: ignore[arg-type]


# -- operators on Vars --------------------------------------------------------------------------

OFFSET = np.array([0.25, -1.5], np.float32)


def test_operators_take_numbers_and_arrays_on_both_sides(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        x = v[ports.pos]
        return [
            ("array_plus_var", OFFSET + x),
            ("var_plus_array", x + OFFSET),
            ("number_times_var", 2.0 * x),
            ("var_times_number", x * 2),
            ("var_div_int", x / 2),
            ("number_div_var", 3.0 / x),
            ("number_minus_var", 1 - x),
            ("array_minus_var", OFFSET - x),
            ("array_times_var", OFFSET * x),
            ("neg", -x),
            ("floordiv", x // 0.5),
        ]

    traced = trace(ports.stages(observations=observations))
    x = np.array([[1.5, -4.0]], np.float32)
    obs = run_stage(traced.stage("observations"), {"obj.robot.joints.pos": x})["obs"]
    expected = np.concatenate(
        [
            OFFSET + x,
            x + OFFSET,
            2.0 * x,
            x * 2,
            x / 2,
            3.0 / x,
            1 - x,
            OFFSET - x,
            OFFSET * x,
            -x,
            np.floor(x / 0.5),
        ],
        axis=-1,
    )
    assert obs.dtype == np.float32
    np.testing.assert_allclose(obs, expected, rtol=1e-6)


def test_process_actions_computes_with_arrays_and_actions(ports: Ports) -> None:
    q0 = np.array([0.1, 0.8], np.float32)
    program = ports.stages(process=lambda v, a: {ports.last: a, ports.target: q0 + 0.25 * a})
    traced = trace(program)
    actions = np.array([[2.0, -4.0]], np.float32)
    result = run_stage(traced.stage("process_actions"), {"actions": actions})
    np.testing.assert_allclose(result["memory.target.out"], q0 + 0.25 * actions, rtol=1e-6)
    np.testing.assert_array_equal(result["memory.actions.out"], actions)


def test_int32_ports_compute_with_int_constants(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("count", op.cast(v[ports.count] * 3 + 1, to=np.float32))]

    traced = trace(ports.stages(observations=observations))
    obs = run_stage(traced.stage("observations"), {"count": np.array([[2, -5]], np.int32)})["obs"]
    np.testing.assert_array_equal(obs, [[7.0, -14.0]])


def test_an_int32_port_with_a_float_constant_is_refused_at_the_users_line(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        scaled = v[ports.count] * 2.5  # line: int times float
        return [("count", op.cast(scaled, to=np.float32))]

    line = marker_line("int times float")
    with pytest.raises(
        StageError,
        match=r"observations stage 'observations' at "
        + at_this_file(line)
        + r".*operator \*: float constant 2.5 with an int32 value would be truncated\. Fix: cast",
    ):
        trace(ports.stages(observations=observations))


def test_true_division_of_int32_is_refused(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("count", op.cast(v[ports.count] / 2, to=np.float32))]

    with pytest.raises(StageError, match=r"operator /: true division of integers"):
        trace(ports.stages(observations=observations))


def test_vars_of_different_dtypes_are_refused(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("mixed", v[ports.pos] + v[ports.count])]

    with pytest.raises(StageError, match=r"operator \+: operands have dtypes float32 and int32"):
        trace(ports.stages(observations=observations))


def test_a_bool_port_with_a_number_is_refused(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("flag", op.cast(v[ports.flag] & 1, to=np.float32))]

    with pytest.raises(StageError, match=r"operator &: numeric constant 1 combined with a bool"):
        trace(ports.stages(observations=observations))


def test_operators_are_switched_off_after_tracing(ports: Ports) -> None:
    captured: list[Any] = []

    def observations(v: Any) -> list[Any]:
        captured.append(v[ports.pos])
        return [("pos", v[ports.pos] * 1.0)]

    trace(ports.stages(observations=observations))
    assert "__array_ufunc__" not in vars(type(captured[0]))
    with pytest.raises(TypeError, match=r"unsupported operand type\(s\) for \*"):
        captured[0] * 2.0


# -- onnxscript functions -----------------------------------------------------------------------


@script()
def typed_axpy(x: FLOAT[1, 2], y: FLOAT[1, 2]) -> FLOAT[1, 2]:
    two = os_op.Constant(value_float=2.0)
    return os_op.Add(os_op.Mul(two, x), y)


@script()
def untyped_square_sum(x, y):  # type: ignore[no-untyped-def]
    return os_op.Add(os_op.Mul(x, x), y)


@script()
def two_results(x: FLOAT[1, 2]) -> tuple[FLOAT[1, 2], FLOAT[1, 2]]:
    return os_op.Neg(x), os_op.Abs(x)


def test_call_script_inlines_a_typed_onnxscript_function(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("axpy", call_script(typed_axpy, v[ports.pos], v[ports.last]))]

    traced = trace(ports.stages(observations=observations))
    x, y = np.float32([[1.0, -2.0]]), np.float32([[0.5, 0.25]])
    obs = run_stage(traced.stage("observations"), {"obj.robot.joints.pos": x, "memory.actions": y})[
        "obs"
    ]
    np.testing.assert_allclose(obs, 2.0 * x + y, rtol=1e-6)


def test_call_script_types_an_untyped_function_from_the_vars(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("wide", call_script(untyped_square_sum, v[ports.wide], v[ports.wide]))]

    traced = trace(ports.stages(observations=observations))
    assert traced.n_obs == 3
    x = np.float32([[1.0, -2.0, 3.0]])
    obs = run_stage(traced.stage("observations"), {"wide": x})["obs"]
    np.testing.assert_allclose(obs, x * x + x, rtol=1e-6)


def test_call_script_returns_a_tuple_for_several_outputs(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        neg, mag = call_script(two_results, v[ports.pos])  # type: ignore[misc]
        return [("neg", neg), ("abs", mag)]

    traced = trace(ports.stages(observations=observations))
    x = np.float32([[1.0, -2.0]])
    obs = run_stage(traced.stage("observations"), {"obj.robot.joints.pos": x})["obs"]
    np.testing.assert_array_equal(obs, np.concatenate([-x, np.abs(x)], axis=-1))


def test_call_script_in_apply_actions_runs_in_the_compiled_stage(ports: Ports) -> None:
    program = ports.stages(
        apply=lambda v: {ports.out: call_script(untyped_square_sum, v[ports.target], v[ports.pos])}
    )
    traced = trace(program)
    t, p = np.float32([[0.5, -0.5]]), np.float32([[1.0, 2.0]])
    result = run_stage(
        traced.stage("apply_actions"), {"memory.target": t, "obj.robot.joints.pos": p}
    )
    np.testing.assert_allclose(result["out"], t * t + p, rtol=1e-6)


def test_call_script_refuses_a_plain_function(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("x", call_script(np.negative, v[ports.pos]))]  # type: ignore[arg-type]

    with pytest.raises(StageError, match=r"call_script expects an onnxscript @script function"):
        trace(ports.stages(observations=observations))


def test_call_script_refuses_the_wrong_number_of_vars(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("x", call_script(typed_axpy, v[ports.pos]))]

    with pytest.raises(StageError, match=r"'typed_axpy' takes 2 inputs, got 1 Vars"):
        trace(ports.stages(observations=observations))


def test_call_script_reports_an_untyped_function_that_fails_on_the_vars(ports: Ports) -> None:
    def observations(v: Any) -> list[Any]:
        return [("x", call_script(untyped_square_sum, v[ports.pos], v[ports.wide]))]

    with pytest.raises(
        StageError,
        match=r"'untyped_square_sum' fails on inputs float32\[1, 2\], float32\[1, 3\]",
    ):
        trace(ports.stages(observations=observations))


def test_process_actions_that_writes_no_memory_is_refused(ports: Ports) -> None:
    with pytest.raises(
        StageError, match=r"process_actions stage .* writes no memory, so the actor"
    ):
        trace(ports.stages(process=lambda v, a: {}))


def test_a_program_without_outputs_is_refused() -> None:
    program = Program("silent", decimation=1, sim_dt=0.01)
    memory = program.memory("m", 2)
    program.observations(lambda v: [("m", v[memory])])
    program.process_actions(n_actions=2)(lambda v, a: {memory: a})
    program.apply_actions(lambda v: {})
    with pytest.raises(StageError, match=r"program 'silent' declares no outputs"):
        trace(program)
