"""CI check: a --target onnxruntime==X.Y file runs under that old onnxruntime as under today's.

    python tests/compat/old_onnxruntime.py [--onnxruntime 1.16.3] [--ticks 24]

Compiles examples/quadruped.py with ``--target onnxruntime==X.Y``, records seeded random inputs,
runs the file tick by tick with today's onnxruntime here and with onnxruntime X.Y.Z (and
numpy<2, no torch) in a separate venv under build/compat/, and compares every output of every
tick (max |diff| < 1e-4). Exit 0 when they agree, 1 when not or when the old runtime cannot be
installed, and 0 with a "SKIPPED" line only when the package index cannot be reached at all.

The replay half (``--replay``) imports only numpy and onnxruntime: it is what runs in the venv.
``--replay-runtime`` replays the same inputs through ``exploy_dsl.Runtime`` in that venv (this
checkout on its path, no onnx there), which must give the plain replay's outputs bit for bit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ATOL = 1e-4
DEFAULT_INDEX = "https://pypi.org/simple"


def replay(model_path: str, inputs_path: str, outputs_path: str) -> None:
    """Step the file as a deployed loop does: tick k, recorded inputs, memory out -> in.

    The first call feeds no memory, so onnxruntime uses the initial values stored in the file
    (as exploy's C++ controller does after a reset).
    """
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    recorded = np.load(inputs_path)
    ticks = int(recorded["ticks"])
    wires = [k[len("t0/") :] for k in recorded.files if k.startswith("t0/")]
    memory: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for tick in range(ticks):
        feeds = {name: recorded[f"t{tick}/{name}"] for name in wires}
        feeds["ctx.step_count"] = np.array(tick, dtype=np.int32)
        feeds.update(memory)
        values = dict(zip(names, session.run(names, feeds), strict=True))
        memory = {
            name[: -len(".out")] + ".in": value
            for name, value in values.items()
            if name.startswith("memory.")
        }
        results.update({f"t{tick}/{name}": value for name, value in values.items()})
    np.savez(outputs_path, onnxruntime=np.array(ort.__version__), **results)


def replay_runtime(model_path: str, inputs_path: str, outputs_path: str) -> None:
    """The replay through exploy_dsl.Runtime: it needs numpy and onnxruntime, nothing else."""
    import numpy as np

    from exploy_dsl import Runtime

    runtime = Runtime(model_path)
    recorded = np.load(inputs_path)
    wires = [k[len("t0/") :] for k in recorded.files if k.startswith("t0/")]
    results: dict[str, Any] = {}
    for tick in range(int(recorded["ticks"])):
        outputs = runtime.step({name: recorded[f"t{tick}/{name}"] for name in wires})
        results.update({f"t{tick}/{name}": value for name, value in outputs.items()})
    missing = sorted({"onnx", "spox", "torch"} & set(sys.modules))
    if missing:
        raise SystemExit(f"FAILED: exploy_dsl.Runtime imported {', '.join(missing)}.")
    np.savez(outputs_path, **results)


def same_bits(a_path: Path, b_path: Path) -> bool:
    import numpy as np

    a, b = np.load(a_path), np.load(b_path)
    keys = sorted(k for k in a.files if k.startswith("t"))
    if keys != sorted(k for k in b.files if k.startswith("t")) or not keys:
        return False
    return all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and a[k].tobytes() == b[k].tobytes()
        for k in keys
    )


def record_inputs(model_path: Path, path: Path, ticks: int, seed: int) -> None:
    import numpy as np

    from exploy_dsl import load_model, read_contract

    contract = read_contract(load_model(model_path))
    rng = np.random.default_rng(seed)
    arrays: dict[str, Any] = {"ticks": np.array(ticks)}
    for tick in range(ticks):
        for wire in contract.inputs:
            if wire.dtype == "bool":
                value = rng.random(wire.shape) < 0.5
            elif wire.dtype == "int32":
                value = rng.integers(-5, 6, wire.shape).astype(np.int32)
            else:
                value = rng.normal(size=wire.shape).astype(np.float32)
            arrays[f"t{tick}/{wire.name}"] = value
    np.savez(path, **arrays)


def compile_for(version: str, path: Path) -> None:
    from compiler import compile_program
    from compiler.cli._program_file import load_program_file

    minor = ".".join(version.split(".")[:2])
    loaded = load_program_file(ROOT / "examples" / "quadruped.py")
    compile_program(
        loaded.program, loaded.default_actor(), target=f"onnxruntime=={minor}", output=path
    )


def interpreter(requested: str | None) -> str:
    """A Python old onnxruntime has wheels for (1.16: 3.8 to 3.11)."""
    if requested:
        return requested
    if sys.version_info < (3, 12):
        return sys.executable
    for name in ("python3.11", "python3.10"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(
        f"FAILED: this is Python {sys.version_info.major}.{sys.version_info.minor}, and old "
        "onnxruntime releases have no wheels for it; no python3.11/3.10 on PATH. "
        "Fix: install Python 3.11 or pass --python PATH."
    )


def index_reachable() -> tuple[bool, str]:
    url = os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX).rstrip("/") + "/onnxruntime/"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            response.read(1)
        return True, url
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {exc}"


def old_runtime_venv(version: str, python: str, folder: Path) -> Path | None:
    """A venv with onnxruntime==version and numpy<2 (no torch); None when the index is down."""
    venv = folder / f"venv-onnxruntime-{version}"
    exe = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(exe), "-m", "pip", "install", "--quiet", f"onnxruntime=={version}", "numpy<2"],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            reachable, detail = index_reachable()
            if not reachable:
                print(
                    f"SKIPPED: cannot reach the package index to install onnxruntime "
                    f"{version} ({detail})."
                )
                return None
            raise SystemExit(
                f"FAILED: pip could not install onnxruntime=={version} numpy<2 into {venv}:\n"
                f"{install.stderr.strip()[-2000:]}"
            )
        stamp.write_text(version)
    has_torch = subprocess.run(
        [str(exe), "-c", "import importlib.util as u; print(u.find_spec('torch') is not None)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if has_torch != "False":
        raise SystemExit(f"FAILED: torch is importable in {venv}; the old runtime must run alone.")
    return exe


def compare(now_path: Path, old_path: Path, ticks: int) -> float:
    import numpy as np

    now, old = np.load(now_path), np.load(old_path)
    worst = 0.0
    keys = [k for k in now.files if k.startswith("t")]
    if sorted(keys) != sorted(k for k in old.files if k.startswith("t")) or not keys:
        raise SystemExit("FAILED: the two runs returned different outputs.")
    for tick in range(ticks):
        for key in (k for k in keys if k.startswith(f"t{tick}/")):
            a, b = now[key], old[key]
            if a.shape != b.shape or a.dtype != b.dtype:
                raise SystemExit(f"FAILED: {key}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0))
            if not diff < ATOL:
                output = key[len(f"t{tick}/") :]
                raise SystemExit(
                    f"FAILED: tick {tick} output {output!r} differs by {diff:g} (>= {ATOL})."
                )
            worst = max(worst, diff)
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnxruntime", default="1.16.3", help="old release (default 1.16.3)")
    parser.add_argument("--ticks", type=int, default=24, help="ticks to compare (>= 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--python", help="interpreter for the old runtime's venv")
    parser.add_argument("--workdir", default=str(ROOT / "build" / "compat"))
    parser.add_argument("--replay", nargs=3, metavar=("MODEL", "INPUTS", "OUTPUTS"))
    parser.add_argument("--replay-runtime", nargs=3, metavar=("MODEL", "INPUTS", "OUTPUTS"))
    args = parser.parse_args(argv)
    if args.replay:
        replay(*args.replay)
        return 0
    if args.replay_runtime:
        replay_runtime(*args.replay_runtime)
        return 0
    if args.ticks < 20:
        parser.error("--ticks must be >= 20")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    model = work / f"quadruped-onnxruntime-{args.onnxruntime}.onnx"
    inputs, now, old = work / "inputs.npz", work / "outputs-now.npz", work / "outputs-old.npz"
    exe = old_runtime_venv(args.onnxruntime, interpreter(args.python), work)
    if exe is None:
        return 0
    compile_for(args.onnxruntime, model)
    record_inputs(model, inputs, args.ticks, args.seed)
    replay(str(model), str(inputs), str(now))
    subprocess.run(
        [str(exe), str(Path(__file__).resolve()), "--replay", str(model), str(inputs), str(old)],
        check=True,
        cwd=str(work),  # not the repository: nothing of exploy_dsl can be imported there
    )
    worst = compare(now, old, args.ticks)
    stepped = work / "outputs-old-runtime.npz"
    subprocess.run(
        [str(exe), str(Path(__file__).resolve()), "--replay-runtime", str(model), str(inputs),
         str(stepped)],
        check=True,
        cwd=str(work),
        env=dict(os.environ, PYTHONPATH=str(ROOT)),  # exploy_dsl from this checkout, no onnx
    )  # fmt: skip
    if not same_bits(stepped, old):
        raise SystemExit(
            f"FAILED: exploy_dsl.Runtime under onnxruntime {args.onnxruntime} does not give "
            "the plain replay's outputs bit for bit."
        )
    import numpy as np

    versions = str(np.load(now)["onnxruntime"]), str(np.load(old)["onnxruntime"])
    print(
        f"old onnxruntime OK: {model.name} (--target onnxruntime=="
        f"{'.'.join(args.onnxruntime.split('.')[:2])}) gives the same outputs under onnxruntime "
        f"{versions[1]} as under {versions[0]} for {args.ticks} ticks (max |diff| {worst:.2g}); "
        "exploy_dsl.Runtime there (numpy and onnxruntime only) gives them bit for bit."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
