"""Same program and actor, same bytes: in one process, across processes; provenance and stamp."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from compiler import compile_program
from compiler.build._reproducible import STAMP_KEY, weights_sha256
from compiler.cli._main import main
from compiler.cli._program_file import ProgramFile
from exploy_dsl import CompileError, UsageError, trace
from tests._support import (
    EXAMPLES,
    ROOT,
    CliExample,
    example_files,
    mlp_actor,
)
from tests.compiler.test_parity import tiny_program

QUADRUPED = str(EXAMPLES / "quadruped.py")


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def serialized(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString(deterministic=True)


@pytest.fixture(scope="module")
def quadruped(example_programs: dict[str, ProgramFile]) -> ProgramFile:
    return example_programs["quadruped"]


@pytest.mark.torch
@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_a_torch_actor_compiles_to_the_same_bytes_twice(
    quadruped: ProgramFile, exporter: Any
) -> None:
    first = compile_program(quadruped.program, quadruped.default_actor(), exporter=exporter)
    second = compile_program(quadruped.program, quadruped.default_actor(), exporter=exporter)
    assert serialized(first) == serialized(second)
    # The exporter's debug info (stack traces with absolute paths) is not in the file.
    data = serialized(first)
    assert b"site-packages" not in data and str(ROOT).encode() not in data
    assert b"pkg.torch.onnx" not in data


def test_an_onnx_actor_file_compiles_to_the_same_bytes_twice_and_keeps_no_folder(
    quadruped: ProgramFile, tmp_path: Path
) -> None:
    path = tmp_path / "policy.onnx"
    onnx.save(mlp_actor(48, 12, seed=5).model, str(path))
    first = compile_program(quadruped.program, str(path))
    second = compile_program(quadruped.program, str(path))
    assert serialized(first) == serialized(second)
    assert str(tmp_path).encode() not in serialized(first)
    recorded = json.loads(metadata_of(first)["exploy_dsl.actor"])
    assert recorded["source"] == "'policy.onnx'" and recorded["exporter"] is None


# The file's own actor() across processes: test_every_example_compiles_to_the_same_bytes_...
@pytest.mark.parametrize(("actor_args", "exporter"), [(["--actor", "ACTOR"], "dynamo")])
def test_a_compile_in_another_process_gives_the_same_bytes(
    quadruped: ProgramFile, tmp_path: Path, actor_args: list[str], exporter: str
) -> None:
    actor_path = tmp_path / "policy.onnx"
    onnx.save(mlp_actor(48, 12, seed=5).model, str(actor_path))
    actor: Any = str(actor_path) if actor_args else quadruped.default_actor()
    here = compile_program(quadruped.program, actor, exporter=exporter)  # type: ignore[arg-type]
    out = tmp_path / "there.onnx"
    args = [a.replace("ACTOR", str(actor_path)) for a in actor_args]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-m", "compiler.cli", "compile", QUADRUPED, *args, "-o", str(out),
         "--exporter", exporter],
        check=True, cwd=str(tmp_path), env=env, capture_output=True,
    )  # fmt: skip
    assert out.read_bytes() == serialized(here)


def test_the_file_records_stage_and_weight_hashes_and_tool_versions(
    quadruped: ProgramFile,
) -> None:
    actor = mlp_actor(48, 12, seed=5)
    meta = metadata_of(compile_program(quadruped.program, actor.model))
    hashes = json.loads(meta["exploy_dsl.hashes"])
    traced = trace(quadruped.program)
    assert hashes["algorithm"] == "sha256"
    assert hashes["stages"] == {
        stage.kind: hashlib.sha256(stage.model.SerializeToString(deterministic=True)).hexdigest()
        for stage in traced.stages
    }
    assert hashes["actor_weights"] == weights_sha256(actor.model)
    tools = json.loads(meta["exploy_dsl.tools"])
    assert list(tools) == ["exploy_dsl", "onnx", "onnxruntime", "spox", "onnxscript", "numpy"]
    assert tools["onnx"] == onnx.__version__ and tools["numpy"] == np.__version__
    stages = json.loads(meta["exploy_dsl.stages"])
    assert stages["process_actions"]["file"] == "quadruped.py"
    assert "target(v, actions)" in stages["process_actions"]["source"]
    assert STAMP_KEY not in meta and "model_source" not in meta


@pytest.mark.torch
def test_torch_is_a_recorded_tool_only_when_it_exported_the_actor(quadruped: ProgramFile) -> None:
    meta = metadata_of(
        compile_program(quadruped.program, quadruped.default_actor(), exporter="torchscript")
    )
    assert "torch" in json.loads(meta["exploy_dsl.tools"])


def test_the_weights_hash_follows_the_values_not_the_names() -> None:
    actor = mlp_actor(4, 2, seed=1).model
    renamed = onnx.ModelProto()
    renamed.CopyFrom(actor)
    renamed.graph.initializer[0].name = "renamed"
    for node in renamed.graph.node:
        node.input[:] = ["renamed" if n == "w1" else n for n in node.input]
    assert weights_sha256(renamed) == weights_sha256(actor)
    assert weights_sha256(mlp_actor(4, 2, seed=2).model) != weights_sha256(actor)


# -- --stamp and --model-source -----------------------------------------------------------------


@pytest.fixture
def actor_file(tmp_path: Path) -> str:
    path = tmp_path / "actor.onnx"
    onnx.save(mlp_actor(48, 12).model, str(path))
    return str(path)


def compile_cli(tmp_path: Path, actor_file: str, *extra: str) -> tuple[int, onnx.ModelProto | None]:
    out = tmp_path / "q.onnx"
    if out.exists():
        out.unlink()
    code = main(["compile", QUADRUPED, "--actor", actor_file, "-o", str(out), *extra])
    return code, onnx.load(str(out)) if out.exists() else None


def test_stamp_adds_the_export_date_in_exploys_key(
    tmp_path: Path, actor_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC
    code, model = compile_cli(tmp_path, actor_file, "--stamp")
    assert code == 0 and model is not None
    assert metadata_of(model)[STAMP_KEY] == "231114.221320"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    code, model = compile_cli(tmp_path, actor_file, "--stamp")
    assert model is not None and len(metadata_of(model)[STAMP_KEY]) == len("231114.221320")


def test_model_source_is_stored_as_json_and_keeps_the_file_reproducible(
    tmp_path: Path, actor_file: str
) -> None:
    source = '{"run": "wandb/abc123", "checkpoint": 1500}'
    _, first = compile_cli(tmp_path, actor_file, "--model-source", source)
    (tmp_path / "source.json").write_text(source)
    _, second = compile_cli(tmp_path, actor_file, "--model-source", f"@{tmp_path / 'source.json'}")
    assert first is not None and second is not None
    assert serialized(first) == serialized(second)
    assert metadata_of(first)["model_source"] == '{"run": "wandb/abc123", "checkpoint": 1500}'


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("{run: abc}", r"--model-source is not valid JSON \(Expecting property name"),
        ("[1, 2]", r"--model-source is JSON list, expected an object"),
        ("@missing.json", r"--model-source file 'missing.json' cannot be read"),
        ('{"reward": NaN}', r"--model-source holds NaN or Infinity, which JSON .* does not allow"),
        ('{"x": [1, -Infinity]}', r"--model-source holds NaN or Infinity"),
    ],
)
def test_a_bad_model_source_is_a_user_error(
    tmp_path: Path,
    actor_file: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    match: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, model = compile_cli(tmp_path, actor_file, "--model-source", value)
    err = capsys.readouterr().err
    assert (code, model) == (2, None)
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("exploy-dsl compile: error: ")
    assert re.search(match, err), err


def test_model_source_mistakes_are_usage_errors() -> None:
    from compiler.cli._cmd_compile import parse_model_source

    with pytest.raises(UsageError, match=r"--model-source is JSON int, expected an object"):
        parse_model_source("3")


@pytest.mark.parametrize("source", [{"reward": float("nan")}, {"when": object()}])
def test_a_model_source_json_cannot_hold_is_a_compile_error(source: dict[str, Any]) -> None:
    with pytest.raises(CompileError, match=r"^model_source cannot be stored as JSON: "):
        compile_program(tiny_program(), mlp_actor(5, 2, seed=3).model, model_source=source)


@pytest.mark.torch
def test_every_example_compiles_to_the_same_bytes_in_another_process(
    example: Callable[[str], CliExample], tmp_path: Path
) -> None:
    """All examples (their own actor(), torch ones included) in one fresh process, another hash
    seed, against this process's compile of each."""
    stems = [p.stem for p in example_files()]
    script = (
        "import sys\nfrom compiler.cli._main import main\n"
        "for stem in sys.argv[2:]:\n"
        "    args = ['compile', f'{sys.argv[1]}/{stem}.py', '-o', f'{stem}.onnx']\n"
        "    assert main(args) == 0, stem\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4321"}
    subprocess.run(
        [sys.executable, "-c", script, str(EXAMPLES), *stems],
        check=True, cwd=str(tmp_path), env=env, capture_output=True,
    )  # fmt: skip
    for stem in stems:
        here = example(stem)
        if isinstance(here.actor, Path):  # no actor() in the file: compiled with --actor here
            continue
        assert (tmp_path / f"{stem}.onnx").read_bytes() == here.out.read_bytes(), stem
