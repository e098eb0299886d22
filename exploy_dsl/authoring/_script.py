"""Call an onnxscript ``@script`` function on spox Vars inside a stage."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import spox
from spox import Var

from exploy_dsl._errors import StageError


def call_script(fn: Any, *args: Var) -> Var | tuple[Var, ...]:
    """Inline an onnxscript function: ``call_script(projected_gravity, v[quat])``.

    Inputs the function left untyped take the type of the Var passed in, and so do inputs
    with a named dimension (``FLOAT['N', 2]``: any batch), whose outputs are then inferred.
    """
    to_model = getattr(fn, "to_model_proto", None)
    if to_model is None:
        raise StageError(
            f"call_script expects an onnxscript @script function, got {type(fn).__name__}. "
            "Fix: decorate it with `@onnxscript.script()`."
        )
    model: onnx.ModelProto = to_model()
    inputs = model.graph.input
    if len(inputs) != len(args):
        raise StageError(
            f"onnxscript function {fn.name!r} takes {len(inputs)} inputs, got {len(args)} Vars."
        )
    cleared: set[str] = set()  # outputs whose declared shape named a dimension
    for proto, var in zip(inputs, args, strict=True):
        if not isinstance(var, Var):
            raise StageError(
                f"onnxscript function {fn.name!r}: input {proto.name!r} got "
                f"{type(var).__name__}; pass Vars (e.g. v[port])."
            )
        tensor = var.unwrap_tensor()
        _refuse_fixed_batch(fn, proto, tensor.shape)
        symbolic = _symbolic(proto)
        if not proto.type.HasField("tensor_type") or not proto.type.tensor_type.elem_type:
            elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype))
            proto.type.CopyFrom(onnx.helper.make_tensor_type_proto(elem, tensor.shape))
        elif symbolic and tensor.shape is not None:
            # FLOAT['N', 2]: typed by the Var (its batch), and the outputs inferred from it.
            elem = proto.type.tensor_type.elem_type
            proto.type.CopyFrom(onnx.helper.make_tensor_type_proto(elem, tensor.shape))
            for out in model.graph.output:
                if _symbolic(out):
                    out.type.tensor_type.ClearField("shape")
                    cleared.add(out.name)
    untyped = [
        out.name
        for out in model.graph.output
        if not out.type.HasField("tensor_type")
        or not out.type.tensor_type.elem_type
        or out.name in cleared
    ]
    if untyped:
        # spox.inline copies output types from the model, so infer those the function left open.
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except onnx.shape_inference.InferenceError as exc:
            raise StageError(
                f"onnxscript function {fn.name!r} fails on inputs "
                f"{', '.join(_describe(a) for a in args)}: {' '.join(str(exc).split())}"
            ) from None
        types = {out.name: out.type for out in inferred.graph.output}
        for out in model.graph.output:
            if out.name in untyped:
                out.type.CopyFrom(types[out.name])
    results = spox.inline(model)(**{p.name: a for p, a in zip(inputs, args, strict=True)})
    values = tuple(results.values())
    return values[0] if len(values) == 1 else values


def _symbolic(value: onnx.ValueInfoProto) -> bool:
    """A declared shape with a named dimension (``FLOAT['N', 2]``)."""
    tensor = value.type.tensor_type
    return tensor.HasField("shape") and any(d.HasField("dim_param") for d in tensor.shape.dim)


def _refuse_fixed_batch(fn: Any, proto: onnx.ValueInfoProto, shape: Any) -> None:
    """A function typed for one env (``FLOAT[1, 2]``) called on a batch: say so, and how."""
    if not proto.type.tensor_type.HasField("shape") or shape is None:
        return
    dims = [
        d.dim_value if d.HasField("dim_value") else None for d in proto.type.tensor_type.shape.dim
    ]
    if len(dims) != len(shape) or not dims or dims[0] != 1 or shape[0] == 1:
        return
    declared = ", ".join("?" if d is None else str(d) for d in dims)
    raise StageError(
        f"onnxscript function {fn.name!r} declares input {proto.name!r} with shape "
        f"[{declared}], but the value passed has {shape[0]!r} on the first (batch) axis: the "
        "function was typed for one env and the program is traced at another batch. Fix: give "
        "the batch axis a symbol (e.g. FLOAT['N', 2]) or leave the input's shape open (FLOAT)."
    )


def _describe(var: Var) -> str:
    tensor = var.unwrap_tensor()
    return f"{np.dtype(tensor.dtype)}{list(tensor.shape or ())}"
