"""Recurrent, multi-input and multi-output actors: compiled files against the original network.

Each test drives the compiled file with ``exploy_dsl.Runtime`` over a long stream with resets
and compares its actions with the original (the torch module, or the ONNX actor file in
onnxruntime) run step by step by a loop written here, which carries the state itself.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from compiler import check_parity, compile_program
from exploy_dsl import ActorError, DeclarationError, Program, Runtime, StageError, read_contract
from tests._support import session

torch = pytest.importorskip("torch")

N_OBS, N_ACTIONS, HIDDEN = 6, 3, 8
DECIMATION = 2


def program(layers: int = 1, *, cell: bool = True, declare: bool = True) -> Program:
    p = Program("recurrent", decimation=DECIMATION, sim_dt=0.01)
    x = p.input("x", N_OBS)
    y = p.output("y", N_ACTIONS)
    last = p.memory("last", N_ACTIONS)
    h = p.memory("h", (layers, HIDDEN), batch_axis=1)
    state = [h]
    if cell:
        state.append(p.memory("c", (layers, HIDDEN), batch_axis=1))
    if declare:
        p.actor(state=state)

    @p.observations
    def observations(v: Any) -> Any:
        return [("x", v[x])]

    @p.process_actions(n_actions=N_ACTIONS)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: v[last] * 2.0}

    return p


class LSTMPolicy(torch.nn.Module):  # type: ignore[misc]
    """``forward(obs, h, c) -> (actions, h, c)``, state ``[layers, 1, hidden]``."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(N_OBS, HIDDEN, layers)
        self.head = torch.nn.Linear(HIDDEN, N_ACTIONS)

    def forward(self, obs: Any, h: Any, c: Any) -> Any:
        out, (h2, c2) = self.rnn(obs.unsqueeze(0), (h, c))
        return self.head(out.squeeze(0)), h2, c2


class GRUPolicy(torch.nn.Module):  # type: ignore[misc]
    """``forward(obs, h) -> (actions, h)``."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.rnn = torch.nn.GRU(N_OBS, HIDDEN, layers)
        self.head = torch.nn.Linear(HIDDEN, N_ACTIONS)

    def forward(self, obs: Any, h: Any) -> Any:
        out, h2 = self.rnn(obs.unsqueeze(0), h)
        return self.head(out.squeeze(0)), h2


def stream(ticks: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(ticks, 1, N_OBS)).astype(np.float32)
    resets = np.zeros(ticks, bool)
    resets[0] = True
    resets[rng.choice(np.arange(1, ticks), size=ticks // 150, replace=False)] = True
    return xs, resets


def drive(file: onnx.ModelProto, xs: np.ndarray, resets: np.ndarray) -> np.ndarray:
    """The compiled file's actions at every policy step (zeros elsewhere), as a robot runs it."""
    runtime = Runtime(file)
    actions = []
    for x, reset in zip(xs, resets, strict=True):
        if reset:
            runtime.reset()
        actions.append(runtime.step({"x": x})["actions"])
    return np.stack(actions)


def original(step: Any, state_shapes: list[tuple[int, ...]], xs: Any, resets: Any) -> np.ndarray:
    """The original actor, stepped by hand: state from zeros at a reset, used on policy ticks."""
    actions, state, k = [], [], 0
    for x, reset in zip(xs, resets, strict=True):
        if reset:
            state, k = [np.zeros(s, np.float32) for s in state_shapes], 0
        if k % DECIMATION == 0:
            out, *state = step(x, *state)
            actions.append(np.asarray(out, np.float32))
        else:
            actions.append(np.zeros((1, N_ACTIONS), np.float32))
        k += 1
    return np.stack(actions)


