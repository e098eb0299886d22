"""The pytest plugin of exploy-dsl: fixtures for compiled files and runtimes, golden updates.

Registered through the ``pytest11`` entry point, so it is active wherever exploy-dsl is
installed: ``--exploy-update-golden`` re-records golden traces; ``exploy_compile(program,
actor)`` compiles into the test's temporary folder and returns the path; ``exploy_runtime(
program, actor)`` returns an ``exploy_dsl.Runtime`` on such a file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exploy-dsl")
    group.addoption(
        "--exploy-update-golden",
        action="store_true",
        default=False,
        help="re-record exploy-dsl golden traces (assert_golden) instead of comparing them",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Imported here, not at the top: loading the plugin must not load exploy-dsl's authoring.
    from exploy_dsl.testing._update import request_update

    request_update(bool(config.getoption("--exploy-update-golden", default=False)))


@pytest.fixture
def exploy_compile(tmp_path: Path) -> Callable[..., Path]:
    """``exploy_compile(program, actor, **compile_options) -> Path`` of the compiled file."""
    from compiler import compile_program

    def compile_into(program: Any, actor: Any, **options: Any) -> Path:
        name = getattr(getattr(program, "program", program), "name", "program")
        path = tmp_path / f"{name}.onnx"
        compile_program(program, actor, output=path, **options)
        return path

    return compile_into


@pytest.fixture
def exploy_runtime(exploy_compile: Callable[..., Path]) -> Callable[..., Any]:
    """``exploy_runtime(program, actor, first_tick=0) -> Runtime`` on a freshly compiled file."""
    from exploy_dsl import Runtime

    def runtime(program: Any, actor: Any, *, first_tick: int = 0, **options: Any) -> Any:
        return Runtime(exploy_compile(program, actor, **options), first_tick=first_tick)

    return runtime
