"""The ``exploy-dsl`` command line: compile and inspect, and one-line errors that exit 2."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from compiler.cli._main import main
from exploy_dsl import Runtime, RuntimeInputError, UsageError, read_contract
from tests._support import EXAMPLES, Compiled, mlp_actor, random_feeds, run, session

QUADRUPED = str(EXAMPLES / "quadruped.py")
TUTORIAL = str(EXAMPLES / "tutorial.py")


def compile_ok(capsys: pytest.CaptureFixture[str], *args: str) -> onnx.ModelProto:
    """Run ``exploy-dsl compile ARGS`` in process; it must succeed and say what it wrote."""
    assert main(["compile", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    (line,) = out.splitlines()
    assert line.startswith("wrote ")
    path = Path(line[len("wrote ") :])
    assert path.is_file()
    return onnx.load(str(path))


def first_actions(model: onnx.ModelProto, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(obs, actions) of the first policy step on random inputs."""
    runtime = Runtime(model)
    inputs = random_feeds(runtime.contract.inputs, np.random.default_rng(seed))
    out = runtime.step(inputs)
    return out["obs"], out["actions"]


def torch_actor(n_obs: int, n_actions: int) -> Any:
    import torch

    torch.manual_seed(5)
    net = torch.nn.Sequential(
        torch.nn.Linear(n_obs, 8), torch.nn.Tanh(), torch.nn.Linear(8, n_actions)
    )
    return net.eval()


def torch_forward(module: Any, obs: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(obs)).numpy()


# -- compile ------------------------------------------------------------------------------------


@pytest.mark.torch
def test_compile_uses_the_programs_own_actor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "quadruped.onnx"
    model = compile_ok(capsys, QUADRUPED, "-o", str(out))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["exploy_dsl.actor"]) == {
        "source": "torch module Sequential (dynamo export)",
        "exporter": "dynamo",
        "inputs": [{"name": "obs", "shape": [1, 48], "dtype": "float32", "binds": "obs"}],
        "outputs": [{"name": "actions", "shape": [1, 12], "dtype": "float32", "binds": "actions"}],
        "state": [],
    }
    _, actions = first_actions(model)
    assert actions.shape == (1, 12) and actions.any()


def test_compile_with_an_onnx_actor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, compiled: dict[str, Compiled]
) -> None:
    actor = tmp_path / "actor.onnx"
    onnx.save(compiled["tutorial"].actor.model, str(actor))
    model = compile_ok(capsys, TUTORIAL, "--actor", str(actor), "-o", str(tmp_path / "t.onnx"))
    feeds = random_feeds(read_contract(model).inputs, np.random.default_rng(1))
    feeds["ctx.step_count"] = np.array(0, np.int32)
    got = run(session(model), feeds)
    want = run(session(compiled["tutorial"].model), feeds)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.torch
def test_compile_with_a_module_saved_by_torch_save(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    module = torch_actor(10, 2)
    torch.save(module, tmp_path / "actor.pt")
    model = compile_ok(
        capsys, TUTORIAL, "--actor", str(tmp_path / "actor.pt"), "-o", str(tmp_path / "t.onnx")
    )
    obs, actions = first_actions(model)
    np.testing.assert_allclose(actions, torch_forward(module, obs), atol=1e-5)


@pytest.mark.torch
def test_compile_with_a_torchscript_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import torch

    module = torch_actor(48, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(module), str(tmp_path / "actor.pt"))
    # The default exporter (dynamo) cannot take a ScriptModule: the TorchScript one is used.
    model = compile_ok(
        capsys, QUADRUPED, "--actor", str(tmp_path / "actor.pt"), "-o", str(tmp_path / "q.onnx")
    )
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["exploy_dsl.actor"])["source"].endswith("(torchscript export)")
    obs, actions = first_actions(model)
    np.testing.assert_allclose(actions, torch_forward(module, obs), atol=1e-5)


@pytest.mark.torch
def test_compile_with_the_torchscript_exporter(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = compile_ok(
        capsys, TUTORIAL, "--exporter", "torchscript", "-o", str(tmp_path / "t.onnx")
    )
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["exploy_dsl.actor"])["source"].endswith("(torchscript export)")


