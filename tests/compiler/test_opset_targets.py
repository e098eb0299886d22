"""Deployment targets: the opset/IR table, relabelling rules, missing kernels, the CLI flags."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.defs
import pytest

from compiler import compile_program
from compiler.build._opset import ADDED_ATTRIBUTES, WIDENING_ONLY, since
from compiler.build._targets import ONNXRUNTIME, oldest_onnxruntime, parse_target
from compiler.cli._main import main
from exploy_dsl import CompileError, Program, op, read_contract
from exploy_dsl.contract._graphs import default_opset, iter_nodes
from tests._support import EXAMPLES, Compiled, mlp_actor, random_feeds, run, session

QUADRUPED = str(EXAMPLES / "quadruped.py")


# -- the table ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("onnxruntime==1.16", (19, 9)),
        ("onnxruntime==1.16.3", (19, 9)),
        ("onnxruntime == 1.17", (20, 9)),
        ("onnxruntime==1.18", (21, 10)),
        ("onnxruntime==1.23", (23, 11)),
        ("onnxruntime==1.24", (25, 13)),
        ("onnxruntime==1.31", (26, 13)),
    ],
)
def test_a_target_picks_the_highest_opset_and_ir_it_runs(
    spec: str, expected: tuple[int, int]
) -> None:
    support = parse_target(spec).support
    assert (support.opset, support.max_ir) == expected


def test_the_table_covers_1_15_to_1_31_within_what_onnx_knows() -> None:
    assert list(ONNXRUNTIME) == [(1, minor) for minor in range(15, 32)]
    for support in ONNXRUNTIME.values():
        assert support.opset <= support.max_opset <= onnx.defs.onnx_opset_version()
        assert support.max_ir <= onnx.IR_VERSION
    assert oldest_onnxruntime(20, 10) == "1.18"
    assert oldest_onnxruntime(19, 9) == "1.16"  # 1.15 accepts it but lacks If-19/Equal-19
    assert oldest_onnxruntime(27, 13) is None


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("onnxruntime==1.14", r"onnxruntime 1\.14 is not in exploy-dsl's measured table"),
        ("onnxruntime>=1.16", r"target 'onnxruntime>=1\.16' is not understood.*onnxruntime==X"),
        ("tensorrt==10.0", r"is not understood"),
    ],
)
def test_an_unknown_target_is_refused(spec: str, match: str) -> None:
    with pytest.raises(CompileError, match=match):
        parse_target(spec)


# -- compiling for a target ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def quadruped(compiled: dict[str, Compiled]) -> Compiled:
    return compiled["quadruped"]


@pytest.mark.parametrize(
    "spec", ["onnxruntime==1.15", "onnxruntime==1.16", "onnxruntime==1.18", "onnxruntime==1.31"]
)
def test_a_targeted_file_is_labelled_for_it_and_computes_the_same(
    quadruped: Compiled, spec: str
) -> None:
    program = quadruped.program_file.program
    model = compile_program(program, quadruped.actor.model, target=spec)
    support = parse_target(spec).support
    assert [(o.domain, o.version) for o in model.opset_import] == [("", support.opset)]
    assert model.ir_version == support.max_ir
    onnx.checker.check_model(model, full_check=True)
    assert read_contract(model).metadata["exploy_dsl.target"] == f'"{spec}"'
    assert_same_ticks(quadruped, model, spec)


def assert_same_ticks(quadruped: Compiled, model: onnx.ModelProto, label: str) -> None:
    """``model`` computes what the default-opset quadruped file computes, on a few ticks."""
    contract = read_contract(quadruped.model)
    for tick in (0, 1, 4):
        feeds = random_feeds(contract.inputs, np.random.default_rng(tick))
        feeds["ctx.step_count"] = np.array(tick, np.int32)
        feeds.update(contract.initial_values)
        expected, got = run(session(quadruped.model), feeds), run(session(model), feeds)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value, err_msg=f"{label} {name}")


def test_explicit_versions_below_the_target_are_kept(quadruped: Compiled) -> None:
    model = compile_program(
        quadruped.program_file.program, quadruped.actor.model, target="onnxruntime==1.18",
        opset=20,
    )  # fmt: skip
    assert (model.opset_import[0].version, model.ir_version) == (20, 10)


def test_versions_beyond_the_target_are_refused(quadruped: Compiled) -> None:
    with pytest.raises(CompileError, match=r"onnxruntime==1\.16 loads opset <= 19 and IR .*<= 9"):
        compile_program(
            quadruped.program_file.program, quadruped.actor.model, target="onnxruntime==1.16",
            ir_version=10,
        )  # fmt: skip


def test_onnxruntime_1_15_gets_opset_18_where_its_if_and_equal_kernels_exist(
    quadruped: Compiled,
) -> None:
    # 1.15 loads opset 19 but has no If-19/Equal-19/Identity-19 kernels; at opset 18 the same
    # nodes are If-16/Equal-13/Identity-16, which only lack element types we never use.
    model = compile_program(
        quadruped.program_file.program, quadruped.actor.model, target="onnxruntime==1.15"
    )
    assert (default_opset(model), model.ir_version) == (18, 9)
    versions = {since(n.op_type, 18) for n in iter_nodes(model.graph) if n.op_type == "If"}
    assert versions == {16}
    assert oldest_onnxruntime(18, 9) == "1.15"


def test_explicit_opset_19_is_refused_for_onnxruntime_1_15_naming_the_missing_kernels(
    quadruped: Compiled,
) -> None:
    with pytest.raises(
        CompileError,
        match=r"onnxruntime 1\.15 has no kernel for Equal-19 \(used by the compiler's two-mode "
        r"switch.*If-19.*Every exploy-dsl file needs If and Equal",
    ):
        compile_program(
            quadruped.program_file.program,
            quadruped.actor.model,
            target="onnxruntime==1.15",
            opset=19,
        )


def test_downgrading_a_widening_only_op_keeps_its_meaning_at_opset_17(quadruped: Compiled) -> None:
    model = compile_program(
        quadruped.program_file.program, quadruped.actor.model, opset=17, ir_version=8
    )
    assert default_opset(model) == 17
    assert_same_ticks(quadruped, model, "opset 17")


def small_program(use: Any) -> Program:
    p = Program("ops", decimation=1, sim_dt=0.01)
    x = p.input("x", (1, 4))
    y = p.output("y", (1, 4))
    memory = p.memory("last", 2)

    @p.observations
    def observations(v: Any) -> list[Any]:
        return [("x", op.reshape(use(v[x]), op.const(np.array([1, -1]))))]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {memory: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {y: v[x]}

    return p


def reduce_max(x: Any) -> Any:
    return op.reduce_max(x, op.const(np.array([2])), keepdims=1) * np.ones((1, 1, 4), np.float32)


def gelu(x: Any) -> Any:
    return op.gelu(x)


def pad(x: Any) -> Any:
    return op.pad(x, op.const(np.zeros(6, np.int64)))


def max_pool(x: Any) -> Any:
    return op.max_pool(x, kernel_shape=[1])[0]


def test_a_widening_only_op_goes_down_to_an_older_target_on_float_data() -> None:
    # ReduceMax-20 only added bool inputs to ReduceMax-18: on float32 it means the same.
    program = small_program(reduce_max)
    newest = compile_program(program, mlp_actor(4, 2).model)
    older = compile_program(program, mlp_actor(4, 2).model, target="onnxruntime==1.16")
    assert default_opset(older) == 19
    feeds = {"ctx.step_count": np.array(0, np.int32), "x": np.float32([[[1, -2, 3, -4]]])}
    feeds.update(read_contract(newest).initial_values)
    expected, got = run(session(newest), feeds), run(session(older), feeds)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize(
    ("use", "target", "match"),
    [
        (pad, "onnxruntime==1.15", r"op Pad used by observations stage "
         r"'observations' \(.*test_opset_targets\.py:\d+\) is Pad-19, but opset 18 has "
         r"Pad-18, whose definition differs"),
        (gelu, "onnxruntime==1.16", r"op Gelu used by observations stage 'observations' .* does "
         r"not exist at opset 19"),
        (max_pool, "onnxruntime==1.31", r"op MaxPool used by observations stage 'observations' "
         r".*MaxPool-12, but opset 26 has MaxPool-22, whose definition differs beyond added "
         r"element types"),
    ],
)  # fmt: skip
def test_an_op_the_target_cannot_hold_is_refused_naming_op_and_stage(
    use: Any, target: str, match: str
) -> None:
    program = small_program(use)
    compile_program(program, mlp_actor(4, 2).model)  # fine at the default opset 20
    with pytest.raises(CompileError, match=match):
        compile_program(program, mlp_actor(4, 2).model, target=target)


def test_an_actor_op_is_named_as_the_actors() -> None:
    actor = mlp_actor(4, 2).model
    for node in actor.graph.node:
        if node.op_type == "Tanh":
            node.op_type = "Gelu"  # Gelu-20: absent at opset 19
    with pytest.raises(CompileError, match=r"op Gelu used by the actor \(ModelProto\) does not"):
        compile_program(small_program(lambda x: x), actor, target="onnxruntime==1.16")


# -- the allowlist for newer opsets, re-derived from onnx.defs ----------------------------------


def _signature(schema: Any, ignore: frozenset[str]) -> Any:
    inputs = [(i.name, i.option, i.is_homogeneous, i.type_str) for i in schema.inputs]
    outputs = [(o.name, o.option, o.is_homogeneous, o.type_str) for o in schema.outputs]
    attributes = sorted(
        (a.name, a.type, a.required, a.default_value.SerializeToString())
        for a in schema.attributes.values()
        if a.name not in ignore
    )
    return inputs, outputs, attributes


@pytest.mark.parametrize("op_type", sorted(WIDENING_ONLY))
def test_each_allowlisted_version_only_widens_types(op_type: str) -> None:
    versions = WIDENING_ONLY[op_type]
    assert list(versions) == sorted(set(versions)) and len(versions) >= 2
    schemas = {
        int(s.since_version): s
        for s in onnx.defs.get_all_schemas_with_history()
        if s.name == op_type and s.domain == ""
    }
    for older, newer in itertools.pairwise(versions):
        assert older in schemas and newer in schemas, (op_type, older, newer)
        old, new = schemas[older], schemas[newer]
        added = ADDED_ATTRIBUTES.get((op_type, newer), frozenset())
        assert _signature(old, frozenset()) == _signature(new, added), (op_type, older, newer)
        assert set(added) <= set(new.attributes) - set(old.attributes)
        old_types = {c.type_param_str: set(c.allowed_type_strs) for c in old.type_constraints}
        new_types = {c.type_param_str: set(c.allowed_type_strs) for c in new.type_constraints}
        assert old_types.keys() == new_types.keys()
        assert all(old_types[k] <= new_types[k] for k in old_types), (op_type, older, newer)


def test_ops_with_changed_semantics_stay_out_of_the_allowlist() -> None:
    for op_type in ("AveragePool", "MaxPool", "Resize", "ScatterND", "QuantizeLinear"):
        assert op_type not in WIDENING_ONLY
    assert 18 not in WIDENING_ONLY["Pad"]  # Pad-19 added mode 'wrap'


# -- command line -------------------------------------------------------------------------------


def test_cli_target_writes_the_targets_versions(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    onnx.save(mlp_actor(48, 12).model, str(tmp_path / "actor.onnx"))
    out = tmp_path / "q.onnx"
    args = ["compile", QUADRUPED, "--actor", str(tmp_path / "actor.onnx"), "-o", str(out)]
    assert main([*args, "--target", "onnxruntime==1.17"]) == 0
    model = onnx.load(str(out))
    assert (model.opset_import[0].version, model.ir_version) == (20, 9)
    capsys.readouterr()
    assert main([*args, "--target", "onnxruntime==1.17", "--opset", "21"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--target onnxruntime==1.17 loads opset <= 20 and IR version <= 9" in err


def test_going_down_refuses_an_element_type_the_older_version_lacks() -> None:
    # ReduceMax-20 added bool; at opset 19 (ReduceMax-18) a bool ReduceMax must not pass.
    def any_flag(x: Any) -> Any:
        flags = op.greater(x, op.const(np.float32(0)))
        return op.cast(op.reduce_max(flags, op.const(np.array([-1])), keepdims=1), to=np.float32)

    program = small_program(lambda x: x * any_flag(x))
    compile_program(program, mlp_actor(4, 2).model)
    with pytest.raises(CompileError, match=r"fails onnx\.checker \(opset 19.*ReduceMax.*bool"):
        compile_program(program, mlp_actor(4, 2).model, opset=19)


def rounded(x: Any) -> Any:
    return op.cast(op.cast(x * 10.0, to=np.int32), to=np.float32)


def test_a_cast_with_its_default_saturate_goes_down_to_cast_13() -> None:
    # spox writes Cast-19's saturate=1 (its default) on every Cast; Cast-13 has no such
    # attribute, and saturate acts only on float8, so at opset 18 it is dropped.
    program = small_program(rounded)
    actor = mlp_actor(4, 2).model
    newer = compile_program(program, actor)
    older = compile_program(program, actor, target="onnxruntime==1.15")
    casts = [n for n in iter_nodes(older.graph) if n.op_type == "Cast"]
    assert default_opset(older) == 18 and len(casts) == 2
    assert all(a.name != "saturate" for n in casts for a in n.attribute)
    assert any(a.name == "saturate" for n in iter_nodes(newer.graph) for a in n.attribute)
    feeds = {"ctx.step_count": np.array(0, np.int32), "x": np.full((1, 1, 4), 0.37, np.float32)}
    feeds["memory.last.in"] = np.zeros((1, 2), np.float32)
    np.testing.assert_array_equal(run(session(older), feeds)["obs"], [[3.0] * 4])
    np.testing.assert_array_equal(run(session(newer), feeds)["obs"], [[3.0] * 4])


def test_a_cast_that_sets_saturate_is_refused_going_down() -> None:
    program = small_program(lambda x: op.cast(op.cast(x, to=np.int32, saturate=0), to=np.float32))
    with pytest.raises(CompileError, match=r"op Cast used by observations stage .* is Cast-19"):
        compile_program(program, mlp_actor(4, 2).model, target="onnxruntime==1.15")
