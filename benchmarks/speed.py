"""Issue 12's speed table, every row measured in one run on this machine, as ratios.

The quadruped (examples/quadruped.py) compiled with a realistic 48-512-256-128-12 ELU actor
(seeded torch weights, exported with torch.onnx) is run side by side with: the actor alone; a
no-compute file of the same signature (memory outs = Identity of the memory ins, every other
output constant zeros); and, as what a user could pick instead, the same step traced from torch
(benchmarks/speed_traced.py). onnxruntime CPU, 1 intra-op thread, ORT_ENABLE_ALL, batch 1.
Run from the repository root:

    python benchmarks/speed.py [--rounds 35] [--runs 5] [--quick] [--json PATH]

Statistics: an in-process row is the median over ``--rounds`` rounds of that round's ratio. In
a round the candidates take turns, 5 blocks of calls each, in an order that rotates from round
to round, so a neighbour's load hits both sides of a ratio alike; a candidate's time in a round
is its fastest block (a neighbour's burst lands in a slower one). A whole-process row (compile,
--help, imports) is the ratio of the medians of ``--runs`` interleaved subprocess runs. Before
timing, the traced file and a hand-written NumPy step are checked to compute the compiled file's
outputs.
Needs torch (for the actor and the traced alternative).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import speed_traced  # noqa: E402
from interpreter_vs_reference import EvaluatorLoop, max_difference, timed  # noqa: E402

from compiler import load_actor, random_stream  # noqa: E402
from compiler.cli._program_file import ProgramFile, load_program_file  # noqa: E402
from exploy_dsl import ReferenceInterpreter, Runtime, read_contract, trace  # noqa: E402
from exploy_dsl.contract._wires import STEP_COUNT, in_to_out  # noqa: E402

EXAMPLE = ROOT / "examples" / "quadruped.py"
BATCH = 4096  # the batched-throughput row
PARITY_ATOL = 1e-4
Feeds = dict[str, np.ndarray]
Call = Callable[[], object]


# --- sessions and timing ---------------------------------------------------------------------


def session_options(optimized_path: Path | None = None) -> ort.SessionOptions:
    """The issue's settings: 1 intra-op thread, ORT_ENABLE_ALL; quiet (memory initializers)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return options


def session(data: bytes, optimized_path: Path | None = None) -> ort.InferenceSession:
    return ort.InferenceSession(
        data, session_options(optimized_path), providers=["CPUExecutionProvider"]
    )


def interleaved(
    candidates: Mapping[str, Call], rounds: int, block: int, repeats: int
) -> dict[str, np.ndarray]:
    """Seconds per call of every candidate in every round: its fastest of ``repeats`` blocks
    of ``block`` calls (a neighbour's burst lands in a slower one). Candidates take turns
    block by block, in an order that rotates from round to round."""
    names = list(candidates)
    for call in candidates.values():  # warm-up: first-run allocations are not timed
        for _ in range(block):
            call()
    seconds = {name: np.full(rounds, np.inf) for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for _ in range(repeats):
            for name in names[shift:] + names[:shift]:
                call = candidates[name]
                start = time.perf_counter()
                for _ in range(block):
                    call()
                elapsed = (time.perf_counter() - start) / block
                seconds[name][r] = min(seconds[name][r], elapsed)
    return seconds


def median_ratio(numerator: np.ndarray, denominator: np.ndarray) -> float:
    """The median over rounds of the per-round ratio."""
    return float(np.median(numerator / denominator))


def wall_medians(commands: Mapping[str, Sequence[str]], runs: int) -> dict[str, float]:
    """Median wall seconds of each command as a whole process, runs interleaved."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for r in range(runs):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            done = subprocess.run(commands[name], capture_output=True, text=True, env=env, cwd=ROOT)
            seconds[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"speed: {name} failed ({done.returncode}): {done.stderr[-2000:]}")
    return {name: statistics.median(values) for name, values in seconds.items()}


# --- the files -------------------------------------------------------------------------------


def actor_onnx(net: torch.nn.Module) -> onnx.ModelProto:
    """torch.onnx of the actor alone, ``obs [1, 48] -> actions [1, 12]``.

    The TorchScript exporter: the same Gemm/Elu graph the dynamo exporter writes for an MLP, in
    60 ms instead of ~4 s, which keeps the benchmark's own setup short.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(1, 48),),
            buffer,
            input_names=["obs"],
            output_names=["actions"],
            dynamo=False,
            opset_version=20,
        )
    return onnx.load_from_string(buffer.getvalue())


