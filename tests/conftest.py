"""Session fixtures for what is expensive: the examples compiled once, torch exports."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Callable
from typing import Any

import onnx
import pytest

from compiler import compile_program
from compiler.cli._main import main
from compiler.cli._program_file import ProgramFile, load_program_file
from exploy_dsl import trace
from tests._support import EXAMPLES, CliExample, Compiled, MlpActor, mlp_actor

pytest_plugins = ["pytester"]  # the testing kit's plugin is tested in a pytest of its own

# torch is optional (an ONNX actor needs none): tests marked `torch` skip without it, and
# `make test` runs the suite once in a venv without torch.
HAS_TORCH = importlib.util.find_spec("torch") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_TORCH:
        return
    skip = pytest.mark.skip(reason="needs torch (pip install torch==2.13.0)")
    for item in items:
        if item.get_closest_marker("torch") is not None:
            item.add_marker(skip)


# The seeded ONNX actors of the two reference programs (DESIGN.md section 5).
ACTOR_SIZES = {"tutorial": (10, 2, 1), "quadruped": (48, 12, 2)}


@pytest.fixture(scope="session")
def example_programs() -> dict[str, ProgramFile]:
    """The reference example files, each executed once for the session."""
    return {name: load_program_file(EXAMPLES / f"{name}.py") for name in ACTOR_SIZES}


@pytest.fixture(scope="session")
def onnx_actors() -> dict[str, MlpActor]:
    return {
        name: mlp_actor(n_obs, n_act, seed) for name, (n_obs, n_act, seed) in ACTOR_SIZES.items()
    }


@pytest.fixture(scope="session")
def compiled(
    example_programs: dict[str, ProgramFile],
    onnx_actors: dict[str, MlpActor],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Compiled]:
    """Both reference examples compiled with their ONNX actor, written to a session folder."""
    folder = tmp_path_factory.mktemp("compiled")
    result = {}
    for name, loaded in example_programs.items():
        path = folder / f"{name}.onnx"
        model = compile_program(loaded.program, onnx_actors[name].model, output=path)
        result[name] = Compiled(name, loaded, onnx_actors[name], model, path)
    return result


@pytest.fixture(scope="session")
def torch_compiled(
    example_programs: dict[str, ProgramFile],
) -> Callable[[str, str], tuple[onnx.ModelProto, Any]]:
    """``get(example, exporter)`` -> (model, torch module): each export is done once."""
    pytest.importorskip("torch")
    cache: dict[tuple[str, str], tuple[onnx.ModelProto, Any]] = {}

    def get(name: str, exporter: str) -> tuple[onnx.ModelProto, Any]:
        if (name, exporter) not in cache:
            loaded = example_programs[name]
            module = loaded.default_actor()
            model = compile_program(loaded.program, module, exporter=exporter)  # type: ignore[arg-type]
            cache[name, exporter] = (model, module)
        return cache[name, exporter]

    return get


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], CliExample]:
    """``get(stem)``: examples/<stem>.py compiled with ``exploy-dsl compile`` (its own
    ``actor()``), once per session."""
    folder = tmp_path_factory.mktemp("examples")
    cache: dict[str, CliExample] = {}

    def get(stem: str) -> CliExample:
        if stem not in cache:
            path = EXAMPLES / f"{stem}.py"
            out = folder / f"{stem}.onnx"
            loaded = load_program_file(path)
            args = ["compile", str(path), "-o", str(out)]
            actor: Any
            if getattr(loaded.module, "actor", None) is None:
                # An example without a default actor gets a random one of the right sizes.
                traced = trace(loaded.program)
                actor = folder / f"{stem}_actor.onnx"
                onnx.save(mlp_actor(traced.n_obs, traced.n_actions).model, str(actor))
                args += ["--actor", str(actor)]
            else:
                actor = loaded.default_actor()
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(args)
            assert code == 0, err.getvalue()
            cache[stem] = CliExample(path, out, loaded, actor)
        return cache[stem]

    return get
