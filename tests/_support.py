"""Shared test helpers: seeded ONNX actors, onnxruntime sessions, example programs, random feeds."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from compiler.cli._program_file import ProgramFile

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def example_files() -> list[Path]:
    """Every runnable program in examples/ (new examples are picked up by the tests); the
    ``test_*.py`` files there are tests of the examples (exploy_dsl.testing), not programs."""
    return sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith(("_", "test_")))


@dataclass(frozen=True)
class MlpActor:
    """A two-layer MLP ``tanh(obs @ w1 + b1) @ w2 + b2`` as an ONNX model and in NumPy."""

    model: onnx.ModelProto
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @property
    def n_obs(self) -> int:
        return int(self.w1.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.w2.shape[1])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, np.float64)
        hidden = np.tanh(x @ self.w1.astype(np.float64) + self.b1.astype(np.float64))
        return hidden @ self.w2.astype(np.float64) + self.b2.astype(np.float64)


def mlp_actor(n_obs: int, n_actions: int, seed: int = 0, hidden: int = 16) -> MlpActor:
    """A seeded random MLP actor ``[1, n_obs] -> [1, n_actions]`` built with onnx.helper."""
    rng = np.random.default_rng(seed)
    w1 = (rng.normal(size=(n_obs, hidden)) / np.sqrt(n_obs)).astype(np.float32)
    b1 = (0.1 * rng.normal(size=hidden)).astype(np.float32)
    w2 = (rng.normal(size=(hidden, n_actions)) / np.sqrt(hidden)).astype(np.float32)
    b2 = (0.1 * rng.normal(size=n_actions)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["obs", "w1"], ["h_mm"]),
        helper.make_node("Add", ["h_mm", "b1"], ["h_pre"]),
        helper.make_node("Tanh", ["h_pre"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["a_mm"]),
        helper.make_node("Add", ["a_mm", "b2"], ["actions"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp_actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n_obs])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, n_actions])],
        [
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2, "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return MlpActor(model, w1, b1, w2, b2)


def session(model: onnx.ModelProto | str | os.PathLike[str]) -> ort.InferenceSession:
    """An onnxruntime CPU session; memory initializers that are also inputs are on purpose."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Run every output; returns them by name."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, dict(feeds)), strict=True))


def random_feeds(wires: Any, rng: np.random.Generator, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Random values for ``Wire``-like objects (``name``, ``shape``, ``dtype``)."""
    feeds: dict[str, np.ndarray] = {}
    for wire in wires:
        if wire.dtype == "bool":
            feeds[wire.name] = rng.random(wire.shape) < 0.5
        elif wire.dtype == "int32":
            feeds[wire.name] = rng.integers(-5, 6, wire.shape).astype(np.int32)
        else:
            feeds[wire.name] = (scale * rng.normal(size=wire.shape)).astype(np.float32)
    return feeds


def dims(value: onnx.ValueInfoProto) -> list[int | str]:
    """The dims of a graph input or output: ints, or the symbol of a symbolic dimension."""
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value.type.tensor_type.shape.dim
    ]


@dataclass(frozen=True)
class Compiled:
    """An example compiled with a seeded ONNX actor: the model, its file and its parts."""

    name: str
    program_file: ProgramFile
    actor: MlpActor
    model: onnx.ModelProto
    path: Path


@dataclass(frozen=True)
class CliExample:
    """An example compiled by ``exploy-dsl compile``: its file, its loaded program, its actor."""

    path: Path
    out: Path
    loaded: ProgramFile
    actor: Any  # the program file's actor() (seeded), or the ONNX actor file given with --actor

    @property
    def model(self) -> onnx.ModelProto:
        return onnx.load(str(self.out))


def deployed_outputs(
    model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], reset: np.ndarray
) -> list[dict[str, np.ndarray]]:
    """Every output of every tick, stepped as a controller steps the file: the tick counts
    from 0 after each reset, memory restarts from the file's initial values, else
    ``memory.X.in`` is the previous ``memory.X.out``."""
    sess = session(model)
    initial = {
        t.name: numpy_helper.to_array(t)
        for t in model.graph.initializer
        if t.name.startswith("memory.")
    }
    results: list[dict[str, np.ndarray]] = []
    memory: dict[str, np.ndarray] = {}
    tick = 0
    for k in range(len(reset)):
        if reset[k]:
            memory, tick = dict(initial), 0
        feeds = {name: values[k] for name, values in inputs.items()}
        feeds.update(memory)
        feeds["ctx.step_count"] = np.array(tick, np.int32)
        out = run(sess, feeds)
        memory = {n[: -len(".out")] + ".in": v for n, v in out.items() if n.startswith("memory.")}
        results.append(out)
        tick += 1
    return results


def assert_same_bits(
    a: onnx.ModelProto, b: onnx.ModelProto, inputs: Mapping[str, np.ndarray], reset: np.ndarray
) -> None:
    """``a`` and ``b`` give the same bytes on every output at every tick (-0.0 and infinities
    included), and NaN at the same elements: which NaN (sign, payload) an op returns when both
    its operands are NaNs is onnxruntime's choice, and it depends on the tensor's length."""
    for k, (x, y) in enumerate(
        zip(deployed_outputs(a, inputs, reset), deployed_outputs(b, inputs, reset), strict=True)
    ):
        assert list(x) == list(y)
        for name in x:
            u, v = x[name], y[name]
            assert u.dtype == v.dtype and u.shape == v.shape, name
            nan = np.isnan(u) if u.dtype.kind == "f" else np.zeros(u.shape, bool)
            where = f"tick {k}, {name}: {u} != {v}"
            assert np.array_equal(nan, np.isnan(v) if v.dtype.kind == "f" else nan), where
            assert u[~nan].tobytes() == v[~nan].tobytes(), where