def with_batch(model: onnx.ModelProto, n: int) -> onnx.ModelProto:
    """The same MLP at batch ``n`` (first dim of its input and output; shapes re-inferred)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for value in (*copy.graph.input, *copy.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = n
    del copy.graph.value_info[:]
    return copy


def no_compute_file(model: onnx.ModelProto) -> onnx.ModelProto:
    """Same inputs (memory initializers included) and outputs as ``model``, and no work:
    every ``memory.X.out`` is Identity of ``memory.X.in``, every other output constant zeros."""
    graph = model.graph
    memory_outs = {in_to_out(w.name): w.name for w in read_contract(model).memory}
    nodes = []
    for out in graph.output:
        if out.name in memory_outs:
            nodes.append(helper.make_node("Identity", [memory_outs[out.name]], [out.name]))
            continue
        tensor = out.type.tensor_type
        dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type)
        zeros = np.zeros([d.dim_value for d in tensor.shape.dim], dtype)
        value = numpy_helper.from_array(zeros, f"{out.name}.zeros")
        nodes.append(helper.make_node("Constant", [], [out.name], value=value))
    inputs = {i.name for i in graph.input}
    initializers = [init for init in graph.initializer if init.name in inputs]
    new_graph = helper.make_graph(
        nodes, "no_compute", list(graph.input), list(graph.output), initializers
    )
    return helper.make_model(new_graph, opset_imports=[helper.make_opsetid("", 20)], ir_version=10)


def tick_feeds(
    inputs: Mapping[str, np.ndarray], memory: Mapping[str, np.ndarray], tick: int
) -> Feeds:
    return {**inputs, **memory, STEP_COUNT: np.array(tick, np.int32)}


# --- equal outputs before timing -------------------------------------------------------------


class SessionLoop:
    """A file without exploy-dsl's contract (the traced one), stepped like a deployed loop."""

    def __init__(self, sess: ort.InferenceSession, initial: Mapping[str, np.ndarray]) -> None:
        self._session = sess
        self._names = [o.name for o in sess.get_outputs()]
        self._initial = initial
        self.tick = 0
        self.memory: Feeds = {}
        self.reset()

    def reset(self) -> None:
        self.tick = 0
        self.memory = {k: v.copy() for k, v in self._initial.items()}

    def step(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(self._names, tick_feeds(inputs, self.memory, self.tick))
        results = dict(zip(self._names, values, strict=True))
        self.memory = {k: results[in_to_out(k)] for k in self.memory}
        self.tick += 1
        return results


class HandWritten:
    """The quadruped's tick written by hand in NumPy: the floor for any NumPy interpreter."""

    def __init__(self, example: ModuleType, net: torch.nn.Module, decimation: int) -> None:
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        self._layers = [
            (m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears
        ]
        self._q0 = example.DEFAULT_POS.reshape(1, -1)
        self._scale = example.ACTION_SCALE
        self._kp, self._kd, self._limit = example.KP, example.KD, example.EFFORT_LIMIT
        self._command_scale = np.array([[2.0, 2.0, 0.25]], np.float32)
        self._decimation = decimation
        self.tick = 0
        self.last = self.target = self._q0
        self.reset()

    def reset(self) -> None:
        self.tick = 0
        self.last = np.zeros_like(self._q0)
        self.target = self._q0.copy()

    def step(self, x: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        pos, vel = x["obj.robot.joints.pos"], x["obj.robot.joints.vel"]
        actions = np.zeros_like(self._q0)
        obs = np.zeros((1, 48), np.float32)
        if self.tick % self._decimation == 0:
            q = x["obj.robot.base.w_Q_b"]
            w, qx, qy, qz = q[:, 0:1], q[:, 1:2], q[:, 2:3], q[:, 3:4]
            gravity = np.concatenate(
                [2 * (qy * w - qx * qz), -2 * (qy * qz + qx * w), 2 * (qx * qx + qy * qy) - 1], -1
            )
            terms = [
                x["obj.robot.base.lin_vel_b_rt_w_in_b"] * 2.0,
                x["obj.robot.base.ang_vel_b_rt_w_in_b"] * 0.25,
                gravity,
                x["cmd.se2_velocity.base_velocity"] * self._command_scale,
                pos - self._q0,
                vel * 0.05,
                self.last,
            ]
            obs = np.clip(np.concatenate(terms, -1), -100.0, 100.0)
            h = obs
            for weight, bias in self._layers[:-1]:
                h = h @ weight + bias
                h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))
            weight, bias = self._layers[-1]
            actions = h @ weight + bias
            self.last = actions
            self.target = self._q0 + self._scale * actions
        torque = self._kp * (self.target - pos) - self._kd * vel
        self.tick += 1
        return {
            "actions": actions,
            "obs": obs,
            "output.joint_targets.joint_pos.pos": self.target,
            "output.joint_targets.joint_pos.vel": np.zeros_like(self.target),
            "output.joint_targets.joint_pos.effort": np.clip(torque, -self._limit, self._limit),
            "memory.actions.out": self.last,
            "memory.joint_pos.processed_actions.out": self.target,
        }


# --- node counts -----------------------------------------------------------------------------


def op_types(graph: onnx.GraphProto) -> list[str]:
    """Every node's op type, those inside If/Loop/Scan bodies included."""
    found = []
    for node in graph.node:
        found.append(node.op_type)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                found += op_types(attribute.g)
            for body in attribute.graphs:
                found += op_types(body)
    return found


def node_counts(data: bytes, folder: Path) -> tuple[int, int, int]:
    """Nodes but Constant/Identity as written and after onnxruntime's ORT_ENABLE_ALL, and the
    Identity nodes left after it."""
    path = folder / "optimized.onnx"
    session(data, path)
    before = op_types(onnx.load_from_string(data).graph)
    after = op_types(onnx.load(path).graph)
    path.unlink()

    def work(ops: list[str]) -> int:
        return sum(op not in ("Constant", "Identity") for op in ops)

    return work(before), work(after), after.count("Identity")


# --- batched throughput (issue 12, part 5): adapt here when the batched build lands ---------


def batched_file(actor_path: Path, n: int, folder: Path) -> bytes | None:
    """The quadruped compiled for batch ``n`` with ``exploy-dsl compile --batch n``, or None
    when this exploy-dsl has no such option."""
    from compiler.cli import build_parser, main

    output = folder / f"quadruped_batch{n}.onnx"
    args = ["compile", str(EXAMPLE), "--actor", str(actor_path), "--batch", str(n)]
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(args)
    except SystemExit:
        return None  # argparse: unrecognized --batch
    with contextlib.redirect_stdout(io.StringIO()):  # its "wrote ..." is not a table row
        code = main([*args, "-o", str(output)])
    if code != 0:
        raise SystemExit(f"speed: exploy-dsl {' '.join(args)} failed (see above)")
    return output.read_bytes()


def random_feeds(sess: ort.InferenceSession, n: int, tick: int, seed: int = 0) -> Feeds:
    """Feeds for every input of ``sess``, memory included (a symbolic dimension becomes ``n``)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in (*sess.get_inputs(), *sess.get_overridable_initializers()):
        shape = [d if isinstance(d, int) else n for d in value.shape]
        if value.name == STEP_COUNT:
            feeds[value.name] = np.full(shape, tick, np.int32)
        elif value.type == "tensor(bool)":
            feeds[value.name] = rng.random(shape) < 0.5
        elif value.type == "tensor(int32)":
            feeds[value.name] = rng.integers(0, 4, shape).astype(np.int32)
        else:
            feeds[value.name] = rng.normal(size=shape).astype(np.float32)
    return feeds


def batched_ratio(
    actor: onnx.ModelProto, actor_path: Path, folder: Path, rounds: int, repeats: int
) -> float | None:
    """Policy step of the batch-``BATCH`` file / the actor alone at that batch, or None."""
    data = batched_file(actor_path, BATCH, folder)
    if data is None:
        return None
    file_session = session(data)
    actor_session = session(with_batch(actor, BATCH).SerializeToString())
    file_feeds = random_feeds(file_session, BATCH, tick=0)
    actor_feeds = random_feeds(actor_session, BATCH, tick=0)
    seconds = interleaved(
        {
            "file": lambda: file_session.run(None, file_feeds),
            "actor": lambda: actor_session.run(None, actor_feeds),
        },
        rounds,
        1,
        repeats,
    )
    return median_ratio(seconds["file"], seconds["actor"])


# --- the table -------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    now: str
    alternative: str
    floor: str
    goal: str
    met: bool | None  # None: not measurable with this exploy-dsl
    values: dict[str, float | int | None] = field(default_factory=dict)


def x(value: float) -> str:
    return f"{value:.2f}x"


def print_table(rows: Sequence[Row], header: str) -> None:
    columns = ("measure", "now", "alternative", "floor", "goal", "met?")
    cells = [
        (
            r.measure,
            r.now,
            r.alternative,
            r.floor,
            r.goal,
            {True: "yes", False: "no", None: "n/a"}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [columns, *cells]) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    print(header)
    print(line(columns))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print(line(c))


@dataclass
class Bench:
    """What every row is measured on; built once by ``setup``."""

    folder: Path
    rounds: int
    repeats: int  # timed blocks per candidate per round (the fastest counts)
    quick: bool
    net: torch.nn.Module
    actor: onnx.ModelProto
    actor_path: Path
    loaded: ProgramFile
    compiled: bytes
    traced: bytes
    initial: Feeds  # memory initial values, by memory.<name>.in
    inputs: list[Feeds]  # one decimation cycle of seeded inputs
    hand: HandWritten

    @property
    def decimation(self) -> int:
        return self.loaded.program.decimation


def whole_processes(folder: Path, actor_path: Path, runs: int) -> dict[str, float]:
    """Median wall seconds; also writes quadruped.onnx and traced.onnx into ``folder``."""
    python, cli = sys.executable, "import sys; from compiler.cli import main; sys.exit(main())"
    compile_args = ["compile", str(EXAMPLE), "--actor", str(actor_path)]
    traced_export = [python, str(ROOT / "benchmarks" / "speed_traced.py")]
    commands = {
        "compile": [python, "-c", cli, *compile_args, "-o", str(folder / "quadruped.onnx")],
        "traced export": [*traced_export, str(folder / "traced.onnx")],
        "--help": [python, "-c", cli, "--help"],
        "pass": [python, "-c", "pass"],
        "import Runtime": [python, "-c", "from exploy_dsl import Runtime"],
        "import onnxruntime": [python, "-c", "import onnxruntime"],
    }
    return wall_medians(commands, runs)


def setup(folder: Path, net: torch.nn.Module, rounds: int, repeats: int, quick: bool) -> Bench:
    """Load the files ``whole_processes`` wrote; check that they compute the same outputs."""
    actor_path = folder / "actor.onnx"
    loaded = load_program_file(EXAMPLE)
    compiled = (folder / "quadruped.onnx").read_bytes()
    traced = (folder / "traced.onnx").read_bytes()
    initial = read_contract(onnx.load_from_string(compiled)).initial_values
    hand = HandWritten(loaded.module, net, loaded.program.decimation)
    stream = random_stream(loaded.program, 64, seed=0)
    runtime = Runtime(compiled)
    _, reference = timed(runtime.step, runtime.reset, stream)
    traced_loop = SessionLoop(session(traced), initial)
    for name, engine in (("the traced file", traced_loop), ("the hand-written step", hand)):
        difference = max_difference(timed(engine.step, engine.reset, stream)[1], reference)
        if not difference <= PARITY_ATOL:
            raise SystemExit(f"speed: {name} differs from the compiled file by {difference}")
    inputs = [stream.at(t) for t in range(loaded.program.decimation)]
    actor = onnx.load(actor_path)
    return Bench(folder, rounds, repeats, quick, net, actor, actor_path, loaded, compiled, traced,
                 initial, inputs, hand)  # fmt: skip


def rows_steps(b: Bench) -> list[Row]:
    """Policy and apply-only steps against the actor alone and the no-compute file."""
    no_compute = no_compute_file(onnx.load_from_string(b.compiled)).SerializeToString()
    policy = tick_feeds(b.inputs[0], b.initial, 0)
    apply_only = tick_feeds(b.inputs[1], b.initial, 1)
    actor_session = session(b.actor.SerializeToString())
    obs = {"obs": np.random.default_rng(0).normal(size=(1, 48)).astype(np.float32)}
    candidates: dict[str, Call] = {"actor": lambda: actor_session.run(None, obs)}
    for label, data in (("file", b.compiled), ("traced", b.traced), ("no-compute", no_compute)):
        sess = session(data)
        for mode, feeds in (("policy", policy), ("apply", apply_only)):
            candidates[f"{label} {mode}"] = lambda s=sess, f=feeds: s.run(None, f)
    t = interleaved(candidates, b.rounds, 10 if b.quick else 80, b.repeats)
    step = median_ratio(t["file policy"], t["actor"])
    traced_step = median_ratio(t["traced policy"], t["actor"])
    floor = median_ratio(t["actor"] + t["no-compute policy"], t["actor"])
    apply = median_ratio(t["file apply"], t["no-compute apply"])
    traced_apply = median_ratio(t["traced apply"], t["no-compute apply"])
    return [
        Row("policy step / actor alone", x(step), f"traced {x(traced_step)}",
            f"{x(floor)} (actor + no-compute file)", "<= 1.75x", step <= 1.75,
            {"now": step, "alternative": traced_step, "floor": floor}),
        Row("apply-only step / no-compute file of the same signature", x(apply),
            f"traced {x(traced_apply)}", "1.00x", "<= 1.10x", apply <= 1.10,
            {"now": apply, "alternative": traced_apply, "floor": 1.0}),
    ]  # fmt: skip


def row_nodes(b: Bench) -> Row:
    (before, after, identities) = node_counts(b.compiled, b.folder)
    (t_before, t_after, t_identities) = node_counts(b.traced, b.folder)
    return Row(
        "nodes excl. Constant/Identity (after ORT ALL)",
        f"{before} ({after}; {identities} Identity remain)",
        f"traced {t_before} ({t_after}; {t_identities} Identity)", "-", "<= 25 (<= 20)",
        before <= 25 and after <= 20,
        {"now": before, "now_after_ort": after, "now_identity_after_ort": identities,
         "alternative": t_before, "alternative_after_ort": t_after,
         "alternative_identity_after_ort": t_identities},
    )  # fmt: skip


def row_sessions(b: Bench) -> Row:
    data = {"file": b.compiled, "traced": b.traced, "actor": b.actor.SerializeToString()}
    creations = {name: lambda d=d: session(d) for name, d in data.items()}
    t = interleaved(creations, b.rounds, 1, b.repeats)
    create = median_ratio(t["file"], t["traced"])
    floor = median_ratio(t["actor"], t["traced"])
    return Row("session creation / traced file's", x(create), "-", f"actor alone {x(floor)}",
               "<= 0.40x", create <= 0.40, {"now": create, "floor": floor})  # fmt: skip


def rows_processes(wall: Mapping[str, float]) -> list[Row]:
    build = wall["compile"] / wall["traced export"]
    help_s, pass_s = wall["--help"], wall["pass"]
    runtime_s, ort_s = wall["import Runtime"], wall["import onnxruntime"]
    return [
        Row("`exploy-dsl compile` whole process, ONNX actor / traced file's export",
            f"{x(build)} ({wall['compile']:.2f} s vs {wall['traced export']:.2f} s)", "-", "-",
            "<= 0.25x", build <= 0.25,
            {"now": build, "compile_s": wall["compile"], "traced_export_s": wall["traced export"]}),
        Row("`exploy-dsl --help`", f"{help_s:.2f} s ({x(help_s / pass_s)})", "-",
            f"`python -c pass` {pass_s:.2f} s", "<= 0.15 s", help_s <= 0.15,
            {"now_s": help_s, "floor_s": pass_s}),
        Row("`from exploy_dsl import Runtime`", f"{runtime_s:.2f} s ({x(runtime_s / ort_s)})",
            f"`import onnxruntime` {ort_s:.2f} s", "-", "<= 0.45 s", runtime_s <= 0.45,
            {"now_s": runtime_s, "alternative_s": ort_s}),
    ]  # fmt: skip


def row_runtime(b: Bench) -> Row:
    """Runtime.step against bare session.run on the same feeds, over a decimation cycle."""
    runtime, bare = Runtime(b.compiled), session(b.compiled)
    cycle = [tick_feeds(b.inputs[k], b.initial, k) for k in range(b.decimation)]

    def runtime_cycle() -> None:
        for inputs in b.inputs:
            runtime.step(inputs)

    def bare_cycle() -> None:
        for feeds in cycle:
            bare.run(None, feeds)

    cycles = {"runtime": runtime_cycle, "bare": bare_cycle}
    t = interleaved(cycles, b.rounds, 10 if b.quick else 20, b.repeats)
    ratio = median_ratio(t["runtime"], t["bare"])
    return Row("`Runtime.step` / bare `session.run` with the same feeds", x(ratio), "-",
               "1.00x", "<= 1.10x", ratio <= 1.10, {"now": ratio, "floor": 1.0})  # fmt: skip


def row_interpreter(b: Bench) -> Row:
    """Ticks/s of our interpreter of the program (ONNX actor in NumPy) and of a hand-written
    step, over onnx.reference on the compiled file; whole decimation cycles."""
    traced_program = trace(b.loaded.program)
    actor = load_actor(b.actor, n_obs=traced_program.n_obs).model
    engines = {
        "interpreter": ReferenceInterpreter(traced_program, actor),
        "onnx.reference": EvaluatorLoop(onnx.load_from_string(b.compiled)),
        "hand-written": b.hand,
    }

    def ticking(engine: Any) -> Call:
        engine.reset()
        ticks = itertools.cycle(b.inputs)
        return lambda: engine.step(next(ticks))

    # Blocks of whole decimation cycles: each holds the same share of policy steps.
    block = b.decimation * (1 if b.quick else 2)
    t = interleaved({name: ticking(e) for name, e in engines.items()}, b.rounds, block, b.repeats)
    ratio = median_ratio(t["onnx.reference"], t["interpreter"])
    floor = median_ratio(t["onnx.reference"], t["hand-written"])
    return Row("reference interpreter / onnx.reference on the file (speed)", f"{ratio:.1f}x",
               "-", f"hand-written NumPy {floor:.1f}x", ">= 30x", ratio >= 30,
               {"now": ratio, "floor": floor})  # fmt: skip


def row_batched(b: Bench) -> Row:
    ratio = batched_ratio(b.actor, b.actor_path, b.folder, b.rounds, b.repeats)
    return Row(f"batched policy step at batch {BATCH} / actor alone at batch {BATCH}",
               "n/a (no batched build)" if ratio is None else x(ratio), "-", "1.00x", "<= 1.10x",
               None if ratio is None else ratio <= 1.10, {"now": ratio, "floor": 1.0})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=35, help="interleaved rounds (default 35)")
    parser.add_argument("--runs", type=int, default=5, help="runs per subprocess (default 5)")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 1 run: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    rounds, runs, repeats = (3, 1, 1) if args.quick else (args.rounds, args.runs, 5)

    with tempfile.TemporaryDirectory(prefix="exploy_dsl_speed_") as tmp:
        folder = Path(tmp)
        net = speed_traced.actor(seed=0)
        onnx.save(actor_onnx(net), folder / "actor.onnx")
        # Whole processes first, while nothing else of ours holds memory.
        wall = whole_processes(folder, folder / "actor.onnx", runs)
        bench = setup(folder, net, rounds, repeats, args.quick)
        steps = rows_steps(bench)
        rows = [*steps, row_nodes(bench), row_sessions(bench), *rows_processes(wall),
                row_runtime(bench), row_interpreter(bench), row_batched(bench)]  # fmt: skip

    print_table(
        rows,
        f"quadruped, actor 48-512-256-128-12 ELU; onnxruntime {ort.__version__} CPU, 1 intra-op "
        f"thread, ORT_ENABLE_ALL, batch 1; {rounds} interleaved rounds (median of per-round "
        f"ratios), whole processes: medians of {runs} interleaved run(s)",
    )
    if args.json:
        settings = {
            "rounds": rounds,
            "runs": runs,
            "blocks_per_round": repeats,
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "statistic": "median of per-round ratios; whole processes: ratio of median times",
        }
        figures = {"settings": settings, "rows": [asdict(r) for r in rows]}
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
