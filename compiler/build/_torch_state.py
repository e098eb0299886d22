"""Lift the state a torch actor keeps inside itself into explicit inputs and outputs.

rsl_rl's ``as_jit`` and legged_gym's exporters write an LSTM/GRU state into buffers inside
forward(); exploy's tutorial actor keeps it in an attribute behind ``get_state()``. Exported
as they are, that state would become a constant. Here such a module becomes a pure one,
``forward(obs, *state) -> (actions, *state)``, whose state the program then carries as
memory. Everything runs on private copies: the user's module is never called.
"""

from __future__ import annotations

import importlib.util
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exploy_dsl import ActorError
from exploy_dsl.authoring._torch_state import (
    copy_module,
    kept_state,
    quiet_jit,
    torch_module_name,
)


@dataclass(frozen=True, slots=True)
class InternalState:
    """Where a module keeps one state tensor (an attribute path) and its shape."""

    path: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Lifted:
    """A pure version of a stateful module and the state it now takes and returns, in order."""

    module: Any
    state: tuple[InternalState, ...]
    how: str  # how the state was found, for messages and explain


def find_internal_state(module: Any, torch: Any, examples: tuple[Any, ...]) -> Lifted | None:
    """The state ``module`` keeps between calls, lifted; None when it keeps none.

    What it keeps is found by ``kept_state`` (exploy_dsl/authoring/_torch_state.py): tensors
    a call changes are lifted; a change that is not a tensor (a step counter), or outputs that
    differ with no tensor state to explain them, are refused.
    """
    where = f"torch actor {torch_module_name(module)}"
    kept = kept_state(module, examples)
    if kept is None:
        return None  # the caller's own call reports the failure with a size hint
    if kept.plain:
        raise ActorError(
            f"{where}'s forward() changes attribute(s) {', '.join(map(repr, kept.plain))} that "
            "are not tensors (a step counter?): state the file could not carry. Fix: keep only "
            "tensor state, or export the policy yourself with that state as explicit inputs and "
            "outputs."
        )
    if kept.tensors:
        state = tuple(InternalState(path, shape) for path, shape in kept.tensors)
        return _pure(module, torch, state, where, examples)
    if kept.get_state:
        return _pure_get_state(module, torch, where, examples)
    if kept.outputs_differ:
        raise ActorError(
            f"{where} returns different actions for the same observation on two calls in a row "
            "and keeps no tensor state exploy-dsl can find (dropout or noise left on?). Fix: "
            "make forward() deterministic, or export the policy yourself with its state as "
            "explicit inputs and outputs."
        )
    return None


_PURE_SOURCE = """
import torch
from typing import Tuple
from torch import Tensor


class Pure(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, obs: Tensor, {args}) -> Tuple[Tensor, {returns}]:
{writes}
        actions = self.inner(obs)
        return actions, {reads}
"""


def _pure(
    module: Any, torch: Any, state: tuple[InternalState, ...], where: str, examples: Any
) -> Lifted:
    """``forward(obs, *state)``: write the state in, call the module, read the state out."""
    if len(examples) != 1:
        raise ActorError(
            f"{where} keeps its state inside and takes several inputs; exploy-dsl lifts internal "
            "state for a forward(obs) only. Fix: export it with explicit state inputs/outputs."
        )
    inner = copy_module(module)
    if isinstance(inner, torch.jit.ScriptModule):
        # TorchScript needs real source for a module that calls a scripted one.
        source = _PURE_SOURCE.format(
            args=", ".join(f"s{i}: Tensor" for i in range(len(state))),
            returns=", ".join("Tensor" for _ in state),
            writes="\n".join(
                f"        self.inner.{s.path}.copy_(s{i})" for i, s in enumerate(state)
            ),
            reads=", ".join(f"self.inner.{s.path}.clone()" for s in state),
        )
        with tempfile.TemporaryDirectory() as folder:
            file = Path(folder) / "exploy_dsl_pure_actor.py"
            file.write_text(source)
            spec = importlib.util.spec_from_file_location("exploy_dsl_pure_actor", file)
            if spec is None or spec.loader is None:
                raise ActorError(f"{where}: the generated state wrapper cannot be loaded.")
            generated = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(generated)
            with quiet_jit():
                pure = torch.jit.script(generated.Pure(inner))
        return Lifted(pure, state, "TorchScript attributes forward() writes")

    class EagerPure(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, obs: Any, *values: Any) -> Any:
            for s, value in zip(state, values, strict=True):
                _resolve(self.inner, s.path).copy_(value)
            actions = self.inner(obs)
            return (actions, *(_resolve(self.inner, s.path).clone() for s in state))

    return Lifted(EagerPure(), state, "buffers forward() writes")


def _pure_get_state(module: Any, torch: Any, where: str, examples: Any) -> Lifted:
    """exploy's convention: forward() keeps a tuple in an attribute that get_state() returns."""
    inner = copy_module(module)
    with torch.no_grad():
        inner(*examples)
    held = inner.get_state()
    values = tuple(held) if isinstance(held, (tuple, list)) else (held,)
    attribute = next(
        (key for key, value in vars(inner).items() if value is held and key != "training"), None
    )
    if attribute is None or not all(isinstance(v, torch.Tensor) for v in values):
        raise ActorError(
            f"{where} has get_state(), but its value is not a tensor or a tuple of tensors kept "
            "in one attribute, so exploy-dsl cannot feed it back. Fix: export the policy with "
            "its state as explicit inputs and outputs."
        )
    state = tuple(InternalState(f"{attribute}[{i}]", tuple(v.shape)) for i, v in enumerate(values))
    as_tuple = isinstance(held, (tuple, list))
    name: str = attribute

    class GetStatePure(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, obs: Any, *values: Any) -> Any:
            setattr(self.inner, name, tuple(values) if as_tuple else values[0])
            actions = self.inner(obs)
            new = self.inner.get_state()
            return (actions, *(new if as_tuple else (new,)))

    return Lifted(GetStatePure(), state, f"get_state() ({attribute})")


def _resolve(module: Any, path: str) -> Any:
    value = module
    for part in path.split("."):
        value = getattr(value, part)
    return value
