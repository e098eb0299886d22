"""Prepare the actor: a torch module (exported here) or a ready ONNX model, checked for size."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import onnx
import onnx.checker
import onnx.shape_inference
import onnx.version_converter

from compiler.build._batch import example_shape, fit_actor_batch
from compiler.build._torch_state import Lifted, find_internal_state
from exploy_dsl import ActorError, MissingDependencyError, TracedProgram
from exploy_dsl.authoring._actor import (
    EXPORTERS,
    Actor,
    ActorPort,
    ActorSignature,
    Exporter,
    bind_signature,
    check_forward_arity,
    default_names,
    is_torch_module,
    refuse_rsl_rl_model,
)
from exploy_dsl.authoring._ports import Memory, normalize_init
from exploy_dsl.authoring._torch_state import torch_module_name as _module_name
from exploy_dsl.contract._batch import BATCH_DIM, DYNAMIC, Batch
from exploy_dsl.contract._graphs import default_opset


def load_actor(
    actor: object,
    *,
    n_obs: int | None = None,
    signature: ActorSignature | None = None,
    batch: Batch = 1,
    opset: int = 20,
    exporter: Exporter = "dynamo",
) -> Actor:
    """Accept a ``torch.nn.Module``, an ``onnx.ModelProto`` or a ``.onnx``/``.pt`` path.

    ``signature`` is how the program calls the actor (``TracedProgram.actor_signature``);
    without it, a feed-forward actor of ``n_obs`` observations. ``batch`` is the program's
    (``"dynamic"``: the signature's shapes are one env's): a torch module is exported with
    it, an ONNX actor must run at it (``_batch.fit_actor_batch``).
    """
    if signature is None:
        if n_obs is None:
            raise ActorError("load_actor needs the program's actor signature or n_obs.")
        size = 1 if batch == DYNAMIC else batch
        signature = ActorSignature.feedforward(n_obs, 0, batch=size, input_name="")
        signature = dataclasses.replace(
            signature, outputs=(dataclasses.replace(signature.outputs[0], name=""),)
        )
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, onnx.ModelProto):
        return from_onnx(actor, "ModelProto", signature, batch=batch)
    if isinstance(actor, (str, os.PathLike)):
        return _from_path(Path(actor), signature, opset=opset, exporter=exporter, batch=batch)
    if is_torch_module(actor):
        return from_torch(actor, signature, opset=opset, exporter=exporter, batch=batch)
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
) -> tuple[TracedProgram, Actor]:
    """The program and the actor as compile stitches them and check runs them.

    A torch module is exported at ``opset`` (what the file is labelled with, at most the
    stages' opset) with ``exporter``; then the actor's sizes are checked against the program
    and the graph is converted to ``stage_opset``, the opset the stages are built with. State
    found inside a torch module becomes program memory (the returned program has it), and its
    export is compared with the module over steps with resets before anything uses it.
    """
    loaded = load_actor(
        actor,
        signature=traced.actor_signature,
        batch=traced.program.batch_spec,
        opset=min(opset, stage_opset),
        exporter=exporter,
    )
    check_actor_sizes(traced, loaded)
    loaded = at_opset(loaded, stage_opset)
    if loaded.lifted:
        _verify_lifted(loaded)
    return with_actor_state(traced, loaded), loaded


def _verify_lifted(actor: Actor) -> None:
    """A lifted state's export must step like the module it came from, or nothing is built."""
    from compiler.check._actor_check import check_actor
    from compiler.check._compare import Tolerance

    report = check_actor(actor, Tolerance(1e-5, 1e-5), samples=48)
    if not report.ok:
        worst = report.errors
        detail = f" (max abs {worst.max_abs:.3g} on {worst.name})" if worst is not None else ""
        raise ActorError(
            f"the state found inside {actor.source} was lifted into memory, but the exported "
            f"graph does not step like the module{detail}. Fix: export the policy with its state "
            "as explicit inputs and outputs, or pass the ONNX file your exporter writes."
        )


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


def from_onnx(
    model: onnx.ModelProto, source: str, signature: ActorSignature, *, batch: Batch = 1
) -> Actor:
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ActorError(
            f"actor {source} is not a valid ONNX model: {' '.join(str(exc).split())[:500]}. "
            "Fix: re-export the actor (onnx.checker.check_model(model, full_check=True) must pass)."
        ) from None
    model = fit_actor_batch(model, signature, batch, source)
    return Actor(model, bind_signature(signature, model, source), source)


def from_torch(
    module: Any,
    signature: ActorSignature,
    *,
    opset: int = 20,
    exporter: Exporter = "dynamo",
    batch: Batch = 1,
) -> Actor:
    """Export a torch module with ``torch.onnx.export`` (dynamo by default).

    ``forward`` takes the actor inputs in ``signature`` order (the observation or the bound
    inputs, then each state memory) and returns the actions, then each new state. At a
    fixed batch the module is exported at the signature's shapes; ``batch="dynamic"``
    exports it with a symbolic batch axis (from examples of 2 envs).
    """
    import torch

    if exporter not in EXPORTERS:
        raise ActorError(f"exporter must be 'dynamo' or 'torchscript', got {exporter!r}.")
    signature = default_names(signature)
    # Everything below runs on a copy: exporting must never change the user's module (its
    # training flag, or a recurrent state it keeps inside).
    module = _private_copy(module, torch).eval()
    refuse_rsl_rl_model(module)
    dynamic = batch == DYNAMIC
    examples = tuple(
        torch.zeros(
            example_shape(p.shape, p.batch_axis, dynamic),
            dtype=getattr(torch, "bool" if p.dtype == "bool" else p.dtype),
        )
        for p in signature.inputs
    )
    lifted = find_internal_state(module, torch, examples)
    if lifted is not None:
        if signature.is_recurrent:
            raise ActorError(
                f"torch actor {_module_name(module)} keeps its state inside itself "
                f"({', '.join(s.path for s in lifted.state)}) and program.actor(state=...) "
                "declares state too. Fix: drop the declaration (the inside state becomes memory "
                "by itself) or export a module with explicit state."
            )
        module, signature, memories = _lift(lifted, signature, dynamic)
        examples = (
            *examples,
            *(torch.zeros(example_shape(m.file_shape, m.batch_axis, dynamic)) for m in memories),
        )
        exporter = "torchscript"  # a generated wrapper: the TorchScript exporter takes it
    check_forward_arity(module, signature, "compile")
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
    position, dropped = signature.actions_position, tuple[str, ...]()
    if position is not None and wanted == 1 and (len(outs) > 1 or position > 0):
        # program.actor(actions=N): forward's other outputs (SB3's values) are never exported.
        if position >= len(outs):
            raise ActorError(
                f"torch actor {_module_name(module)}: program.actor(actions={position}) picks "
                f"output {position}, but forward returns {len(outs)} values. Fix: give the "
                f"position of the action vector, 0 to {len(outs) - 1}."
            )
        from compiler.build._torch_outputs import OneOutput

        dropped = tuple(f"forward output {i}" for i in range(len(outs)) if i != position)
        module, outs = OneOutput(module, position).eval(), (outs[position],)
        signature = dataclasses.replace(signature, actions_position=None)
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
        model = _export(torch, module, examples, signature, opset, exporter, dynamic)
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
    inner = lifted.module.inner if lifted is not None else module
    name = _module_name(inner.inner if dropped else inner)
    actor = from_onnx(model, torch_source(name, exporter), signature, batch=batch)
    if dropped:
        actor = dataclasses.replace(
            actor, signature=dataclasses.replace(actor.signature, dropped=dropped)
        )
    return dataclasses.replace(
        actor, exporter=exporter, module=module, lifted=memories if lifted is not None else ()
    )


def _lift(
    lifted: Lifted, signature: ActorSignature, dynamic: bool = False
) -> tuple[Any, ActorSignature, tuple[Memory, ...]]:
    """Program memory for each state tensor found inside the module, and the pure module."""
    batch = signature.inputs[0].shape[0]
    seen = example_shape((batch,), 0, dynamic)[0]  # the batch of the examples the module ran
    memories: list[Memory] = []
    inputs, outputs = list(signature.inputs), list(signature.outputs)
    for state in lifted.state:
        leaf = re.sub(r"[^A-Za-z0-9_]+", "_", state.path.rsplit(".", 1)[-1]).strip("_") or "state"
        axis = _batch_axis(state.shape, seen)
        shape = state.shape[:axis] + state.shape[axis + 1 :]
        memory = Memory(
            f"actor.{leaf}",
            shape,
            "float32",
            {"lifted_from": state.path, "found_as": lifted.how},
            batch,
            axis,
            dynamic,
            init=normalize_init(None, shape, batch, "float32", f"actor state {leaf!r}", axis),
        )
        memories.append(memory)
        inputs.append(ActorPort(f"{leaf}_in", memory.file_shape, memory.key, batch_axis=axis))
        outputs.append(ActorPort(f"{leaf}_out", memory.file_shape, memory.key, batch_axis=axis))
    lifted_signature = dataclasses.replace(signature, inputs=tuple(inputs), outputs=tuple(outputs))
    return lifted.module, lifted_signature, tuple(memories)


def _batch_axis(shape: tuple[int, ...], batch: int) -> int:
    """Where the batch sits in a state tensor: [layers, batch, hidden] for torch's RNNs."""
    if len(shape) == 3 and shape[1] == batch:
        return 1
    if shape and shape[0] == batch:
        return 0
    raise ActorError(
        f"a state tensor of shape {list(shape)} found inside the actor has no batch dimension of "
        f"size {batch}. Fix: export the policy with its state as explicit inputs and outputs."
    )


def with_actor_state(traced: TracedProgram, actor: Actor) -> TracedProgram:
    """The program as the file carries it: with the state lifted out of the actor as memory."""
    if not actor.lifted:
        return traced
    program = traced.program.with_memories(actor.lifted)
    return dataclasses.replace(traced, program=program, actor_signature=actor.signature)


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
    dynamic: bool = False,
) -> onnx.ModelProto:
    input_names = [p.name for p in signature.inputs]
    output_names = [p.name for p in signature.outputs]
    # A dynamic batch: one symbolic dimension, at each port's batch axis, in and out.
    axes = {p.name: {p.batch_axis: BATCH_DIM} for p in (*signature.inputs, *signature.outputs)}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet_torch():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            options: dict[str, Any] = {}
            if dynamic:
                envs = torch.export.Dim(BATCH_DIM)
                options["dynamic_shapes"] = tuple({p.batch_axis: envs} for p in signature.inputs)
            program = torch.onnx.export(
                module,
                examples,
                dynamo=True,
                opset_version=opset,
                input_names=input_names,
                output_names=output_names,
                verbose=False,
                **options,
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
                **({"dynamic_axes": axes} if dynamic else {}),
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


def _from_path(
    path: Path, signature: ActorSignature, *, opset: int, exporter: Exporter, batch: Batch
) -> Actor:
    if path.is_dir():
        raise ActorError(
            f"actor {str(path)!r} is a folder; expected an .onnx or .pt file. "
            "Fix: pass the file itself, e.g. --actor policy/actor.onnx."
        )
    if not path.is_file():
        raise ActorError(f"actor file {str(path)!r} does not exist. Fix: check the path.")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        _refuse_missing_external_data(path)
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
            raise ActorError(
                f"actor file {str(path)!r} is not a readable ONNX model: {exc}"
            ) from None
        return from_onnx(model, repr(str(path)), signature, batch=batch)
    if suffix in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise MissingDependencyError(
                f"actor {str(path)!r} is a torch file but torch is not installed. "
                "Fix: pip install torch==2.13.0, or pass an .onnx actor."
            ) from None
        module = _load_torch_file(path, torch)
        return from_torch(module, signature, opset=opset, exporter=exporter, batch=batch)
    raise ActorError(
        f"actor file {str(path)!r} has suffix {suffix!r}; expected .onnx or .pt "
        "(a module saved with torch.save, or TorchScript)."
    )


def _refuse_missing_external_data(path: Path) -> None:
    """torch's exporter keeps weights in ``<name>.onnx.data`` by default; it must come along."""
    try:
        header = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a broken file is reported by the full load
        return
    for init in header.graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in init.external_data if e.key == "location"), "")
        data = path.parent / location
        if not data.is_file():
            raise ActorError(
                f"actor {str(path)!r} keeps its weights (e.g. {init.name!r}) in the external "
                f"file {str(data)!r}, which is missing. Fix: copy the .data file along with the "
                ".onnx file, or re-export with torch.onnx.export(..., external_data=False)."
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
