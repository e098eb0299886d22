"""Run a program tick by tick from its traced stages in NumPy (DESIGN.md section 3)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx

from exploy_dsl._errors import ActorError, RuntimeInputError
from exploy_dsl.authoring._program import Program
from exploy_dsl.authoring._trace import StageGraph, TracedProgram, trace
from exploy_dsl.reference._graph_interpreter import GraphInterpreter
from exploy_dsl.runtime._runtime import _cast

ActorFn = Callable[[np.ndarray], np.ndarray]


def actor_function(actor: object) -> ActorFn:
    """A NumPy function ``obs -> actions`` from a torch module, an ONNX model or a callable.

    An object with an ONNX ``model`` and a ``module`` attribute (``compiler.Actor``) runs as its
    torch module when it has one, else as its ONNX model: the original network is the reference.
    """
    torch = sys.modules.get("torch")
    is_module = torch is not None and isinstance(actor, torch.nn.Module)
    if not is_module and isinstance(getattr(actor, "model", None), onnx.ModelProto):
        module = getattr(actor, "module", None)
        actor = module if module is not None else actor.model  # type: ignore[attr-defined]
    if isinstance(actor, onnx.ModelProto):
        return _onnx_actor(actor)
    if torch is not None and isinstance(actor, torch.nn.Module):
        module = actor.eval()

        def run_torch(obs: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                out = module(torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)))
            return np.asarray(out.detach().cpu().numpy(), dtype=np.float32)

        return run_torch
    if callable(actor):
        return lambda obs: np.asarray(actor(obs), dtype=np.float32)
    raise ActorError(
        f"reference actor must be a torch module, an onnx.ModelProto or a function, "
        f"got {type(actor).__name__}."
    )


def _onnx_actor(model: onnx.ModelProto) -> ActorFn:
    # The same NumPy interpreter as the stages; initializers listed as inputs are not inputs.
    interpreter = GraphInterpreter(model)
    initializers = {t.name for t in model.graph.initializer}
    inputs = [name for name in interpreter.input_names if name not in initializers]
    if len(inputs) != 1 or len(interpreter.output_names) != 1:
        raise ActorError(
            f"reference actor ONNX model has inputs {inputs} and outputs "
            f"{list(interpreter.output_names)}; expected one input (obs) and one output "
            "(actions). Fix: export only the policy network."
        )
    (in_name,), (out_name,) = inputs, interpreter.output_names

    def run_onnx(obs: np.ndarray) -> np.ndarray:
        return np.asarray(interpreter.run({in_name: obs})[out_name], dtype=np.float32)

    return run_onnx


def _frozen(value: np.ndarray) -> np.ndarray:
    value.setflags(write=False)
    return value


class _Stage:
    """One stage graph, planned once; ``run(env)`` reads its ports and returns its writes."""

    def __init__(self, stage: StageGraph) -> None:
        self._graph = GraphInterpreter(stage.model)
        self._reads = self._graph.input_names
        # Memory writes leave the graph as memory.<name>.out; the env keeps them as memory.<name>.
        self._writes = tuple(zip(stage.output_names, stage.writes, strict=True))

    def run(self, env: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self._graph.run({name: env[name] for name in self._reads})
        return {write: results[name] for name, write in self._writes}


class ReferenceInterpreter:
    """Steps a program like the file would be stepped: same inputs, same output names.

    Never looks at a compiled file: the three stages run as their own traced graphs (op by op,
    NumPy, planned once here), the actor as the original torch module when there is one.
    ``step(inputs)`` returns ``actions``, ``obs``, every declared output and every
    ``memory.<name>.out``; the interpreter owns the tick counter and the memory. ``first_tick``
    is the tick of the first call after a reset: 0 for our runtime, 1 for exploy's controller.
    """

    def __init__(
        self,
        program: Program | TracedProgram,
        actor: object,
        *,
        first_tick: int = 0,
    ) -> None:
        self.traced = program if isinstance(program, TracedProgram) else trace(program)
        prog = self.traced.program
        self._actor = actor_function(actor)
        self._observations = _Stage(self.traced.observations)
        self._process = _Stage(self.traced.process_actions)
        self._apply = _Stage(self.traced.apply_actions)
        self._decimation = prog.decimation
        self._inputs = {p.name: (p.file_shape, p.np_dtype) for p in prog.inputs}
        self._input_keys = frozenset(self._inputs)
        self._memories = {f"memory.{m.name}": m.init for m in prog.memories}
        self._outputs = tuple(p.name for p in prog.outputs)
        self._memory_outs = tuple((f"{name}.out", name) for name in self._memories)
        # The apply-only step's actions and obs: the same zeros every tick, so read-only.
        self._zeros_actions = _frozen(np.zeros((prog.batch, self.traced.n_actions), np.float32))
        self._zeros_obs = _frozen(np.zeros((prog.batch, self.traced.n_obs), np.float32))
        self._first_tick = first_tick
        self.tick = first_tick
        self.memory: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Memory back to the program's initial values, tick back to the first tick."""
        self.tick = self._first_tick
        self.memory = {name: init.copy() for name, init in self._memories.items()}

    def step(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One tick (DESIGN.md section 3): policy step when ``tick % decimation == 0``."""
        env = self._check(inputs)
        env.update(self.memory)
        if self.tick % self._decimation == 0:
            obs = self._observations.run(env)["obs"]
            actions = self._actor(obs)
            if actions.shape != self._zeros_actions.shape:
                raise ActorError(
                    f"reference actor returned shape {list(actions.shape)}; expected "
                    f"{list(self._zeros_actions.shape)}."
                )
            env["actions"] = actions
            env.update(self._process.run(env))
        else:
            obs, actions = self._zeros_obs, self._zeros_actions
        env.update(self._apply.run(env))
        # Owned copies: a stage may pass an input (the caller's buffer) straight into memory.
        self.memory = {name: env[name].copy() for name in self._memories}
        self.tick += 1
        result = {"actions": actions, "obs": obs}
        result.update((name, env[name]) for name in self._outputs)
        result.update((out, env[name]) for out, name in self._memory_outs)
        return result

    def _check(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inputs by name, each an array of its declared shape and dtype."""
        if not isinstance(inputs, Mapping):
            raise RuntimeInputError(
                f"reference step() takes a dict of input name -> array, got "
                f"{type(inputs).__name__}."
            )
        if inputs.keys() != self._input_keys:
            missing = [k for k in self._inputs if k not in inputs]
            unknown = [k for k in inputs if k not in self._inputs]
            raise RuntimeInputError(
                f"reference step: missing input(s) {missing}, unknown input(s) {unknown}; "
                f"expected exactly {list(self._inputs)}."
            )
        env: dict[str, np.ndarray] = {}
        for name, (shape, dtype) in self._inputs.items():
            value = inputs[name]
            if type(value) is not np.ndarray or value.dtype != dtype or value.shape != shape:
                value = self._convert(name, value, shape, dtype)
            env[name] = value
        return env

    @staticmethod
    def _convert(name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype[Any]) -> Any:
        value = np.asarray(value)
        if value.shape != shape:
            raise RuntimeInputError(
                f"reference step: input {name!r} has shape {list(value.shape)}; "
                f"expected {list(shape)}."
            )
        return _cast(value, dtype, name)  # the same casting rules as the runtime
