"""The ``exploy-dsl`` command line; each subcommand lives in its own ``_cmd_*`` module."""

from compiler.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
