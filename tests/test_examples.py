"""Every program in examples/ compiles as its docstring says and runs for a few ticks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from compiler.cli._main import main
from compiler.cli._program_file import load_program_file
from exploy_dsl import Runtime, trace
from tests._support import example_files, mlp_actor, random_feeds


@pytest.mark.torch
@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_the_example_compiles_and_runs(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{path.stem}.onnx"
    args = ["compile", str(path), "-o", str(out)]
    loaded = load_program_file(path)
    if getattr(loaded.module, "actor", None) is None:
        # An example without a default actor gets a random one of the right sizes.
        traced = trace(loaded.program)
        actor = tmp_path / "actor.onnx"
        onnx.save(mlp_actor(traced.n_obs, traced.n_actions).model, str(actor))
        args += ["--actor", str(actor)]
    assert main(args) == 0, capsys.readouterr().err
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)

    runtime = Runtime(out)
    contract = runtime.contract
    rng = np.random.default_rng(0)
    for _ in range(2 * contract.decimation + 1):
        tick = runtime.tick
        outputs = runtime.step(random_feeds(contract.inputs, rng))
        for wire in (contract.actions, contract.obs, *contract.outputs):
            value = outputs[wire.name]
            assert value.shape == wire.shape and value.dtype == wire.np_dtype, wire.name
            if value.dtype.kind == "f":
                assert np.isfinite(value).all(), (tick, wire.name)
        if tick % contract.decimation:
            assert not outputs["actions"].any() and not outputs["obs"].any(), tick
        else:
            assert outputs["obs"].any(), tick


def test_the_reference_examples_are_there() -> None:
    assert {"tutorial", "quadruped"} <= {p.stem for p in example_files()}
