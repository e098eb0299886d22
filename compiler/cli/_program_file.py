"""Load a user's PROGRAM.py: its module-level ``program`` and optional ``actor()``."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from exploy_dsl import ActorError, DeclarationError, ExployDslError, MissingDependencyError, Program
from exploy_dsl.authoring._source import describe


@dataclass(frozen=True, slots=True)
class ProgramFile:
    path: Path
    module: ModuleType
    program: Program

    def actor(self, given: Any | None) -> Any:
        """The actor to use: ``given`` (``--actor``) if any, else the file's ``actor()``."""
        if given is not None:
            return given
        actor = self.default_actor()
        if actor is None and getattr(self.module, "actor", None) is not None:
            raise ActorError(
                f"{self.path}: actor() returned None; expected the actor (a torch.nn.Module, "
                "an onnx.ModelProto or a path to .onnx/.pt). Fix: end actor() with "
                "`return net.eval()` (or the model or path), or pass --actor ACTOR.onnx."
            )
        if actor is None:
            raise DeclarationError(
                f"{self.path} defines no actor() and no --actor was given. "
                "Fix: pass --actor ACTOR.onnx (or .pt), or define actor() in the program file."
            )
        return actor

    def default_actor(self) -> Any | None:
        """``actor()`` of the file, or None when the file defines none."""
        factory = getattr(self.module, "actor", None)
        if factory is None:
            return None
        if not callable(factory):
            raise DeclarationError(
                f"{self.path}: `actor` must be a function returning the actor, got "
                f"{type(factory).__name__}."
            )
        try:
            return factory()
        except ExployDslError:
            raise
        except ImportError as exc:
            needed = exc.name or "a module"
            install = "torch==2.13.0" if needed.split(".")[0] == "torch" else needed
            raise MissingDependencyError(
                f"{self.path}: actor() needs {needed}, which is not installed ({exc}). "
                f"Fix: pip install {install}, or pass --actor A.onnx."
            ) from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's factory failed
            where = describe(exc.__traceback__, str(self.path))
            raise DeclarationError(
                f"{self.path}: actor() failed at {where}: {type(exc).__name__}: {exc}"
            ) from None


def load_program_file(path: str | os.PathLike[str]) -> ProgramFile:
    """Execute PROGRAM.py as a module; errors at import are reported at the user's line."""
    file = Path(path)
    if file.is_dir():
        raise DeclarationError(
            f"program file {str(file)!r} is a folder; expected a Python file. "
            "Fix: pass the file itself, e.g. examples/quadruped.py."
        )
    if not file.is_file():
        raise DeclarationError(f"program file {str(file)!r} does not exist. Fix: check the path.")
    name = f"exploy_dsl_program_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise DeclarationError(f"{str(file)!r} cannot be loaded as a Python file (.py?).")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(file.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except ExployDslError:
        raise
    except SyntaxError as exc:
        raise DeclarationError(f"{exc.filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        where = describe(exc.__traceback__, str(file))
        raise DeclarationError(
            f"{file} failed to import at {where}: {type(exc).__name__}: {exc}"
        ) from None
    except SystemExit as exc:  # sys.exit() or argparse at the top level, run on import
        where = describe(exc.__traceback__, str(file))
        raise DeclarationError(
            f"{file} called sys.exit({exc.code!r}) while being imported, at {where}; it defines "
            'no program this way. Fix: put script code under `if __name__ == "__main__":`.'
        ) from None
    finally:
        sys.path.pop(0)
    program = getattr(module, "program", None)
    if program is None:
        raise DeclarationError(
            f"{file} defines no module-level `program`. "
            "Fix: add `program = exploy_dsl.Program(...)` at the top level of the file."
        )
    if not isinstance(program, Program):
        raise DeclarationError(
            f"{file}: `program` is a {type(program).__name__}, not an exploy_dsl.Program."
        )
    return ProgramFile(file, module, program)
