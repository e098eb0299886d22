"""exploy's tutorial environment as an exploy-dsl program (DESIGN.md section 5, "tutorial").

Compile and check it:

    exploy-dsl compile examples/tutorial.py -o tutorial.onnx
"""

from __future__ import annotations

from typing import Any

from onnxscript import FLOAT, script
from onnxscript import opset20 as os_op

from exploy_dsl import Program, call_script, scale_offset

program = Program(
    "tutorial",
    decimation=4,
    sim_dt=0.005,
    metadata={"env_name": "Env", "version": "1.0"},
)
foo = program.input("foo", 4, metadata={"description": "The foo tensor from the data source."})
bar_baz = program.group("bar_baz_group", metadata={"description": "A group of related inputs."})
bar = bar_baz.input("bar", 2)
baz = bar_baz.input("baz", 2)
actions = program.memory("actions", 2)
processed = program.memory("processed_actions", 2)
out = program.output(
    "out", 2, metadata={"description": "The output tensor computed from the actions."}
)


@script()
def bar_plus_twice_baz(b: FLOAT[1, 2], z: FLOAT[1, 2]) -> FLOAT[1, 2]:
    # An onnxscript function used inside a spox stage (see call_script).
    two = os_op.Constant(value_float=2.0)
    return os_op.Add(b, os_op.Mul(two, z))


@program.observations
def observations(v: Any) -> list[tuple[str, Any]]:
    return [
        ("foo", v[foo] + 1.0),
        ("bar", call_script(bar_plus_twice_baz, v[bar], v[baz])),
        ("baz", v[baz]),
        ("actions", v[actions]),
    ]


@program.process_actions(n_actions=2)
def process_actions(v: Any, a: Any) -> dict[Any, Any]:
    return {actions: a, processed: scale_offset(a, 3.0)}


@program.apply_actions
def apply_actions(v: Any) -> dict[Any, Any]:
    return {out: scale_offset(v[processed], offset=2.0)}


def actor(seed: int = 0) -> Any:
    """A default 10 -> 2 MLP actor with seeded random weights (torch), as exploy's tutorial."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 10),
        torch.nn.ELU(),
        torch.nn.Linear(10, 10),
        torch.nn.ReLU(),
        torch.nn.Linear(10, 2),
        torch.nn.ELU(),
    )
    return net.eval()
