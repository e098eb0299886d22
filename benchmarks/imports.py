"""What a fresh process pays to import, in seconds and as ratios to a baseline (medians).

    python benchmarks/imports.py [--runs 11]

Each command runs in its own interpreter (this one's, with this checkout first on the path),
baselines and commands interleaved run by run; the medians are printed with their ratio to
``python -c pass`` and to ``python -c "import onnxruntime"`` (the floor of a deploy host).
The ``exploy-dsl`` commands run through ``python -m compiler.cli``; ``compile`` is the whole
process of compiling examples/quadruped.py with a ready ONNX actor (48-512-256-128-12).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINES = {"python -c pass": "pass", "import onnxruntime": "import onnxruntime"}
CODE = {"from exploy_dsl import Runtime": "from exploy_dsl import Runtime"}


def seconds(argv: list[str]) -> float:
    """Wall time of one process running ``argv`` (it must succeed)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def measure(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Median seconds of each command, the commands interleaved in every run."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(seconds(argv))
    return {name: statistics.median(values) for name, values in times.items()}


def commands(folder: Path) -> dict[str, list[str]]:
    """What is timed: the baselines, the Runtime import and the commands, on files in folder."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import onnx
    from runtime_step import compile_quadruped, realistic_actor

    compiled = str(compile_quadruped(folder / "quadruped.onnx"))
    actor = folder / "actor.onnx"
    onnx.save(realistic_actor(), str(actor))
    py, cli = sys.executable, [sys.executable, "-m", "compiler.cli"]
    program, out = str(ROOT / "examples" / "quadruped.py"), str(folder / "out.onnx")
    found = {name: [py, "-c", code] for name, code in {**BASELINES, **CODE}.items()}
    found["exploy-dsl --help"] = [*cli, "--help"]
    found["exploy-dsl inspect FILE"] = [*cli, "inspect", compiled]
    found["exploy-dsl run FILE"] = [*cli, "run", compiled]
    found["exploy-dsl compile, ONNX actor"] = [*cli, "compile", program, "--actor", str(actor)]
    found["exploy-dsl compile, ONNX actor"] += ["-o", out]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (default 11)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        medians = measure(commands(Path(tmp)), args.runs)
    base, ort = medians["python -c pass"], medians["import onnxruntime"]
    print(f"import times, median of {args.runs} fresh processes each")
    for name, value in medians.items():
        print(
            f"{name:34s} {value:6.3f} s  {value / base:5.2f}x python -c pass  "
            f"{value / ort:5.2f}x import onnxruntime"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
