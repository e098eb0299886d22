"""Lift the state a torch actor keeps inside itself into explicit inputs and outputs.

rsl_rl's ``as_jit`` and legged_gym's exporters write an LSTM/GRU state into buffers inside
forward(); exploy's tutorial actor keeps it in an attribute behind ``get_state()``. Exported
as they are, that state would become a constant. Here such a module becomes a pure one,
``forward(obs, *state) -> (actions, *state)``, whose state the program then carries as
memory. Everything runs on private copies: the user's module is never called.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exploy_dsl import ActorError


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


def module_name(module: Any) -> str:
    """The class name the user wrote (a scripted module's type is RecursiveScriptModule)."""
    return str(getattr(module, "original_name", None) or type(module).__name__)


def find_internal_state(module: Any, torch: Any, examples: tuple[Any, ...]) -> Lifted | None:
    """The state ``module`` keeps between calls, lifted; None when it keeps none.

    Found by running a private copy twice on the same inputs and comparing every tensor it
    holds (buffers and tensor attributes, submodules included), plus, for TorchScript, the
    attributes forward() assigns. A change that is not a tensor (a step counter) is refused.
    """
    where = f"torch actor {module_name(module)}"
    probe = _copy(module, torch)
    before = _tensors(probe, torch)
    others_before = _plain_attributes(probe)
    generator = torch.Generator().manual_seed(0)
    inputs = tuple(
        torch.randn(e.shape, generator=generator) if e.is_floating_point() else e for e in examples
    )
    try:
        with torch.no_grad():
            first, second = probe(*inputs), probe(*inputs)
    except Exception:  # noqa: BLE001 - the caller's own call reports it with a size hint
        return None
    after = _tensors(probe, torch)
    changed = [
        path
        for path, value in before.items()
        if path in after
        and (after[path].shape != value.shape or not torch.equal(after[path], value))
    ]
    plain = [k for k, v in _plain_attributes(probe).items() if others_before.get(k, v) != v]
    if plain:
        raise ActorError(
            f"{where}'s forward() changes attribute(s) {', '.join(map(repr, plain))} that are not "
            "tensors (a step counter?): state the file could not carry. Fix: keep only tensor "
            "state, or export the policy yourself with that state as explicit inputs and outputs."
        )
    if isinstance(probe, torch.jit.ScriptModule):
        assigned = _script_assignments(probe, torch)
        changed += [p for p in after if p.rsplit(".", 1)[-1] in assigned and p not in changed]
    if changed:
        state = tuple(InternalState(p, tuple(after[p].shape)) for p in changed)
        return _pure(module, torch, state, where, examples)
    get_state = getattr(probe, "get_state", None)
    if callable(get_state) and get_state() is not None:
        return _pure_get_state(module, torch, where, examples)
    if _differs(first, second, torch):
        raise ActorError(
            f"{where} returns different actions for the same observation on two calls in a row "
            "and keeps no tensor state exploy-dsl can find (dropout or noise left on?). Fix: "
            "make forward() deterministic, or export the policy yourself with its state as "
            "explicit inputs and outputs."
        )
    return None


def _differs(first: Any, second: Any, torch: Any) -> bool:
    firsts = first if isinstance(first, (tuple, list)) else (first,)
    seconds = second if isinstance(second, (tuple, list)) else (second,)
    return any(
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and not _same(a, b, torch)
        for a, b in zip(firsts, seconds, strict=False)
    )


def _same(a: Any, b: Any, torch: Any) -> bool:
    """Equal, NaN where NaN: a diverged network repeats its NaN, it is not random."""
    if torch.equal(a, b):
        return True
    if not a.is_floating_point():
        return False
    nan = torch.isnan(a)
    return bool(torch.equal(nan, torch.isnan(b)) and torch.equal(a[~nan], b[~nan]))


def _copy(module: Any, torch: Any) -> Any:
    if isinstance(module, torch.jit.ScriptModule):
        with _quiet():
            buffer = io.BytesIO()
            torch.jit.save(module, buffer)
            buffer.seek(0)
            return torch.jit.load(buffer)
    return copy.deepcopy(module)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """torch 2.13 deprecates torch.jit; the modules users bring are TorchScript all the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _tensors(module: Any, torch: Any) -> dict[str, Any]:
    """Every tensor a module holds that is not a parameter, by attribute path."""
    found: dict[str, Any] = {}
    parameters = {name for name, _ in module.named_parameters()}
    if isinstance(module, torch.jit.ScriptModule):
        items = torch._C._jit_debug_module_iterators(module._c)["named_attributes_r"]
        for name, value in items:
            if isinstance(value, torch.Tensor) and name not in parameters:
                found[name] = value.detach().clone()
        return found
    for prefix, sub in module.named_modules():
        for key, value in vars(sub).items():
            if isinstance(value, torch.Tensor):
                found[f"{prefix}.{key}" if prefix else key] = value.detach().clone()
        for key, value in sub.named_buffers(recurse=False):
            found[f"{prefix}.{key}" if prefix else key] = value.detach().clone()
    return {k: v for k, v in found.items() if k not in parameters}


def _plain_attributes(module: Any) -> dict[str, Any]:
    """Numbers and strings an eager module holds (TorchScript's are constants)."""
    plain: dict[str, Any] = {}
    for prefix, sub in getattr(module, "named_modules", lambda: [])():
        for key, value in vars(sub).items():
            if (
                isinstance(value, (int, float, str))
                and not key.startswith("_")
                and key != "training"
            ):
                plain[f"{prefix}.{key}" if prefix else key] = value
    return plain


def _script_assignments(module: Any, torch: Any) -> set[str]:
    """Attribute names a TorchScript forward() assigns (``prim::SetAttr``), submodules in."""
    graph = module.forward.graph.copy()
    torch._C._jit_pass_inline(graph)
    return {node.s("name") for node in graph.findAllNodes("prim::SetAttr")}


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
    inner = _copy(module, torch)
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
            with _quiet():
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
    inner = _copy(module, torch)
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
