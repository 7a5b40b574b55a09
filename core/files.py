"""Atomic file writes and tolerant reads: a reader sees the old file or the new one, never half of one.

A write that runs out of space (ENOSPC, or EDQUOT for a full quota) leaves nothing behind and raises
:class:`DiskFull`, a :class:`StudioError` that says how much to free and where.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import StudioError
from core.i18n import _

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
RUN_MARKERS = ("status.json", "config.json")  # a folder holding one of these is a run; its parent, the workspace
MB = 1_000_000


class DiskFull(StudioError):
    """The disk (or the quota) holding the workspace is full; ``needed_bytes`` is what the write wanted."""

    def __init__(self, message: str, needed_bytes: int) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes


def is_disk_full(err: BaseException) -> bool:
    """An OSError for a full disk or quota, or a library's error that wraps one (TensorFlow, h5py say it in text)."""
    if isinstance(err, OSError) and err.errno in DISK_FULL_ERRNOS:
        return True
    text = str(err)
    return "No space left on device" in text or "Disk quota exceeded" in text


def workspace_of(path: Path) -> Path:
    """The workspace a run file or folder lies in: the parent of the nearest run folder, else the file's folder."""
    path = Path(path)
    for folder in (path, *path.parents):
        if any((folder / marker).is_file() for marker in RUN_MARKERS):
            return folder.parent
    return path if path.is_dir() else path.parent


def disk_full_error(workspace: Path, needed_bytes: int) -> DiskFull:
    """The message for a full disk: how many MB to free (at least 1) and in which workspace."""
    megabytes = max(1, -(-int(needed_bytes) // MB))
    name = Path(workspace).resolve().name or str(workspace)
    message = _("The disk is full: free {size} MB in the workspace ({name}) and try again.").format(
        size=megabytes, name=name
    )
    return DiskFull(message, needed_bytes)


@contextlib.contextmanager
def disk_full_guard(workspace: Path, needed_bytes: int = MB) -> Iterator[None]:
    """Turn a full-disk OSError raised inside into :class:`DiskFull` naming ``workspace`` and asking for
    ``needed_bytes`` (what the whole operation writes; an inner DiskFull is named again with the larger of its
    size and this one: the caller knows the workspace and the operation better than a file path does)."""
    try:
        yield
    except DiskFull as err:
        raise disk_full_error(workspace, max(err.needed_bytes, needed_bytes)) from None
    except Exception as err:
        if is_disk_full(err):
            raise disk_full_error(workspace, needed_bytes) from None
        raise


def check_free_space(folder: Path, needed_bytes: int) -> None:
    """Refuse a write of ``needed_bytes`` before it starts when the disk plainly cannot hold it."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the write itself will say
    if free < needed_bytes:
        raise disk_full_error(workspace_of(folder), needed_bytes - free)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers see the old or the new file, whole."""
    with disk_full_guard(workspace_of(path), len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        check_free_space(path.parent, len(data))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, sort_keys=True, default=json_default).encode())


def model_bytes_estimate(model) -> int:
    """About what a .keras file of ``model`` takes: float32 weights, plus the optimizer's slots when compiled."""
    try:
        params = int(model.count_params())
    except Exception:  # an unbuilt model
        return MB
    return params * 4 * (3 if getattr(model, "optimizer", None) is not None else 1)


def atomic_save_model(model, path: Path) -> None:
    """model.save into a temporary .keras file beside ``path``, then rename; a full disk leaves no part file."""
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp.keras")
    try:
        with disk_full_guard(workspace_of(path), model_bytes_estimate(model)):
            model.save(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy a file through a temporary file beside ``target``, then rename: never a truncated copy."""
    size = source.stat().st_size
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        with disk_full_guard(workspace_of(target), size):
            check_free_space(target.parent, size)
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def json_default(obj: Any) -> Any:
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # ValueError: bad JSON, and bytes that are not UTF-8
        return default
