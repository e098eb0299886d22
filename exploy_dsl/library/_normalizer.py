"""rsl_rl's empirical observation normalizer, from arrays or from a training checkpoint.

rsl_rl's ``EmpiricalNormalization`` (rsl_rl/modules/normalization.py, and normalizer.py before
it) computes ``(x - _mean) / (_std + eps)`` with ``eps = 1e-2`` and ``_std = sqrt(_var)``; a
checkpoint keeps its buffers ``_mean``, ``_var``, ``_std`` (``[1, n]``) and ``count``. Other
normalizers (rl_games' running mean/std, some forks) divide by ``sqrt(var + eps)``: that is
``formula="sqrt(var+eps)"``, chosen explicitly, never guessed.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import spox.opset.ai.onnx.v20 as op
from spox import Var

from exploy_dsl._errors import DeclarationError

FORMULAS = {
    "std+eps": "(x - mean) / (std + eps)",  # rsl_rl's EmpiricalNormalization
    "sqrt(var+eps)": "(x - mean) / sqrt(var + eps)",
}
RSL_RL_EPS = 1e-2
SHOWN_VALUES = 64  # statistics of at most this many values are stored in the file as they are


@dataclass(frozen=True, slots=True, eq=False)
class Normalizer:
    """``(x - mean) / denominator``, then an optional clip; float32 like the training run.

    Build one with ``exploy_dsl.normalizer(mean=..., std=...)`` or
    ``Normalizer.from_rsl_rl(checkpoint)``; pass it to ``program.observations(normalize=...)``.
    """

    mean: np.ndarray  # float32 [n]
    statistic: np.ndarray  # float32 [n]: std for "std+eps", var for "sqrt(var+eps)"
    formula: str
    eps: float
    clip: tuple[float, float] | None
    source: str
    count: int | None = None

    @property
    def size(self) -> int:
        return int(self.mean.size)

    @property
    def denominator(self) -> np.ndarray:
        """float32 ``std + eps`` or ``sqrt(var + eps)``, computed as rsl_rl does in float32."""
        eps = np.float32(self.eps)
        if self.formula == "std+eps":
            return (self.statistic + eps).astype(np.float32)
        return np.sqrt(self.statistic + eps).astype(np.float32)

    def apply(self, x: Var, batch: int) -> Var:
        """The normalized (and clipped) ``x`` of shape ``[batch, n]``."""
        mean = self.mean.reshape(1, -1)
        result = op.div(op.sub(x, op.const(mean)), op.const(self.denominator.reshape(1, -1)))
        if self.clip is not None:
            lo, hi = self.clip
            result = op.clip(result, op.const(np.float32(lo)), op.const(np.float32(hi)))
        return result

    def record(self, *, folded: bool) -> dict[str, Any]:
        """What the file stores (``exploy_dsl.normalizer``): formula, shapes, hash, values."""
        stat = "std" if self.formula == "std+eps" else "var"
        digest = hashlib.sha256(self.mean.tobytes() + self.statistic.tobytes()).hexdigest()
        entry: dict[str, Any] = {
            "formula": FORMULAS[self.formula],
            "eps": self.eps,
            "clip": list(self.clip) if self.clip is not None else None,
            "size": self.size,
            "statistic": stat,
            "sha256": digest,
            "source": self.source,
            "count": self.count,
            "folded": folded,
        }
        if self.size <= SHOWN_VALUES:
            entry["mean"] = [float(str(x)) for x in self.mean]
            entry[stat] = [float(str(x)) for x in self.statistic]
        return entry

    @classmethod
    def from_rsl_rl(
        cls,
        checkpoint: str | os.PathLike[str] | Mapping[str, Any],
        *,
        key: str | None = None,
        formula: str = "std+eps",
        eps: float = RSL_RL_EPS,
        clip: tuple[float, float] | None = None,
    ) -> Normalizer:
        """The observation normalizer saved in an rsl_rl checkpoint (a path or a loaded dict).

        Finds the buffers ``<prefix>_mean`` with ``_std``/``_var`` (and ``count``) of the one
        observation normalizer in it (rsl_rl 5: ``actor_state_dict`` ``obs_normalizer.``;
        3.x: ``model_state_dict`` ``actor_obs_normalizer.``; 2.x: ``obs_norm_state_dict``);
        ``key`` names the prefix when there are several. A path is read with ``torch.load``
        (``weights_only=True``), so it needs torch; a dict does not.
        """
        what = "Normalizer.from_rsl_rl"
        label = "(a loaded dict)"
        if isinstance(checkpoint, (str, os.PathLike)):
            label = repr(os.path.basename(os.fspath(checkpoint)))
            checkpoint = _torch_load(checkpoint, what)
        if not isinstance(checkpoint, Mapping):
            raise DeclarationError(
                f"{what}: expected a checkpoint path or a dict (a state_dict), got "
                f"{type(checkpoint).__name__}."
            )
        flat = _flatten(checkpoint)
        prefixes = [k[: -len("_mean")] for k in flat if k.endswith("_mean")]
        prefixes = [p for p in prefixes if p + "_std" in flat or p + "_var" in flat]
        if key is not None:
            chosen = [p for p in prefixes if p == key or p.rstrip("./") == key.rstrip("./")]
        else:
            chosen = [
                p
                for p in prefixes
                if "obs_norm" in p and "critic" not in p and "privileged" not in p
            ] or (prefixes if len(prefixes) == 1 else [])
        if len(chosen) != 1:
            found = ", ".join(repr(p) for p in prefixes) or "none"
            wanted = f"the prefix {key!r}" if key is not None else "one observation normalizer"
            raise DeclarationError(
                f"{what}: {label} does not hold {wanted}; normalizer buffers (<prefix>_mean "
                f"with _std or _var) found at: {found}. Fix: pass key=<one of those prefixes>."
            )
        prefix = chosen[0]
        mean = _array(flat[prefix + "_mean"], f"{what} {prefix}_mean")
        std = flat.get(prefix + "_std")
        var = flat.get(prefix + "_var")
        count = flat.get(prefix + "count")
        count_value = (
            int(np.asarray(_array(count, "count")).reshape(-1)[0]) if count is not None else None
        )
        source = f"rsl_rl checkpoint {label}, {prefix.rstrip('.') or 'top level'}"
        return normalizer(
            mean,
            std=None if std is None else _array(std, f"{prefix}_std"),
            var=None if var is None else _array(var, f"{prefix}_var"),
            eps=eps,
            formula=formula,
            clip=clip,
            _source=source,
            _count=count_value,
        )

    @classmethod
    def from_sb3(
        cls, vec_normalize: str | os.PathLike[str] | Any, *, key: str | None = None
    ) -> Normalizer:
        """The observation normalizer of Stable-Baselines3's ``VecNormalize``.

        ``vec_normalize`` is the file ``VecNormalize.save`` wrote (read with pickle, as
        ``VecNormalize.load`` reads it: only load files you trust; needs stable-baselines3
        installed) or the object itself. SB3 computes ``clip((x - mean) / sqrt(var + eps),
        -clip_obs, clip_obs)`` with its ``epsilon`` (1e-8 by default) and ``clip_obs`` (10);
        so does the file, in float32. ``key`` picks one entry of a Dict observation space.
        """
        what = "Normalizer.from_sb3"
        label = "(a VecNormalize object)"
        if isinstance(vec_normalize, (str, os.PathLike)):
            label = repr(os.path.basename(os.fspath(vec_normalize)))
            vec_normalize = _unpickle(vec_normalize, what)
        if getattr(vec_normalize, "norm_obs", True) is False:
            raise DeclarationError(
                f"{what}: {label} does not normalize observations (norm_obs=False). Fix: drop "
                "normalize=... (the policy saw raw observations)."
            )
        rms = getattr(vec_normalize, "obs_rms", None)
        if rms is None:
            raise DeclarationError(
                f"{what}: {label} is a {type(vec_normalize).__name__}, not SB3's VecNormalize "
                "(it has no obs_rms). Fix: pass the file VecNormalize.save wrote, or the object."
            )
        if isinstance(rms, Mapping):
            if key not in rms:
                raise DeclarationError(
                    f"{what}: {label} normalizes a Dict observation space "
                    f"({', '.join(map(repr, rms))}). Fix: pass key=<one of those>."
                )
            rms = rms[key]
        elif key is not None:
            raise DeclarationError(f"{what}: key={key!r} given, but {label} has one observation.")
        eps = float(getattr(vec_normalize, "epsilon", 1e-8))
        clip_obs = float(getattr(vec_normalize, "clip_obs", 10.0))
        count = getattr(rms, "count", None)
        return normalizer(
            _array(rms.mean, f"{what} obs_rms.mean"),
            var=_array(rms.var, f"{what} obs_rms.var"),
            eps=eps,
            formula="sqrt(var+eps)",
            clip=(-clip_obs, clip_obs) if math.isfinite(clip_obs) else None,
            _source=f"SB3 VecNormalize {label}" + (f", {key!r}" if key is not None else ""),
            _count=int(count) if isinstance(count, (int, float)) and math.isfinite(count) else None,
        )


def normalizer(
    mean: Any,
    *,
    std: Any = None,
    var: Any = None,
    eps: float = RSL_RL_EPS,
    formula: str = "std+eps",
    clip: tuple[float, float] | None = None,
    _source: str = "arrays",
    _count: int | None = None,
) -> Normalizer:
    """An observation normalizer from its statistics.

    ``formula="std+eps"`` (rsl_rl's, the default) computes ``(x - mean) / (std + eps)``; it
    takes ``std`` (or ``var``, then ``std = sqrt(var)`` as rsl_rl keeps it). ``formula=
    "sqrt(var+eps)"`` computes ``(x - mean) / sqrt(var + eps)`` and takes ``var``. ``clip=(lo,
    hi)`` clips the normalized values.
    """
    what = "normalizer"
    if formula not in FORMULAS:
        raise DeclarationError(
            f"{what}: formula must be one of {', '.join(map(repr, FORMULAS))}, got {formula!r}. "
            "Fix: 'std+eps' is rsl_rl's EmpiricalNormalization."
        )
    if (
        isinstance(eps, bool)
        or not isinstance(eps, (int, float))
        or not math.isfinite(eps)
        or eps < 0
    ):
        raise DeclarationError(f"{what}: eps must be a finite number >= 0, got {eps!r}.")
    mean_a = _vector(mean, "mean")
    if formula == "std+eps":
        if std is not None:
            stat = _vector(std, "std")
        elif var is not None:
            stat = np.sqrt(_vector(var, "var")).astype(np.float32)
        else:
            raise DeclarationError(
                f"{what}: formula 'std+eps' needs std (or var). Fix: normalizer(mean, std=...)."
            )
    else:
        if var is None:
            raise DeclarationError(
                f"{what}: formula 'sqrt(var+eps)' needs var. Fix: normalizer(mean, var=..., "
                "formula='sqrt(var+eps)')."
            )
        stat = _vector(var, "var")
    if stat.shape != mean_a.shape:
        raise DeclarationError(
            f"{what}: mean has {mean_a.size} values, the "
            f"{'std' if formula == 'std+eps' else 'var'} {stat.size}; they must match."
        )
    if (stat < 0).any():
        raise DeclarationError(f"{what}: std/var must be >= 0, got a negative value.")
    if eps == 0 and (stat == 0).any():
        raise DeclarationError(
            f"{what}: a zero std/var with eps=0 divides by zero. Fix: keep rsl_rl's eps=0.01."
        )
    clip_t: tuple[float, float] | None = None
    if clip is not None:
        if (
            not isinstance(clip, (tuple, list))
            or len(clip) != 2
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in clip)
            or not clip[0] < clip[1]
        ):
            raise DeclarationError(
                f"{what}: clip must be a pair (lo, hi) with lo < hi, got {clip!r}. "
                "Fix: e.g. clip=(-5.0, 5.0)."
            )
        clip_t = (float(clip[0]), float(clip[1]))
    for arr in (mean_a, stat):
        arr.setflags(write=False)
    return Normalizer(mean_a, stat, formula, float(eps), clip_t, _source, _count)


def check_normalizer(value: object, what: str) -> Normalizer | None:
    if value is None or isinstance(value, Normalizer):
        return value
    raise DeclarationError(
        f"{what} must be an exploy_dsl.Normalizer (exploy_dsl.normalizer(mean, std=...), "
        f"Normalizer.from_rsl_rl(checkpoint) or Normalizer.from_sb3(vec_normalize)), got "
        f"{type(value).__name__}."
    )


def _vector(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(_array(value, name), dtype=np.float64)
    except (TypeError, ValueError):
        raise DeclarationError(f"normalizer: {name} must be numbers, got {value!r}.") from None
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]  # rsl_rl keeps [1, n]
    if arr.ndim != 1 or arr.size == 0:
        raise DeclarationError(
            f"normalizer: {name} must be a vector [n] (or rsl_rl's [1, n]), got shape "
            f"{list(arr.shape)}."
        )
    if not np.isfinite(arr).all():
        raise DeclarationError(f"normalizer: {name} has a NaN or infinite value.")
    return arr.astype(np.float32)


def _array(value: Any, name: str) -> Any:
    """A torch tensor (without importing torch) or anything NumPy reads, as an array."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``outer/inner.key`` -> value (state_dict keys keep their dots)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _unpickle(path: str | os.PathLike[str], what: str) -> Any:
    if not os.path.isfile(path):
        raise DeclarationError(f"{what}: file {os.fspath(path)!r} does not exist.")
    try:
        with open(path, "rb") as stream:
            return pickle.load(stream)  # SB3's own format, read as VecNormalize.load does
    except ImportError as exc:
        raise DeclarationError(
            f"{what}: reading {os.fspath(path)!r} needs {exc.name or 'a module'}, which is not "
            "installed. Fix: pip install stable-baselines3, or pass the VecNormalize object."
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to read is the file's
        raise DeclarationError(
            f"{what}: cannot read {os.fspath(path)!r} as a pickled VecNormalize: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None


def _torch_load(path: str | os.PathLike[str], what: str) -> Any:
    if not os.path.isfile(path):
        raise DeclarationError(f"{what}: checkpoint {os.fspath(path)!r} does not exist.")
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        raise DeclarationError(
            f"{what}: reading {os.fspath(path)!r} needs torch, which is not installed. Fix: "
            "pip install torch==2.13.0, or pass the loaded dict or the arrays."
        ) from None
    try:
        return torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is the file's
        raise DeclarationError(
            f"{what}: cannot read {os.fspath(path)!r} as a torch checkpoint: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None
