"""``exploy-dsl check FILE.onnx PROGRAM.py``: parity of a compiled file with its program."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from compiler.check._inputs import load_trace, save_trace
from compiler.check._parity import (
    DEFAULT_STEPS,
    DEFAULT_TOLERANCE,
    START_CONVENTIONS,
    check_parity,
    run_batch,
)
from compiler.check._plot import plot_report, require_matplotlib
from compiler.check._tolerances import parse_cli
from compiler.cli._exit import EXIT_FAIL, EXIT_OK
from compiler.cli._options import add_seed
from compiler.cli._paths import actor_files, check_name_length, refuse_overwrite
from compiler.cli._program_file import load_program_file
from exploy_dsl import load_model, read_contract

# Below this many ticks a run takes well under a second: no bar unless a person watches.
LONG_RUN_TICKS = 2000


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="the compiled ONNX file")
    p.add_argument("program", help="the PROGRAM.py it was compiled from")
    p.add_argument("--actor", help="actor .onnx or .pt (default: the program file's actor())")
    p.add_argument(
        "--steps",
        type=int,
        help=f"ticks to run (default {DEFAULT_STEPS}; with --trace, the whole trace)",
    )
    add_seed(p)
    p.add_argument(
        "--atol", type=float, default=DEFAULT_TOLERANCE, help="absolute tolerance (1e-5)"
    )
    p.add_argument(
        "--rtol", type=float, default=DEFAULT_TOLERANCE, help="relative tolerance (1e-5)"
    )
    p.add_argument(
        "--tolerance",
        action="append",
        metavar="GLOB=ATOL[,RTOL]",
        help="tolerance of the outputs a wire name or glob matches (repeatable; an exact name "
        "wins, else the last matching glob), e.g. 'output.joint_targets.*.effort=1e-4'",
    )
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="envs to run a dynamic-batch file with (default 4); a batched file runs at its own",
    )
    p.add_argument("--trace", metavar="IN.npz", help="replay a recorded input trace")
    p.add_argument(
        "--record-trace", metavar="OUT.npz", help="save the input stream used, for replay"
    )
    p.add_argument(
        "--plot", metavar="OUT.png", help="draw the worst signals over ticks (matplotlib)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    tolerances = parse_cli(args.tolerance)  # a malformed option fails before any work
    inputs: dict[str, str | None] = {
        "the file checked": args.file,
        "the program file": args.program,
        "the --trace input": args.trace,
    }
    inputs.update(actor_files(args.actor))
    outputs = {"--record-trace": args.record_trace, "--plot": args.plot}
    for role, path in outputs.items():
        if path is not None:
            check_name_length(path, role, f"choose a shorter path for {role}")
    refuse_overwrite(outputs, inputs)
    if args.plot is not None:
        require_matplotlib()  # fail before a long run, not after it
    loaded = load_program_file(args.program)
    model = load_model(args.file)  # a missing or unreadable file is named before the actor
    envs = run_batch(read_contract(model, repr(str(args.file))), args.batch, "--batch")
    # A batched file: the program at its batch, so that a trace is read with every env.
    program = loaded.program if envs == 1 else loaded.program.with_batch(envs)
    actor = loaded.actor(args.actor)
    stream = load_trace(args.trace, program) if args.trace is not None else None
    ticks = args.steps if args.steps is not None else (stream.ticks if stream else DEFAULT_STEPS)
    progress = progress_bar(ticks * len(START_CONVENTIONS))
    report = check_parity(
        args.file,
        program,
        actor,
        steps=args.steps,
        seed=args.seed,
        atol=args.atol,
        rtol=args.rtol,
        tolerances=tolerances,
        inputs=stream,
        keep_history=args.plot is not None,
        progress=progress,
        batch=args.batch,
    )
    sys.stdout.write(report.render())
    if args.record_trace is not None:
        print(f"wrote trace {save_trace(report.stream, args.record_trace)}")
    if args.plot is not None:
        if any(run.history for run in report.runs):
            plot_report(report, args.plot)
            print(f"wrote plot {args.plot}")
        else:
            print(f"no plot written to {args.plot}: no parity run was made (see above)")
    return EXIT_OK if report.ok else EXIT_FAIL


def progress_bar(total: int, desc: str = "exploy-dsl check") -> tqdm:
    """A bar on stderr, shown on a terminal or for a long run (a log of a CI job)."""
    terminal = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit="tick",
        file=sys.stderr,
        disable=not (terminal or total > LONG_RUN_TICKS),
        # In a log every redraw is kept: a few lines, not one per tenth of a second.
        mininterval=0.1 if terminal else 5.0,
        ascii=not terminal,
        leave=True,
    )
