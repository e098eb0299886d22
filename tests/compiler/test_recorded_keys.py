"""Metadata that is valid JSON of the wrong form is refused by name, by explain and diff alike."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest

from compiler.cli._main import main
from compiler.tools._diff import diff_contracts
from compiler.tools._explain import render_explain
from exploy_dsl import FileContractError, read_contract
from tests._support import Compiled

# key -> (a value of the wrong form, what the error says about it)
WRONG_FORMS = {
    "observation layout without names": (
        "exploy_dsl.observation",
        '{"size": 48, "clip": null, "terms": [{"start": 0, "size": 3}]}',
        r"exploy_dsl.observation\['terms'\]\[0\]\['name'\] is missing",
    ),
    "observation layout that is a list": (
        "exploy_dsl.observation",
        "[]",
        r"exploy_dsl.observation must be an object with 'terms', got \[\]",
    ),
    "observation term start that is text": (
        "exploy_dsl.observation",
        '{"terms": [{"name": "a", "start": "zero", "size": 3}]}',
        r"exploy_dsl.observation\['terms'\]\[0\]\['start'\] must be an int >= 0, got \"zero\"",
    ),
    "observation scale that is a number": (
        "exploy_dsl.observation",
        '{"terms": [{"name": "a", "start": 0, "size": 3, "scale": 2.0}]}',
        r"exploy_dsl.observation\['terms'\]\[0\]\['scale'\] must be a list, got 2.0",
    ),
    "stage ops that are not counts": (
        "exploy_dsl.stages",
        '{"observations": {"ops": {"Add": "two"}, "reads": [], "writes": []}}',
        r"exploy_dsl.stages\['observations'\]\['ops'\]\['Add'\] must be an int >= 0",
    ),
    "stage reads that are a number": (
        "exploy_dsl.stages",
        '{"observations": {"reads": 5}}',
        r"exploy_dsl.stages\['observations'\]\['reads'\] must be a list, got 5",
    ),
    "stage model without its weights hash": (
        "exploy_dsl.stages",
        '{"observations": {"models": [{"source": "enc.onnx", "inputs": [], "outputs": []}]}}',
        r"exploy_dsl.stages\['observations'\]\['models'\]\[0\]\['weights_sha256'\] is missing",
    ),
    "stage model shape that is text": (
        "exploy_dsl.stages",
        '{"observations": {"models": [{"source": "m", "weights_sha256": "ab", "outputs": [], '
        '"inputs": [{"name": "x", "dtype": "float32", "shape": [1, -4]}]}]}}',
        r"exploy_dsl.stages\['observations'\]\['models'\]\[0\]\['inputs'\]\[0\]\['shape'\]\[1\] "
        r"must be an int >= 0, a symbol or null, got -4",
    ),
    "library step without its name": (
        "exploy_dsl.stages",
        '{"apply_actions": {"steps": [{"low": -25, "high": 25}]}}',
        r"exploy_dsl.stages\['apply_actions'\]\['steps'\]\[0\]\['step'\] is missing",
    ),
    "library step whose place is a number": (
        "exploy_dsl.stages",
        '{"apply_actions": {"steps": [{"step": "clip", "at": 5}]}}',
        r"exploy_dsl.stages\['apply_actions'\]\['steps'\]\[0\]\['at'\] must be a string, got 5",
    ),
    "hashes whose stages are a number": (
        "exploy_dsl.hashes",
        '{"algorithm": "sha256", "stages": 5, "actor_weights": "ab"}',
        r"exploy_dsl.hashes\['stages'\] must be an object \{...\}, got 5",
    ),
    "memory specs that are an object": (
        "exploy_dsl.memory",
        '{"name": "actions"}',
        r"exploy_dsl.memory must be a list",
    ),
    "program record without a name": (
        "exploy_dsl.program",
        '{"n_obs": 48}',
        r"exploy_dsl.program\['name'\] is missing",
    ),
    "actor source that is a number": (
        "exploy_dsl.actor",
        '{"source": 5}',
        r"exploy_dsl.actor\['source'\] must be a string, got 5",
    ),
    "joint names that are a number": (
        "obj.robot.joints",
        '{"joint_names": 12}',
        r"obj.robot.joints\['joint_names'\] must be a list, got 12",
    ),
    "gains that are text": (
        "output.joint_targets.joint_pos",
        '{"type": "joint_targets", "names": ["a"], "stiffness": "high", "damping": [0]}',
        r"output.joint_targets.joint_pos\['stiffness'\] must be a list, got \"high\"",
    ),
}


def with_metadata(model: onnx.ModelProto, key: str, value: str) -> onnx.ModelProto:
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    props = {p.key: p for p in edited.metadata_props}
    assert key in props, key
    props[key].value = value
    return edited


@pytest.mark.parametrize("case", list(WRONG_FORMS))
def test_explain_and_diff_refuse_metadata_of_the_wrong_form(
    case: str, compiled: dict[str, Compiled]
) -> None:
    key, value, match = WRONG_FORMS[case]
    good = compiled["quadruped"].model
    bad = read_contract(with_metadata(good, key, value), "'bad.onnx'")
    ok = read_contract(good, "'good.onnx'")
    expected = rf"metadata key '{re.escape(key)}' does not have the form exploy-dsl writes: {match}"
    with pytest.raises(FileContractError, match=r"^'bad.onnx': " + expected):
        render_explain(bad, "'bad.onnx'")
    with pytest.raises(FileContractError, match=r"^B: " + expected):
        diff_contracts(ok, bad)
    with pytest.raises(FileContractError, match=r"^A: " + expected):
        diff_contracts(bad, ok)


def test_the_cli_names_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    key, value, _ = WRONG_FORMS["observation layout without names"]
    bad = tmp_path / "bad.onnx"
    onnx.save(with_metadata(compiled["quadruped"].model, key, value), str(bad))
    good = str(compiled["quadruped"].path)
    for args, prefix in (
        (["explain", str(bad)], f"exploy-dsl explain: error: {bad}: "),
        (["diff", good, str(bad)], f"exploy-dsl diff: error: B '{bad}': "),
    ):
        assert main(args) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1, err
        assert err.startswith(prefix + "metadata key 'exploy_dsl.observation' does not have "), err
        assert "Fix: recompile it with exploy-dsl compile." in err


def test_the_files_exploy_dsl_writes_have_the_form_it_reads(
    compiled: dict[str, Compiled],
) -> None:
    for example in compiled.values():
        contract = read_contract(example.model)
        assert render_explain(contract, "x").startswith("x: program ")
        assert diff_contracts(contract, contract) == []
