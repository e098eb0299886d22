"""The public API of both packages, pinned: a change here is a change users see."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import compiler
import exploy_dsl

EXPLOY_DSL_API = [
    "Actor",
    "ActorError",
    "ActorPort",
    "ActorSignature",
    "ArticulationWarning",
    "BaseState",
    "CompileError",
    "DeclarationError",
    "ExployDslError",
    "ExployDslWarning",
    "FileContract",
    "FileContractError",
    "GraphInterpreterError",
    "Group",
    "History",
    "Imu",
    "Input",
    "JointPositionAction",
    "JointTargets",
    "Joints",
    "LowPass",
    "Memory",
    "MissingDependencyError",
    "NonFiniteConstantError",
    "Normalizer",
    "ObsTerm",
    "OnnxRuntimeLoadError",
    "Output",
    "OutputPathError",
    "Port",
    "Program",
    "RateLimit",
    "ReferenceInterpreter",
    "Runtime",
    "RuntimeInputError",
    "SelfTestError",
    "SimError",
    "StageError",
    "StageGraph",
    "Term",
    "TraceFileError",
    "TracedProgram",
    "UsageError",
    "VerificationError",
    "Wire",
    "WriteError",
    "__version__",
    "argmax",
    "atan2",
    "call_model",
    "call_script",
    "clip",
    "heading",
    "joint_position_action",
    "load_model",
    "low_pass",
    "normalizer",
    "op",
    "phase_clock",
    "projected_gravity",
    "quat_apply",
    "quat_apply_inverse",
    "quat_conjugate",
    "quat_mul",
    "rate_limit",
    "read_contract",
    "scale_offset",
    "term",
    "trace",
    "unscale_action",
    "wrap_to_pi",
    "yaw_quat",
]
COMPILER_API = [
    "Actor",
    "DEFAULT_IR_VERSION",
    "DEFAULT_OPSET",
    "InputStream",
    "ParityReport",
    "check_actor_sizes",
    "check_parity",
    "compile_program",
    "load_actor",
    "load_trace",
    "prepare_actor",
    "random_stream",
    "save_trace",
    "write_atomic",
]


@pytest.mark.parametrize(
    ("module", "expected"), [(exploy_dsl, EXPLOY_DSL_API), (compiler, COMPILER_API)]
)
def test_all_is_pinned(module: types.ModuleType, expected: list[str]) -> None:
    assert sorted(module.__all__) == expected
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize(
    ("module", "expected"), [(exploy_dsl, EXPLOY_DSL_API), (compiler, COMPILER_API)]
)
def test_every_public_name_exists(module: types.ModuleType, expected: list[str]) -> None:
    for name in expected:
        assert hasattr(module, name), name


def test_public_names_are_re_exported_from_private_modules() -> None:
    for module in (exploy_dsl, compiler):
        public = {
            name
            for name in vars(module)
            if not name.startswith("_") and not isinstance(getattr(module, name), types.ModuleType)
        }
        assert public - {"annotations"} <= set(module.__all__), module.__name__


def test_every_error_is_an_exploy_dsl_error() -> None:
    errors = [getattr(exploy_dsl, n) for n in EXPLOY_DSL_API if n.endswith("Error")]
    assert all(issubclass(e, exploy_dsl.ExployDslError) for e in errors)


def test_every_warning_is_an_exploy_dsl_warning() -> None:
    found = [getattr(exploy_dsl, n) for n in EXPLOY_DSL_API if n.endswith("Warning")]
    assert found == [exploy_dsl.ArticulationWarning, exploy_dsl.ExployDslWarning]
    assert all(issubclass(w, exploy_dsl.ExployDslWarning) for w in found)
    assert issubclass(exploy_dsl.ExployDslWarning, UserWarning)
    assert issubclass(exploy_dsl.OutputPathError, exploy_dsl.ExployDslError)


TESTING_API = [
    "FileRunner",
    "ProgramRunner",
    "TickResult",
    "assert_golden",
    "assert_parity",
    "neutral_inputs",
    "record_golden",
]


def test_the_testing_kit_is_pinned_and_imports_no_hypothesis_until_asked() -> None:
    import subprocess
    import sys

    import exploy_dsl.testing

    assert sorted(exploy_dsl.testing.__all__) == TESTING_API
    code = "import sys, exploy_dsl.testing; assert 'hypothesis' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_bare_base_error_is_never_raised() -> None:
    # Every failure has its own class, so callers can catch exactly what they handle.
    root = Path(__file__).resolve().parent.parent
    raising = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("exploy_dsl", "compiler")
        for path in sorted((root / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"raise ExployDslError\b", line)
    ]
    assert raising == []


LIBRARY = [
    "argmax", "atan2", "clip", "heading", "joint_position_action", "low_pass",
    "projected_gravity", "quat_apply", "quat_apply_inverse", "quat_conjugate", "quat_mul",
    "rate_limit", "scale_offset", "unscale_action", "wrap_to_pi", "yaw_quat",
]  # fmt: skip


def test_every_library_function_has_a_readme_row_with_an_example() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## The deployment library", 1)[1].split("\n## ", 1)[0]
    for name in LIBRARY:
        assert name in exploy_dsl.__all__, name
        rows = [line for line in section.splitlines() if line.startswith(f"| `{name}(")]
        assert len(rows) == 1, name
        assert rows[0].rstrip().endswith("` |") and rows[0].count("`") >= 4, rows[0]