def torch_step(module: Any) -> Any:
    def step(x: np.ndarray, *state: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            outs = module(torch.from_numpy(x), *(torch.from_numpy(s) for s in state))
        return [o.numpy() for o in outs]

    return step


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_torch_module_with_explicit_state_matches_the_original_over_1000_ticks(
    kind: str, layers: int
) -> None:
    torch.manual_seed(layers)
    module = LSTMPolicy(layers) if kind == "lstm" else GRUPolicy(layers)
    prog = program(layers, cell=kind == "lstm")
    file = compile_program(prog, module, exporter="torchscript")
    xs, resets = stream(1000, seed=layers)
    shapes = [(layers, 1, HIDDEN)] * (2 if kind == "lstm" else 1)
    expected = original(torch_step(module), shapes, xs, resets)
    np.testing.assert_allclose(drive(file, xs, resets), expected, atol=1e-5, rtol=1e-5)
    contract = read_contract(file)
    assert [w.name for w in contract.memory][-len(shapes) :] == [
        "memory.h.in",
        *(["memory.c.in"] if kind == "lstm" else []),
    ]
    assert all(w.shape == (layers, 1, HIDDEN) for w in contract.memory[1:])
    assert not contract.initial_values["memory.h.in"].any()  # zeros after every reset
    assert check_parity(file, prog, module, steps=200).ok


def export_isaaclab_style(module: Any, layers: int, path: Path) -> Path:
    """An ONNX file named as Isaac Lab's recurrent exporter names it."""
    obs = torch.zeros(1, N_OBS)
    h = torch.zeros(layers, 1, HIDDEN)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (obs, h, torch.zeros_like(h)),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["obs", "h_in", "c_in"],
            output_names=["actions", "h_out", "c_out"],
        )
    return path


def onnx_step(path: Path) -> Any:
    sess = session(path)

    def step(x: np.ndarray, h: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
        return list(sess.run(["actions", "h_out", "c_out"], {"obs": x, "h_in": h, "c_in": c}))

    return step


def test_an_onnx_actor_with_h_in_c_in_binds_its_state_to_memory(tmp_path: Path) -> None:
    torch.manual_seed(5)
    path = export_isaaclab_style(LSTMPolicy(2), 2, tmp_path / "policy.onnx")
    prog = program(2)
    file = compile_program(prog, path)
    xs, resets = stream(1000, seed=7)
    expected = original(onnx_step(path), [(2, 1, HIDDEN)] * 2, xs, resets)
    np.testing.assert_allclose(drive(file, xs, resets), expected, atol=1e-5, rtol=1e-5)
    report = check_parity(file, prog, path, steps=300)
    assert report.ok, report.render()


def test_the_state_passes_through_apply_only_ticks_unchanged(tmp_path: Path) -> None:
    torch.manual_seed(1)
    file = compile_program(program(1), LSTMPolicy(1), exporter="torchscript")
    runtime = Runtime(file)
    first = runtime.step({"x": np.ones((1, N_OBS), np.float32)})  # k = 0: policy step
    second = runtime.step({"x": np.ones((1, N_OBS), np.float32)})  # k = 1: apply-only
    assert first["memory.h.out"].any()
    np.testing.assert_array_equal(second["memory.h.out"], first["memory.h.out"])
    np.testing.assert_array_equal(second["memory.c.out"], first["memory.c.out"])


def test_an_undeclared_recurrent_onnx_actor_names_its_unbound_inputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = export_isaaclab_style(LSTMPolicy(1), 1, tmp_path / "policy.onnx")
    with pytest.raises(
        ActorError,
        match=r"has 3 inputs \['obs', 'h_in', 'c_in'\]; the program binds the observation to one "
        r"of \['obs', 'h_in', 'c_in'\] and cannot tell which",
    ):
        compile_program(program(1, declare=False), path)


@pytest.mark.parametrize("where", ["compile", "reference interpreter"])
def test_an_undeclared_recurrent_torch_module_is_named_with_the_declaration_it_needs(
    where: str,
) -> None:
    """forward(obs, h, c) in a program that declares no state: one ActorError, not a TypeError."""
    from exploy_dsl import ReferenceInterpreter

    torch.manual_seed(0)
    p, module = program(1, declare=False), LSTMPolicy(1).eval()
    message = (
        rf"^{where}: torch actor LSTMPolicy's forward\(obs, h, c\) needs 3 argument\(s\), the "
        r"program gives 1 \(obs\)\. Fix: declare the extra arguments with "
        r"program\.actor\(inputs=\.\.\., state=\.\.\.\)"
    )
    with pytest.raises(ActorError, match=message):
        if where == "compile":
            compile_program(p, module)
        else:
            ReferenceInterpreter(p, module)


def test_a_state_of_the_wrong_shape_names_both_shapes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = export_isaaclab_style(LSTMPolicy(2), 2, tmp_path / "policy.onnx")
    with pytest.raises(
        ActorError,
        match=r"input 'h_in' has shape \[2, 1, 8\], but the program binds it to memory 'h' of "
        r"shape \[1, 1, 8\]",
    ):
        compile_program(program(1), path)


def test_a_state_name_the_actor_lacks_is_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = export_isaaclab_style(LSTMPolicy(1), 1, tmp_path / "policy.onnx")
    p = program(1, declare=False)
    memories = {m.name: m for m in p.memories}
    p.actor(state={memories["h"]: ("hidden_in", "hidden_out"), memories["c"]: ("c_in", "c_out")})
    with pytest.raises(ActorError, match=r"has no input 'hidden_in', which the program binds"):
        compile_program(p, path)


def test_the_actor_declaration_refuses_what_is_not_a_memory_or_a_stage_writing_the_state() -> None:
    p = program(1, declare=False)
    with pytest.raises(DeclarationError, match=r"state .* is not a memory of program"):
        p.actor(state=[p.inputs[0]])  # type: ignore[list-item]
    with pytest.raises(DeclarationError, match=r"actions must be the name or position"):
        p.actor(actions=-1)
    q = Program("writes_state", decimation=1, sim_dt=0.01)
    x = q.input("x", N_OBS)
    y = q.output("y", N_ACTIONS)
    h = q.memory("h", (1, HIDDEN), batch_axis=1)
    q.actor(state=[h])

    @q.observations
    def observations(v: Any) -> Any:
        return [("x", v[x])]

    @q.process_actions(n_actions=N_ACTIONS)
    def process_actions(v: Any, actions: Any) -> Any:
        return {h: np.zeros((1, 1, HIDDEN), np.float32)}

    @q.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: 0.0}

    with pytest.raises(StageError, match=r"memory 'h' is the actor's recurrent state"):
        compile_program(q, GRUPolicy(1))


