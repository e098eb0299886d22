"""The CLI never writes onto its inputs, and a bad path is one clear line (issue 11, 5/7/8)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from compiler import write_atomic
from compiler.cli._main import main
from exploy_dsl import WriteError
from tests._support import EXAMPLES, Compiled, mlp_actor

QUADRUPED = EXAMPLES / "quadruped.py"


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (symlinks by their target) with the sha256 of its bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if "__pycache__" in path.parts:
            continue  # importing the program may cache its bytecode; that is not an output
        if path.is_symlink():
            found[path.name] = "-> " + os.readlink(path)
        elif path.is_file():
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def onnx_actor_with_data(tmp: Path, location: str) -> Path:
    """A 48 -> 12 ONNX actor whose weights live in an external data file ``location``."""
    path = tmp / "actor.onnx"
    onnx.save(
        mlp_actor(48, 12).model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
    )
    return path


def program(tmp: Path) -> Path:
    path = tmp / "q.py"
    shutil.copy(QUADRUPED, path)
    return path


def actor_file(tmp: Path) -> Path:
    path = tmp / "actor.onnx"
    onnx.save(mlp_actor(48, 12).model, str(path))
    return path


def compile_onto_program(tmp: Path) -> list[str]:
    return ["compile", str(program(tmp)), "--actor", str(actor_file(tmp)), "-o", str(tmp / "q.py")]


def compile_onto_a_symlink_to_program(tmp: Path) -> list[str]:
    prog = program(tmp)
    (tmp / "out.onnx").symlink_to(prog.name)
    return ["compile", str(prog), "--actor", str(actor_file(tmp)), "-o", str(tmp / "out.onnx")]


def compile_onto_a_hard_link_to_program(tmp: Path) -> list[str]:
    prog = program(tmp)
    os.link(prog, tmp / "same.onnx")
    return ["compile", str(prog), "--actor", str(actor_file(tmp)), "-o", str(tmp / "same.onnx")]


def compile_onto_program_through_a_folder_link(tmp: Path) -> list[str]:
    prog = program(tmp)
    (tmp / "alias").symlink_to(".", target_is_directory=True)
    return ["compile", str(prog), "--actor", str(actor_file(tmp)), "-o", str(tmp / "alias/q.py")]


def compile_onto_actor(tmp: Path) -> list[str]:
    actor = actor_file(tmp)
    return ["compile", str(program(tmp)), "--actor", str(actor), "-o", str(actor)]


def compile_onto_actor_data(tmp: Path) -> list[str]:
    actor = onnx_actor_with_data(tmp, "actor.onnx.data")
    return ["compile", str(program(tmp)), "--actor", str(actor), "-o", str(tmp / "actor.onnx.data")]


def compile_onto_named_actor_data(tmp: Path) -> list[str]:
    actor = onnx_actor_with_data(tmp, "weights.bin")
    return ["compile", str(program(tmp)), "--actor", str(actor), "-o", str(tmp / "weights.bin")]


def compile_onto_model_source(tmp: Path) -> list[str]:
    (tmp / "source.json").write_text('{"run": "abc"}')
    return [
        "compile",
        str(program(tmp)),
        "--actor",
        str(actor_file(tmp)),
        "--model-source",
        f"@{tmp / 'source.json'}",
        "-o",
        str(tmp / "source.json"),
    ]


def compile_by_default_onto_actor(tmp: Path) -> list[str]:
    # Program "quadruped" is written to quadruped.onnx by default: here, that is the actor.
    onnx.save(mlp_actor(48, 12).model, str(tmp / "quadruped.onnx"))
    return ["compile", str(program(tmp)), "--actor", "quadruped.onnx"]


def checked(compiled: Compiled) -> Callable[[Path, str, str], list[str]]:
    def args(tmp: Path, option: str, onto: str) -> list[str]:
        file = tmp / "q.onnx"
        shutil.copy(compiled.path, file)
        onnx.save(compiled.actor.model, str(tmp / "actor.onnx"))
        prog = program(tmp)
        targets = {"file": file, "program": prog, "actor": tmp / "actor.onnx"}
        return [
            "check",
            str(file),
            str(prog),
            "--actor",
            str(tmp / "actor.onnx"),
            "--steps",
            "4",
            option,
            str(targets[onto]),
        ]

    return args


COMPILE_ONTO_INPUT: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "-o is the program": (
        compile_onto_program,
        r"-o '.*q.py' is the same file as the program file '.*q.py'",
    ),
    "-o is a symlink to the program": (
        compile_onto_a_symlink_to_program,
        r"-o '.*out.onnx' is the same file as the program file '.*q.py'",
    ),
    "-o is a hard link to the program": (
        compile_onto_a_hard_link_to_program,
        r"-o '.*same.onnx' is the same file as the program file '.*q.py'",
    ),
    "-o reaches the program through a folder symlink": (
        compile_onto_program_through_a_folder_link,
        r"-o '.*alias/q.py' is the same file as the program file '.*q.py'",
    ),
    "-o is the actor": (
        compile_onto_actor,
        r"-o '.*actor.onnx' is the same file as the actor file '.*actor.onnx'",
    ),
    "-o is the actor's .data file": (
        compile_onto_actor_data,
        r"-o '.*actor.onnx.data' is the same file as the actor's external data file "
        r"'.*actor.onnx.data'",
    ),
    "-o is the actor's external data, however named": (
        compile_onto_named_actor_data,
        r"-o '.*weights.bin' is the same file as the actor's external data file '.*weights.bin'",
    ),
    "-o is the --model-source file": (
        compile_onto_model_source,
        r"-o '.*source.json' is the same file as the --model-source file '.*source.json'",
    ),
    "the default output is the actor": (
        compile_by_default_onto_actor,
        r"the default output \(<program name>.onnx\) 'quadruped.onnx' is the same file as the "
        r"actor file 'quadruped.onnx'",
    ),
}


@pytest.mark.parametrize("case", list(COMPILE_ONTO_INPUT))
def test_compile_refuses_to_write_onto_an_input(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_args, match = COMPILE_ONTO_INPUT[case]
    args = make_args(tmp_path)
    before = digest(tmp_path)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert re.search(match, err), err
    assert "writing it would destroy that input. Nothing was written." in err
    assert digest(tmp_path) == before  # the inputs are intact, nothing was added


CHECK_ONTO_INPUT = {
    "--record-trace onto the file": ("--record-trace", "file", "the file checked"),
    "--record-trace onto the program": ("--record-trace", "program", "the program file"),
    "--record-trace onto the actor": ("--record-trace", "actor", "the actor file"),
    "--plot onto the file": ("--plot", "file", "the file checked"),
    "--plot onto the program": ("--plot", "program", "the program file"),
}


@pytest.mark.parametrize("case", list(CHECK_ONTO_INPUT))
def test_check_refuses_to_write_onto_an_input(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    option, onto, role = CHECK_ONTO_INPUT[case]
    args = checked(compiled["quadruped"])(tmp_path, option, onto)
    before = digest(tmp_path)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert re.search(rf"{option} '.*' is the same file as {role} '.*'", err), err
    assert digest(tmp_path) == before


def test_check_refuses_to_record_onto_the_trace_it_replays(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    args = checked(compiled["quadruped"])(tmp_path, "--record-trace", "file")
    trace = tmp_path / "stream.npz"
    assert main([*args[:-1], str(trace)]) == 0  # record a trace first
    capsys.readouterr()
    before = digest(tmp_path)
    assert main([*args[:-2], "--trace", str(trace), "--record-trace", str(trace)]) == 2
    _, err = capsys.readouterr()
    assert re.search(r"--record-trace '.*stream.npz' is the same file as the --trace input", err)
    assert digest(tmp_path) == before


def test_check_refuses_the_trace_and_the_plot_on_one_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    args = checked(compiled["quadruped"])(tmp_path, "--plot", "file")
    out = str(tmp_path / "out.png")
    assert main([*args[:-2], "--record-trace", out, "--plot", out]) == 2
    _, err = capsys.readouterr()
    assert re.search(r"--record-trace '.*out.png' is the same file as --plot '.*out.png'", err)
    assert not (tmp_path / "out.png").exists()


def test_compile_to_another_path_still_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    actor = onnx_actor_with_data(tmp_path, "actor.onnx.data")
    assert main(["compile", str(program(tmp_path)), "--actor", str(actor), "-o", "q.onnx"]) == 0
    assert capsys.readouterr().out == "wrote q.onnx\n"
    assert onnx.load("q.onnx").graph.output[0].name == "actions"


# -- names too long, folders, --first-tick ------------------------------------------------------


def long_named_program(tmp: Path) -> list[str]:
    text = QUADRUPED.read_text().replace('Program("quadruped"', f'Program("{"q" * 300}"')
    (tmp / "long.py").write_text(text)
    onnx.save(mlp_actor(48, 12).model, str(tmp / "actor.onnx"))
    return ["compile", str(tmp / "long.py"), "--actor", str(tmp / "actor.onnx")]


def folder(tmp: Path) -> Path:
    (tmp / "build.onnx").mkdir(exist_ok=True)
    return tmp / "build.onnx"


BAD_PATHS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "default output name too long": (
        long_named_program,
        r"the default output name \(<program name>.onnx\) 'q+\.\.\.q+\.onnx' is too long for "
        r"the file system \(a name of 305 bytes; most file systems allow 255\)\. "
        r"Fix: name the output with -o, e.g. -o policy.onnx",
    ),
    "-o too long": (
        lambda tmp: [*long_named_program(tmp), "-o", "o" * 300 + ".onnx"],
        r"-o 'o+\.\.\.o+\.onnx' is too long for the file system .* "
        r"Fix: choose a shorter output path",
    ),
    "program is a folder": (
        lambda tmp: ["compile", str(folder(tmp))],
        r"program file '.*build.onnx' is a folder; expected a Python file",
    ),
    "file to inspect is a folder": (
        lambda tmp: ["inspect", str(folder(tmp))],
        r"file '.*build.onnx' is a folder; expected an .onnx file",
    ),
    "file to explain is a folder": (
        lambda tmp: ["explain", str(folder(tmp))],
        r"file '.*build.onnx' is a folder; expected an .onnx file",
    ),
    "file to run is a folder": (
        lambda tmp: ["run", str(folder(tmp))],
        r"file '.*build.onnx' is a folder; expected an .onnx file",
    ),
    "file to diff is a folder": (
        lambda tmp: ["diff", str(folder(tmp)), str(folder(tmp))],
        r"file '.*build.onnx' is a folder; expected an .onnx file",
    ),
    "file to check is a folder": (
        lambda tmp: ["check", str(folder(tmp)), str(QUADRUPED), "--steps", "4"],
        r"file '.*build.onnx' is a folder; expected an .onnx file",
    ),
    "program to check against is a folder": (
        lambda tmp: ["check", str(folder(tmp)), str(folder(tmp))],
        r"program file '.*build.onnx' is a folder; expected a Python file",
    ),
}


@pytest.mark.parametrize("case", list(BAD_PATHS))
def test_a_bad_path_is_one_clear_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_args, match = BAD_PATHS[case]
    args = make_args(tmp_path)
    before = digest(tmp_path)
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(match, err), err
    assert digest(tmp_path) == before


def test_a_trace_that_is_a_folder_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    args = checked(compiled["quadruped"])(tmp_path, "--trace", "file")
    assert main([*args[:-1], str(folder(tmp_path))]) == 2
    _, err = capsys.readouterr()
    assert re.search(r"trace '.*build.onnx' is a folder; expected an .npz file", err), err


@pytest.mark.parametrize("tick", ["-5", "2", "x"])
def test_run_takes_only_first_tick_0_or_1(
    tick: str, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(compiled["quadruped"].path), "--first-tick", tick])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(r"argument --first-tick: invalid (choice|int value): '?" + tick, err), err


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize("seed", ["-1", "x"])
def test_a_negative_seed_is_an_option_error(
    command: str, seed: str, capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    # NumPy refuses negative seeds: --seed -1 was a ValueError traceback.
    files = [str(compiled["quadruped"].path)] + ([str(QUADRUPED)] if command == "check" else [])
    with pytest.raises(SystemExit) as exit_info:
        main([command, *files, "--seed", seed])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --seed: expected an int >= 0, got '{seed}'" in err and "Traceback" not in err


def test_run_with_first_tick_1_starts_with_an_apply_only_step(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    assert main(["run", str(compiled["quadruped"].path), "--first-tick", "1", "--ticks", "1"]) == 0
    assert "tick    1 apply" in capsys.readouterr().out


def test_actor_returning_none_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = QUADRUPED.read_text().split("def actor(")[0]
    text += textwrap.dedent(
        """
        def actor():
            net = 42  # built, but never returned
        """
    )
    (tmp_path / "none.py").write_text(text)
    assert main(["compile", str(tmp_path / "none.py"), "-o", str(tmp_path / "q.onnx")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"none.py: actor\(\) returned None; expected the actor", err), err
    assert "defines no actor()" not in err
    assert not (tmp_path / "q.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["none.py"]


# -- writing ------------------------------------------------------------------------------------


def test_write_atomic_of_a_name_too_long_is_a_write_error(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=r"the name is too long for the file system \(305 bytes\)"):
        write_atomic(b"x", tmp_path / ("n" * 300 + ".onnx"))
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_of_a_long_but_valid_name_works(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 250 + ".onnx")  # 255 bytes: the temporary name must stay shorter
    write_atomic(b"x", target)
    assert target.read_bytes() == b"x" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_write_atomic_streams_into_a_pipe_and_leaves_it_a_pipe(tmp_path: Path) -> None:
    # `-o /dev/null` or a FIFO: renaming onto it replaced the device node with a regular file.
    fifo = tmp_path / "out.onnx"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_atomic(b"model bytes", fifo)
    reader.join(timeout=10)
    assert received == [b"model bytes"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and [p.name for p in tmp_path.iterdir()] == [
        "out.onnx"
    ]


def test_write_atomic_writes_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "builds").mkdir()
    real = tmp_path / "builds" / "v3.onnx"
    real.write_bytes(b"old")
    link = tmp_path / "policy.onnx"
    link.symlink_to(real)
    write_atomic(b"new", link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["builds", "policy.onnx", "v3.onnx"]
