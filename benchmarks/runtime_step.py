"""Runtime.step against a bare session.run with the same feeds, as ratios (interleaved rounds).

    python benchmarks/runtime_step.py [FILE.onnx] [--rounds 41] [--calls 300]

Without FILE: examples/quadruped.py compiled with a seeded 48-512-256-128-12 ELU actor (ONNX).
The bare loop calls ``session.run(names, feeds)`` on a feeds dict built once per tick phase,
nothing else (what a hand-written loop cannot do with less); the runtime's step checks the
inputs, feeds memory and the tick and returns the outputs by name. Both sessions are opened
the same way (CPU, one intra-op thread). Each round times a block of calls of each, in
alternating order; the ratios printed are medians over the rounds, for policy steps, for
apply-only steps and for the tick loop (one policy step every ``decimation`` ticks).
``step_ratios()`` returns the same figures for other benchmarks.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exploy_dsl import Runtime  # noqa: E402
from exploy_dsl.runtime._session import open_session  # noqa: E402

SIZES = (48, 512, 256, 128, 12)


def realistic_actor(sizes: tuple[int, ...] = SIZES, seed: int = 0) -> Any:
    """A seeded ELU MLP ``[1, sizes[0]] -> [1, sizes[-1]]`` as an ONNX model."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, weights, x = [], [], "obs"
    layers = list(itertools.pairwise(sizes))
    for i, (n_in, n_out) in enumerate(layers):
        w = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = (0.1 * rng.normal(size=n_out)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(layers) - 1
        nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], ["actions" if last else f"a{i}"]))
        if not last:
            nodes.append(helper.make_node("Elu", [f"a{i}"], [f"h{i}"]))
        x = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, sizes[-1]])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def compile_quadruped(path: Path) -> Path:
    from compiler import compile_program
    from compiler.cli._program_file import load_program_file

    program = load_program_file(ROOT / "examples" / "quadruped.py").program
    compile_program(program, realistic_actor(), output=path)
    return path


def _block(call: Callable[[int], object], calls: int) -> float:
    start = time.perf_counter()
    for k in range(calls):
        call(k)
    return (time.perf_counter() - start) / calls


def step_ratios(path: str | Path, *, rounds: int = 41, calls: int = 300) -> dict[str, Any]:
    """Median ratios Runtime.step / session.run (and the median seconds per call) by mode."""
    data = Path(path).read_bytes()
    runtime = Runtime(data)
    session = open_session(data)
    names = [o.name for o in session.get_outputs()]
    contract = runtime.contract
    rng = np.random.default_rng(0)
    inputs = {w.name: rng.uniform(-1, 1, w.shape).astype(w.np_dtype) for w in contract.inputs}
    decimation = contract.decimation

    def feeds_at(tick: int) -> dict[str, np.ndarray]:
        feeds = dict(inputs)
        feeds.update(contract.initial_values)
        feeds["ctx.step_count"] = np.array(tick, np.int32)
        return feeds

    phases = [feeds_at(t) for t in range(decimation)]

    def runtime_at(tick: int | None) -> Callable[[int], object]:
        def call(_: int) -> object:
            if tick is not None:
                runtime.tick = tick
            return runtime.step(inputs)

        return call

    modes: dict[str, tuple[Callable[[int], object], Callable[[int], object]]] = {
        "policy step": (lambda _: session.run(names, phases[0]), runtime_at(0)),
        "apply-only step": (lambda _: session.run(names, phases[1 % decimation]), runtime_at(1)),
        "tick loop": (lambda k: session.run(names, phases[k % decimation]), runtime_at(None)),
    }
    results: dict[str, Any] = {}
    for mode, (bare, stepped) in modes.items():
        ratios, bare_s, step_s = [], [], []
        for r in range(rounds):
            runtime.reset()
            if r % 2:
                b, s = _block(bare, calls), _block(stepped, calls)
            else:
                s, b = _block(stepped, calls), _block(bare, calls)
            ratios.append(s / b)
            bare_s.append(b)
            step_s.append(s)
        results[mode] = {
            "ratio": statistics.median(ratios),
            "session_run_s": statistics.median(bare_s),
            "runtime_step_s": statistics.median(step_s),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="a compiled .onnx file (default: the quadruped)")
    parser.add_argument("--rounds", type=int, default=41, help="interleaved rounds (default 41)")
    parser.add_argument("--calls", type=int, default=300, help="calls per block (default 300)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.file:
            path, what = Path(args.file), args.file
        else:
            path = compile_quadruped(Path(tmp) / "quadruped.onnx")
            what = f"quadruped, {'-'.join(map(str, SIZES))} actor"
        results = step_ratios(path, rounds=args.rounds, calls=args.calls)
    print(
        f"Runtime.step / session.run with the same feeds: {what}, "
        f"{args.rounds} rounds x {args.calls} calls (medians)"
    )
    for mode, r in results.items():
        print(
            f"{mode:16s} {r['ratio']:5.3f}x  (session.run {r['session_run_s'] * 1e6:6.1f} us, "
            f"Runtime.step {r['runtime_step_s'] * 1e6:6.1f} us)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
