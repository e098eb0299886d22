"""Write a file atomically: a failed or interrupted write leaves nothing behind."""

from __future__ import annotations

import errno
import io
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from exploy_dsl import UsageError, WriteError


def write_atomic(data: bytes, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place.

    The file gets the mode an ordinary write would give it: an existing file keeps its mode,
    a new one gets ``0o666 & ~umask`` (not the temporary file's 0600, which would hide it from
    a controller running as another user). As an ordinary write, a symlink is written through
    (the file it names is replaced, the link stays), and a device or pipe (``-o /dev/null``)
    gets the bytes streamed into it: renaming onto it would replace the device node itself.
    """
    target = Path(path)
    try:
        if stat.S_ISLNK(os.lstat(target).st_mode):
            target = Path(os.path.realpath(target))
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise WriteError(
                f"cannot write {str(target)[:60]!r}...: the name is too long for the file system "
                f"({len(os.fsencode(target.name))} bytes). Nothing was written. "
                "Fix: choose a shorter output path."
            ) from None
    if _is_special(target):
        return _write_into(data, target)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise WriteError(
            f"cannot write {str(target)!r}: folder {str(directory)!r} does not exist. "
            "Fix: create it first or choose another output path."
        )
    if target.is_dir():
        raise WriteError(f"cannot write {str(target)!r}: it is a folder. Fix: name a file.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise WriteError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}. "
            "Fix: choose a folder you can write to."
        ) from None
    mode = _ordinary_mode(target)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise WriteError(
                f"cannot write {str(target)!r}: {exc.strerror or exc}. Nothing was written."
            ) from None
        raise
    return target


def _is_special(target: Path) -> bool:
    """A device, pipe or socket: something that exists but is neither a file nor a folder."""
    try:
        mode = target.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _write_into(data: bytes, target: Path) -> Path:
    try:
        with open(target, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise WriteError(
            f"cannot write {str(target)!r}: {exc.strerror or exc}. "
            "Fix: choose a file you can write to."
        ) from None
    return target


def _ordinary_mode(target: Path) -> int:
    """What ``open(target, "w")`` would leave: the existing mode, else 0o666 minus the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        pass
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def save_figure(fig: Any, plt: Any, path: str | os.PathLike[str]) -> Path:
    """A matplotlib figure drawn in memory (its format from the suffix), closed, then written
    with ``write_atomic``: a failed draw or write leaves no half image behind."""
    image = io.BytesIO()
    image_format = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        if image_format not in fig.canvas.get_supported_filetypes():
            raise UsageError(
                f"cannot write plot {str(path)!r}: matplotlib writes no {image_format!r} images. "
                "Fix: name a .png (or .pdf, .svg) file."
            )
        fig.savefig(image, format=image_format, dpi=100)
    finally:
        plt.close(fig)
    return write_atomic(image.getvalue(), path)
