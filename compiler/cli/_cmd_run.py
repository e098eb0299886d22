"""``exploy-dsl run FILE.onnx``: step a compiled file in onnxruntime, as a robot loop would."""

from __future__ import annotations

import argparse

import numpy as np

from compiler.cli._exit import EXIT_OK
from compiler.cli._options import add_first_tick, add_seed
from exploy_dsl import Runtime, UsageError


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--ticks", type=int, default=8, help="ticks to run (default 8)")
    add_seed(p)
    add_first_tick(p)
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="envs to step a dynamic-batch file with (a batched file steps its own batch)",
    )
    p.add_argument(
        "--self-test",
        action="store_true",
        help="first replay the self-test the file carries (compile --self-test); refuse to "
        "run when this onnxruntime does not reproduce it",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.ticks < 1:
        raise UsageError(f"--ticks must be >= 1, got {args.ticks}.")
    runtime = Runtime(args.file, first_tick=args.first_tick, batch=args.batch)
    contract = runtime.contract
    if args.self_test:
        print(runtime.self_test())  # a SelfTestError stops here, before any tick is run
    rng = np.random.default_rng(args.seed)
    envs = f"; {contract.envs} envs in lockstep" if contract.batch != 1 else ""
    print(
        f"{args.file}: decimation {contract.decimation}, {contract.update_rate:g} Hz; "
        f"random inputs (seed {args.seed}){envs}"
    )
    names = [w.name for w in contract.outputs]
    for _ in range(args.ticks):
        tick = runtime.tick
        inputs = {w.name: _random(w.shape, w.dtype, rng) for w in contract.inputs}
        out = runtime.step(inputs)
        mode = "policy" if tick % contract.decimation == 0 else "apply "
        shown = "  ".join(f"{n}[:3]={_head(out[n])}" for n in names)
        print(f"tick {tick:4d} {mode} |actions|max={np.abs(out['actions']).max():.4f}  {shown}")
    return EXIT_OK


def _random(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "int32":
        return rng.integers(-3, 4, shape).astype(np.int32)
    return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def _head(values: np.ndarray) -> str:
    return np.array2string(values.reshape(-1)[:3], precision=3, separator=",", suppress_small=True)
