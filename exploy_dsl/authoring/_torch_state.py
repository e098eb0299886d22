"""What a torch module keeps between calls: the one detector compile, call_model and the
reference interpreter share.

A module is run twice on the same inputs, on a private copy, and everything it holds is
compared: tensors (buffers and tensor attributes, submodules included), plain attributes
(numbers, strings: a step counter), what a TorchScript forward() assigns (``prim::SetAttr``),
a ``get_state()`` that returns something, and the two outputs. Compile lifts tensor state into
memory (compiler/build/_torch_state.py); the others refuse any state. torch is taken from
``sys.modules``: a torch module exists, so torch is loaded.
"""

from __future__ import annotations

import contextlib
import copy
import io
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class KeptState:
    """What two calls of a module on the same inputs changed, or told apart."""

    tensors: tuple[tuple[str, tuple[int, ...]], ...]  # attribute path, shape after the calls
    plain: tuple[str, ...]  # non-tensor attributes that changed (a step counter)
    assigned: tuple[str, ...]  # attribute names a TorchScript forward() assigns
    get_state: bool  # get_state() returns something (exploy's tutorial actor)
    outputs_differ: bool  # the two calls returned different values

    @property
    def reason(self) -> str | None:
        """Why the module keeps state, in words after its name; None when it keeps none."""
        if self.assigned:
            return (
                f"is TorchScript whose forward() overwrites {', '.join(map(repr, self.assigned))}"
            )
        if self.plain:
            return f"changes attribute(s) {', '.join(map(repr, self.plain))} when called"
        if self.tensors:
            paths = ", ".join(repr(path) for path, _ in self.tensors)
            return f"changes its tensor state {paths} when called"
        if self.get_state:
            return "keeps a state behind get_state()"
        if self.outputs_differ:
            return "returns different values for the same input on two calls in a row"
        return None


def torch_module_name(module: Any) -> str:
    """The class name the user wrote (a scripted module's type is RecursiveScriptModule)."""
    return str(getattr(module, "original_name", None) or type(module).__name__)


def kept_state(module: Any, examples: Sequence[Any]) -> KeptState | None:
    """What ``module`` keeps between calls, run on a copy; None when the call itself fails.

    ``examples`` (NumPy arrays or tensors) give the inputs' shapes and dtypes: float inputs
    are replaced by seeded random values, others are used as given. A failing call is left to
    the caller, whose own call on those inputs reports it with its context.
    """
    torch = sys.modules["torch"]
    probe = copy_module(module)
    before, plain_before = _tensors(probe, torch), _plain_attributes(probe)
    generator = torch.Generator().manual_seed(0)
    inputs = []
    for example in examples:
        tensor = torch.as_tensor(np.asarray(example) if not torch.is_tensor(example) else example)
        if tensor.is_floating_point():
            tensor = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
        inputs.append(tensor)
    try:
        with torch.no_grad():
            first, second = probe(*inputs), probe(*inputs)
    except Exception:  # noqa: BLE001 - the caller's own call reports it with its context
        return None
    after = _tensors(probe, torch)
    changed = [
        path
        for path, value in before.items()
        if path in after
        and (after[path].shape != value.shape or not torch.equal(after[path], value))
    ]
    assigned: tuple[str, ...] = ()
    if isinstance(probe, torch.jit.ScriptModule):
        names = _script_assignments(probe, torch)
        assigned = tuple(sorted(names))
        changed += [p for p in after if p.rsplit(".", 1)[-1] in names and p not in changed]
    plain = tuple(k for k, v in _plain_attributes(probe).items() if plain_before.get(k, v) != v)
    get_state = getattr(probe, "get_state", None)
    return KeptState(
        tensors=tuple((p, tuple(after[p].shape)) for p in changed),
        plain=plain,
        assigned=assigned,
        get_state=callable(get_state) and get_state() is not None,
        outputs_differ=_differs(first, second, torch),
    )


def copy_module(module: Any) -> Any:
    """A private copy of an eager or TorchScript module (TorchScript cannot be deep-copied)."""
    torch = sys.modules["torch"]
    if isinstance(module, torch.jit.ScriptModule):
        with quiet_jit():
            buffer = io.BytesIO()
            torch.jit.save(module, buffer)
            buffer.seek(0)
            return torch.jit.load(buffer)
    return copy.deepcopy(module)


@contextlib.contextmanager
def quiet_jit() -> Iterator[None]:
    """torch 2.13 deprecates torch.jit; the modules users bring are TorchScript all the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _differs(first: Any, second: Any, torch: Any) -> bool:
    firsts = first if isinstance(first, (tuple, list)) else (first,)
    seconds = second if isinstance(second, (tuple, list)) else (second,)
    if len(firsts) != len(seconds):
        return True
    return any(
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and (a.shape != b.shape or not _same(a, b, torch))
        for a, b in zip(firsts, seconds, strict=True)
    )


def _same(a: Any, b: Any, torch: Any) -> bool:
    """Equal, NaN where NaN: a diverged network repeats its NaN, it is not random."""
    if torch.equal(a, b):
        return True
    if not a.is_floating_point():
        return False
    nan = torch.isnan(a)
    return bool(torch.equal(nan, torch.isnan(b)) and torch.equal(a[~nan], b[~nan]))


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
