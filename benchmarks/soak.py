"""Soak: step exploy_dsl.Runtime a million ticks with resets; report memory growth and drift.

A deployed loop calls the file at 200 Hz for hours; one million ticks is about 83 minutes of it.
The soak feeds a window of seeded random inputs (cut into episodes, each starting with a reset)
over and over, so every pass of the window must give exactly the outputs a fresh Runtime gives
on it: any difference is state leaking across resets or accumulating (drift). Memory is the
process's resident set size, read from /proc/self/status (no psutil), after a warm-up pass and
at checkpoints. Not a timed test. Run from the repository root:

    python benchmarks/soak.py [--ticks 1000000] [--window 2000] [--file FILE.onnx]

Without ``--file`` it compiles examples/quadruped.py with a seeded ONNX actor (no torch).
Exit 1 when any pass drifts, or when RSS grows by more than ``--max-growth-mib`` (if given).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from interpreter_vs_reference import onnx_mlp  # noqa: E402

from compiler import compile_program  # noqa: E402
from compiler.cli._program_file import load_program_file  # noqa: E402
from exploy_dsl import ExployDslError, Runtime, Wire  # noqa: E402

Window = tuple[list[dict[str, np.ndarray]], np.ndarray]  # inputs per tick, reset flags


def rss_mib() -> float:
    """Resident set size of this process in MiB (VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status (the soak needs Linux /proc)")


def quadruped() -> onnx.ModelProto:
    loaded = load_program_file(ROOT / "examples" / "quadruped.py")
    return compile_program(loaded.program, onnx_mlp(48, 12))


def window(wires: tuple[Wire, ...], ticks: int, seed: int) -> Window:
    """``ticks`` ticks of seeded inputs, cut into episodes of 50 to 400 ticks (reset first)."""
    rng = np.random.default_rng(seed)
    inputs = []
    for _ in range(ticks):
        tick = {}
        for wire in wires:
            if wire.dtype == "bool":
                tick[wire.name] = rng.random(wire.shape) < 0.5
            elif wire.dtype == "int32":
                tick[wire.name] = rng.integers(-3, 4, wire.shape).astype(np.int32)
            else:
                tick[wire.name] = rng.uniform(-1.0, 1.0, wire.shape).astype(np.float32)
        inputs.append(tick)
    reset = np.zeros(ticks, dtype=bool)
    start = 0
    while start < ticks:
        reset[start] = True
        start += int(rng.integers(50, 401))
    return inputs, reset


def run_pass(runtime: Runtime, stream: Window, outputs: list[str]) -> np.ndarray:
    """One pass over the window; every output of every tick, flattened into one array."""
    inputs, reset = stream
    values = []
    for tick, feeds in enumerate(inputs):
        if reset[tick]:
            runtime.reset()
        out = runtime.step(feeds)
        values.append(np.concatenate([np.asarray(out[n], np.float64).reshape(-1) for n in outputs]))
    return np.stack(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000, help="ticks to run (1000000)")
    parser.add_argument("--window", type=int, default=2000, help="ticks per replayed window")
    parser.add_argument("--checkpoints", type=int, default=10, help="reports along the way")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs (default 0)")
    parser.add_argument("--file", help="a compiled file (default: the quadruped, compiled here)")
    parser.add_argument(
        "--first-tick", type=int, choices=(0, 1), default=0, help="0 (ours) or 1 (exploy's C++)"
    )
    parser.add_argument("--max-growth-mib", type=float, help="fail above this RSS growth")
    args = parser.parse_args(argv)
    if args.ticks < 1 or args.window < 1 or args.checkpoints < 1:
        parser.error("--ticks, --window and --checkpoints must be >= 1")

    source: Any = args.file if args.file is not None else quadruped()
    label = args.file or "examples/quadruped.py (seeded ONNX actor)"
    try:
        fresh = Runtime(source, first_tick=args.first_tick)
    except ExployDslError as exc:
        print(f"soak: error: {exc}", file=sys.stderr)
        return 2
    contract = fresh.contract
    outputs = [w.name for w in (contract.actions, contract.obs, *contract.outputs)]
    outputs += [w.name[: -len(".in")] + ".out" for w in contract.memory]
    stream = window(fresh.contract.inputs, min(args.window, args.ticks), args.seed)
    expected = run_pass(fresh, stream, outputs)  # what a fresh runtime gives on the window
    del fresh

    runtime = Runtime(source, first_tick=args.first_tick)
    passes, remainder = divmod(args.ticks, len(stream[0]))
    print(
        f"soak: {label}, {args.ticks} ticks = {passes} pass(es) of a {len(stream[0])}-tick "
        f"window (+{remainder}), {int(stream[1].sum())} resets per window"
    )
    start_rss, started = rss_mib(), time.perf_counter()
    print(f"RSS before: {start_rss:.1f} MiB")
    every = max(1, passes // args.checkpoints)
    worst, drifted_pass = 0.0, None
    warm_rss = start_rss
    for n in range(passes):
        got = run_pass(runtime, stream, outputs)
        diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
        same = np.array_equal(got, expected, equal_nan=True)
        if not same and drifted_pass is None:
            drifted_pass = n + 1
        worst = max(worst, diff) if np.isfinite(diff) else float("inf")
        if n == 0:
            warm_rss = rss_mib()
        if (n + 1) % every == 0 or n + 1 == passes:
            ticks = (n + 1) * len(stream[0])
            rate = ticks / (time.perf_counter() - started)
            print(
                f"  {ticks:>9} ticks  RSS {rss_mib():8.1f} MiB  max |drift| so far {worst:.3g}  "
                f"({rate:,.0f} ticks/s)"
            )
    if remainder:
        partial = (stream[0][:remainder], stream[1][:remainder])
        got = run_pass(runtime, partial, outputs)
        if not np.array_equal(got, expected[:remainder], equal_nan=True):
            drifted_pass = drifted_pass or passes + 1
            worst = max(worst, float(np.max(np.abs(got - expected[:remainder]))))
    end_rss = rss_mib()
    growth = end_rss - warm_rss
    print(
        f"memory: RSS {warm_rss:.1f} MiB after the first pass, {end_rss:.1f} MiB at the end: "
        f"growth {growth:+.1f} MiB"
    )
    if drifted_pass is None:
        print("drift: none; every pass equals a fresh Runtime's outputs exactly")
    else:
        print(f"drift: pass {drifted_pass} first differs from a fresh Runtime (max {worst:.3g})")
    too_much = args.max_growth_mib is not None and growth > args.max_growth_mib
    if too_much:
        print(f"memory: growth {growth:.1f} MiB exceeds --max-growth-mib {args.max_growth_mib}")
    return 1 if drifted_pass is not None or too_much else 0


if __name__ == "__main__":
    sys.exit(main())
