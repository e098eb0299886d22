"""Prepare the actor: a torch module (exported here) or a ready ONNX model, checked for size."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import onnx
import onnx.checker
import onnx.shape_inference
import onnx.version_converter

from exploy_dsl import ActorError, TracedProgram
from exploy_dsl.authoring._actor import (
    EXPORTERS,
    Actor,
    ActorSignature,
    Exporter,
    bind_signature,
    default_names,
    is_torch_module,
)
from exploy_dsl.contract._graphs import default_opset


def load_actor(
    actor: object,
    *,
    n_obs: int | None = None,
    signature: ActorSignature | None = None,
    batch: int = 1,
    opset: int = 20,
    exporter: Exporter = "dynamo",
) -> Actor:
    """Accept a ``torch.nn.Module``, an ``onnx.ModelProto`` or a ``.onnx``/``.pt`` path.

    ``signature`` is how the program calls the actor (``TracedProgram.actor_signature``);
    without it, a feed-forward actor of ``n_obs`` observations.
    """
    if signature is None:
        if n_obs is None:
            raise ActorError("load_actor needs the program's actor signature or n_obs.")
        signature = ActorSignature.feedforward(n_obs, 0, batch=batch, input_name="")
        signature = dataclasses.replace(
            signature, outputs=(dataclasses.replace(signature.outputs[0], name=""),)
        )
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, onnx.ModelProto):
        return from_onnx(actor, "ModelProto", signature)
    if isinstance(actor, (str, os.PathLike)):
        return _from_path(Path(actor), signature, opset=opset, exporter=exporter)
    if is_torch_module(actor):
        return from_torch(actor, signature, opset=opset, exporter=exporter)
    raise ActorError(
        f"actor must be a torch.nn.Module, an onnx.ModelProto or a path to .onnx/.pt, got "
        f"{type(actor).__name__}. Fix: pass one of those."
    )


def prepare_actor(
    actor: object,
    traced: TracedProgram,
    *,
    opset: int,
    exporter: Exporter = "dynamo",
    stage_opset: int = 20,
) -> Actor:
    """The actor as compile stitches it and check runs it: loaded, size-checked, at the opset.

    A torch module is exported at ``opset`` (what the file is labelled with, at most the
    stages' opset) with ``exporter``; then the actor's sizes are checked against the program
    and the graph is converted to ``stage_opset``, the opset the stages are built with.
    """
    loaded = load_actor(
        actor,
        signature=traced.actor_signature,
        batch=traced.program.batch,
        opset=min(opset, stage_opset),
        exporter=exporter,
    )
    check_actor_sizes(traced, loaded)
    return at_opset(loaded, stage_opset)


def check_actor_sizes(traced: TracedProgram, actor: Actor) -> None:
    """The actor takes the observation the program makes and outputs the actions it consumes."""
    expected, given = traced.actor_signature, actor.signature
    if given.n_obs != expected.n_obs:
        raise ActorError(
            f"observation size mismatch: the observations stage produces {expected.n_obs} "
            f"values ({', '.join(f'{t.name}:{t.size}' for t in traced.obs_terms)}) but actor "
            f"{actor.source} takes {given.n_obs}. Fix: change the observation terms or use an "
            f"actor with input size {expected.n_obs}."
        )
    if given.n_actions != expected.n_actions:
        raise ActorError(
            f"action size mismatch: actor {actor.source} outputs {given.n_actions} values but "
            f"process_actions expects n_actions={expected.n_actions}. Fix: set "
            f"@program.process_actions(n_actions={given.n_actions}) or use a matching actor."
        )


def at_opset(actor: Actor, opset: int) -> Actor:
    """The actor converted to the opset the stages are built with, as it will be inlined.

    An actor exported at another opset (e.g. 11 or 17) is upgraded with onnx's version
    converter, so the ops checked and written are the ones that will run.
    """
    current = default_opset(actor.model, missing=opset)
    if current == opset:
        return actor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = onnx.version_converter.convert_version(actor.model, opset)
    except Exception as exc:  # noqa: BLE001 - the converter's errors vary by op
        raise ActorError(
            f"actor {actor.source} is at opset {current} and cannot be converted to opset "
            f"{opset}: {' '.join(str(exc).split())[:300]}. Fix: export the actor at opset {opset} "
            f"(torch.onnx.export(..., opset_version={opset}))."
        ) from None
    return dataclasses.replace(actor, model=converted, original=actor.original or actor.model)


def from_onnx(model: onnx.ModelProto, source: str, signature: ActorSignature) -> Actor:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ActorError(
            f"actor {source} is not a valid ONNX model: {' '.join(str(exc).split())[:500]}. "
            "Fix: re-export the actor (onnx.checker.check_model(model, full_check=True) must pass)."
        ) from None
    return Actor(model, bind_signature(signature, model, source), source)


def from_torch(
    module: Any, signature: ActorSignature, *, opset: int = 20, exporter: Exporter = "dynamo"
) -> Actor:
    """Export a torch module with ``torch.onnx.export`` (dynamo by default).

    ``forward`` takes the actor inputs in ``signature`` order (the observation or the bound
    inputs, then each state memory) and returns the actions, then each new state.
    """
    import torch

    if exporter not in EXPORTERS:
        raise ActorError(f"exporter must be 'dynamo' or 'torchscript', got {exporter!r}.")
    signature = default_names(signature)
    # Everything below runs on a copy: exporting must never change the user's module (its
    # training flag, or a recurrent state it keeps inside).
    module = _private_copy(module, torch).eval()
    _refuse_rsl_rl_model(module)
    examples = tuple(
        torch.zeros(p.shape, dtype=getattr(torch, "bool" if p.dtype == "bool" else p.dtype))
        for p in signature.inputs
    )
    _refuse_internal_state(module, torch, examples, signature)
    called = ", ".join(f"{p.name}{list(p.shape)}" for p in signature.inputs)
    try:
        with torch.no_grad():
            out = module(*examples)
    except Exception as exc:  # noqa: BLE001 - the user's network failed on the obs size
        if len(signature.inputs) == 1:
            raise ActorError(
                f"torch actor {_module_name(module)} fails on an observation of shape "
                f"{list(signature.inputs[0].shape)} (the program's observation size): "
                f"{' '.join(str(exc).split())}. "
                "Fix: the actor's input size must equal the observation size."
            ) from None
        raise ActorError(
            f"torch actor {_module_name(module)} fails when called as forward({called}), as "
            f"program.actor(...) declares it: {' '.join(str(exc).split())[:300]}. Fix: make the "
            "declaration match forward's arguments (inputs in order, then each state)."
        ) from None
    outs = out if isinstance(out, (tuple, list)) else (out,)
    wanted = len(signature.outputs)
    if len(outs) != wanted or not all(isinstance(o, torch.Tensor) for o in outs):
        kinds = ", ".join(type(o).__name__ for o in outs)
        expected = (
            "one tensor [1, n_actions]"
            if wanted == 1
            else (f"{wanted} tensors (the actions, then each new state)")
        )
        raise ActorError(
            f"torch actor {_module_name(module)} returns ({kinds}); expected {expected}. Fix: "
            "wrap it so forward returns only those."
        )
    if exporter == "dynamo" and isinstance(module, torch.jit.ScriptModule):
        # torch.export (dynamo=True) cannot take a ScriptModule; the TorchScript exporter can.
        exporter = "torchscript"
    try:
        model = _export(torch, module, examples, signature, opset, exporter)
    except ActorError:
        raise
    except Exception as exc:  # noqa: BLE001 - the exporter refused the user's network
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise ActorError(
            f"torch.onnx.export ({exporter}) cannot export actor {_module_name(module)}: "
            f"{type(exc).__name__}: {first.strip()[:300]}. Fix: try the other exporter "
            "(--exporter dynamo|torchscript), or export the actor to ONNX yourself and pass the "
            ".onnx file."
        ) from None
    actor = from_onnx(model, torch_source(_module_name(module), exporter), signature)
    return dataclasses.replace(actor, exporter=exporter, module=module)


def _private_copy(module: Any, torch: Any) -> Any:
    try:
        return copy.deepcopy(module)
    except Exception as exc:  # noqa: BLE001 - the user's module refuses to be copied
        raise ActorError(
            f"torch actor {type(module).__name__} cannot be copied ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]}); exploy-dsl exports a copy so that your module "
            "is never changed. Fix: make it deep-copyable, or export it to ONNX yourself and pass "
            "the .onnx file."
        ) from None


def _refuse_rsl_rl_model(module: Any) -> None:
    """rsl_rl's models take a TensorDict of observation groups, not the observation tensor."""
    if type(module).__module__.startswith("rsl_rl") and hasattr(module, "as_onnx"):
        raise ActorError(
            f"torch actor {_module_name(module)} is an rsl_rl model: its forward() takes a "
            "TensorDict of observation groups, not the observation vector. Fix: export it with "
            "rsl_rl's own exporter and pass the file: model.as_onnx(...) (recurrent ones give "
            "obs, h_in, c_in -> actions, h_out, c_out; declare the state with "
            "program.actor(state=[h, c])) or model.as_jit()."
        )


def _refuse_internal_state(
    module: Any, torch: Any, examples: tuple[Any, ...], signature: ActorSignature
) -> None:
    """Refuse an actor that keeps state between calls: exporting it would freeze that state.

    A TorchScript module whose forward() assigns to its own attributes (rsl_rl's ``as_jit``
    and legged_gym's LSTM exporters keep ``hidden_state``/``cell_state`` that way), or any
    module whose output for the same observation changes from one call to the next (an
    eager module with ``reset(dones)``/``get_state()``), would be exported with the state it
    held at export time as a constant: a file whose recurrence is frozen.
    """
    where = f"torch actor {_module_name(module)}"
    fix = (
        "Fix: exploy-dsl does not carry recurrent actors yet; until it does, use a "
        "feed-forward policy (a recurrent one cannot be compiled correctly)."
    )
    if isinstance(module, torch.jit.ScriptModule):
        mutated = _script_assignments(module, torch)
        if mutated:
            raise ActorError(
                f"{where} is TorchScript whose forward() overwrites its attribute(s) "
                f"{', '.join(map(repr, mutated))}: state kept between calls (a recurrent "
                f"policy's hidden state?), which an ONNX export would freeze as a constant. {fix}"
            )
    probe = copy.deepcopy(module)
    before = {name: b.clone() for name, b in probe.named_buffers()}
    generator = torch.Generator().manual_seed(0)
    inputs = tuple(
        torch.randn(e.shape, generator=generator) if e.is_floating_point() else e for e in examples
    )
    try:
        with torch.no_grad():
            first, second = probe(*inputs), probe(*inputs)
    except Exception:  # noqa: BLE001 - reported with its size hint by the caller's own call
        return
    changed = [
        name
        for name, b in probe.named_buffers()
        if name in before and not torch.equal(before[name], b)
    ]
    if changed:
        raise ActorError(
            f"{where}'s forward() changes its buffer(s) {', '.join(map(repr, changed))}: state "
            "kept between calls (a recurrent policy's hidden state?), which an ONNX export would "
            f"freeze as a constant. {fix}"
        )
    firsts = first if isinstance(first, (tuple, list)) else (first,)
    seconds = second if isinstance(second, (tuple, list)) else (second,)
    if any(
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.shape == b.shape
        and not torch.equal(a, b)
        for a, b in zip(firsts, seconds, strict=False)
    ):
        raise ActorError(
            f"{where} returns different actions for the same observation on two calls in a "
            "row: it keeps state between calls (a recurrent policy, or dropout/noise left "
            f"on?), which an ONNX export would freeze. {fix}"
        )


def _module_name(module: Any) -> str:
    """The class name the user wrote (a scripted module's type is RecursiveScriptModule)."""
    return str(getattr(module, "original_name", None) or type(module).__name__)


def _script_assignments(module: Any, torch: Any) -> list[str]:
    """Attributes a TorchScript module's forward() assigns (``prim::SetAttr``), submodules in."""
    graph = module.forward.graph.copy()
    torch._C._jit_pass_inline(graph)
    names = {node.s("name") for node in graph.findAllNodes("prim::SetAttr")}
    return sorted(names)


def torch_source(module_name: str, exporter: Exporter) -> str:
    """How a torch actor is named in messages and in the file's ``exploy_dsl.actor`` source."""
    return f"torch module {module_name} ({exporter} export)"


def exporter_of_source(source: str) -> Exporter:
    """The exporter ``torch_source`` recorded in a file's actor source (dynamo if none)."""
    return next((e for e in EXPORTERS if source.endswith(f"({e} export)")), "dynamo")


def _export(
    torch: Any,
    module: Any,
    examples: tuple[Any, ...],
    signature: ActorSignature,
    opset: int,
    exporter: Exporter,
) -> onnx.ModelProto:
    input_names = [p.name for p in signature.inputs]
    output_names = [p.name for p in signature.outputs]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_torch():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            program = torch.onnx.export(
                module,
                examples,
                dynamo=True,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                verbose=False,
            )
            if program is None:
                raise ActorError("torch.onnx.export returned no program")
            model = program.model_proto
        else:
            buffer = io.BytesIO()
            torch.onnx.export(
                module,
                examples,
                buffer,  # type: ignore[arg-type]
                dynamo=False,
                opset_version=min(opset, 20),
                input_names=input_names,
                output_names=output_names,
            )
            model = onnx.load_from_string(buffer.getvalue())
    return model


@contextlib.contextmanager
def _quiet_torch() -> Any:
    """The exporter logs notes (e.g. torchvision missing) that are not the user's concern."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _from_path(path: Path, signature: ActorSignature, *, opset: int, exporter: Exporter) -> Actor:
    if path.is_dir():
        raise ActorError(
            f"actor {str(path)!r} is a folder; expected an .onnx or .pt file. "
            "Fix: pass the file itself, e.g. --actor policy/actor.onnx."
        )
    if not path.is_file():
        raise ActorError(f"actor file {str(path)!r} does not exist. Fix: check the path.")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
            raise ActorError(
                f"actor file {str(path)!r} is not a readable ONNX model: {exc}"
            ) from None
        return from_onnx(model, repr(str(path)), signature)
    if suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise ActorError(
                f"actor {str(path)!r} is a torch file but torch is not installed. "
                "Fix: pip install 'exploy-dsl[torch]', or pass an .onnx actor."
            ) from None
        module = _load_torch_file(path, torch)
        return from_torch(module, signature, opset=opset, exporter=exporter)
    raise ActorError(
        f"actor file {str(path)!r} has suffix {suffix!r}; expected .onnx or .pt "
        "(a module saved with torch.save, or TorchScript)."
    )


def _load_torch_file(path: Path, torch: Any) -> Any:
    errors = []
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - not TorchScript: try a pickled module next
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise ActorError(
            f"actor {str(path)!r} is neither TorchScript nor a module saved with torch.save "
            f"({'; '.join(errors)})."
        ) from None
    if not is_torch_module(obj):
        raise ActorError(
            f"actor {str(path)!r} holds a {type(obj).__name__}, not a torch.nn.Module "
            "(a state_dict?). Fix: torch.save(the_module) or torch.jit.save(torch.jit.script(m)); "
            "or build the module in PROGRAM.py's actor()."
        )
    return obj
