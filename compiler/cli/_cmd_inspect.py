"""``exploy-dsl inspect FILE.onnx``: the contract a deployer binds to."""

from __future__ import annotations

import argparse
import sys

from compiler.cli._exit import EXIT_OK
from compiler.tools._inspect import render_inspect
from exploy_dsl.contract._reader import read_contract


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    contract = read_contract(args.file, repr(args.file))
    sys.stdout.write(render_inspect(contract, args.file))
    return EXIT_OK
