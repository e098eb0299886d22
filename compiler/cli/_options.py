"""Options several commands share, spelled once."""

from __future__ import annotations

import argparse


def add_first_tick(parser: argparse.ArgumentParser) -> None:
    """``--first-tick 0|1``: the start convention of the tick (README "One tick")."""
    parser.add_argument(
        "--first-tick",
        type=int,
        choices=(0, 1),
        default=0,
        help="tick of the first call: 0 (our runtime) or 1 (exploy's C++ controller)",
    )


def add_seed(parser: argparse.ArgumentParser) -> None:
    """``--seed N``: the seed of the random inputs, an int >= 0 (NumPy refuses negative ones)."""
    parser.add_argument(
        "--seed", type=_seed, default=0, help="seed of the random inputs (default 0)"
    )


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return value
