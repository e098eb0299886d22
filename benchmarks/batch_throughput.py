"""Throughput of a batched quadruped file against its actor alone, at the same batch.

``exploy-dsl compile --batch N`` builds a file that steps N envs per call, for evaluation.
This measures one call of that file (a policy step, and an apply-only step) against one call
of the actor alone on ``[N, 48]``: onnxruntime on the CPU, one intra-op thread,
ORT_ENABLE_ALL, a 48-512-256-128-12 ELU actor with seeded weights (no torch needed). Rounds
interleave the three measurements, so the machine's drift hits them alike; the figures are
medians over rounds of the per-round ratios. Building the file is not timed. From the
repository root:

    python benchmarks/batch_throughput.py [--batch 4096] [--rounds 31] [--dynamic]

``measure(batch, rounds)`` returns the figures as a dict (for benchmarks/speed.py).
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
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler import compile_program  # noqa: E402
from compiler.cli._program_file import load_program_file  # noqa: E402
from exploy_dsl import read_contract  # noqa: E402

SIZES = (48, 512, 256, 128, 12)
GOAL = 1.10  # the policy step within 1.1x of the actor alone (issue 12)


def actor_model(sizes: tuple[int, ...] = SIZES, seed: int = 0) -> onnx.ModelProto:
    """A seeded MLP with ELU between layers, ``[batch, 48] -> [batch, 12]``, batch symbolic."""
    rng = np.random.default_rng(seed)
    nodes, weights, x = [], [], "obs"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        weights.append(numpy_helper.from_array(
            (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(np.float32), f"w{i}"
        ))  # fmt: skip
        weights.append(
            numpy_helper.from_array((0.01 * rng.normal(size=n_out)).astype(np.float32), f"b{i}")
        )
        last = i == len(sizes) - 2
        out = "actions" if last else f"g{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [out]))
        if not last:
            nodes.append(helper.make_node("Elu", [f"g{i}"], [f"h{i}"]))
            x = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, ["batch", sizes[-1]])],
        weights,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _timed(call: Callable[[], object], calls: int) -> float:
    """Seconds per call, the best of three runs of ``calls`` calls (one round)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def measure(
    batch: int = 4096, rounds: int = 31, *, dynamic: bool = False, calls: int | None = None
) -> dict[str, Any]:
    """The batched quadruped file and its actor alone at ``batch`` envs, ``rounds`` rounds.

    Returns seconds per call (medians) and the ratios: ``policy_ratio`` (a policy step of
    the file / the actor alone), ``apply_ratio`` (an apply-only step / the actor alone) and
    ``cycle_ratio`` (one decimation cycle, a policy step and decimation - 1 apply-only
    steps, / the actor alone once), each the median over rounds of that round's ratio.
    ``dynamic`` compiles with a symbolic batch instead of a fixed one.
    """
    loaded = load_program_file(ROOT / "examples" / "quadruped.py")
    actor = actor_model()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batched.onnx"
        compile_program(loaded.program, actor, batch="dynamic" if dynamic else batch, output=path)
        data = path.read_bytes()
    contract = read_contract(data).at_batch(batch if dynamic else None)
    decimation = contract.decimation
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {
        w.name: rng.normal(size=w.shape).astype(np.float32) for w in contract.inputs
    }
    feeds.update({name: np.ascontiguousarray(v) for name, v in contract.initial_values.items()})
    file = session(data)
    alone = session(actor.SerializeToString())
    outputs = [o.name for o in file.get_outputs()]
    obs = rng.normal(size=(batch, SIZES[0])).astype(np.float32)
    policy_feeds = {**feeds, "ctx.step_count": np.array(0, np.int32)}
    apply_feeds = {**feeds, "ctx.step_count": np.array(1, np.int32)}
    steps: dict[str, Callable[[], object]] = {
        "actor": lambda: alone.run(["actions"], {"obs": obs}),
        "policy": lambda: file.run(outputs, policy_feeds),
        "apply": lambda: file.run(outputs, apply_feeds),
    }
    for step in steps.values():  # warm up: first runs allocate
        for _ in range(3):
            step()
    if calls is None:  # about 50 ms per measurement
        calls = max(1, round(0.05 / max(_timed(steps["actor"], 1), 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in steps}
    ratios: dict[str, list[float]] = {"policy": [], "apply": [], "cycle": []}
    for _ in range(rounds):
        now = {name: _timed(step, calls) for name, step in steps.items()}
        for name, value in now.items():
            times[name].append(value)
        ratios["policy"].append(now["policy"] / now["actor"])
        ratios["apply"].append(now["apply"] / now["actor"])
        ratios["cycle"].append((now["policy"] + (decimation - 1) * now["apply"]) / now["actor"])
    return {
        "batch": batch,
        "dynamic": dynamic,
        "rounds": rounds,
        "calls": calls,
        "decimation": decimation,
        "actor_s": statistics.median(times["actor"]),
        "policy_s": statistics.median(times["policy"]),
        "apply_s": statistics.median(times["apply"]),
        "policy_ratio": statistics.median(ratios["policy"]),
        "apply_ratio": statistics.median(ratios["apply"]),
        "cycle_ratio": statistics.median(ratios["cycle"]),
        "policy_ratio_range": (min(ratios["policy"]), max(ratios["policy"])),
        "goal": GOAL,
    }


def render(result: dict[str, Any]) -> str:
    kind = "dynamic-batch file run at" if result["dynamic"] else "file compiled for"
    low, high = result["policy_ratio_range"]
    met = "met" if result["policy_ratio"] <= result["goal"] else "NOT met"
    return "\n".join(
        [
            f"quadruped, {kind} batch {result['batch']}; actor {'-'.join(map(str, SIZES))}; "
            f"onnxruntime {ort.__version__} CPU, 1 thread, ORT_ENABLE_ALL; {result['rounds']} "
            f"interleaved rounds of {result['calls']} calls",
            f"  actor alone       {1e3 * result['actor_s']:9.3f} ms per call",
            f"  policy step       {1e3 * result['policy_s']:9.3f} ms per call",
            f"  apply-only step   {1e3 * result['apply_s']:9.3f} ms per call",
            f"policy step / actor alone: {result['policy_ratio']:.3f}x "
            f"(rounds {low:.3f}x - {high:.3f}x; goal <= {result['goal']:.2f}x: {met})",
            f"apply-only step / actor alone: {result['apply_ratio']:.3f}x",
            f"decimation cycle (1 policy + {result['decimation'] - 1} apply-only) / actor alone: "
            f"{result['cycle_ratio']:.3f}x",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=4096, help="envs per call (default 4096)")
    parser.add_argument("--rounds", type=int, default=31, help="interleaved rounds (default 31)")
    parser.add_argument("--calls", type=int, help="calls per measurement (default: ~50 ms)")
    parser.add_argument(
        "--dynamic", action="store_true", help="compile with a symbolic batch, run at --batch"
    )
    args = parser.parse_args(argv)
    print(render(measure(args.batch, args.rounds, dynamic=args.dynamic, calls=args.calls)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
