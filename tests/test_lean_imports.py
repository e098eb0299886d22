"""What each entry point imports, read from ``sys.modules`` of a fresh process (not timed).

A deploy host runs ``from exploy_dsl import Runtime`` with numpy and onnxruntime alone;
``exploy-dsl --help`` loads argparse and the command table; ``inspect`` and ``run`` load no
authoring or export machinery; ``compile`` with an ONNX actor never loads torch.
(benchmarks/speed.py measures what these cost.)
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest

from tests._support import EXAMPLES, Compiled, mlp_actor

HEAVY = {"onnx", "onnxscript", "spox", "torch", "ml_dtypes", "google"}
EXPORT = {"onnxscript", "spox", "torch"}  # what `inspect` and `run` must never load


def loaded(code: str) -> set[str]:
    """The top-level packages outside the standard library that ``code`` loads, from a fresh
    interpreter (what site loads at start-up is not counted, nor Cython's runtime modules,
    which numpy.random's compiled code registers)."""
    script = textwrap.dedent(
        """
        import json, sys
        before = set(sys.modules)
        {code}
        new = {{m.split(".")[0] for m in set(sys.modules) - before}}
        new = {{m for m in new if m != "cython_runtime" and not m.startswith("_cython_")}}
        print("LOADED " + json.dumps(sorted(new - set(sys.stdlib_module_names))))
        """
    ).format(code=textwrap.indent(textwrap.dedent(code), "").strip())
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("LOADED "), done.stdout
    return set(json.loads(line[len("LOADED ") :]))


def cli(*argv: str) -> str:
    """Code that runs ``exploy-dsl argv`` in-process and checks its exit code."""
    return (
        "from compiler.cli import main\n"
        "try:\n"
        f"    code = main({list(argv)!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "assert code == 0, code\n"
    )


def test_the_runtime_loads_numpy_and_onnxruntime_only(compiled: dict[str, Compiled]) -> None:
    code = f"""
        import numpy as np
        from exploy_dsl import Runtime
        runtime = Runtime({str(compiled["quadruped"].path)!r})
        inputs = {{w.name: np.zeros(w.shape, w.np_dtype) for w in runtime.contract.inputs}}
        for _ in range(5):
            runtime.step(inputs)
        runtime.reset()
    """
    assert loaded(code) <= {"exploy_dsl", "numpy", "onnxruntime"}


def test_help_loads_nothing_but_the_command_table() -> None:
    code = cli("--help") + (
        "assert not [m for m in sys.modules if m.startswith('compiler.cli._cmd_')]\n"
    )
    assert loaded(code) <= {"compiler", "exploy_dsl"}


@pytest.mark.parametrize("command", ["inspect", "run"])
def test_inspect_and_run_load_no_authoring_or_export_machinery(
    compiled: dict[str, Compiled], command: str
) -> None:
    found = loaded(cli(command, str(compiled["quadruped"].path)))
    assert not found & HEAVY, found
    assert found <= {"compiler", "exploy_dsl", "numpy", "onnxruntime"}, found
    assert not found & EXPORT


def test_inspect_reads_the_file_without_onnxruntime(compiled: dict[str, Compiled]) -> None:
    assert "onnxruntime" not in loaded(cli("inspect", str(compiled["quadruped"].path)))


def test_compile_with_an_onnx_actor_never_loads_torch(tmp_path: Path) -> None:
    actor = tmp_path / "actor.onnx"
    onnx.save(mlp_actor(48, 12).model, str(actor))
    out = tmp_path / "q.onnx"
    found = loaded(
        cli("compile", str(EXAMPLES / "quadruped.py"), "--actor", str(actor), "-o", str(out))
    )
    assert out.is_file()
    assert "torch" not in found
    assert {"onnx", "spox"} <= found  # it did compile: the build's own tools were loaded
