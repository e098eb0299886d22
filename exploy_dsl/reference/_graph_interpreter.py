"""Plan-once, run-many NumPy interpreter for a single ONNX graph."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnx.inliner
from onnx import numpy_helper

from exploy_dsl._errors import GraphInterpreterError
from exploy_dsl.contract._graphs import default_opset, is_default_domain, subgraphs
from exploy_dsl.reference._numpy_ops import (
    LEGACY_OPS,
    MULTI_OUTPUT_OPS,
    OPS,
    identity,
    indexes,
    makes_new_array,
    supports,
    with_constant_inputs,
)

__all__ = ["GraphInterpreter", "GraphInterpreterError"]

_SUBGRAPH_ATTRS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
# Constant folding keeps results up to this many elements; bigger ones are recomputed per run.
_FOLD_MAX_ELEMENTS = 1 << 20


_NOT_KNOWN = object()  # an input whose value is known only at run time
# Clip before opset 11 takes its bounds as attributes, defaulting to the float range (so an
# infinity becomes +-FLT_MAX, as onnxruntime and onnx.reference give).
_FLT_MAX = float(np.finfo(np.float32).max)
_CLIP_6_BOUNDS = {"min": -_FLT_MAX, "max": _FLT_MAX}


class _Unsupported(Exception):
    """An attribute kind the NumPy table cannot take (the node goes to the fallback)."""


class _Step(NamedTuple):
    fn: Callable[..., Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    multi: bool  # fn returns one value per output (a sequence) rather than a single value
    label: str  # for error messages


class _FallbackNode:
    """Runs one node with ``onnx.reference.ReferenceEvaluator``."""

    def __init__(self, node: onnx.NodeProto, input_names: Sequence[str], model: onnx.ModelProto):
        from onnx.reference import ReferenceEvaluator

        self.op_type = node.op_type
        self.input_names = tuple(input_names)
        untyped = onnx.TypeProto()
        graph = onnx.helper.make_graph(
            [node],
            f"fallback_{node.op_type}",
            [onnx.helper.make_value_info(name, untyped) for name in self.input_names],
            [onnx.helper.make_value_info(name, untyped) for name in node.output if name],
        )
        single = onnx.helper.make_model(
            graph,
            opset_imports=list(model.opset_import),
            functions=list(model.functions),
            ir_version=model.ir_version or onnx.IR_VERSION,
        )
        self._evaluator = ReferenceEvaluator(single)

    def __call__(self, *args: Any) -> list[Any]:
        feeds = {
            name: np.asarray(value) if isinstance(value, np.generic) else value
            for name, value in zip(self.input_names, args, strict=True)
        }
        return list(self._evaluator.run(None, feeds))

    def __repr__(self) -> str:
        return f"_FallbackNode({self.op_type!r})"


def _readonly(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.flags.writeable:
        value = value.view()
        value.flags.writeable = False
    return value


def _sparse_to_dense(sparse: onnx.SparseTensorProto) -> np.ndarray[Any, Any]:
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    dims = tuple(sparse.dims)
    dense = np.zeros(math.prod(dims), dtype=values.dtype)
    if indices.ndim == 2:
        indices = np.ravel_multi_index(tuple(indices.T), dims)
    dense[indices.reshape(-1)] = values.reshape(-1)
    return dense.reshape(dims)


def _parse_attribute(attr: onnx.AttributeProto) -> Any:
    kind = attr.type
    if attr.ref_attr_name:
        raise _Unsupported(attr.name)
    if kind == onnx.AttributeProto.FLOAT:
        return attr.f
    if kind == onnx.AttributeProto.INT:
        return attr.i
    if kind == onnx.AttributeProto.STRING:
        return attr.s.decode("utf-8")
    if kind == onnx.AttributeProto.TENSOR:
        return numpy_helper.to_array(attr.t)
    if kind == onnx.AttributeProto.SPARSE_TENSOR:
        return _sparse_to_dense(attr.sparse_tensor)
    if kind == onnx.AttributeProto.FLOATS:
        return list(attr.floats)
    if kind == onnx.AttributeProto.INTS:
        return list(attr.ints)
    if kind == onnx.AttributeProto.STRINGS:
        return [s.decode("utf-8") for s in attr.strings]
    raise _Unsupported(attr.name)


def _free_names(graph: onnx.GraphProto, bound: frozenset[str]) -> set[str]:
    """Names a (sub)graph reads from enclosing scopes."""
    local = set(bound)
    local.update(v.name for v in graph.input)
    local.update(t.name for t in graph.initializer)
    local.update(s.values.name for s in graph.sparse_initializer)
    for node in graph.node:
        local.update(node.output)
    frozen = frozenset(local)
    free: set[str] = set()
    for node in graph.node:
        free.update(name for name in node.input if name and name not in frozen)
        for sub in subgraphs(node):
            free |= _free_names(sub, frozen)
    free.discard("")
    return free


def _outer_names(node: onnx.NodeProto) -> list[str]:
    free: set[str] = set()
    for sub in subgraphs(node):
        free |= _free_names(sub, frozenset())
    return sorted(free)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n))


def _toposort(
    nodes: Sequence[onnx.NodeProto], available: set[str]
) -> list[tuple[onnx.NodeProto, list[str]]]:
    """Nodes in dependency order (stable w.r.t. file order), each with its outer-scope names."""
    producer: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.output:
            if name:
                producer[name] = index
    outer = [_outer_names(node) for node in nodes]
    users: list[list[int]] = [[] for _ in nodes]
    pending = [0] * len(nodes)
    for index, node in enumerate(nodes):
        deps = set()
        for name in _unique([*node.input, *outer[index]]):
            if name in producer:
                deps.add(producer[name])
            elif name not in available:
                raise GraphInterpreterError(
                    f"node {_label(node, index)} reads {name!r}, which is neither a graph "
                    "input, an initializer nor the output of another node"
                )
        for dep in deps:
            users[dep].append(index)
        pending[index] = len(deps)
    ready = [i for i, count in enumerate(pending) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        for user in users[index]:
            pending[user] -= 1
            if pending[user] == 0:
                heapq.heappush(ready, user)
    if len(order) != len(nodes):
        stuck = [_label(nodes[i], i) for i in range(len(nodes)) if pending[i] > 0]
        raise GraphInterpreterError(f"graph has a cycle through nodes {stuck[:5]}")
    return [(nodes[i], outer[i]) for i in order]


def _label(node: onnx.NodeProto, index: int) -> str:
    name = f" {node.name!r}" if node.name else ""
    return f"#{index} {node.op_type}{name}"


class _Code(NamedTuple):
    """A plan as generated Python functions, and their source (for a reader)."""

    run: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    run_args: Callable[..., tuple[Any, ...]]
    source: str


def _generate(
    steps: Sequence[_Step],
    constants: Mapping[str, Any],
    inputs: Sequence[str],
    outputs: Sequence[str],
    where: str,
) -> _Code:
    """The steps as ``run(feeds) -> outputs`` and ``run_args(*inputs) -> outputs``.

    Both are one function over local variables with the same body: each step is one line
    calling its kernel on locals and constants (globals of the function, as are the kernels and
    attribute values); an ``Identity`` is an alias, not a line. ``run`` reads its inputs from
    ``feeds``, an input that has an entry in ``constants`` (an initializer a feed may override)
    falling back to it; ``run_args`` takes the other inputs positionally, in order, and those
    initializers keep their values. Outputs pass through ``_to_output`` unless they are
    certainly new arrays. A failure is a GraphInterpreterError naming the node whose line
    raised.
    """
    namespace: dict[str, Any] = {"_to_output": _to_output, "ndarray": np.ndarray}
    exprs: dict[str, str] = {"": "None"}
    fresh: set[str] = set()  # locals holding a new array (or a NumPy scalar)
    body: list[tuple[str, str]] = []  # (line, the node it evaluates)

    def expr(name: str) -> str:
        found = exprs.get(name)
        if found is None:  # a constant, bound on first use
            found = exprs[name] = f"c{len(exprs)}"
            namespace[found] = constants[name]
        return found

    reads: list[tuple[str, str]] = []  # run's input lines
    defaults: list[tuple[str, str]] = []  # run_args' lines for initializer inputs
    params: list[str] = []
    for index, name in enumerate(inputs):
        var = exprs[name] = f"x{index}"
        label = f"input {name!r}"
        if name in constants:
            namespace[f"d{index}"] = constants[name]
            reads.append((f"{var} = feeds.get({name!r}, d{index})", label))
            defaults.append((f"{var} = d{index}", label))
        else:
            reads.append((f"{var} = feeds[{name!r}]", label))
            params.append(var)
    for index, step in enumerate(steps):
        if step.fn is identity and not step.multi and not step.attrs and len(step.inputs) == 1:
            exprs[step.outputs[0]] = expr(step.inputs[0])
            continue
        at = indexes(step.fn)
        if at is not None and not step.multi and len(step.inputs) == 1:  # a constant slice
            namespace[f"k{index}"] = at
            exprs[step.outputs[0]] = target = f"v{index}_0"
            body.append((f"{target} = {expr(step.inputs[0])}[k{index}]", step.label))
            continue
        namespace[f"k{index}"] = step.fn
        args = [expr(name) for name in step.inputs]
        for key, value in step.attrs.items():  # parameter names of the kernel (supports())
            namespace[f"a{index}_{key}"] = value
            args.append(f"{key}=a{index}_{key}")
        targets = [f"v{index}_{k}" for k in range(len(step.outputs))]
        exprs.update(zip(step.outputs, targets, strict=True))
        if not step.multi and makes_new_array(step.fn):
            fresh.update(targets)
        target = "".join(f"{t}, " for t in targets) if step.multi else targets[0]
        body.append((f"{target} = k{index}({', '.join(args)})", step.label))
    results = "".join(
        f"{var} if type({var}) is ndarray else _to_output({var}), "
        if var in fresh
        else f"_to_output({var}), "
        for var in map(expr, outputs)
    )
    lines: list[str] = []
    labels: dict[int, str] = {}  # line number -> the node (or input) it evaluates
    for header, first in (
        ("def run(feeds):", reads),
        (f"def run_args({', '.join(params)}):", defaults),
    ):
        lines += [header, "  try:"]
        for text, label in (*first, *body):
            lines.append(f"    {text}")
            labels[len(lines)] = label
        lines += [
            f"    return ({results})",
            "  except Exception as exc:",
            "    raise _failure(exc) from exc",
        ]
    source = "\n".join(lines) + "\n"
    code = compile(source, f"<exploy_dsl plan of {where}>", "exec")
    exec(code, namespace)  # defines run() and run_args() from the source above, nothing else
    run, run_args = namespace["run"], namespace["run_args"]
    own_code = (run.__code__, run_args.__code__)

    def failure(exc: Exception) -> GraphInterpreterError:
        node = "?"
        trace = exc.__traceback__
        while trace is not None:  # the function's own frame says which of its lines raised
            if trace.tb_frame.f_code in own_code:
                node = labels.get(trace.tb_lineno, "?")
                break
            trace = trace.tb_next
        reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        return GraphInterpreterError(f"{node} failed: {reason}", node=node, reason=reason)

    namespace["_failure"] = failure
    return _Code(run, run_args, source)


class GraphInterpreter:
    """Run one ONNX model with NumPy.

    The constructor turns the graph into a plan: steps in topological order, with attributes
    parsed, initializers and ``Constant`` nodes converted to arrays, table ops whose inputs
    are all constant folded and kernels with their constant inputs worked in (slice bounds,
    Gemm weights); that plan becomes one generated Python function whose locals hold the
    values, so :meth:`run` does no per-node lookups. Ops absent from
    :data:`exploy_dsl.reference._numpy_ops.OPS`, and nodes with subgraphs (``If``, ``Loop``,
    ``Scan``), run node-by-node through ``onnx.reference.ReferenceEvaluator``;
    :attr:`fallback_ops` lists their op types.

    Returned arrays may share memory with the feeds; arrays derived from constants are copied.

    ``run_unchecked(feeds)`` is :meth:`run` for a caller that already holds every input as an
    array (other keys of ``feeds`` are ignored) and runs inside ``np.errstate(all="ignore")``:
    it returns the outputs as a tuple in :attr:`output_names` order; a failing node is still a
    :class:`GraphInterpreterError` naming it. ``run_args(*values)`` is the same with the
    inputs given positionally, in :attr:`input_names` order without the initializers listed
    as inputs (those keep their values): what a caller that planned its own calls uses.
    """

    run_unchecked: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    run_args: Callable[..., tuple[Any, ...]]

    def __init__(self, model: onnx.ModelProto, *, fold_constants: bool = True) -> None:
        if not isinstance(model, onnx.ModelProto):
            raise GraphInterpreterError(f"expected an onnx.ModelProto, got {type(model).__name__}")
        if model.functions:
            model = onnx.inliner.inline_local_functions(model)
        self._model = model
        graph = model.graph
        self._opset = default_opset(model, missing=onnx.defs.onnx_opset_version())
        self._fold = fold_constants

        env: dict[str, Any] = {}
        for tensor in graph.initializer:
            env[tensor.name] = _readonly(numpy_helper.to_array(tensor))
        for sparse in graph.sparse_initializer:
            env[sparse.values.name] = _readonly(_sparse_to_dense(sparse))
        self._input_names = tuple(v.name for v in graph.input)
        self._input_set = frozenset(self._input_names)
        self._required_inputs = tuple(n for n in self._input_names if n not in env)
        self._output_names = tuple(v.name for v in graph.output)
        # Values known at plan time (initializers a feed may override are excluded).
        known = {name: value for name, value in env.items() if name not in self._input_set}
        known[""] = None  # an omitted optional input

        self._fallback_ops: list[str] = []
        steps: list[_Step] = []
        available = set(env) | self._input_set
        for index, (node, outer) in enumerate(_toposort(list(graph.node), available)):
            step = self._plan_node(node, outer, _label(node, index), known)
            if step is not None:
                steps.append(step)
        env.update(known)

        defined = set(env) | self._input_set
        defined.update(name for step in steps for name in step.outputs)
        missing = [name for name in self._output_names if name not in defined]
        if missing:
            raise GraphInterpreterError(f"graph outputs {missing} are never computed")
        where = repr(graph.name) if graph.name else "a graph"
        self._code = _generate(steps, env, self._input_names, self._output_names, where)
        self.run_unchecked = self._code.run
        self.run_args = self._code.run_args

    # ----------------------------------------------------------------------------------------
    # planning

    def _plan_node(
        self, node: onnx.NodeProto, outer: list[str], label: str, known: dict[str, Any]
    ) -> _Step | None:
        inputs = list(node.input)
        while inputs and not inputs[-1]:
            inputs.pop()
        outputs = list(node.output)
        while outputs and not outputs[-1]:
            outputs.pop()
        multi = node.op_type in MULTI_OUTPUT_OPS

        fn = self._table_op(node)
        attrs: dict[str, Any] = {}
        if fn is not None:
            try:
                attrs = {a.name: _parse_attribute(a) for a in node.attribute}
            except _Unsupported:
                fn = None
        if fn is not None and multi:
            attrs.setdefault("num_outputs", len(outputs))
        if fn is not None and node.op_type == "Clip" and self._opset < 11:
            attrs = {**_CLIP_6_BOUNDS, **attrs}  # Clip-6's attribute defaults
        if (
            fn is None
            or (len(outputs) != 1 and not multi)
            or not supports(fn, node.op_type, len(inputs), attrs)
        ):
            return self._plan_fallback(node, outer, label, known)

        if multi:
            outputs = [name or f"\0unused:{label}:{i}" for i, name in enumerate(outputs)]
        step = _Step(fn, tuple(inputs), tuple(outputs), attrs, multi, label)
        is_constant = node.op_type == "Constant"
        if is_constant or (self._fold and all(n in known for n in inputs)):
            values = self._try_fold(step, known, required=is_constant)
            if values is not None:
                known.update(zip(outputs, values, strict=True))
                return None
        # Constant inputs worked into the kernel once (slice bounds, Gemm weights), not per run.
        bound = with_constant_inputs(
            node.op_type, [known.get(n, _NOT_KNOWN) for n in inputs], _NOT_KNOWN, attrs
        )
        if bound is not None:
            kernel, taken = bound
            return _Step(kernel, tuple(inputs[i] for i in taken), tuple(outputs), {}, multi, label)
        return step

    def _table_op(self, node: onnx.NodeProto) -> Callable[..., Any] | None:
        if not is_default_domain(node.domain) or node.op_type not in OPS:
            return None
        if any(a.type in _SUBGRAPH_ATTRS for a in node.attribute):
            return None
        legacy = LEGACY_OPS.get(node.op_type)
        if legacy is not None and self._opset < legacy[0]:
            return legacy[1]
        return OPS[node.op_type]

    @staticmethod
    def _try_fold(
        step: _Step, known: Mapping[str, Any], *, required: bool = False
    ) -> list[Any] | None:
        """Evaluate a step at plan time; None if it fails or its result is too big to keep.

        ``required`` steps (``Constant`` nodes) are always folded and raise on failure.
        """
        try:
            with np.errstate(all="ignore"):
                result = step.fn(*[known[n] for n in step.inputs], **step.attrs)
        except Exception as exc:
            if required:
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                raise GraphInterpreterError(
                    f"{step.label} failed: {reason}", node=step.label, reason=reason
                ) from exc
            return None  # report the problem at run time, with the real feeds
        values = list(result) if step.multi else [result]
        if not required and any(np.size(v) > _FOLD_MAX_ELEMENTS for v in values):
            return None
        return [_readonly(np.asarray(v) if isinstance(v, np.generic) else v) for v in values]

    def _plan_fallback(
        self, node: onnx.NodeProto, outer: list[str], label: str, known: dict[str, Any]
    ) -> _Step | None:
        names = _unique([*node.input, *outer])
        try:
            fallback = _FallbackNode(node, names, self._model)
        except Exception as exc:
            raise GraphInterpreterError(
                f"{label}: op {node.domain + '.' if node.domain else ''}{node.op_type} is not in "
                f"the NumPy table and the reference evaluator cannot run it: {exc}"
            ) from exc
        if node.op_type not in self._fallback_ops:
            self._fallback_ops.append(node.op_type)
        outputs = tuple(name for name in node.output if name)
        step = _Step(fallback, tuple(names), outputs, {}, True, label)
        if node.op_type == "Constant" and is_default_domain(node.domain):
            values = self._try_fold(step, known, required=True)
            if values is not None:
                known.update(zip(outputs, values, strict=True))
                return None
        return step

    # ----------------------------------------------------------------------------------------
    # public API

    @property
    def input_names(self) -> tuple[str, ...]:
        """Graph input names, in declaration order."""
        return self._input_names

    @property
    def required_inputs(self) -> tuple[str, ...]:
        """Inputs without an initializer: the parameters of :attr:`run_args`, in order."""
        return self._required_inputs

    @property
    def output_names(self) -> tuple[str, ...]:
        """Graph output names, in declaration order (the keys :meth:`run` returns)."""
        return self._output_names

    @property
    def fallback_ops(self) -> tuple[str, ...]:
        """Op types run by ``onnx.reference.ReferenceEvaluator`` (first-seen order, unique)."""
        return tuple(self._fallback_ops)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """Evaluate the graph on ``feeds`` (input name -> array); return outputs by name."""
        missing = [name for name in self._required_inputs if name not in feeds]
        if missing:
            raise GraphInterpreterError(
                f"missing feed(s) {missing}; the graph expects inputs {list(self._input_names)}"
            )
        arrays: dict[str, Any] = {}
        for name, value in feeds.items():
            if name not in self._input_set:
                raise GraphInterpreterError(
                    f"unknown feed {name!r}; the graph expects inputs {list(self._input_names)}"
                )
            arrays[name] = np.asarray(value)
        with np.errstate(all="ignore"):
            values = self.run_unchecked(arrays)
        return dict(zip(self._output_names, values, strict=True))


def _to_output(value: Any) -> Any:
    if isinstance(value, np.generic):
        return np.asarray(value)
    if isinstance(value, np.ndarray) and not value.flags.writeable:
        return value.copy()
    return value
