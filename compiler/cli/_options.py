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
