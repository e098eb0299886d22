"""The ``exploy-dsl`` command line; each subcommand lives in its own ``_cmd_*`` module.

User errors (ExployDslError) print one line and exit 2; no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from compiler.cli._exit import EXIT_USAGE
from exploy_dsl import ExployDslError

# name -> (module, one-line help). A module is imported only when its command is chosen (or
# its --help asked for): `exploy-dsl --help` loads argparse alone, `inspect` and `run` only
# numpy and onnxruntime. Each module's `register(parser)` adds the command's arguments and
# sets `run` to a function returning the exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("compiler.cli._cmd_compile", "compile PROGRAM.py into an ONNX file"),
    "inspect": (
        "compiler.cli._cmd_inspect",
        "print a file's inputs, outputs, memory and metadata",
    ),
    "run": (
        "compiler.cli._cmd_run",
        "step a compiled file for N ticks on random inputs and print its outputs",
    ),
    "check": (
        "compiler.cli._cmd_check",
        "run the program's reference interpreter and the file side by side (exit 1 if they differ)",
    ),
    "diff": (
        "compiler.cli._cmd_diff",
        "compare two files' contracts; exit 1 when a difference breaks a deployment",
    ),
    "explain": (
        "compiler.cli._cmd_explain",
        "observation layout with scales/clips, action processing, gains, memory, rates",
    ),
    "sim": (
        "compiler.cli._cmd_sim",
        "drive a MuJoCo robot model with the compiled file and summarise the run",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``command``, only that command's arguments are loaded."""
    parser = argparse.ArgumentParser(
        prog="exploy-dsl",
        description="Compile exploy-dsl programs into one two-mode ONNX file and check them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_line) in COMMANDS.items():
        p = sub.add_parser(name, help=help_line)
        if command is None or name == command:
            importlib.import_module(module).register(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # The command is the first word that is not an option (the top level has only -h).
    chosen = next((a for a in argv if not a.startswith("-")), "")
    parser = build_parser(chosen)
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ExployDslError as exc:
        message = " ".join(str(exc).split())
        print(f"exploy-dsl {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"exploy-dsl {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`exploy-dsl run ... | head`): stop quietly, as cat does.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
