"""The actor's calling convention: its named inputs and outputs and what each is bound to.

One type, used by everything that calls an actor: the compiler (export, size checks,
stitching), the reference interpreter and the actor-alone check. An actor input is bound to
``obs`` (or, for recurrent actors, a memory it reads); an output to ``actions`` (or a memory
it writes). Today's programs bind one input to ``obs`` and one output to ``actions``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import onnx

from exploy_dsl._errors import ActorError
from exploy_dsl.contract._wires import ACTIONS, OBS

Exporter = Literal["dynamo", "torchscript"]
EXPORTERS: tuple[Exporter, ...] = ("dynamo", "torchscript")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class ActorPort:
    """One input or output of the actor graph: its name there, its shape, what it is bound to.

    ``binds`` is a value of the tick: ``obs``, ``actions`` or ``memory.<name>``.
    """

    name: str
    shape: tuple[int, ...]
    binds: str

    @property
    def size(self) -> int:
        return self.shape[-1]


@dataclass(frozen=True, slots=True)
class ActorSignature:
    """The actor's inputs and outputs, in the actor's own order, each bound to a tick value."""

    inputs: tuple[ActorPort, ...]
    outputs: tuple[ActorPort, ...]

    @classmethod
    def feedforward(
        cls,
        n_obs: int,
        n_actions: int,
        *,
        batch: int = 1,
        input_name: str = OBS,
        output_name: str = ACTIONS,
    ) -> ActorSignature:
        """``[batch, n_obs] -> [batch, n_actions]``: obs in, actions out, no state."""
        return cls(
            (ActorPort(input_name, (batch, n_obs), OBS),),
            (ActorPort(output_name, (batch, n_actions), ACTIONS),),
        )

    def _bound(self, ports: tuple[ActorPort, ...], value: str) -> ActorPort:
        return next(p for p in ports if p.binds == value)

    @property
    def obs(self) -> ActorPort:
        return self._bound(self.inputs, OBS)

    @property
    def actions(self) -> ActorPort:
        return self._bound(self.outputs, ACTIONS)

    @property
    def n_obs(self) -> int:
        return self.obs.size

    @property
    def n_actions(self) -> int:
        return self.actions.size

    def feeds(self, env: Mapping[str, V]) -> dict[str, V]:
        """The actor's inputs by its own names, taken from the tick's values."""
        return {p.name: env[p.binds] for p in self.inputs}

    def results(self, outputs: Mapping[str, V]) -> dict[str, V]:
        """The actor's outputs (by its own names) as tick values (``actions``, memory)."""
        return {p.binds: outputs[p.name] for p in self.outputs}


@dataclass(frozen=True, slots=True, eq=False)
class Actor:
    """An actor ready to be stitched: one ONNX graph with its signature.

    ``module`` keeps the torch module it was exported from, if any, so the reference
    interpreter and the actor-alone check run the original network; ``exporter`` says which
    torch exporter made ``model`` (None for an actor given as ONNX). ``original`` is the graph
    as given or exported when ``model`` was converted to another opset: the reference runs the
    original, so a conversion mistake shows up as a parity failure.
    """

    model: onnx.ModelProto
    signature: ActorSignature
    source: str
    exporter: Exporter | None = None
    module: Any = None
    original: onnx.ModelProto | None = None

    @property
    def reference(self) -> Any:
        """What the reference interpreter runs: the torch module, else the original graph."""
        if self.module is not None:
            return self.module
        return self.original if self.original is not None else self.model

    @property
    def n_obs(self) -> int:
        return self.signature.n_obs

    @property
    def n_actions(self) -> int:
        return self.signature.n_actions


def onnx_signature(model: onnx.ModelProto, source: str) -> ActorSignature:
    """The signature of an ONNX actor graph: one float input ``[1, n_obs]``, one output.

    Initializers listed as graph inputs (older exporters do that) are weights, not inputs.
    """
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    outputs = list(model.graph.output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ActorError(
            f"actor {source} has {len(inputs)} inputs {[i.name for i in inputs]} and "
            f"{len(outputs)} outputs {[o.name for o in outputs]}; expected one input "
            "[1, n_obs] and one output [1, n_actions]: exploy-dsl does not carry recurrent "
            "(h_in/c_in) or multi-input actors yet, nor drop extra outputs. Fix: export the "
            "feed-forward policy network alone (obs -> actions)."
        )
    n_obs = _last_dim(inputs[0], source, "input")
    n_actions = _last_dim(outputs[0], source, "output")
    return ActorSignature.feedforward(
        n_obs, n_actions, input_name=inputs[0].name, output_name=outputs[0].name
    )


def _last_dim(value: onnx.ValueInfoProto, source: str, what: str) -> int:
    dims = list(value.type.tensor_type.shape.dim)
    elem = value.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        raise ActorError(
            f"actor {source} {what} {value.name!r} has element type "
            f"{onnx.TensorProto.DataType.Name(elem)}; expected float32."
        )
    if len(dims) != 2 or not dims[1].HasField("dim_value"):
        shown = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
        raise ActorError(
            f"actor {source} {what} {value.name!r} has shape {shown}; expected [batch, n] with a "
            "static n. Fix: export with a fixed feature size."
        )
    return int(dims[1].dim_value)


def is_torch_module(obj: object) -> bool:
    """A ``torch.nn.Module`` (or ScriptModule), told without importing torch."""
    return any(
        c.__module__.startswith("torch") and c.__name__ in ("Module", "ScriptModule")
        for c in type(obj).__mro__
    )
