"""``exploy-dsl diff A.onnx B.onnx``: what changed between two files, and what that breaks."""

from __future__ import annotations

import argparse

from compiler.cli._exit import EXIT_FAIL, EXIT_OK
from compiler.tools._diff import diff_contracts
from exploy_dsl.contract._reader import read_contract


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A.onnx", help="the file deployed today")
    p.add_argument("b", metavar="B.onnx", help="the file to deploy instead")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    a = read_contract(args.a, repr(args.a))
    b = read_contract(args.b, repr(args.b))
    differences = diff_contracts(a, b, sources=(f"A {args.a!r}", f"B {args.b!r}"))
    print(f"A: {args.a}\nB: {args.b}")
    for difference in differences:
        print(difference)
    breaking = sum(d.breaks for d in differences)
    if not differences:
        print("no differences in the contract.")
    else:
        print(
            f"{len(differences)} difference(s); {breaking} break(s) a controller set up for A."
            if breaking
            else f"{len(differences)} difference(s); none breaks a controller set up for A."
        )
    return EXIT_FAIL if breaking else EXIT_OK
