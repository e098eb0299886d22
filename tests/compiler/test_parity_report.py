"""What a person reads: element names, the progress bar, the plot, the check command's exits."""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest

from compiler import check_parity
from compiler.check._element_names import ElementNames
from compiler.cli._cmd_check import LONG_RUN_TICKS, progress_bar
from compiler.cli._main import main
from exploy_dsl import WriteError, read_contract, trace
from tests._support import EXAMPLES, Compiled, mlp_actor
from tests.compiler import _mutations as plant

QUADRUPED = str(EXAMPLES / "quadruped.py")
TUTORIAL = str(EXAMPLES / "tutorial.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- element names ------------------------------------------------------------------------------


def test_quadruped_elements_are_named_by_joint_and_observation_term(
    compiled: dict[str, Compiled],
) -> None:
    example = compiled["quadruped"]
    names = ElementNames(trace(example.program_file.program), read_contract(example.model).metadata)
    assert names.label("obs", 37) == "obs[37] = actions[1]"
    assert names.label("obs", 0) == "obs[0] = base_lin_vel[0]"
    assert names.label("obs", 8) == "obs[8] = projected_gravity[2]"
    assert names.label("output.joint_targets.joint_pos.effort", 4) == (
        "output.joint_targets.joint_pos.effort[4] = FR_thigh"
    )
    assert names.label("memory.joint_pos.processed_actions.out", 11) == (
        "memory.joint_pos.processed_actions.out[11] = RR_calf"
    )
    assert names.label("actions", 3) == "actions[3]"  # the actor's order is its own
    assert names.label("memory.actions.out", 3) == "memory.actions.out[3]"


def test_names_come_from_the_file_when_the_program_has_none(
    compiled: dict[str, Compiled],
) -> None:
    example = compiled["tutorial"]
    metadata = dict(read_contract(example.model).metadata)
    metadata["out"] = '{"names": ["left", "right"]}'
    names = ElementNames(trace(example.program_file.program), metadata)
    assert names.label("out", 1) == "out[1] = right"
    assert names.label("obs", 5) == "obs[5] = bar[1]"


# -- the progress bar ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_silent_on_short_runs_in_a_log(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = progress_bar(600)
    bar.update(600)
    bar.close()
    assert capsys.readouterr().err == ""


def test_the_progress_bar_shows_long_runs_in_a_log(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_bar(LONG_RUN_TICKS + 1000)
    for _ in range(LONG_RUN_TICKS + 1000):
        bar.update()
    bar.close()
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("exploy-dsl check: 100%|##########| 3000/3000 ")
    assert "tick/s]" in last


def test_the_progress_bar_is_shown_on_a_terminal_even_for_short_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = progress_bar(10)
    bar.update(5)
    bar.update(5)
    bar.close()
    text = terminal.getvalue()
    assert text.startswith("\rexploy-dsl check:") and "10/10" in text and text.endswith("\n")


def test_a_long_check_shows_progress_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["tutorial"]
    actor = tmp_path / "actor.onnx"
    onnx.save(example.actor.model, str(actor))
    code = main(["check", str(example.path), TUTORIAL, "--actor", str(actor), "--steps", "1100"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert (
        err.rstrip("\n").split("\r")[-1].startswith("exploy-dsl check: 100%|##########| 2200/2200")
    )


# -- the plot -----------------------------------------------------------------------------------


def test_plot_draws_the_worst_signals(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    file, actor, png = tmp_path / "q.onnx", tmp_path / "actor.onnx", tmp_path / "worst.png"
    onnx.save(plant.change_action_constant(example.model, 0.25, 0.26), str(file))
    onnx.save(example.actor.model, str(actor))
    args = [str(file), QUADRUPED, "--actor", str(actor), "--steps", "40", "--plot", str(png)]
    assert main(["check", *args]) == 1
    assert f"wrote plot {png}" in capsys.readouterr().out
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_the_worst_signals_are_the_diverging_ones_across_outputs(
    compiled: dict[str, Compiled],
) -> None:
    from compiler.check._plot import _worst_signals

    example = compiled["quadruped"]
    bad = plant.change_action_constant(example.model, 0.25, 0.26)
    report = check_parity(
        bad, example.program_file.program, example.actor.model, steps=40, keep_history=True
    )
    chosen = _worst_signals(report.runs[0], report.tolerance, 4)
    # One element of each diverging output before a second element of any of them.
    assert {name for name, _, _ in chosen[:3]} == {
        "output.joint_targets.joint_pos.pos",
        "output.joint_targets.joint_pos.effort",
        "memory.joint_pos.processed_actions.out",
    }
    assert chosen[3][0] in {name for name, _, _ in chosen[:3]}
    assert all(" = " in title for _, _, title in chosen[:3])  # named by joint


def test_a_file_of_another_program_fails_without_running_or_plotting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    actor, png = tmp_path / "actor.onnx", tmp_path / "none.png"
    onnx.save(compiled["quadruped"].actor.model, str(actor))
    tutorial_file = str(compiled["tutorial"].path)
    code = main(["check", tutorial_file, QUADRUPED, "--actor", str(actor), "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 1
    assert "input 'obj.robot.joints.pos': declared by the program, missing in the file" in out
    assert "input 'foo': in the file, not declared by the program" in out
    assert (
        "  - program 'quadruped': the file was compiled from program 'tutorial'. Fix: check "
        "that PROGRAM.py is the file this one was compiled from\n"
    ) in out
    assert out.count("not run: the file's inputs differ from the program's") == 2
    assert "result: FAIL: the file differs from the program in 32 place(s); parity not run" in out
    assert f"no plot written to {png}: no parity run was made" in out and not png.exists()


def test_plot_to_a_format_matplotlib_lacks_is_refused_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["tutorial"]
    actor = tmp_path / "actor.onnx"
    onnx.save(example.actor.model, str(actor))
    plot = tmp_path / "worst.xyz"
    args = [str(example.path), TUTORIAL, "--actor", str(actor), "--steps", "8", "--plot", str(plot)]
    assert main(["check", *args]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"exploy-dsl check: error: cannot write plot '.*worst\.xyz': matplotlib writes no 'xyz' "
        r"images\. Fix: name a \.png \(or \.pdf, \.svg\) file\.\n",
        err,
    ), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actor.onnx"]


def test_plot_into_a_missing_folder_is_a_write_error(
    tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    from compiler.check._plot import plot_report

    example = compiled["tutorial"]
    report = check_parity(
        example.model,
        example.program_file.program,
        example.actor.model,
        steps=8,
        keep_history=True,
    )
    with pytest.raises(WriteError, match=r"cannot write '.*worst\.png': folder '.*nowhere' does"):
        plot_report(report, tmp_path / "nowhere" / "worst.png")


def test_plot_without_matplotlib_is_a_one_line_user_error(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    compiled: dict[str, Compiled],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises
    example = compiled["tutorial"]
    code = main(["check", str(example.path), TUTORIAL, "--plot", "out.png"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        "exploy-dsl check: error: --plot needs matplotlib, which is not installed. Fix: pip "
        "install matplotlib, or drop --plot.\n"
    )


# -- the command: exits and user errors ---------------------------------------------------------


@pytest.mark.torch
def test_check_with_the_program_files_default_torch_actor(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    torch_compiled: Callable[[str, str], tuple[onnx.ModelProto, Any]],
) -> None:
    # What `make demo` runs: the file's actor() is re-exported and compared alone too.
    model, _ = torch_compiled("tutorial", "dynamo")
    file = tmp_path / "tutorial.onnx"
    onnx.save(model, str(file))
    assert main(["check", str(file), TUTORIAL, "--steps", "100"]) == 0
    out = capsys.readouterr().out
    assert "actor alone: ok: exported ONNX (torch module Sequential (dynamo export))" in out
    assert out.endswith("result: OK, parity holds\n")


def one_line_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["check", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("exploy-dsl check: error: ")
    return err


@pytest.mark.torch
def test_user_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    example = compiled["tutorial"]
    file = str(example.path)
    assert "does not exist" in one_line_error(capsys, str(tmp_path / "no.onnx"), TUTORIAL)
    assert "program file" in one_line_error(capsys, file, str(tmp_path / "no.py"))
    assert "steps must be an int >= 1, got 0" in one_line_error(
        capsys, file, TUTORIAL, "--steps", "0"
    )
    assert "atol must be a finite number >= 0, got -1.0" in one_line_error(
        capsys, file, TUTORIAL, "--atol", "-1"
    )
    wrong = tmp_path / "wrong.onnx"
    onnx.save(mlp_actor(11, 2).model, str(wrong))
    assert "observation size mismatch" in one_line_error(
        capsys, file, TUTORIAL, "--actor", str(wrong)
    )
    assert "trace" in one_line_error(
        capsys, file, TUTORIAL, "--actor", str(wrong), "--trace", str(tmp_path / "t.npz")
    )
    bare = tmp_path / "bare.py"
    source = (EXAMPLES / "tutorial.py").read_text().split("def actor(")[0]
    bare.write_text(source)
    assert "defines no actor() and no --actor was given" in one_line_error(capsys, file, str(bare))


@pytest.mark.torch
def test_a_file_that_is_not_an_exploy_file_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plain = tmp_path / "plain.onnx"
    onnx.save(mlp_actor(10, 2).model, str(plain))
    assert "lacks required metadata" in one_line_error(capsys, str(plain), TUTORIAL)


def test_check_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["check", "--help"])
    text = capsys.readouterr().out
    for option in ("--actor", "--steps", "--seed", "--atol", "--rtol", "--trace", "--plot"):
        assert option in text
