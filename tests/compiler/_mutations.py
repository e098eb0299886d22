"""Plant bugs in compiled files by editing the ModelProto, as a faulty compiler would."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def _if_node(model: onnx.ModelProto) -> onnx.NodeProto:
    (node,) = [n for n in model.graph.node if n.op_type == "If"]
    return node


def _branches(model: onnx.ModelProto) -> dict[str, onnx.GraphProto]:
    return {a.name: a.g for a in _if_node(model).attribute}


def _producer(graph: onnx.GraphProto, name: str) -> onnx.NodeProto:
    return next(n for n in graph.node if name in n.output)


def _through_identities(graph: onnx.GraphProto, name: str) -> str:
    """The value an Identity chain of ``graph`` passes on as ``name``."""
    while True:
        node = next((n for n in graph.node if name in n.output), None)
        if node is None or node.op_type != "Identity":
            return name
        name = node.input[0]


def _if_position(model: onnx.ModelProto, wire: str) -> int:
    """Which output of the If the wire is (directly, or through top-level Identities)."""
    outputs = list(_if_node(model).output)
    name = _through_identities(model.graph, wire)
    assert name in outputs, f"{wire} is not an output of the If"
    return outputs.index(name)


def _set_constant(node: onnx.NodeProto, value: np.ndarray) -> None:
    (attr,) = [a for a in node.attribute if a.name == "value"]
    attr.t.CopyFrom(numpy_helper.from_array(value))


def change_action_constant(model: onnx.ModelProto, old: float, new: float) -> onnx.ModelProto:
    """In the policy branch, the constant multiplying the actor's output: ``old`` -> ``new``."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    then = _branches(mutated)["then_branch"]
    actor_out = _through_identities(then, then.output[_if_position(mutated, "actions")].name)
    (mul,) = [n for n in then.node if n.op_type == "Mul" and actor_out in n.input]
    const = _producer(then, next(i for i in mul.input if i != actor_out))
    value = numpy_helper.to_array(const.attribute[0].t)
    assert const.op_type == "Constant" and np.allclose(value, old), (const, value)
    _set_constant(const, np.full_like(value, new))
    return mutated


def swap_outputs(model: onnx.ModelProto, a: str, b: str) -> onnx.ModelProto:
    """Wire ``a`` carries ``b``'s value and ``b`` ``a``'s, in both modes (names stay in place):
    the nodes that make the two wires swap their output names."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    swapped = {a: b, b: a}
    for graph in [mutated.graph]:
        for node in graph.node:
            node.output[:] = [swapped.get(o, o) for o in node.output]
            node.input[:] = [swapped.get(i, i) for i in node.input]
    return mutated


def set_mod_divisor(model: onnx.ModelProto, divisor: int) -> onnx.ModelProto:
    """The top-level ``Mod(ctx.step_count, decimation)`` computes with ``divisor`` instead."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    (mod,) = [n for n in mutated.graph.node if n.op_type == "Mod"]
    _set_constant(_producer(mutated.graph, mod.input[1]), np.array(divisor, np.int32))
    return mutated


def set_initial_value(
    model: onnx.ModelProto, wire: str, index: int, value: float
) -> onnx.ModelProto:
    """Element ``index`` of the initializer holding ``wire``'s initial value becomes ``value``."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    (init,) = [i for i in mutated.graph.initializer if i.name == wire]
    array = numpy_helper.to_array(init).copy()
    array.reshape(-1)[index] = value
    init.CopyFrom(numpy_helper.from_array(array, wire))
    return mutated


def feed_memory_from(model: onnx.ModelProto, memory_out: str, source: str) -> onnx.ModelProto:
    """In the policy branch, ``memory_out`` is fed from ``source`` instead of its own value."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    then = _branches(mutated)["then_branch"]
    position = _if_position(mutated, memory_out)
    fed = f"{memory_out}_planted"
    then.node.append(onnx.helper.make_node("Identity", [source], [fed]))
    then.output[position].name = fed
    return mutated


def scale_initializer(model: onnx.ModelProto, factor: float) -> onnx.ModelProto:
    """An actor whose first float weight is scaled: what a faulty exporter might write."""
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    init = next(i for i in mutated.graph.initializer if i.data_type == onnx.TensorProto.FLOAT)
    array = numpy_helper.to_array(init) * np.float32(factor)
    init.CopyFrom(numpy_helper.from_array(array.astype(np.float32), init.name))
    return mutated


def set_constant_element(
    model: onnx.ModelProto, like: np.ndarray, index: int, value: float
) -> onnx.ModelProto:
    """The tensor holding ``like`` (an actor weight: an initializer of a branch, or a Constant
    node) gets ``value`` at ``index``.

    What a diverged checkpoint looks like once inside a file that compile did not refuse.
    """
    mutated = onnx.ModelProto.FromString(model.SerializeToString())
    graphs = [mutated.graph]
    found: list[onnx.TensorProto] = []
    while graphs:
        graph = graphs.pop()
        tensors = list(graph.initializer)
        for node in graph.node:
            graphs += [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
            if node.op_type == "Constant":
                tensors += [a.t for a in node.attribute if a.name == "value"]
        for tensor in tensors:
            array = numpy_helper.to_array(tensor)
            if array.shape == like.shape and np.array_equal(array, like):
                found.append(tensor)
    assert len(found) == 1, f"{len(found)} tensors hold that array"
    array = numpy_helper.to_array(found[0]).copy()
    array.reshape(-1)[index] = value
    found[0].CopyFrom(numpy_helper.from_array(array, found[0].name))
    return mutated