# -- several inputs (GBC's reference mode) and several outputs (SB3) ----------------------------


def reference_mode_program() -> Program:
    p = Program("reference_mode", decimation=1, sim_dt=0.01)
    q = p.input("q", 4)
    ref = p.input("ref", 3)
    mask = p.boolean_command("ref_active")
    y = p.output("y", 2)
    last = p.memory("last", 2)
    p.actor(inputs={"obs": ["q", "last"], "ref_obs": ["ref"], "ref_mask": mask})

    @p.observations
    def observations(v: Any) -> Any:
        return [("q", v[q]), ("ref", v[ref] * 0.5), ("last", v[last])]

    @p.process_actions(n_actions=2)
    def process_actions(v: Any, actions: Any) -> Any:
        return {last: actions}

    @p.apply_actions
    def apply_actions(v: Any) -> Any:
        return {y: v[last]}

    return p


class ReferenceActor(torch.nn.Module):  # type: ignore[misc]
    """GBC's signature: ``obs, ref_obs, ref_mask -> actions`` with a bool mask ``[1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(6, 2)
        self.ref = torch.nn.Linear(3, 2)

    def forward(self, obs: Any, ref_obs: Any, ref_mask: Any) -> Any:
        return self.body(obs) + self.ref(ref_obs) * ref_mask.float().unsqueeze(-1)


def test_a_reference_mode_actor_takes_terms_and_a_bool_mask_by_name(tmp_path: Path) -> None:
    torch.manual_seed(3)
    module = ReferenceActor()
    path = tmp_path / "gbc.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(1, 6), torch.zeros(1, 3), torch.zeros(1, dtype=torch.bool)),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["obs", "ref_obs", "ref_mask"],
            output_names=["actions"],
        )
    prog = reference_mode_program()
    file = compile_program(prog, path)
    runtime, rng = Runtime(file), np.random.default_rng(0)
    last = np.zeros((1, 2), np.float32)
    for _ in range(50):
        feeds = {
            "q": rng.normal(size=(1, 4)).astype(np.float32),
            "ref": rng.normal(size=(1, 3)).astype(np.float32),
            "cmd.boolean.ref_active": rng.random((1, 1)) < 0.5,
        }
        out = runtime.step(feeds)
        with torch.no_grad():
            expected = module(
                torch.from_numpy(np.concatenate([feeds["q"], last], axis=1)),
                torch.from_numpy(feeds["ref"] * 0.5),
                torch.from_numpy(feeds["cmd.boolean.ref_active"].reshape(1)),
            ).numpy()
        np.testing.assert_allclose(out["actions"], expected, atol=1e-6)
        assert out["obs"].shape == (1, 9)  # the file's obs stays the whole observation
        last = out["actions"]
    assert check_parity(file, prog, path, steps=100).ok


def test_an_unbound_extra_input_is_named(tmp_path: Path) -> None:
    torch.manual_seed(3)
    p = reference_mode_program()
    p.actor(inputs={"obs": ["q", "last"], "ref_obs": ["ref"]})
    path = tmp_path / "gbc.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ReferenceActor(),
            (torch.zeros(1, 6), torch.zeros(1, 3), torch.zeros(1, dtype=torch.bool)),
            str(path),
            dynamo=False,
            input_names=["obs", "ref_obs", "ref_mask"],
            output_names=["actions"],
        )
    with pytest.raises(ActorError, match=r"input\(s\) 'ref_mask' are bound to nothing"):
        compile_program(p, path)
    p.actor(inputs={"obs": ["q", "last"], "ref_obs": ["nope"], "ref_mask": p.inputs[2]})
    with pytest.raises(StageError, match=r"binds actor input 'ref_obs' to observation term\(s\) "):
        compile_program(p, path)


class ValueAndLogProb(torch.nn.Module):  # type: ignore[misc]
    """SB3's documented export: actions, values, log_prob."""

    def __init__(self) -> None:
        super().__init__()
        self.pi = torch.nn.Linear(N_OBS, N_ACTIONS)
        self.vf = torch.nn.Linear(N_OBS, 1)

    def forward(self, obs: Any) -> Any:
        actions = self.pi(obs)
        return actions, self.vf(obs), actions.sum(-1)


