"""Call a model (ONNX, or a torch module exported here) on spox Vars inside a stage.

The model's graph is inlined into the stage graph, so the compiled file and the reference
interpreter both run it and its weights enter the stage's content hash. Each call made while
a stage is traced is recorded (``ModelCall``) for the file's stage summary and ``explain``.
"""

from __future__ import annotations

import os
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.checker
import onnx.inliner
import onnx.numpy_helper
import onnx.shape_inference
import onnx.version_converter
import spox
from spox import Var

from exploy_dsl._errors import StageError
from exploy_dsl.authoring._actor import is_torch_module
from exploy_dsl.authoring._torch_export import export_checked, export_mismatch
from exploy_dsl.authoring._torch_state import torch_module_name
from exploy_dsl.contract._graphs import default_opset, graphs, is_default_domain, iter_nodes

# The opset the stages are built with (spox.opset.ai.onnx.v20); inlined models are converted.
STAGE_OPSET = 20
DYNAMIC_EXAMPLE = 2  # envs a torch module is exported on for a symbolic dimension
_PASS_ONNX = "Fix: pass an onnx.ModelProto, a path to an .onnx file or a torch.nn.Module."


@dataclass(frozen=True, slots=True)
class ModelPort:
    """One input or output of a called model: its name in the model, dtype and shape."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...]


@dataclass(frozen=True, slots=True, eq=False)
class ModelCall:
    """A model a stage called: where it came from and the graph as it was inlined."""

    source: str  # "torch module Linear", "encoder.onnx" (base name) or "ModelProto 'name'"
    model: onnx.ModelProto
    inputs: tuple[ModelPort, ...]
    outputs: tuple[ModelPort, ...]


_CALLS: ContextVar[list[ModelCall] | None] = ContextVar("exploy_dsl_model_calls", default=None)


def begin_model_calls() -> None:
    """Start recording the models called by the stage about to be traced."""
    _CALLS.set([])


def end_model_calls() -> tuple[ModelCall, ...]:
    """The models called since ``begin_model_calls``, in call order; stops recording."""
    calls = _CALLS.get()
    _CALLS.set(None)
    return tuple(calls or ())


def call_model(model: Any, *args: Var) -> Var | tuple[Var, ...]:
    """Run ``model`` on Vars inside a stage: ``call_model(encoder, v[scan])``.

    ``model`` is an ``onnx.ModelProto``, a path to an ``.onnx`` file, or a ``torch.nn.Module``
    (exported to ONNX now, from a copy, and checked against the module on random inputs). Its
    inputs are the Vars, by position; returns its one output, or a tuple of its outputs. The
    model's weights become constants of the stage (and of its content hash).
    """
    specs = [_var_spec(i, a) for i, a in enumerate(args)]
    if is_torch_module(model):
        source = f"torch module {torch_module_name(model)}"
        what = f"model {source}"
        examples = [np.zeros(_static_shape(s, what, i), s[0]) for i, s in enumerate(specs)]
        # A dynamic batch: exported on 2 envs, that axis left symbolic (torch would fix a 1).
        axes = {
            f"input_{i}": {a: d for a, d in enumerate(s[1] or ()) if isinstance(d, str)}
            for i, s in enumerate(specs)
            if any(isinstance(d, str) for d in s[1] or ())
        }
        exported = export_checked(
            model, examples, what=what, error=StageError, dynamic_axes=axes or None
        )
        prepared = _prepare(exported, specs, what)
        mismatch = export_mismatch(model, prepared, examples)
        if mismatch is not None:
            raise StageError(
                f"{what}: its ONNX export does not compute what the module does: {mismatch}. "
                "Fix: export it to ONNX yourself, check it, and pass the .onnx file."
            )
    elif isinstance(model, onnx.ModelProto):
        source = f"ModelProto {model.graph.name!r}" if model.graph.name else "ModelProto"
        what = f"model {source}"
        prepared = _prepare(model, specs, what)
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        source = path.name
        what = f"model {str(path)!r}"
        prepared = _prepare(_load(path, what), specs, what)
    else:
        raise StageError(f"call_model got a {type(model).__name__}, not a model. {_PASS_ONNX}")
    inputs = _graph_inputs(prepared)
    results = spox.inline(prepared)(**{i.name: a for i, a in zip(inputs, args, strict=True)})
    calls = _CALLS.get()
    if calls is not None:
        calls.append(
            ModelCall(
                source,
                prepared,
                tuple(_port(v) for v in inputs),
                tuple(_port(v) for v in prepared.graph.output),
            )
        )
    values = tuple(results.values())
    return values[0] if len(values) == 1 else values


def _var_spec(index: int, var: object) -> tuple[np.dtype[Any], tuple[Any, ...] | None]:
    if not isinstance(var, Var):
        raise StageError(
            f"call_model input {index} is {type(var).__name__}; pass Vars (e.g. v[port], or "
            "op.const(array) for a constant)."
        )
    tensor = var.unwrap_tensor()
    return np.dtype(tensor.dtype), tensor.shape


def _static_shape(spec: tuple[np.dtype[Any], Any], what: str, index: int) -> tuple[int, ...]:
    shape = spec[1]
    if shape is None or not all(isinstance(d, (int, str)) for d in shape):
        raise StageError(
            f"{what}: input {index} has shape {_shown(shape)}; a torch module is exported on "
            "inputs of static shape. Fix: reshape the Var to a static shape."
        )
    # A symbolic dimension (a dynamic batch) is exported on 2 envs and left symbolic.
    return tuple(d if isinstance(d, int) else DYNAMIC_EXAMPLE for d in shape)


def _load(path: Path, what: str) -> onnx.ModelProto:
    if not path.is_file():
        raise StageError(f"{what}: no such file. Fix: check the path (relative to the cwd).")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
        raise StageError(
            f"{what} is not a readable ONNX model ({type(exc).__name__}). {_PASS_ONNX}"
        ) from None


def _prepare(
    given: onnx.ModelProto, specs: list[tuple[np.dtype[Any], Any]], what: str
) -> onnx.ModelProto:
    """A checked copy of ``given``, at the stages' opset, typed by the Vars it is called on."""
    model = onnx.ModelProto()
    model.CopyFrom(given)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise StageError(
            f"{what} is not a valid ONNX model: {' '.join(str(exc).split())[:300]}. Fix: "
            "re-export it (onnx.checker.check_model(model, full_check=True) must pass)."
        ) from None
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)  # spox.inline takes no functions
    custom = sorted(
        {
            f"{n.domain}.{n.op_type}"
            for n in iter_nodes(model.graph)
            if not is_default_domain(n.domain)
        }
    )
    if custom:
        raise StageError(
            f"{what} uses op(s) outside the ONNX standard: {', '.join(custom)}; neither exploy's "
            "controller nor the reference interpreter can run them. Fix: export it with "
            "standard ONNX ops only."
        )
    _refuse_non_finite(model, what)
    model = _at_stage_opset(model, what)
    inputs = _graph_inputs(model)
    if len(inputs) != len(specs):
        raise StageError(
            f"{what} takes {len(inputs)} input(s) {_described(inputs)}, got {len(specs)} Var(s) "
            f"{', '.join(_spec_text(s) for s in specs) or '(none)'}. Fix: pass one Var per model "
            "input, in the model's order."
        )
    for index, (value, (dtype, shape)) in enumerate(zip(inputs, specs, strict=True)):
        _check_input(value, index, dtype, shape, what)
        value.type.CopyFrom(
            onnx.helper.make_tensor_type_proto(onnx.helper.np_dtype_to_tensor_dtype(dtype), shape)
        )
    return _with_inferred_outputs(model, specs, what)


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not weights (older exporters list initializers as inputs)."""
    weights = {init.name for init in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def _refuse_non_finite(model: onnx.ModelProto, what: str) -> None:
    for graph in graphs(model.graph):
        tensors = [(init.name, init) for init in graph.initializer]
        for node in graph.node:
            if node.op_type == "Constant":
                tensors += [
                    (node.output[0], a.t)
                    for a in node.attribute
                    if a.type == onnx.AttributeProto.TENSOR
                ]
        for name, tensor in tensors:
            array = onnx.numpy_helper.to_array(tensor)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                bad = int(np.size(array) - np.isfinite(array).sum())
                raise StageError(
                    f"{what} has {bad} NaN/inf value(s) in weight {name!r} "
                    f"{array.dtype}{list(array.shape)}: the file would compute NaN. Fix: check "
                    "the training checkpoint (a diverged run?) and pass finite weights."
                )


def _at_stage_opset(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    current = default_opset(model, missing=STAGE_OPSET)
    if current == STAGE_OPSET:
        return model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = onnx.version_converter.convert_version(model, STAGE_OPSET)
        onnx.checker.check_model(converted, full_check=True)
    except Exception as exc:  # noqa: BLE001 - the converter's errors vary by op
        raise StageError(
            f"{what} is at opset {current} and cannot be converted to opset {STAGE_OPSET} (the "
            f"stages' opset): {' '.join(str(exc).split())[:300]}. Fix: export it at opset "
            f"{STAGE_OPSET}."
        ) from None
    return converted


def _check_input(
    value: onnx.ValueInfoProto, index: int, dtype: np.dtype[Any], shape: Any, what: str
) -> None:
    expected_type = value.type.tensor_type
    name = f"{what} input {index} {value.name!r}"
    if not value.type.HasField("tensor_type"):
        raise StageError(f"{name} is not a tensor. Fix: pass a model whose inputs are tensors.")
    declared = onnx.helper.tensor_dtype_to_np_dtype(expected_type.elem_type)
    dims = _dims(value)
    fix = "Fix: call it on a Var of that dtype and shape (op.cast / op.reshape), or pass a model "
    fix += "made for these inputs."
    if declared != dtype:
        raise StageError(
            f"{name} is {declared}{_shown(dims)}, got a {_spec_text((dtype, shape))} Var. {fix}"
        )
    if dims is None:
        return
    if (
        shape is None
        or len(shape) != len(dims)
        or any(isinstance(d, int) and d != s for d, s in zip(dims, shape, strict=True))
    ):
        raise StageError(
            f"{name} has shape {_shown(dims)}, got a {_spec_text((dtype, shape))} Var. {fix}"
        )


def _with_inferred_outputs(
    model: onnx.ModelProto, specs: list[tuple[np.dtype[Any], Any]], what: str
) -> onnx.ModelProto:
    """Output shapes inferred from the Vars' shapes (a model's symbolic batch becomes 1)."""
    for output in model.graph.output:
        if output.type.HasField("tensor_type"):
            output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as exc:
        shown = ", ".join(_spec_text(s) for s in specs)
        raise StageError(
            f"{what} fails on inputs {shown}: {' '.join(str(exc).split())[:300]}. Fix: call it "
            "on Vars of the shapes it was made for."
        ) from None
    types = {o.name: o.type for o in inferred.graph.output}
    for output in model.graph.output:
        if output.name in types:
            output.type.CopyFrom(types[output.name])
    return model


def _port(value: onnx.ValueInfoProto) -> ModelPort:
    elem = value.type.tensor_type.elem_type
    dtype = str(onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else "?"
    return ModelPort(value.name, dtype, tuple(_dims(value) or ()))


def _dims(value: onnx.ValueInfoProto) -> tuple[int | str | None, ...] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
    )


def _described(values: list[onnx.ValueInfoProto]) -> str:
    parts = []
    for value in values:
        elem = value.type.tensor_type.elem_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(elem) if elem else "?"
        parts.append(f"{value.name} {dtype}{_shown(_dims(value))}")
    return "(" + ", ".join(parts) + ")"


def _spec_text(spec: tuple[np.dtype[Any], Any]) -> str:
    return f"{spec[0]}{_shown(spec[1])}"


def _shown(shape: Any) -> str:
    if shape is None:
        return "[?]"
    return "[" + ", ".join(str(d) if isinstance(d, (int, str)) else "?" for d in shape) + "]"
