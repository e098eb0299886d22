"""One tick, defined once: the schedule, run_tick, and every engine that reads them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import numpy as np
import pytest

import compiler
import exploy_dsl
from compiler import compile_program, prepare_actor
from compiler.build._actor import exporter_of_source, torch_source
from exploy_dsl import (
    Actor,
    ActorSignature,
    DeclarationError,
    Program,
    ReferenceInterpreter,
    Runtime,
    op,
    trace,
)
from exploy_dsl.contract._tick import SCHEDULE, USER_STAGE_KINDS, is_policy_step, run_tick
from tests._support import mlp_actor


class RecordingEngine:
    """Runs stages on Python values, writing what each stage kind is told to write."""

    def __init__(self, writes: Mapping[str, Mapping[str, str]]) -> None:
        self.writes = writes
        self.ran: list[str] = []

    def run(self, kind: str, env: Mapping[str, str]) -> dict[str, str]:
        self.ran.append(kind)
        return dict(self.writes.get(kind, {}))

    def zeros(self, name: str) -> str:
        return f"zeros({name})"


def tick(policy_step: bool, engine: RecordingEngine) -> dict[str, str]:
    env = {"x": "input", "memory.a": "a0", "memory.b": "b0", "memory.c": "c0"}
    return run_tick(
        engine,
        env,
        policy_step=policy_step,
        outputs=("y",),
        memories=(
            ("memory.a", "memory.a.out"),
            ("memory.b", "memory.b.out"),
            ("memory.c", "memory.c.out"),
        ),
    )


WRITES = {
    "observations": {"obs": "obs1"},
    "actor": {"actions": "act1"},
    "process_actions": {"memory.a": "a_proc", "memory.b": "b_proc"},
    "apply_actions": {"y": "y1", "memory.b": "b_apply"},
}


def test_a_policy_step_runs_every_stage_in_schedule_order_and_the_later_write_wins() -> None:
    engine = RecordingEngine(WRITES)
    out = tick(True, engine)
    assert engine.ran == ["observations", "actor", "process_actions", "apply_actions"]
    assert out == {
        "actions": "act1",
        "obs": "obs1",
        "y": "y1",
        "memory.a.out": "a_proc",  # process_actions' write passes apply_actions untouched
        "memory.b.out": "b_apply",  # both wrote it: apply_actions comes later and wins
        "memory.c.out": "c0",  # nobody wrote it: passes through
    }
    assert list(out) == ["actions", "obs", "y", "memory.a.out", "memory.b.out", "memory.c.out"]


def test_an_apply_only_step_runs_only_the_every_tick_stages_with_zero_obs_and_actions() -> None:
    engine = RecordingEngine(WRITES)
    out = tick(False, engine)
    assert engine.ran == [s.kind for s in SCHEDULE if s.rate == "tick"] == ["apply_actions"]
    assert out["actions"] == "zeros(actions)" and out["obs"] == "zeros(obs)"
    assert out["memory.a.out"] == "a0" and out["memory.b.out"] == "b_apply"


def test_the_mode_switch_is_step_count_modulo_decimation() -> None:
    assert [is_policy_step(k, 4) for k in range(6)] == [True, False, False, False, True, False]


def program_with_stages() -> Program:
    program = Program("tick", decimation=2, sim_dt=0.01)
    x = program.input("x", 2)
    y = program.output("y", 2)
    held = program.memory("held", 2, init=[0.5, -0.5])

    @program.observations
    def observations(v):  # type: ignore[no-untyped-def]
        return [("x", v[x])]

    @program.process_actions(n_actions=2)
    def process_actions(v, actions):  # type: ignore[no-untyped-def]
        return {held: actions}

    @program.apply_actions
    def apply_actions(v):  # type: ignore[no-untyped-def]
        return {y: v[held] * 2.0}

    return program


def test_traced_stages_and_explain_follow_the_schedule() -> None:
    traced = trace(program_with_stages())
    assert tuple(s.kind for s in traced.stages) == USER_STAGE_KINDS
    assert USER_STAGE_KINDS == ("observations", "process_actions", "apply_actions")
    from compiler.tools._explain import render_explain

    model = compile_program(traced, mlp_actor(2, 2).model)
    text = render_explain(exploy_dsl.read_contract(model), "f")
    positions = [text.index(f"\n{kind} (") for kind in USER_STAGE_KINDS]
    assert positions == sorted(positions)


def test_the_stitched_file_and_the_reference_run_the_same_tick() -> None:
    program = program_with_stages()
    actor = mlp_actor(2, 2, seed=3)
    runtime = Runtime(compile_program(program, actor.model))
    reference = ReferenceInterpreter(program, actor.model)
    rng = np.random.default_rng(0)
    for _ in range(6):
        feeds = {"x": rng.normal(size=(1, 2)).astype(np.float32)}
        ours, theirs = runtime.step(feeds), reference.step(feeds)
        assert list(ours) == list(theirs)
        for name in ours:
            np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6)


def test_a_traced_program_is_a_sealed_snapshot() -> None:
    program = program_with_stages()
    traced = trace(program)
    late = program.input("late", 3)  # declared on the original after the trace
    assert program.port("late") is late
    assert traced.program.port("late") is None
    assert "late" not in [i.name for i in traced.program.inputs]
    model = compile_program(traced, mlp_actor(2, 2).model)
    assert "late" not in [i.name for i in model.graph.input]
    with pytest.raises(DeclarationError, match=r"sealed copy a trace or compile works on"):
        traced.program.input("more", 1)
    with pytest.raises(DeclarationError, match=r"sealed copy"):
        traced.program.apply_actions(lambda v: {})
    assert traced.program.groups == ()


def test_the_actor_signature_binds_obs_and_actions_by_the_actors_own_names() -> None:
    signature = ActorSignature.feedforward(48, 12, input_name="input_1", output_name="mu")
    assert (signature.n_obs, signature.n_actions) == (48, 12)
    assert signature.feeds({"obs": "O", "x": "X"}) == {"input_1": "O"}
    assert signature.results({"mu": "A"}) == {"actions": "A"}


def test_prepare_actor_records_the_exporter_as_a_field() -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    traced = trace(program_with_stages())
    module = torch.nn.Linear(2, 2)
    for exporter in ("dynamo", "torchscript"):
        _, actor = prepare_actor(module, traced, opset=20, exporter=exporter)
        assert isinstance(actor, Actor) and actor.exporter == exporter
        assert exporter_of_source(actor.source) == exporter
        assert actor.source == torch_source("Linear", exporter)
    _, onnx_actor = prepare_actor(mlp_actor(2, 2).model, traced, opset=20)
    assert onnx_actor.exporter is None and onnx_actor.module is None


def test_public_classes_show_their_public_module() -> None:
    assert exploy_dsl.Program.__module__ == "exploy_dsl"
    assert exploy_dsl.DeclarationError.__module__ == "exploy_dsl"
    assert compiler.ParityReport.__module__ == "compiler"
    with pytest.raises(DeclarationError) as info:
        Program("bad name", decimation=1, sim_dt=0.01)
    assert type(info.value).__module__ + "." + type(info.value).__name__ == (
        "exploy_dsl.DeclarationError"
    )


def test_importing_exploy_dsl_loads_neither_spox_nor_onnxruntime() -> None:
    code = (
        "import sys, exploy_dsl\n"
        "assert 'spox' not in sys.modules and 'onnxruntime' not in sys.modules, 'eager'\n"
        "from exploy_dsl import Runtime\n"
        "assert 'spox' not in sys.modules, 'Runtime loaded spox'\n"
        "from exploy_dsl import Program, op\n"
        "assert 'spox' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_op_is_the_opset_20_module() -> None:
    assert op.__name__ == "spox.opset.ai.onnx.v20"
