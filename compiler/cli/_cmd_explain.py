"""``exploy-dsl explain FILE.onnx``: the constants a deployer must trust, readable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from compiler.cli._exit import EXIT_OK
from compiler.tools._explain import render_explain
from exploy_dsl.contract._reader import load_model, read_contract


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="observation layout with scales/clips, action processing, gains, memory, rates",
    )
    p.add_argument("file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    contract = read_contract(load_model(args.file), repr(args.file))
    sys.stdout.write(render_explain(contract, args.file))
    return EXIT_OK
