"""Run a program tick by tick from its traced stages in NumPy: the meaning of DESIGN.md section 3.

This never looks at a compiled file: the stages run as their own graphs (op by op, NumPy), the
actor as the original torch module when there is one. The parity checker compares it with the
stitched file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx

from ._errors import ActorError, RuntimeInputError
from ._graph_interpreter import GraphInterpreter
from ._program import Program
from ._trace import TracedProgram, trace

ActorFn = Callable[[np.ndarray], np.ndarray]


def _written(output_name: str) -> str:
    """Stage graph output ``memory.<name>.out`` carries the new value of ``memory.<name>``."""
    if output_name.startswith("memory.") and output_name.endswith(".out"):
        return output_name[: -len(".out")]
    return output_name


def actor_function(actor: object) -> ActorFn:
    """A NumPy function ``obs -> actions`` from a torch module, an ONNX model or a callable."""
    if isinstance(actor, onnx.ModelProto):
        interpreter = GraphInterpreter(actor)
        (in_name,) = interpreter.input_names
        (out_name,) = interpreter.output_names

        def run_onnx(obs: np.ndarray) -> np.ndarray:
            return np.asarray(interpreter.run({in_name: obs})[out_name], dtype=np.float32)

        return run_onnx
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(actor, torch.nn.Module):
        module = actor.eval()

        def run_torch(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = module(torch.from_numpy(np.ascontiguousarray(obs, dtype=np.float32)))
            return np.asarray(out.detach().cpu().numpy(), dtype=np.float32)

        return run_torch
    if callable(actor):
        return lambda obs: np.asarray(actor(obs), dtype=np.float32)
    raise ActorError(
        f"reference actor must be a torch module, an onnx.ModelProto or a function, "
        f"got {type(actor).__name__}."
    )


class ReferenceInterpreter:
    """Steps a program like the file would be stepped: same inputs, same output names.

    ``step(inputs)`` returns ``actions``, ``obs``, every declared output and every
    ``memory.<name>.out``; the interpreter owns the tick counter and the memory.
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
        self._observations = GraphInterpreter(self.traced.observations.model)
        self._process = GraphInterpreter(self.traced.process_actions.model)
        self._apply = GraphInterpreter(self.traced.apply_actions.model)
        self._decimation = prog.decimation
        self._inputs = {p.name: p for p in prog.inputs}
        self._memories = {f"memory.{m.name}": m for m in prog.memories}
        self._outputs = [p.name for p in prog.outputs]
        self._zeros_actions = np.zeros((prog.batch, self.traced.n_actions), np.float32)
        self._zeros_obs = np.zeros((prog.batch, self.traced.n_obs), np.float32)
        self._first_tick = first_tick
        self.tick = first_tick
        self.memory: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Memory back to the program's initial values, tick back to the first tick."""
        self.tick = self._first_tick
        self.memory = {name: m.init.copy() for name, m in self._memories.items()}

    def step(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = self._check(inputs)
        env.update(self.memory)
        if self.tick % self._decimation == 0:
            obs = self._run(self._observations, env)["obs"]
            actions = self._actor(obs)
            if actions.shape != self._zeros_actions.shape:
                raise ActorError(
                    f"reference actor returned shape {list(actions.shape)}; expected "
                    f"{list(self._zeros_actions.shape)}."
                )
            env.update(self._run(self._process, {**env, "actions": actions}))
        else:
            obs, actions = self._zeros_obs, self._zeros_actions
        env.update(self._run(self._apply, env))
        self.memory = {name: env[name] for name in self._memories}
        self.tick += 1
        result = {"actions": actions, "obs": obs}
        result.update({name: env[name] for name in self._outputs})
        result.update({f"{name}.out": env[name] for name in self._memories})
        return result

    @staticmethod
    def _run(graph: GraphInterpreter, env: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = graph.run({name: env[name] for name in graph.input_names})
        return {_written(name): value for name, value in results.items()}

    def _check(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        missing = [k for k in self._inputs if k not in inputs]
        unknown = [k for k in inputs if k not in self._inputs]
        if missing or unknown:
            raise RuntimeInputError(
                f"reference step: missing input(s) {missing}, unknown input(s) {unknown}; "
                f"expected exactly {list(self._inputs)}."
            )
        env: dict[str, np.ndarray] = {}
        for name, port in self._inputs.items():
            value = np.asarray(inputs[name])
            if value.shape != port.file_shape:
                raise RuntimeInputError(
                    f"reference step: input {name!r} has shape {list(value.shape)}; "
                    f"expected {list(port.file_shape)}."
                )
            env[name] = value.astype(port.np_dtype, copy=False)
        return env
