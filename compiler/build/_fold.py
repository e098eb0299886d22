"""Fold the observation's normalizer and constant term scales into the actor's first layer.

``program.observations(normalize=..., fold_into_actor=True)`` traces an observation without
them and records the affine map ``obs_actor = a * obs + c`` (``TracedProgram.obs_fold``). Here
that map moves into the first op the actor applies to ``obs``: ``Gemm`` (``B' = diag(a) B``,
``C' = C + alpha/beta * (c @ B)``) or ``MatMul`` with a constant right side followed by an
``Add`` of a constant bias. Any other graph is refused with a CompileError naming what was found:
a fold is exact or it is not done. The reference keeps the original actor and applies the map
itself, so parity proves the folded file equal to the unfolded program.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from exploy_dsl import Actor, CompileError, TracedProgram
from exploy_dsl.contract._wires import OBS

_FIX = "Fix: fold_into_actor=False (the normalizer and scales then stay in the observation)."


def fold_observation(traced: TracedProgram, actor: Actor) -> Actor:
    """``actor`` with ``traced.obs_fold`` folded into its first layer (itself without one)."""
    fold = traced.obs_fold
    if fold is None:
        return actor
    model = onnx.ModelProto()
    model.CopyFrom(actor.model)
    graph = model.graph
    obs_inputs = [p.name for p in actor.signature.inputs if p.binds == OBS]
    if len(obs_inputs) != 1:
        raise CompileError(f"fold_into_actor: the actor takes no whole observation. {_FIX}")
    obs = obs_inputs[0]
    what = f"fold_into_actor ({actor.source})"
    if any(obs in node.input for node in _subgraph_nodes(graph)) or obs in {
        o.name for o in graph.output
    }:
        raise CompileError(
            f"{what}: the actor uses {obs!r} inside a subgraph or returns it. {_FIX}"
        )
    users = [n for n in graph.node if obs in n.input]
    if len(users) != 1:
        ops = ", ".join(n.op_type for n in users) or "nothing"
        raise CompileError(
            f"{what}: the observation {obs!r} feeds {len(users)} ops ({ops}); only an actor whose "
            f"one first op on it is Gemm or MatMul+Add can take the fold. {_FIX}"
        )
    node = users[0]
    initializers = {t.name: t for t in graph.initializer}
    a, c = fold.a, fold.c
    if node.op_type == "Gemm":
        _fold_gemm(graph, node, obs, initializers, a, c, what)
    elif node.op_type == "MatMul":
        _fold_matmul(graph, node, obs, initializers, a, c, what)
    else:
        raise CompileError(
            f"{what}: the actor's first op on {obs!r} is {node.op_type}, not Gemm or "
            f"MatMul+Add. {_FIX}"
        )
    onnx.checker.check_model(model)
    reference = actor.original if actor.original is not None else actor.model
    return dataclasses.replace(actor, model=model, original=reference)


def _fold_gemm(
    graph: onnx.GraphProto,
    node: onnx.NodeProto,
    obs: str,
    initializers: dict[str, onnx.TensorProto],
    a: np.ndarray,
    c: np.ndarray,
    what: str,
) -> None:
    attrs = {at.name: helper.get_attribute_value(at) for at in node.attribute}
    if node.input[0] != obs or attrs.get("transA", 0):
        raise CompileError(f"{what}: the Gemm takes the observation as B or transposed. {_FIX}")
    weights = _constant(node.input[1], initializers, graph, what)
    trans_b = bool(attrs.get("transB", 0))
    w = (weights.T if trans_b else weights).astype(np.float64)  # [n_obs, hidden]
    _check_rows(w, a, what)
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    new_w = a[:, None] * w
    shift = alpha * (c @ w)  # what the constant part of the observation adds to Y
    _replace(graph, node, 1, (new_w.T if trans_b else new_w).astype(np.float32), initializers, what)
    if len(node.input) > 2 and node.input[2]:
        bias = _constant(node.input[2], initializers, graph, what).astype(np.float64)
        if beta == 0.0:
            raise CompileError(
                f"{what}: the Gemm has beta = 0, so its C cannot take a bias. {_FIX}"
            )
        new_bias = bias + shift / beta
        _replace(graph, node, 2, new_bias.astype(np.float32), initializers, what)
    elif np.any(shift):
        name = _fresh(graph, node.name or "gemm", "folded_bias")
        graph.initializer.append(numpy_helper.from_array(shift.astype(np.float32), name))
        while len(node.input) < 3:
            node.input.append("")
        node.input[2] = name
        _set_attribute(node, "beta", 1.0)


def _fold_matmul(
    graph: onnx.GraphProto,
    node: onnx.NodeProto,
    obs: str,
    initializers: dict[str, onnx.TensorProto],
    a: np.ndarray,
    c: np.ndarray,
    what: str,
) -> None:
    if node.input[0] != obs:
        raise CompileError(f"{what}: the MatMul takes the observation on its right. {_FIX}")
    w = _constant(node.input[1], initializers, graph, what).astype(np.float64)
    if w.ndim != 2:
        raise CompileError(
            f"{what}: the MatMul's weights have shape {list(w.shape)}, not 2-D. {_FIX}"
        )
    _check_rows(w, a, what)
    shift = c @ w
    if np.any(shift):
        adds = [n for n in graph.node if node.output[0] in n.input]
        if len(adds) != 1 or adds[0].op_type != "Add":
            found = ", ".join(n.op_type for n in adds) or "nothing"
            raise CompileError(
                f"{what}: the MatMul on the observation is followed by {found}, not one Add of "
                f"a constant bias, so the normalizer's mean has nowhere to go. {_FIX}"
            )
        add = adds[0]
        slot = 1 if add.input[0] == node.output[0] else 0
        bias = _constant(add.input[slot], initializers, graph, what).astype(np.float64)
        _replace(graph, add, slot, (bias + shift).astype(np.float32), initializers, what)
    _replace(graph, node, 1, (a[:, None] * w).astype(np.float32), initializers, what)


def _check_rows(w: np.ndarray, a: np.ndarray, what: str) -> None:
    if w.shape[0] != a.size:
        raise CompileError(
            f"{what}: the first layer takes {w.shape[0]} values, the observation has {a.size}. "
            f"{_FIX}"
        )


def _constant(
    name: str, initializers: dict[str, onnx.TensorProto], graph: onnx.GraphProto, what: str
) -> np.ndarray:
    tensor = initializers.get(name)
    if tensor is None or name in {i.name for i in graph.input}:
        raise CompileError(
            f"{what}: {name!r} of the actor's first layer is not a constant initializer. {_FIX}"
        )
    value = numpy_helper.to_array(tensor)
    if value.dtype != np.float32:
        raise CompileError(f"{what}: {name!r} is {value.dtype}, not float32. {_FIX}")
    return value


def _replace(
    graph: onnx.GraphProto,
    node: onnx.NodeProto,
    slot: int,
    value: np.ndarray,
    initializers: dict[str, onnx.TensorProto],
    what: str,
) -> None:
    """Point ``node.input[slot]`` at a new initializer holding ``value`` (the old one may be
    shared with another node, so it is never changed in place)."""
    old = node.input[slot]
    if value.shape != tuple(initializers[old].dims):
        value = np.broadcast_to(value, tuple(initializers[old].dims)) if value.size == 1 else value
    name = _fresh(graph, old, "folded")
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
    node.input[slot] = name
    still_used = any(old in n.input for n in graph.node) or any(
        old in n.input for n in _subgraph_nodes(graph)
    )
    if not still_used:
        keep = [t for t in graph.initializer if t.name != old]
        del graph.initializer[:]
        graph.initializer.extend(keep)


def _fresh(graph: onnx.GraphProto, base: str, suffix: str) -> str:
    taken = {t.name for t in graph.initializer} | {v for n in graph.node for v in n.output}
    taken |= {i.name for i in graph.input}
    name, i = f"{base}_{suffix}", 1
    while name in taken:
        i += 1
        name = f"{base}_{suffix}{i}"
    return name


def _set_attribute(node: onnx.NodeProto, name: str, value: float) -> None:
    kept = [at for at in node.attribute if at.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _subgraph_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node inside the subgraphs (If/Loop/Scan bodies) of ``graph``'s nodes."""
    for node in graph.node:
        for attribute in node.attribute:
            for sub in [attribute.g, *attribute.graphs] if attribute.type in (5, 10) else []:
                yield from sub.node
                yield from _subgraph_nodes(sub)
