"""Ticks per second of exploy-dsl's ReferenceInterpreter against onnx.reference on the quadruped.

Both run the same seeded input stream (with episode resets) tick by tick: our interpreter from
the program's stages (plans prepared once, then NumPy calls), onnx.reference.ReferenceEvaluator
from the compiled file (fed its own memory back, as a deployed loop does). Building either is
not timed. Run from the repository root:

    python benchmarks/interpreter_vs_reference.py [--ticks 2000] [--actor torch|onnx]

``--actor torch`` (default) uses examples/quadruped.py's actor(): our interpreter runs the torch
module (what ``exploy-dsl check`` does) and, separately, its exported ONNX graph in NumPy.
``--actor onnx`` uses a seeded ONNX MLP and needs no torch.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler import InputStream, compile_program, load_actor, random_stream  # noqa: E402
from compiler.cli._program_file import load_program_file  # noqa: E402
from exploy_dsl import ReferenceInterpreter, read_contract, trace  # noqa: E402

Step = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


def onnx_mlp(n_obs: int, n_actions: int, hidden: int = 64, seed: int = 0) -> onnx.ModelProto:
    """A seeded ``[1, n_obs] -> [1, n_actions]`` MLP with ELU, the default actor's shape."""
    rng = np.random.default_rng(seed)
    sizes = [n_obs, hidden, hidden, n_actions]
    nodes, inits, x = [], [], "obs"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}"),
        ]
        nodes += [
            helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
        ]
        x = f"a{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Elu", [x], [f"h{i}"]))
            x = f"h{i}"
    nodes.append(helper.make_node("Identity", [x], ["actions"]))
    graph = helper.make_graph(
        nodes,
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, n_obs])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, n_actions])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


class EvaluatorLoop:
    """onnx.reference on the compiled file, as a deployed loop: tick counter and memory."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self._initial = read_contract(model).initial_values
        self._evaluator = ReferenceEvaluator(model)
        self._names = [o.name for o in model.graph.output]
        self.tick = 0
        self.memory: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        self.tick = 0
        self.memory = {k: v.copy() for k, v in self._initial.items()}

    def step(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        feeds = {**inputs, **self.memory, "ctx.step_count": np.array(self.tick, np.int32)}
        results = dict(zip(self._names, self._evaluator.run(None, feeds), strict=True))
        self.memory = {k: results[k[: -len(".in")] + ".out"] for k in self.memory}
        self.tick += 1
        return results


Outputs = list[Mapping[str, np.ndarray]]


def timed(step: Step, reset: Callable[[], None], stream: InputStream) -> tuple[float, Outputs]:
    """Ticks per second over the whole stream, and every tick's outputs."""
    ticks = [stream.at(t) for t in range(stream.ticks)]
    outputs: Outputs = []
    start = time.perf_counter()
    for t, feeds in enumerate(ticks):
        if stream.reset[t]:
            reset()
        outputs.append(step(feeds))
    elapsed = time.perf_counter() - start
    return stream.ticks / elapsed, outputs


def max_difference(a: Outputs, b: Outputs) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x[k], np.float64) - np.asarray(y[k], np.float64))))
        for x, y in zip(a, b, strict=True)
        for k in x
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2000, help="ticks per engine (default 2000)")
    parser.add_argument("--actor", choices=("torch", "onnx"), default="torch")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    loaded = load_program_file(ROOT / "examples" / "quadruped.py")
    traced = trace(loaded.program)
    raw = (
        loaded.default_actor()
        if args.actor == "torch"
        else onnx_mlp(traced.n_obs, traced.n_actions)
    )
    actor = load_actor(raw, n_obs=traced.n_obs)
    model = compile_program(traced, actor)
    stream = random_stream(loaded.program, args.ticks, args.seed)
    print(
        f"quadruped: {stream.ticks} ticks, {stream.source} inputs, {stream.episodes} episodes, "
        f"decimation {loaded.program.decimation}"
    )

    engines: dict[str, tuple[Step, Callable[[], None]]] = {}
    if actor.module is not None:
        ours = ReferenceInterpreter(traced, actor.module)
        engines["ReferenceInterpreter, actor as torch module"] = (ours.step, ours.reset)
    ours_onnx = ReferenceInterpreter(traced, actor.model)
    engines["ReferenceInterpreter, actor as ONNX in NumPy"] = (ours_onnx.step, ours_onnx.reset)
    evaluator = EvaluatorLoop(model)
    engines["onnx.reference.ReferenceEvaluator, compiled file"] = (evaluator.step, evaluator.reset)

    rates: dict[str, float] = {}
    outputs: dict[str, Outputs] = {}
    for name, (step, reset) in engines.items():
        rates[name], outputs[name] = timed(step, reset, stream)
    baseline_name = "onnx.reference.ReferenceEvaluator, compiled file"
    baseline = rates[baseline_name]
    width = max(len(n) for n in engines)
    for name, rate in rates.items():
        ratio = "" if name == baseline_name else f"  {rate / baseline:5.1f}x"
        print(f"  {name:<{width}}  {rate:10,.0f} ticks/s{ratio}")
    for name in engines:
        if name != baseline_name:
            diff = max_difference(outputs[name], outputs[baseline_name])
            print(f"  max |difference| to the evaluator, {name}: {diff:.2g}")
    best = max(rate for name, rate in rates.items() if name != baseline_name)
    print(f"speed-up: {best / baseline:.1f}x (ours, fastest actor) over onnx.reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
