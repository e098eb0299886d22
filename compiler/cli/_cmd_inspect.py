"""``exploy-dsl inspect FILE.onnx``: the contract a deployer binds to."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from compiler.cli._exit import EXIT_OK
from compiler.tools._inspect import render_inspect
from exploy_dsl.contract._reader import load_model, read_contract


def register(sub: Any) -> None:
    p = sub.add_parser("inspect", help="print a file's inputs, outputs, memory and metadata")
    p.add_argument("file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    contract = read_contract(load_model(args.file), repr(args.file))
    sys.stdout.write(render_inspect(contract, args.file))
    return EXIT_OK
