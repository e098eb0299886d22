"""``exploy-dsl compile PROGRAM.py [--actor PATH] [-o OUT.onnx] [--opset N] [--ir N]``."""

from __future__ import annotations

import argparse
from typing import Any

from exploy_dsl import ExployDslError

from ._compile import DEFAULT_IR_VERSION, DEFAULT_OPSET, compile_program
from ._exit import EXIT_OK
from ._program_file import load_program_file


def register(sub: Any) -> None:
    p = sub.add_parser("compile", help="compile PROGRAM.py into an ONNX file")
    p.add_argument("program", help="Python file defining a module-level `program`")
    p.add_argument("--actor", help="actor .onnx or .pt (default: the file's actor())")
    p.add_argument("-o", "--output", help="output file (default: <program name>.onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default 20)")
    p.add_argument("--ir", type=int, default=DEFAULT_IR_VERSION, help="IR version (default 10)")
    p.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        default="dynamo",
        help="torch.onnx exporter for a torch actor (default dynamo)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_program_file(args.program)
    actor = args.actor if args.actor is not None else loaded.default_actor()
    if actor is None:
        raise ExployDslError(
            f"{args.program} defines no actor() and no --actor was given. "
            "Fix: pass --actor ACTOR.onnx (or .pt), or define actor() in the program file."
        )
    output = args.output or f"{loaded.program.name}.onnx"
    compile_program(
        loaded.program,
        actor,
        opset=args.opset,
        ir_version=args.ir,
        exporter=args.exporter,
        output=output,
    )
    print(f"wrote {output}")
    return EXIT_OK
