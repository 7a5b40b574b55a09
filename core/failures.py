"""A run that fails keeps its full traceback in the run folder, and says the real cause in one line.

TensorFlow's errors from inside a compiled function start with a header ("Graph execution error:", "Detected at
node … defined at (most recent call last):", a stack of file lines) and only then the root error, so the first
line of the message is never the cause; :func:`root_cause` skips that header.
"""

from __future__ import annotations

import re
import time
import traceback
from pathlib import Path

from core.files import atomic_write_bytes
from core.i18n import _

ERROR_LOG = "error.log"
MAX_CAUSE_CHARS = 300  # one line in the sidebar and the CLI; the log has all of it

# Lines of a TensorFlow error message that are framing, not the cause.
_HEADER_LINE = re.compile(
    r"^(Graph execution error:?|Detected at node .* defined at \(most recent call last\):?|File \".*|"
    r"\d+ root error\(s\) found\.?|\d+ successful operations\.?|\d+ derived errors ignored\.?|"
    r"\[\[\{\{node .*|\[\[.*\]\].*|Error in user-defined function passed to .*|Function call stack:.*|"
    r"\[Op:.*\]|Additional GRPC error information.*)$"
)
# "(0) INVALID_ARGUMENT:  You must feed …": the numbered root error, its status code dropped.
_ROOT_PREFIX = re.compile(r"^\(\d+\)\s+[A-Z_]+:\s*")


def root_cause(err: BaseException) -> str:
    """The first meaningful line of the error: for TensorFlow's graph errors the root error, not the header."""
    text = getattr(err, "message", None) or str(err)
    for raw in text.splitlines():
        line = _ROOT_PREFIX.sub("", raw.strip())
        line = re.sub(r"\s*\[\[\{\{node .*$", "", line).strip()  # the node name TensorFlow appends
        if line and not _HEADER_LINE.match(line):
            return line if len(line) <= MAX_CAUSE_CHARS else line[: MAX_CAUSE_CHARS - 1] + "…"
    return _("no message")


def write_error_log(run_dir: Path, err: BaseException) -> Path | None:
    """Write the full traceback (with chained causes) into the run's error.log; None when it cannot be written."""
    lines = [
        f"Run {run_dir.name} failed at {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n",
        f"Cause: {type(err).__name__}: {root_cause(err)}\n\n",
        *traceback.format_exception(err),
    ]
    try:
        atomic_write_bytes(run_dir / ERROR_LOG, "".join(lines).encode("utf-8", errors="replace"))
    except OSError:
        return None
    return run_dir / ERROR_LOG


def failure_message(run_dir: Path, err: BaseException, cause: str | None = None) -> str:
    """Log the traceback and return the one line the page and the CLI show: the cause and where the log is,
    relative to the workspace (never a server path)."""
    cause = cause or f"{type(err).__name__}: {root_cause(err)}"
    logged = write_error_log(run_dir, err)
    return _with_log(cause, run_dir) if logged else cause.rstrip()


def _with_log(cause: str, run_dir: Path) -> str:
    said = _("{cause} Full traceback: {file} in the workspace.")
    return said.format(cause=cause.rstrip(), file=f"{run_dir.name}/{ERROR_LOG}")


def logged_cause(run_dir: Path) -> str | None:
    """The one-line message for a run whose trainer died after writing its error.log (None without a log)."""
    try:
        lines = (run_dir / ERROR_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    cause = next((line.removeprefix("Cause: ") for line in lines if line.startswith("Cause: ")), None)
    return _with_log(cause, run_dir) if cause else None
