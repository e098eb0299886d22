"""What the build's rewrites buy on the quadruped: nodes and step times, with and without them.

Compiles examples/quadruped.py twice with a seeded 48-512-256-128-12 ELU actor (an ONNX
model built here, no torch), once as ``compile`` does by default and once with
``rewrites=False``, checks the two give the same bytes on every output over random ticks,
and prints per file:

- nodes of the file and of the graph onnxruntime runs after ORT_ENABLE_ALL (its
  ``optimized_model_filepath``), If branches included, Constants left out, Identity apart;
- the policy step over the actor alone, and the apply-only step over a no-compute file of the
  same inputs and outputs (memory outs = Identity of the ins, other outputs constant zeros),
  each the median of per-round ratios over interleaved rounds (1 thread, batch 1).

    python benchmarks/rewrites.py [--rounds 31] [--calls 300]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler import compile_program  # noqa: E402
from compiler.cli._program_file import load_program_file  # noqa: E402

SIZES = (48, 512, 256, 128, 12)


def elu_actor(seed: int = 0) -> onnx.ModelProto:
    """A seeded ``[1, 48] -> [1, 12]`` MLP: Gemm + Elu layers, as torch.onnx exports one."""
    rng = np.random.default_rng(seed)
    nodes, weights, x = [], [], "obs"
    for i, (a, b) in enumerate(itertools.pairwise(SIZES)):
        w = (rng.normal(size=(b, a)) / np.sqrt(a)).astype(np.float32)
        weights += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array((0.1 * rng.normal(size=b)).astype(np.float32), f"b{i}"),
        ]
        last = i == len(SIZES) - 2
        y = "actions" if last else f"g{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], transB=1))
        if not last:
            nodes.append(helper.make_node("Elu", [y], [f"h{i}"]))
            x = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, SIZES[0]])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, SIZES[-1]])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def no_compute(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same inputs and outputs, nothing computed: memory passed on, other outputs zeros."""
    nodes = []
    for out in model.graph.output:
        if out.name.startswith("memory.") and out.name.endswith(".out"):
            nodes.append(
                helper.make_node("Identity", [out.name[: -len(".out")] + ".in"], [out.name])
            )
        else:
            shape = [d.dim_value for d in out.type.tensor_type.shape.dim]
            zeros = numpy_helper.from_array(np.zeros(shape, np.float32))
            nodes.append(helper.make_node("Constant", [], [out.name], value=zeros))
    graph = helper.make_graph(
        nodes, "no_compute", model.graph.input, model.graph.output, model.graph.initializer
    )
    made = helper.make_model(graph, opset_imports=model.opset_import)
    made.ir_version = model.ir_version
    return made


def session(data: bytes, optimized: str | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if optimized is not None:
        options.optimized_model_filepath = optimized
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def ops(graph: onnx.GraphProto) -> Counter[str]:
    """Op types of ``graph`` and its subgraphs."""
    found: Counter[str] = Counter()
    for node in graph.node:
        found[node.op_type] += 1
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                found += ops(attr.g)
    return found


def counts(model: onnx.ModelProto) -> str:
    """``N nodes (+I Identity)`` in the file and after onnxruntime's optimizer."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "optimized.onnx")
        session(model.SerializeToString(), path)
        optimized = onnx.load(path)
    parts = []
    for found in (ops(model.graph), ops(optimized.graph)):
        work = sum(n for op, n in found.items() if op not in ("Constant", "Identity"))
        parts.append(f"{work:3d} (+{found['Identity']} Identity)")
    return f"file {parts[0]}, after ORT_ENABLE_ALL {parts[1]}"


def feeds(sess: ort.InferenceSession, tick: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    values = {}
    for port in sess.get_inputs():
        if port.type == "tensor(int32)":
            values[port.name] = np.array(tick, np.int32)
        else:
            values[port.name] = rng.normal(size=port.shape).astype(np.float32)
    return values


def per_call(sess: ort.InferenceSession, given: dict[str, np.ndarray], calls: int) -> float:
    run = sess.run
    start = time.perf_counter()
    for _ in range(calls):
        run(None, given)
    return (time.perf_counter() - start) / calls


def same_bytes(a: onnx.ModelProto, b: onnx.ModelProto, ticks: int = 64) -> bool:
    sa, sb = session(a.SerializeToString()), session(b.SerializeToString())
    rng = np.random.default_rng(7)
    for tick in range(ticks):
        given = feeds(sa, tick, rng)
        for x, y in zip(sa.run(None, given), sb.run(None, given), strict=True):
            if x.tobytes() != y.tobytes():
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    program = load_program_file(ROOT / "examples" / "quadruped.py").program
    actor = elu_actor()
    files = {
        "without rewrites": compile_program(program, actor, rewrites=False),
        "with rewrites": compile_program(program, actor),
    }
    print(f"quadruped, actor {'-'.join(map(str, SIZES))} (ELU), onnxruntime {ort.__version__}")
    print(
        "same bytes on every output: "
        f"{same_bytes(files['with rewrites'], files['without rewrites'])}"
    )
    for name, model in files.items():
        print(f"nodes {name:<17} {counts(model)}")
    sessions = {name: session(m.SerializeToString()) for name, m in files.items()}
    alone = session(actor.SerializeToString())
    empty = session(no_compute(files["with rewrites"]).SerializeToString())
    rng = np.random.default_rng(0)
    given = {name: (feeds(s, 0, rng), feeds(s, 1, rng)) for name, s in sessions.items()}
    obs = {"obs": rng.normal(size=(1, SIZES[0])).astype(np.float32)}
    nothing = feeds(empty, 1, rng)
    ratios: dict[str, list[float]] = {f"{n} {m}": [] for n in files for m in ("policy", "apply")}
    floor: list[float] = []
    for round_ in range(args.rounds + 2):
        actor_t = per_call(alone, obs, args.calls)
        empty_t = per_call(empty, nothing, args.calls)
        for name, sess in sessions.items():
            policy = per_call(sess, given[name][0], args.calls)
            apply_only = per_call(sess, given[name][1], args.calls)
            if round_ >= 2:  # the first two rounds warm up
                ratios[f"{name} policy"].append(policy / actor_t)
                ratios[f"{name} apply"].append(apply_only / empty_t)
        if round_ >= 2:
            floor.append((actor_t + empty_t) / actor_t)
    print(
        f"timing: median of {args.rounds} interleaved rounds of {args.calls} calls, "
        f"1 thread; floor (actor + no-compute file) / actor = {statistics.median(floor):.2f}x"
    )
    for name in files:
        policy = statistics.median(ratios[f"{name} policy"])
        apply_only = statistics.median(ratios[f"{name} apply"])
        print(
            f"{name:<17} policy step / actor alone {policy:.2f}x, "
            f"apply-only step / no-compute file {apply_only:.2f}x"
        )


if __name__ == "__main__":
    main()