def sb3_like_file(tmp_path: Path) -> Path:
    torch.manual_seed(2)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ValueAndLogProb(),
            (torch.zeros(1, N_OBS),),
            buffer,
            dynamo=False,
            input_names=["input"],
            output_names=["view", "linear_4", "sum_1"],
        )
    path = tmp_path / "sb3.onnx"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("choice", [0, "view"])
def test_extra_outputs_are_dropped_once_the_action_output_is_chosen(
    tmp_path: Path, choice: int | str
) -> None:
    path = sb3_like_file(tmp_path)
    p = program(declare=False)
    with pytest.raises(
        ActorError,
        match=r"has 3 outputs \['view', 'linear_4', 'sum_1'\].*"
        r"program\.actor\(actions=NAME or POSITION\)",
    ):
        compile_program(p, path)
    p.actor(actions=choice)
    file = compile_program(p, path)
    sess, runtime = session(path), Runtime(file)
    x = np.ones((1, N_OBS), np.float32)
    (expected,) = sess.run(["view"], {"input": x})
    np.testing.assert_allclose(runtime.step({"x": x})["actions"], expected, atol=1e-6)
    assert [o.name for o in file.graph.output][:2] == ["actions", "obs"]
    assert check_parity(file, p, path, steps=50).ok


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_a_torch_module_with_extra_outputs_exports_the_chosen_one(exporter: str) -> None:
    from compiler.tools._explain import render_explain

    torch.manual_seed(3)
    module = ValueAndLogProb().eval()
    p = program(declare=False)
    with pytest.raises(ActorError, match=r"returns \(Tensor, Tensor, Tensor\); expected one"):
        compile_program(p, module, exporter="torchscript")
    p.actor(actions=3)
    with pytest.raises(
        ActorError, match=r"program.actor\(actions=3\) picks output 3, but forward returns 3"
    ):
        compile_program(p, module, exporter="torchscript")
    p.actor(actions=0)
    file = compile_program(p, module, exporter=exporter)  # type: ignore[arg-type]
    assert [o.name for o in file.graph.output][:2] == ["actions", "obs"]
    x = np.full((1, N_OBS), 0.5, np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(Runtime(file).step({"x": x})["actions"], expected, atol=1e-6)
    assert check_parity(file, p, module, steps=50).ok  # the reference picks output 0 too
    text = render_explain(read_contract(file), "sb3.onnx")
    assert "  dropped outputs (computed, never used): forward output 1, forward output 2" in text
    p.actor(actions=1)  # the value head, [1, 1]: not an action vector of this program
    with pytest.raises(ActorError):
        compile_program(p, module, exporter="torchscript")


def test_a_position_past_a_single_output_torch_module_is_refused() -> None:
    p = program(declare=False)
    p.actor(actions=2)
    with pytest.raises(
        ActorError, match=r"program.actor\(actions=2\) picks output 2, but forward returns 1"
    ):
        compile_program(p, torch.nn.Linear(N_OBS, N_ACTIONS), exporter="torchscript")


# -- what a deployer reads: inspect, explain, diff ---------------------------------------------


def test_explain_inspect_and_diff_show_the_actor_signature_and_its_state(tmp_path: Path) -> None:
    from compiler.tools._diff import diff_contracts
    from compiler.tools._explain import render_explain
    from compiler.tools._inspect import render_inspect

    torch.manual_seed(0)
    small = compile_program(program(1), LSTMPolicy(1), exporter="torchscript")
    text = render_explain(read_contract(small), "small.onnx")
    assert "  input h_in float32[1, 1, 8] <- memory 'h'" in text
    assert "  output c_out float32[1, 1, 8] -> memory 'c'" in text
    assert "  recurrent state: h, c (memory, written on policy steps only" in text
    shown = render_inspect(read_contract(small), "small.onnx")
    assert "memory.h  float32 [1, 1, 8]  init" in shown and "(the actor's recurrent state)" in shown

    global HIDDEN
    saved, HIDDEN = HIDDEN, 16
    try:
        torch.manual_seed(0)
        wide = compile_program(program(1), LSTMPolicy(1), exporter="torchscript")
    finally:
        HIDDEN = saved
    differences = diff_contracts(read_contract(small), read_contract(wide))
    state = [d for d in differences if d.topic == "actor state"]
    assert state and state[0].breaks
    assert '{"h": [1, 1, 8], "c": [1, 1, 8]} -> {"h": [1, 1, 16], "c": [1, 1, 16]}' in state[0].text


def test_explain_lists_the_outputs_it_dropped(tmp_path: Path) -> None:
    from compiler.tools._explain import render_explain

    p = program(declare=False)
    p.actor(actions="view")
    file = compile_program(p, sb3_like_file(tmp_path))
    text = render_explain(read_contract(file), "sb3.onnx")
    assert "  dropped outputs (computed, never used): linear_4, sum_1" in text
    assert "  output view float32[1, 3] -> the actions" in text


class MaskedActor(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(9, 2)

    def forward(self, obs: Any, ref_obs: Any, ref_mask: Any) -> Any:
        both = torch.cat([obs, ref_obs], -1)
        return torch.where(ref_mask, self.lin(both), -self.lin(both))  # mask [1, 1]


def test_a_torch_actor_gets_its_bool_input_as_bool_in_the_reference() -> None:
    torch.manual_seed(4)
    module = MaskedActor()
    prog = reference_mode_program()
    file = compile_program(prog, module, exporter="torchscript")
    report = check_parity(file, prog, module, steps=80)
    assert report.ok, report.render()


class AttentionActor(torch.nn.Module):  # type: ignore[misc]
    """torch's MultiheadAttention with a padding mask: exported with -inf fill constants."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Linear(N_OBS, 16)
        self.mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = torch.nn.Linear(8, N_ACTIONS)

    def forward(self, obs: Any) -> Any:
        tokens = self.embed(obs).reshape(-1, 2, 8)
        pad = torch.stack([obs[:, 0] > 100.0, obs[:, 0] < -100.0], 1)
        out = self.mha(tokens, tokens, tokens, key_padding_mask=pad, need_weights=False)[0]
        return self.head(out[:, 0])


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_an_attention_mask_of_minus_infinity_is_not_a_diverged_checkpoint(exporter: str) -> None:
    torch.manual_seed(0)
    module = AttentionActor().eval()
    prog = program(declare=False)
    file = compile_program(prog, module, exporter=exporter)
    report = check_parity(file, prog, module, steps=60)
    assert report.ok, report.render()
