"""``exploy-dsl compile PROGRAM.py``: build the file (actor, target, opset, stamp options)."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from compiler.build._compile import DEFAULT_IR_VERSION, DEFAULT_OPSET, compile_program
from compiler.build._self_test import DEFAULT_TICKS, MAX_TICKS
from compiler.check._inputs import InputStream, load_trace, random_stream
from compiler.cli._exit import EXIT_OK
from compiler.cli._paths import actor_files, check_name_length, refuse_overwrite
from compiler.cli._program_file import load_program_file
from exploy_dsl import ExployDslWarning, Program, UsageError
from exploy_dsl.contract._batch import NOT_FOR_ROBOT, Batch, check_batch


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("program", help="Python file defining a module-level `program`")
    p.add_argument("--actor", help="actor .onnx or .pt (default: the file's actor())")
    p.add_argument("-o", "--output", help="output file (default: <program name>.onnx)")
    p.add_argument(
        "--target",
        metavar="onnxruntime==X.Y",
        help="write the highest opset and IR version that onnxruntime X.Y runs",
    )
    p.add_argument(
        "--opset", type=int, help=f"ONNX opset (default {DEFAULT_OPSET}, or the --target's)"
    )
    p.add_argument(
        "--ir", type=int, help=f"IR version (default {DEFAULT_IR_VERSION}, or the --target's)"
    )
    p.add_argument(
        "--exporter",
        choices=("dynamo", "torchscript"),
        default="dynamo",
        help="torch.onnx exporter for a torch actor (default dynamo)",
    )
    p.add_argument(
        "--model-source",
        metavar="JSON",
        help="where the actor comes from, a JSON object (or @file.json), stored as model_source",
    )
    p.add_argument(
        "--stamp",
        action="store_true",
        help="add the export date (the file then differs between runs; SOURCE_DATE_EPOCH fixes it)",
    )
    p.add_argument(
        "--self-test",
        metavar="TRACE.npz|random",
        help="embed a self-test: the first ticks of a recorded trace (e.g. from exploy-dsl sim "
        "--record-trace) or of seeded random inputs, with the file's outputs on them; "
        "Runtime.self_test() and `exploy-dsl run --self-test` replay it",
    )
    p.add_argument(
        "--batch",
        metavar="N|dynamic",
        help="for evaluation: N envs per call, or a symbolic batch ('dynamic'); every input, "
        "output and memory gets the batch dimension, the envs step in lockstep on one "
        "ctx.step_count. Not for the robot: exploy's controller runs batch 1 (the default)",
    )
    p.add_argument(
        "--self-test-ticks",
        type=int,
        default=DEFAULT_TICKS,
        metavar="N",
        help=f"ticks the self-test keeps (default {DEFAULT_TICKS}, at most {MAX_TICKS})",
    )
    p.add_argument(
        "--no-rewrites",
        action="store_true",
        help="leave out the build's rewrites (fused observation, apply_actions after the If, "
        "no Identity): the same values from more nodes",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    inputs: dict[str, str | None] = {"the program file": args.program}
    inputs.update(actor_files(args.actor))
    if args.model_source is not None and args.model_source.startswith("@"):
        inputs["the --model-source file"] = args.model_source[1:]
    if args.self_test not in (None, "random"):
        inputs["the --self-test trace"] = args.self_test
    if not 1 <= args.self_test_ticks <= MAX_TICKS:
        raise UsageError(
            f"--self-test-ticks must be 1 to {MAX_TICKS}, got {args.self_test_ticks}. "
            f"Fix: e.g. --self-test-ticks {DEFAULT_TICKS}."
        )
    if args.output is not None:
        check_name_length(args.output, "-o", "choose a shorter output path")
        refuse_overwrite({"-o": args.output}, inputs)
    model_source = parse_model_source(args.model_source)
    batch = parse_batch(args.batch)
    if batch is not None and batch != 1 and args.self_test is not None:
        raise UsageError(
            f"--self-test is for a robot file, and --batch {args.batch} builds one for "
            "evaluation (exploy's controller runs batch 1). Fix: drop one of them."
        )
    loaded = load_program_file(args.program)
    actor = loaded.actor(args.actor)
    output = args.output or f"{loaded.program.name}.onnx"
    if args.output is None:
        check_name_length(
            output,
            "the default output name (<program name>.onnx)",
            "name the output with -o, e.g. -o policy.onnx",
        )
        refuse_overwrite({"the default output (<program name>.onnx)": output}, inputs)
    self_test = self_test_stream(args.self_test, args.self_test_ticks, loaded.program)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ExployDslWarning)
        compile_program(
            loaded.program,
            actor,
            opset=args.opset,
            ir_version=args.ir,
            target=args.target,
            exporter=args.exporter,
            model_source=model_source,
            stamp=args.stamp,
            output=output,
            self_test=self_test,
            batch=batch,
            rewrites=not args.no_rewrites,
        )
    for warning in caught:
        if issubclass(warning.category, ExployDslWarning):
            print(f"exploy-dsl compile: warning: {warning.message}", file=sys.stderr)
        else:  # not ours: as it would have been shown without the catch
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    note = "" if batch in (None, 1) else f" (batch {batch}: {NOT_FOR_ROBOT})"
    print(f"wrote {output}{note}")
    return EXIT_OK


def parse_batch(text: str | None) -> Batch | None:
    """``--batch 4096`` or ``--batch dynamic``; anything else is a UsageError."""
    if text is None:
        return None
    value: object = int(text) if text.strip().isdigit() else text.strip()
    return check_batch(value, "--batch", error=UsageError)


def self_test_stream(source: str | None, ticks: int, program: Program) -> InputStream | None:
    """The inputs of ``--self-test``: ``random`` (seed 0) or the head of a trace file."""
    if source is None:
        return None
    if source == "random":
        return random_stream(program, ticks, seed=0)
    stream = load_trace(source, program).head(ticks)
    # The file name alone: the stored record must not depend on where the trace lay.
    return InputStream(stream.inputs, stream.reset, f"trace {Path(source).name!r}")


def parse_model_source(text: str | None) -> dict[str, Any] | None:
    """``--model-source '{"run": "abc"}'`` or ``@source.json``: a JSON object, else an error."""
    if text is None:
        return None
    origin = "--model-source"
    if text.startswith("@"):
        path = Path(text[1:])
        origin = f"--model-source file {str(path)!r}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"{origin} cannot be read ({exc.strerror}). Fix: check the path."
            ) from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{origin} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            f"{text[:60]!r}. Fix: pass a JSON object, e.g. "
            '--model-source \'{"run": "wandb/abc123", "checkpoint": 1500}\'.'
        ) from None
    if _non_finite(value):
        raise UsageError(
            f"{origin} holds NaN or Infinity, which JSON (and exploy's reader) does not allow: "
            f'{text[:60]!r}. Fix: write the number, or a string such as "nan".'
        )
    if not isinstance(value, dict):
        raise UsageError(
            f"{origin} is JSON {type(value).__name__}, expected an object {{...}} (exploy stores "
            'model_source as a JSON object). Fix: e.g. --model-source \'{"run": "abc"}\'.'
        )
    return value


def _non_finite(value: Any) -> bool:
    """Python's json reads NaN, Infinity and -Infinity; standard JSON has no such numbers."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False
