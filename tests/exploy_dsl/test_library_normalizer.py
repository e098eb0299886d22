"""rsl_rl's empirical normalizer: from arrays and from a real torch.save checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compiler import check_parity, compile_program, random_stream
from compiler.tools._explain import render_explain
from exploy_dsl import (
    DeclarationError,
    Normalizer,
    Program,
    Runtime,
    StageError,
    normalizer,
    read_contract,
    term,
    trace,
)
from tests._support import mlp_actor

# Module-level torch (a torch.nn.Module class, checkpoints): without torch the whole module
# skips, as the no-torch suite of `make test` needs to collect it.
torch = pytest.importorskip("torch")

N = 5


class EmpiricalNormalization(torch.nn.Module):
    """The buffers of rsl_rl's EmpiricalNormalization (rsl_rl/modules/normalization.py)."""

    def __init__(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        super().__init__()
        self.eps = 1e-2
        self.register_buffer("_mean", torch.tensor(mean, dtype=torch.float32).unsqueeze(0))
        self.register_buffer("_var", torch.tensor(var, dtype=torch.float32).unsqueeze(0))
        self.register_buffer("_std", torch.sqrt(self._var))
        self.register_buffer("count", torch.tensor(count, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._mean) / (self._std + self.eps)


def statistics(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=N), rng.uniform(0.0, 2.0, size=N) ** 2


def checkpoint(tmp_path: Path, layout: str = "rsl_rl_5") -> tuple[Path, EmpiricalNormalization]:
    """A real checkpoint in one of rsl_rl's layouts, written with torch.save."""
    mean, var = statistics()
    actor_norm = EmpiricalNormalization(mean, var, 4096)
    critic_norm = EmpiricalNormalization(mean + 1.0, var + 1.0, 4096)
    mlp = torch.nn.Linear(N, 2)
    if layout == "rsl_rl_5":
        saved = {
            "actor_state_dict": {
                **{f"obs_normalizer.{k}": v for k, v in actor_norm.state_dict().items()},
                **{f"mlp.0.{k}": v for k, v in mlp.state_dict().items()},
            },
            "critic_state_dict": {
                f"obs_normalizer.{k}": v for k, v in critic_norm.state_dict().items()
            },
            "iter": 1500,
        }
    elif layout == "rsl_rl_3":
        saved = {
            "model_state_dict": {
                **{f"actor_obs_normalizer.{k}": v for k, v in actor_norm.state_dict().items()},
                **{f"critic_obs_normalizer.{k}": v for k, v in critic_norm.state_dict().items()},
            },
            "iter": 1500,
        }
    else:  # two unnamed normalizers: which one is meant cannot be guessed
        saved = {
            "a": {f"n1.{k}": v for k, v in actor_norm.state_dict().items()},
            "b": {f"n2.{k}": v for k, v in critic_norm.state_dict().items()},
        }
    path = tmp_path / f"model_{layout}.pt"
    torch.save(saved, path)
    return path, actor_norm


def program(norm: Normalizer, *, clip: Any = None) -> Program:
    p = Program("norm", decimation=2, sim_dt=0.01)
    x = p.input("x", 3)
    y = p.input("y", 2)
    out = p.output("out", 2)
    last = p.memory("last", 2)

    @p.observations(clip=clip, normalize=norm)
    def observations(v: Any) -> list[Any]:
        return [term("x", v[x], scale=2.0), ("y", v[y])]

    @p.process_actions(n_actions=2)
    def process(v: Any, actions: Any) -> dict[Any, Any]:
        return {last: actions}

    @p.apply_actions
    def apply(v: Any) -> dict[Any, Any]:
        return {out: v[last]}

    return p


def run_obs(p: Program, ticks: int = 40) -> tuple[list[np.ndarray], list[np.ndarray], Any]:
    """Raw observation (x * 2, y) and the compiled file's obs at each policy step."""
    traced = trace(p)
    actor = mlp_actor(traced.n_obs, 2)
    model = compile_program(p, actor.model)
    runtime = Runtime(model)
    stream = random_stream(p, ticks, seed=1)
    raw, got = [], []
    for tick in range(ticks):
        if stream.reset[tick]:
            runtime.reset()
        feeds = stream.at(tick)
        policy = runtime.tick % 2 == 0
        out = runtime.step(feeds)
        if policy:
            raw.append(np.concatenate([feeds["x"][0] * 2.0, feeds["y"][0]]))
            got.append(out["obs"][0])
    report = check_parity(model, p, actor.model, inputs=stream)
    assert report.ok, report.render()
    return raw, got, model


@pytest.mark.parametrize("layout", ["rsl_rl_5", "rsl_rl_3"])
def test_checkpoint_normalizer_computes_what_rsl_rl_computes(tmp_path: Path, layout: str) -> None:
    path, module = checkpoint(tmp_path, layout)
    norm = Normalizer.from_rsl_rl(path)
    assert norm.count == 4096 and norm.formula == "std+eps" and norm.eps == 0.01
    raw, got, _ = run_obs(program(norm))
    with torch.inference_mode():
        want = module(torch.tensor(np.array(raw), dtype=torch.float32)).numpy()
    np.testing.assert_allclose(np.array(got), want, rtol=1e-6, atol=1e-6)


def test_the_sqrt_var_plus_eps_variant_is_chosen_explicitly() -> None:
    mean, var = statistics(3)
    norm = normalizer(mean, var=var, eps=1e-5, formula="sqrt(var+eps)", clip=(-3.0, 3.0))
    raw, got, model = run_obs(program(norm))
    want = np.clip((np.array(raw, np.float64) - mean) / np.sqrt(var + 1e-5), -3.0, 3.0)
    np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-5)
    record = read_contract(model).json_metadata("exploy_dsl.normalizer")
    assert record["formula"] == "(x - mean) / sqrt(var + eps)" and record["clip"] == [-3.0, 3.0]
    assert record["var"] == pytest.approx(list(var), rel=1e-6)


def test_the_normalizer_follows_the_observation_clip() -> None:
    mean, var = statistics(4)
    norm = normalizer(mean, std=np.sqrt(var))
    raw, got, _ = run_obs(program(norm, clip=(-0.5, 0.5)))
    std32 = np.sqrt(var).astype(np.float32)
    want = (np.clip(np.array(raw), -0.5, 0.5) - mean) / (std32 + np.float32(0.01))
    np.testing.assert_allclose(np.array(got), want, rtol=1e-5, atol=1e-5)


def test_statistics_are_recorded_and_explained(tmp_path: Path) -> None:
    path, _ = checkpoint(tmp_path)
    norm = Normalizer.from_rsl_rl(path)
    p = program(norm)
    model = compile_program(p, mlp_actor(trace(p).n_obs, 2).model)
    contract = read_contract(model)
    record = contract.json_metadata("exploy_dsl.normalizer")
    mean, var = statistics()
    assert record["formula"] == "(x - mean) / (std + eps)"
    assert (record["size"], record["count"], record["folded"]) == (N, 4096, False)
    assert record["mean"] == pytest.approx(list(mean), rel=1e-6)
    assert record["std"] == pytest.approx(list(np.sqrt(var)), rel=1e-6)
    assert len(record["sha256"]) == 64
    assert "model_rsl_rl_5.pt" in record["source"] and "actor_state_dict" in record["source"]
    assert contract.json_metadata("exploy_dsl.observation")["normalized"] is True
    text = render_explain(contract, "norm.onnx")
    assert "normalizer: (x - mean) / (std + eps), eps 0.01, 5 values, applied" in text
    assert f"sha256 {record['sha256']}" in text


def test_large_statistics_are_stored_as_a_hash_only() -> None:
    big = normalizer(np.zeros(100), std=np.ones(100))
    record = big.record(folded=False)
    assert "mean" not in record and "std" not in record and record["size"] == 100


def test_an_ambiguous_checkpoint_names_the_prefixes_and_key_chooses(tmp_path: Path) -> None:
    path, _ = checkpoint(tmp_path, "unnamed")
    with pytest.raises(DeclarationError, match=r"found at: 'a/n1\.', 'b/n2\.'.*pass key="):
        Normalizer.from_rsl_rl(path)
    chosen = Normalizer.from_rsl_rl(path, key="a/n1.")
    np.testing.assert_allclose(chosen.mean, statistics()[0], rtol=1e-6)


def test_a_loaded_state_dict_needs_no_file(tmp_path: Path) -> None:
    path, _ = checkpoint(tmp_path)
    loaded = torch.load(path, weights_only=True)
    norm = Normalizer.from_rsl_rl(loaded["actor_state_dict"])
    assert norm.source == "rsl_rl checkpoint (a loaded dict), obs_normalizer"


def test_a_normalizer_of_another_size_is_an_error_at_the_stage() -> None:
    with pytest.raises(StageError, match="the normalizer has 3 values but the observation has 5"):
        trace(program(normalizer(np.zeros(3), std=np.ones(3))))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mean": [0.0, 1.0]}, "formula 'std\\+eps' needs std"),
        ({"mean": [0.0], "std": [1.0], "formula": "var"}, "formula must be one of"),
        ({"mean": [0.0], "std": [1.0, 2.0]}, "mean has 1 values, the std 2"),
        ({"mean": [0.0], "var": [1.0], "formula": "sqrt(var+eps)", "eps": -1.0}, "eps must be"),
        ({"mean": [np.nan], "std": [1.0]}, "mean has a NaN"),
        ({"mean": [0.0], "std": [0.0], "eps": 0.0}, "divides by zero"),
        ({"mean": [0.0], "std": [1.0], "clip": (1.0, -1.0)}, "clip must be a pair"),
    ],
)
def test_bad_statistics_say_what_is_wrong(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        normalizer(**kwargs)


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="does not exist"):
        Normalizer.from_rsl_rl(tmp_path / "nope.pt")
