"""exploy's tutorial environment with a torch module inside the observation (its `add_module`).

The same program as tutorial.py, except that `foo` goes through a `torch.nn.Linear(4, 4)`
before the `+ 1`, as in exploy's `EnvironmentWithTorchModule`. `call_model` exports the module
to ONNX when the stage is traced (checked against the module on random inputs) and inlines it
into the observations stage: its weights are constants of the file, in the stage's content
hash, and `explain` lists it. Compile and check it:

    exploy-dsl compile examples/tutorial_module.py -o tutorial_module.onnx
    exploy-dsl check tutorial_module.onnx examples/tutorial_module.py
"""

from __future__ import annotations

from typing import Any

import torch

from exploy_dsl import Program, call_model


def foo_module(seed: int = 0) -> torch.nn.Module:
    """The learned part of the observation: a Linear(4, 4) with seeded weights."""
    with torch.random.fork_rng():  # seed without changing the caller's random state
        torch.manual_seed(seed)
        return torch.nn.Linear(4, 4).eval()


module = foo_module()

program = Program(
    "tutorial_module",
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


@program.observations
def observations(v: Any) -> list[tuple[str, Any]]:
    return [
        ("foo", call_model(module, v[foo]) + 1.0),
        ("bar", v[bar] + 2.0 * v[baz]),
        ("baz", v[baz]),
        ("actions", v[actions]),
    ]


@program.process_actions(n_actions=2)
def process_actions(v: Any, a: Any) -> dict[Any, Any]:
    return {actions: a, processed: a * 3.0}


@program.apply_actions
def apply_actions(v: Any) -> dict[Any, Any]:
    return {out: v[processed] + 2.0}


def actor(seed: int = 0) -> Any:
    """A default 10 -> 2 MLP actor with seeded random weights, as exploy's tutorial."""
    with torch.random.fork_rng():
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
