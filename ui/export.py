"""The Export page's comparison table as people read it: every number formatted once, "—" where a format has
no measurement, and no column wider than the page needs; and the help of its download buttons."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.export import comparison_rows
from core.formats import REGISTRY, ExportResult
from core.i18n import LANGUAGES, _, language, ngettext, number, percent

KB = 1024


def file_size(size: float | None) -> str:
    """A file size in KB below a megabyte, else in MB."""
    if size is None:
        return "—"
    if size < KB * KB:
        return _("{size} KB").format(size=number(size / KB, 1))
    return _("{size} MB").format(size=number(size / KB / KB, 1))


def _shown(value: float | None, show) -> str:
    return "—" if value is None else show(value)


def comparison_table(results: dict[str, ExportResult]) -> pd.DataFrame:
    """One row per exported format: size, test accuracy, its change from Keras, the largest probability
    difference, top-1 agreement, latency, runtime and status, as text (a missing value reads "—", not None)."""
    rows = []
    for row in comparison_rows(results):
        size_kb = row["size (KB)"]
        rows.append(
            {
                _("format"): row["format"],
                _("size"): file_size(size_kb * KB if size_kb is not None else None),
                _("test accuracy"): _shown(row["test accuracy"], lambda v: percent(v, 2)),
                _("vs Keras (points)"): _shown(row["vs Keras (points)"], lambda v: f"{v:+.2f}"),
                _("max |Δ probability|"): _shown(row["max |Δ probability|"], lambda v: f"{v:.1e}"),
                _("top-1 = Keras"): _shown(row["top-1 = Keras"], lambda v: percent(v, 2)),
                _("latency"): _shown(row["latency (ms/image)"], lambda v: _("{ms} ms").format(ms=number(v, 2))),
                _("runtime"): row["runtime"],
                _("status"): _("failed") if row["status"].startswith("failed") else _("ok"),
            }
        )
    return pd.DataFrame(rows)


def compared_text(results: dict[str, ExportResult]) -> str:
    """How many test images the measured formats were compared on."""
    counts = sorted({r.compared_images for r in results.values() if r.compared_images})
    if not counts:
        return _("No format was measured on the test split.")
    shown = _(", ").join(number(c) for c in counts)
    return ngettext("Measured on {counts} test image.", "Measured on {counts} test images.", counts[-1]).format(
        counts=shown
    )


def download_help(path: Path, result: ExportResult | None) -> str:
    """A download button's help: the file's name and size, and the language of a file with words (the web
    demo) when it is not this page's: Export makes it again in this one."""
    text = _("{file}, {size}").format(file=path.name, size=file_size(path.stat().st_size))
    made_in = result.language if result and REGISTRY[result.format].localized else None
    if made_in and made_in != language():
        note = _("Its words are in {language}: press Export to make it in this page's language.")
        text += " " + note.format(language=LANGUAGES.get(made_in, made_in))
    return text