def test_compile_writes_program_name_dot_onnx_by_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx.save(mlp_actor(10, 2).model, str(tmp_path / "actor.onnx"))
    monkeypatch.chdir(tmp_path)
    compile_ok(capsys, TUTORIAL, "--actor", "actor.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["actor.onnx", "tutorial.onnx"]


def test_compile_takes_opset_and_ir_version(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    onnx.save(mlp_actor(48, 12).model, str(tmp_path / "actor.onnx"))
    out = str(tmp_path / "q.onnx")
    model = compile_ok(
        capsys, QUADRUPED, "--actor", str(tmp_path / "actor.onnx"), "-o", out, "--opset", "19",
        "--ir", "9",
    )  # fmt: skip
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 19)]
    assert model.ir_version == 9
    onnx.checker.check_model(model, full_check=True)


# -- inspect ------------------------------------------------------------------------------------


def test_inspect_prints_the_contract(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    example = compiled["quadruped"]
    assert main(["inspect", str(example.path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"file: {example.path}"
    assert "opset 20, IR version 10" in out
    assert "decimation: 4 (policy every 4 ticks)" in out
    assert "sim_dt: 0.005 s, update_rate: 200.0 Hz, policy rate: 50 Hz" in out
    for name, shape in [
        ("ctx.step_count", "int32 []"),
        ("obj.robot.joints.pos", "float32 [1, 12]"),
        ("obj.robot.base.w_Q_b", "float32 [1, 4]"),
        ("cmd.se2_velocity.base_velocity", "float32 [1, 3]"),
        ("actions", "float32 [1, 12]"),
        ("obs", "float32 [1, 48]"),
        ("output.joint_targets.joint_pos.effort", "float32 [1, 12]"),
    ]:
        assert any(line.strip().startswith(f"{name}  {shape}") for line in lines), name
    sections = [line for line in lines if not line.startswith(" ")]
    assert [s.split(" ")[0] for s in sections[3:]] == [
        "inputs:",
        "outputs:",
        "memory",
        "joint",
        "metadata:",
    ]
    (target,) = [line for line in lines if "memory.joint_pos.processed_actions " in line]
    assert "float32 [1, 12]  init [ 0.1,  0.8, -1.5, -0.1," in target
    (last,) = [line for line in lines if line.strip().startswith("memory.actions ")]
    assert "init [0., 0., 0.," in last
    for prop in example.model.metadata_props:
        assert f"  {prop.key} = {prop.value}" in lines, prop.key


def test_inspect_of_a_tutorial_file(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, Compiled]
) -> None:
    assert main(["inspect", str(compiled["tutorial"].path)]) == 0
    out = capsys.readouterr().out
    assert "  bar_baz_group.bar  float32 [1, 2]" in out
    assert "  memory.processed_actions  float32 [1, 2]  init [0., 0.]" in out
    assert '  foo = {"description": "The foo tensor from the data source."}' in out


# -- user errors: exit 2, one line, no traceback ------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def no_program(tmp: Path) -> list[str]:
    return ["compile", str(write(tmp / "empty.py", "import exploy_dsl\nx = 1\n"))]


def import_raises(tmp: Path) -> list[str]:
    text = """\
        import exploy_dsl

        LIMITS = {"kp": 20.0}["kd"]
    """
    return ["compile", str(write(tmp / "broken.py", text))]


def syntax_error(tmp: Path) -> list[str]:
    return ["compile", str(write(tmp / "syntax.py", "def f(:\n    pass\n"))]


def not_a_program(tmp: Path) -> list[str]:
    return ["compile", str(write(tmp / "other.py", "program = 42\n"))]


def broken_stage(tmp: Path) -> list[str]:
    text = """\
        from exploy_dsl import Program

        program = Program("bad", decimation=2, sim_dt=0.01)
        a = program.input("a", 2)
        m = program.memory("m", 2)
        o = program.output("o", 2)

        @program.observations
        def observations(v):
            return [("a", v["aa"])]

        @program.process_actions(n_actions=2)
        def process(v, actions):
            return {m: actions}

        @program.apply_actions
        def apply(v):
            return {o: v[m]}
    """
    actor = tmp / "actor.onnx"
    onnx.save(mlp_actor(2, 2).model, str(actor))
    return ["compile", str(write(tmp / "stage.py", text)), "--actor", str(actor)]


def onnx_actor(n_obs: int, n_actions: int) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        onnx.save(mlp_actor(n_obs, n_actions).model, str(tmp / "actor.onnx"))
        return ["compile", QUADRUPED, "--actor", str(tmp / "actor.onnx"), "-o", str(tmp / "q.onnx")]

    return args


def bad_suffix(tmp: Path) -> list[str]:
    (tmp / "actor.txt").write_text("weights")
    return ["compile", QUADRUPED, "--actor", str(tmp / "actor.txt"), "-o", str(tmp / "q.onnx")]


def no_actor(tmp: Path) -> list[str]:
    text = (EXAMPLES / "tutorial.py").read_text().split("def actor(")[0]
    return ["compile", str(write(tmp / "no_actor.py", text))]


def exiting_actor(tmp: Path) -> list[str]:
    text = (EXAMPLES / "tutorial.py").read_text().split("def actor(")[0]
    return ["compile", str(write(tmp / "a.py", text + "def actor():\n    raise SystemExit(1)\n"))]


def not_onnx(tmp: Path) -> list[str]:
    return ["inspect", str(write(tmp / "policy.onnx", "not a model"))]


ERRORS: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "missing program": (
        lambda tmp: ["compile", str(tmp / "missing.py")],
        r"program file '.*missing.py' does not exist",
    ),
    "missing file to inspect": (
        lambda tmp: ["inspect", str(tmp / "missing.onnx")],
        r"file '.*missing.onnx' does not exist",
    ),
    "no program": (no_program, r"empty.py defines no module-level `program`"),
    "not a program": (not_a_program, r"`program` is a int, not an exploy_dsl.Program"),
    "import raises": (
        import_raises,
        r"broken.py failed to import at .*broken.py:3(:10)? \(`LIMITS = .*`\): KeyError: 'kd'$",
    ),
    "syntax error": (syntax_error, r"syntax.py:1: syntax error"),
    "import exits": (
        lambda tmp: ["compile", str(write(tmp / "script.py", "import sys\n\nsys.exit(0)\n"))],
        r"script.py called sys.exit\(0\) while being imported, at .*script.py:3\b.*Fix: put "
        r"script code under `if __name__ == \"__main__\":`",
    ),
    "import exits with a code": (
        lambda tmp: ["compile", str(write(tmp / "script.py", "raise SystemExit(3)\n"))],
        r"script.py called sys.exit\(3\) while being imported",
    ),
    "actor() exits": (
        exiting_actor,
        r"a.py: actor\(\) failed at .*a.py:\d+\b.*SystemExit: 1",
    ),
    "broken stage": (broken_stage, r"'aa' is not declared in program 'bad'.*Did you mean 'a'"),
    "wrong observation size": (
        onnx_actor(47, 12),
        r"observation size mismatch: .* produces 48 values .* takes 47",
    ),
    "wrong action size": (onnx_actor(48, 4), r"actor .* outputs 4 values .* n_actions=12"),
    "nonexistent actor": (
        lambda tmp: ["compile", QUADRUPED, "--actor", str(tmp / "nope.onnx")],
        r"actor file '.*nope.onnx' does not exist",
    ),
    "actor is a folder": (
        lambda tmp: ["compile", QUADRUPED, "--actor", str(tmp), "-o", str(tmp / "q.onnx")],
        r"actor '.*' is a folder; expected an .onnx or .pt file",
    ),
    "actor with a bad suffix": (bad_suffix, r"has suffix '.txt'; expected .onnx or .pt"),
    "no actor at all": (no_actor, r"defines no actor\(\) and no --actor was given"),
    "not an onnx file": (not_onnx, r"policy.onnx' is not a readable ONNX model"),
    "output folder missing": (
        lambda tmp: [*onnx_actor(48, 12)(tmp)[:-1], str(tmp / "build" / "q.onnx")],
        r"cannot write '.*q.onnx': folder '.*build' does not exist",
    ),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_a_user_error_is_one_line_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_args, match = ERRORS[case]
    args = make_args(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"exploy-dsl {args[0]}: error: ")
    assert "Traceback" not in err
    assert re.search(match, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


# -- the installed console script ---------------------------------------------------------------


def console_script() -> str:
    beside = Path(sys.executable).parent / "exploy-dsl"
    found = str(beside) if beside.exists() else shutil.which("exploy-dsl")
    assert found, "the exploy-dsl console script is not installed (pip install -e .)"
    return found


def test_the_console_script_compiles_and_inspects(tmp_path: Path) -> None:
    onnx.save(mlp_actor(10, 2).model, str(tmp_path / "actor.onnx"))
    out = tmp_path / "t.onnx"
    done = subprocess.run(
        [console_script(), "compile", TUTORIAL, "--actor", "actor.onnx", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {out}\n"
    assert done.stderr == ""
    assert read_contract(onnx.load(str(out))).decimation == 4


def test_the_console_script_reports_a_user_error_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [console_script(), "compile", QUADRUPED, "--actor", "missing.onnx"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "exploy-dsl compile: error: actor file 'missing.onnx' does not exist. "
        "Fix: check the path.\n"
    )


# -- a stage that fails while check runs it -----------------------------------------------------

GATHER_PROGRAM = """\
    import numpy as np
    from exploy_dsl import Program, op, term

    program = Program("pick", decimation=2, sim_dt=0.01)
    x = program.input("x", 4)
    idx = program.input("idx", 1, dtype="int32")
    m = program.memory("m", 2)
    o = program.output("o", 2)


    @program.observations
    def observations(v):
        picked = op.gather(v[x], op.reshape(v[idx], op.const(np.array([1]))), axis=1)
        return [term("x", v[x]), term("picked", picked)]


    @program.process_actions(n_actions=2)
    def process(v, actions):
        return {m: actions}


    @program.apply_actions
    def apply(v):
        return {o: v[m]}
"""


def test_a_stage_failing_in_the_reference_interpreter_names_the_stage_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    program = write(tmp_path / "gather.py", GATHER_PROGRAM)
    onnx.save(mlp_actor(5, 2).model, str(tmp_path / "actor.onnx"))
    file = tmp_path / "pick.onnx"
    actor = ["--actor", str(tmp_path / "actor.onnx")]
    assert main(["compile", str(program), *actor, "-o", str(file)]) == 0
    capsys.readouterr()
    # An index the robot sends that is out of range for the 4 values gathered from.
    trace = tmp_path / "trace.npz"
    np.savez(trace, x=np.zeros((2, 1, 4), np.float32), idx=np.full((2, 1, 1), 7, np.int32))
    assert main(["check", str(file), str(program), *actor, "--trace", str(trace)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert re.fullmatch(
        r"exploy-dsl check: error: observations stage 'observations' \(.*gather\.py:11\) "
        r"failed at ctx\.step_count 0 in the reference interpreter: IndexError: index 7 is out "
        r"of bounds for axis 1 with size 4 \(in its node #\d+ Gather '\w+'\)\. Fix: keep what "
        r"the stage computes valid for every input value .*\n",
        err,
    ), err
    # The file itself, run as a robot would, says what failed in one line too.
    feeds = {"x": np.zeros((1, 4), np.float32), "idx": np.full((1, 1), 7, np.int32)}
    with pytest.raises(
        RuntimeInputError,
        match=r"^'.*pick\.onnx' failed in onnxruntime at ctx\.step_count 0: .*Gather.* "
        r"idx=7 must be within the inclusive range \[-4,3\]\. Fix: keep what the program's",
    ):
        Runtime(file).step(feeds)


def test_run_with_no_ticks_is_a_usage_error(compiled: dict[str, Compiled]) -> None:
    from compiler.cli._cmd_run import run as run_command

    args = argparse.Namespace(file=str(compiled["tutorial"].path), ticks=0, seed=0, first_tick=0)
    with pytest.raises(UsageError, match=r"^--ticks must be >= 1, got 0\.$"):
        run_command(args)


def test_run_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    out = tmp_path / "q.onnx"
    main(["compile", str(QUADRUPED), "-o", str(out)])
    command = (
        f"{shlex.quote(sys.executable)} -m compiler.cli run {shlex.quote(str(out))} --ticks 400"
        " | head -n 1"
    )
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
