"""``exploy-dsl sim FILE.onnx ROBOT.xml``: drive a MuJoCo model with the file, as a robot loop."""

from __future__ import annotations

import argparse
from typing import Any

from compiler.cli._cmd_check import progress_bar
from compiler.cli._exit import EXIT_FAIL, EXIT_OK
from compiler.cli._options import add_first_tick
from compiler.cli._paths import check_name_length, refuse_overwrite
from exploy_dsl import UsageError


def register(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Drive a MuJoCo model (MJCF) with the compiled file, one call per physics "
        "step, every wire bound from the file's metadata. Exit 0 when the run went its time, "
        "finite, with the base up; 1 when the robot fell or the run stopped (NaN, unstable); "
        "2 on a user error (a name, count or rate the file and the model do not share)."
    )
    p.add_argument("file", help="the compiled .onnx file")
    p.add_argument("robot", help="the robot's MJCF model (.xml)")
    p.add_argument("--seconds", type=float, default=5.0, help="simulated time (default 5)")
    p.add_argument(
        "--command",
        # Not dest "command": that is the subcommand's name, which every error line starts with.
        dest="commands",
        action="append",
        default=[],
        metavar="NAME=V,...",
        help="a command's value, inside its declared range (repeatable): e.g. "
        "base_velocity=0.5,0,0 or stand=true; others get zeros (False)",
    )
    add_first_tick(p)
    p.add_argument(
        "--settle-physics",
        type=int,
        default=0,
        metavar="N",
        help="step the physics N times before the first call, holding the file's initial "
        "targets (its apply-only step on the initial memory)",
    )
    p.add_argument("--keyframe", help="the MJCF keyframe to start from (default: the first)")
    p.add_argument(
        "--set-timestep",
        action="store_true",
        help="set MuJoCo's timestep to the file's sim_dt instead of refusing a model whose "
        "timestep differs",
    )
    p.add_argument(
        "--record-trace",
        metavar="OUT.npz",
        help="save the input stream, for `exploy-dsl check FILE PROGRAM --trace OUT.npz`",
    )
    p.add_argument("--plot", metavar="OUT.png", help="plot the run (needs matplotlib)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from exploy_dsl.sim import parse_command_args, simulate

    outputs = {"--record-trace": args.record_trace, "--plot": args.plot}
    for role, path in outputs.items():
        if path is not None:
            check_name_length(path, role, f"choose a shorter {role} path")
    refuse_overwrite(outputs, {"the file": args.file, "the robot model": args.robot})
    if args.settle_physics < 0:
        raise UsageError(
            f"--settle-physics must be >= 0, got {args.settle_physics}. Fix: e.g. 100."
        )
    commands = parse_command_args(args.commands)
    progress: list[Any] = []  # made at the first tick, when the number of ticks is known

    def on_tick(tick: int, ticks: int) -> None:
        if not progress:
            progress.append(progress_bar(ticks, "exploy-dsl sim"))
        progress[0].update(1)

    try:
        result = simulate(
            args.file,
            args.robot,
            seconds=args.seconds,
            commands=commands,
            first_tick=args.first_tick,
            settle_physics=args.settle_physics,
            keyframe=args.keyframe,
            set_timestep=args.set_timestep,
            on_tick=on_tick,
        )
    finally:
        for bar in progress:
            bar.close()
    print(result.summary(), end="")
    if args.record_trace is not None:
        result.save_trace(args.record_trace)
        print(f"wrote {args.record_trace} ({result.ticks} ticks; replay it with exploy-dsl check)")
    if args.plot is not None:
        result.plot(args.plot)
        print(f"wrote {args.plot}")
    return EXIT_OK if result.ok else EXIT_FAIL
