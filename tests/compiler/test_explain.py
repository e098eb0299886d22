"""``exploy-dsl explain``: the constants a deployer must trust, checked against a golden text."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

from compiler.cli._main import main
from compiler.tools._explain import render_explain
from exploy_dsl import read_contract
from tests._support import Compiled

GOLDEN = Path(__file__).parent / "golden" / "explain_quadruped.txt"
# EXPLOY_DSL_UPDATE_GOLDEN=1 rewrites the golden file; review the diff before committing it.
UPDATE = os.environ.get("EXPLOY_DSL_UPDATE_GOLDEN") == "1"


def test_explain_of_the_quadruped_matches_the_golden_text(compiled: dict[str, Compiled]) -> None:
    text = render_explain(read_contract(compiled["quadruped"].model), "quadruped.onnx")
    if UPDATE:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()


def test_explain_shows_every_constant_a_deployer_trusts(compiled: dict[str, Compiled]) -> None:
    text = GOLDEN.read_text()
    for expected in (
        "  obs[0:3]     base_lin_vel       scale 2",
        "  obs[9:12]    velocity_commands  scale [2, 2, 0.25]",
        "  the concatenation is clipped to [-100, 100]",
        "  policy step: every 4 ticks (50 Hz), when ctx.step_count % 4 == 0;",
        "  constant float32[12] [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1, -1.5, -0.1, 1, -1.5]",
        "  |     target(v, actions)  # the held joint target",
        "    joint position action, held in memory.joint_pos.processed_actions: target = actions "
        "* 0.25 + [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1, -1.5, -0.1, 1, -1.5], once per policy "
        "step, held until the next; target = [0.1, 0.8, -1.5, -0.1, 0.8, -1.5, 0.1, 1, -1.5, -0.1, "
        "1, -1.5] after a reset (quadruped.py:61)",
        "    clip to [-25, 25] (quadruped.py:71)",
        "  RR_calf   0          0",
        "  joint_pos.processed_actions  float32[1, 12]  [0.1, 0.8, -1.5,",
        "  cmd.se2_velocity.base_velocity ranges: lin_vel_x [-1, 1], lin_vel_y [-0.5, 0.5], "
        "ang_vel_z [-1, 1]",
    ):
        assert expected in text, expected


def test_the_command_prints_it(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    path = str(compiled["quadruped"].path)
    assert main(["explain", path]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == render_explain(read_contract(compiled["quadruped"].model), path)


def test_a_file_without_exploy_dsl_records_is_still_explained(
    compiled: dict[str, Compiled], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = onnx.ModelProto()
    model.CopyFrom(compiled["tutorial"].model)
    kept = [p for p in model.metadata_props if not p.key.startswith("exploy_dsl.")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(tmp_path / "bare.onnx"))
    assert main(["explain", str(tmp_path / "bare.onnx")]) == 0
    out = capsys.readouterr().out
    assert "program (not recorded)" in out
    assert "terms (no layout recorded): ['foo', 'bar', 'baz', 'actions']" in out
    assert "process_actions (once per policy step, after the actor):\n  (not recorded" in out
    assert "  processed_actions  float32[1, 2]  [0, 0]" in out


def test_explain_of_a_broken_file_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    assert main(["explain", str(tmp_path / "junk.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a readable ONNX model" in err


def test_onnxscript_constants_keep_their_float32_type(compiled: dict[str, Compiled]) -> None:
    text = render_explain(read_contract(compiled["tutorial"].model), "tutorial.onnx")
    observations = text.split("observations (once per policy step")[1].split("\n\n")[0]
    assert "  constant float32 1\n  constant float32 2\n" in observations  # + 1.0, onnxscript 2.0
    assert "  ops: Add x2, Concat x1, Mul x1" in observations
