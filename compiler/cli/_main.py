"""The ``exploy-dsl`` command line; each subcommand lives in its own ``_cmd_*`` module.

User errors (ExployDslError) print one line and exit 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from compiler.cli import (
    _cmd_check,
    _cmd_compile,
    _cmd_diff,
    _cmd_explain,
    _cmd_inspect,
    _cmd_run,
    _cmd_sim,
)
from compiler.cli._exit import EXIT_USAGE
from exploy_dsl import ExployDslError

# Each module offers `register(subparsers)`; its parser sets `run` to a function returning
# the exit code.
COMMANDS = (_cmd_compile, _cmd_inspect, _cmd_run, _cmd_check, _cmd_diff, _cmd_explain, _cmd_sim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="exploy-dsl",
        description="Compile exploy-dsl programs into one two-mode ONNX file and check them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
