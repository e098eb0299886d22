"""torch stays optional: an ONNX actor compiles and runs with torch unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from compiler import load_actor
from compiler.cli._program_file import load_program_file
from exploy_dsl import MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["torch"] = None  # any `import torch` now raises ImportError
    sys.path.insert(0, {examples!r})
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    import exploy_dsl
    import compiler
    import quadruped

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(48, 12)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["obs", "w"], ["actions"])],
        "actor",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, 48])],
        [helper.make_tensor_value_info("actions", TensorProto.FLOAT, [1, 12])],
        [w],
    )
    actor = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model = compiler.compile_program(quadruped.program, actor, output={out!r})
    runtime = exploy_dsl.Runtime({out!r})
    feeds = {{w.name: np.zeros(w.shape, w.np_dtype) for w in runtime.contract.inputs}}
    runtime.step(feeds)
    print("compiled without torch")
    """
)


def test_onnx_actor_compiles_without_torch(tmp_path: Path) -> None:
    script = SCRIPT.format(examples=str(ROOT / "examples"), out=str(tmp_path / "q.onnx"))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "compiled without torch" in result.stdout
    assert (tmp_path / "q.onnx").is_file()


def test_authoring_package_imports_neither_compiler_nor_torch() -> None:
    code = "import sys, exploy_dsl; print(sorted({'torch', 'compiler'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_torch_actor_file_without_torch_is_a_clear_error(tmp_path: Path) -> None:
    actor = tmp_path / "a.pt"
    actor.write_bytes(b"not really torch")
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None
        from compiler.cli._main import main
        sys.exit(main(["compile", {str(ROOT / "examples" / "tutorial.py")!r},
                       "--actor", {str(actor)!r}, "-o", {str(tmp_path / "t.onnx")!r}]))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert "torch is not installed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "t.onnx").exists()


def test_actor_needing_torch_without_torch_is_a_missing_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    loaded = load_program_file(ROOT / "examples" / "quadruped.py")
    with pytest.raises(
        MissingDependencyError,
        match=r"quadruped\.py: actor\(\) needs torch, which is not installed \(.*\)\. "
        r"Fix: pip install torch==2\.13\.0, or pass --actor A\.onnx\.$",
    ):
        loaded.actor(None)


def test_actor_needing_another_missing_module_names_it(tmp_path: Path) -> None:
    source = (ROOT / "examples" / "tutorial.py").read_text().split("def actor(")[0]
    program = tmp_path / "needs.py"
    program.write_text(source + "\n\ndef actor():\n    import not_installed_xyz\n")
    with pytest.raises(
        MissingDependencyError,
        match=r"actor\(\) needs not_installed_xyz, which is not installed .* "
        r"Fix: pip install not_installed_xyz, or pass --actor A\.onnx\.$",
    ):
        load_program_file(program).actor(None)


def test_torch_actor_file_without_torch_is_a_missing_dependency(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    actor = tmp_path / "a.pt"
    actor.write_bytes(b"not really torch")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(
        MissingDependencyError,
        match=r"actor '.*a\.pt' is a torch file but torch is not installed\. Fix: pip install",
    ):
        load_actor(actor, n_obs=10)
