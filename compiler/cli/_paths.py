"""Output paths of a command, checked before anything runs: never onto an input, never too long."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

import onnx

from exploy_dsl import OutputPathError


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when writing ``a`` would replace or write through ``b``.

    Resolved paths (symlinks followed, ``..`` folded) are compared, then inodes, so a hard
    link or a symlinked folder is caught too.
    """
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: fall back to the inode
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): it is not the other
        return False


def refuse_overwrite(outputs: dict[str, str | None], inputs: dict[str, str | None]) -> None:
    """An OutputPathError naming both paths when an output is an input or another output.

    ``outputs`` and ``inputs`` map what the path is (``-o``, ``the program file``) to the path
    the user gave, None when not given.
    """
    given_outputs = [(role, path) for role, path in outputs.items() if path is not None]
    given_inputs = [(role, path) for role, path in inputs.items() if path is not None]
    for i, (role, path) in enumerate(given_outputs):
        for other_role, other in (*given_inputs, *given_outputs[i + 1 :]):
            if same_file(path, other):
                what = "that input" if (other_role, other) in given_inputs else "one with the other"
                raise OutputPathError(
                    f"{role} {str(path)!r} is the same file as {other_role} {str(other)!r}: "
                    f"writing it would destroy {what}. Nothing was written. "
                    f"Fix: choose another path for {role}."
                )


def check_name_length(path: str, role: str, fix: str) -> None:
    """An OutputPathError when ``path`` has a name the file system cannot hold (ENAMETOOLONG)."""
    try:
        os.lstat(path)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            name = os.path.basename(path)
            raise OutputPathError(
                f"{role} {_short(path)!r} is too long for the file system (a name of "
                f"{len(os.fsencode(name))} bytes; most file systems allow 255). Fix: {fix}."
            ) from None


def actor_files(actor: str | None) -> dict[str, str | None]:
    """The actor file and the external-data files it loads (``policy.onnx.data``), by role."""
    if actor is None:
        return {}
    files: dict[str, str | None] = {"the actor file": actor}
    if not actor.endswith(".onnx") or not os.path.isfile(actor):
        return files
    folder = os.path.dirname(actor)
    locations = {os.path.basename(actor) + ".data"}  # torch.onnx.export's default name
    try:
        model = onnx.load(actor, load_external_data=False)
    except Exception:  # noqa: BLE001 - the actor loader reports an unreadable file
        model = None
    if model is not None:
        locations |= set(_external_locations(model.graph.initializer))
    found = [p for p in (os.path.join(folder, x) for x in sorted(locations)) if os.path.exists(p)]
    for n, path in enumerate(found):
        files["the actor's external data file" + (f" #{n + 1}" if len(found) > 1 else "")] = path
    return files


def _external_locations(tensors: Iterable[onnx.TensorProto]) -> list[str]:
    found = []
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            found += [e.value for e in tensor.external_data if e.key == "location"]
    return found


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:40] + "..." + text[-20:]
