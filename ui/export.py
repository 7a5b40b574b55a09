"""The Export page's comparison table as people read it: every number formatted once, "—" where a format has
no measurement, and no column wider than the page needs."""

from __future__ import annotations

import pandas as pd

from core.export import comparison_rows
from core.formats import ExportResult

KB = 1024


def file_size(size: float | None) -> str:
    """A file size in KB below a megabyte, else in MB."""
    if size is None:
        return "—"
    return f"{size / KB:,.1f} KB" if size < KB * KB else f"{size / KB / KB:,.1f} MB"


def _number(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def comparison_table(results: dict[str, ExportResult]) -> pd.DataFrame:
    """One row per exported format: size, test accuracy, its change from Keras, the largest probability
    difference, top-1 agreement, latency, runtime and status, as text (a missing value reads "—", not None)."""
    rows = []
    for row in comparison_rows(results):
        size_kb = row["size (KB)"]
        rows.append(
            {
                "format": row["format"],
                "size": file_size(size_kb * KB if size_kb is not None else None),
                "test accuracy": _number(row["test accuracy"], "{:.2%}"),
                "vs Keras (points)": _number(row["vs Keras (points)"], "{:+.2f}"),
                "max |Δ probability|": _number(row["max |Δ probability|"], "{:.1e}"),
                "top-1 = Keras": _number(row["top-1 = Keras"], "{:.2%}"),
                "latency": _number(row["latency (ms/image)"], "{:.2f} ms"),
                "runtime": row["runtime"],
                "status": "failed" if row["status"].startswith("failed") else row["status"],
            }
        )
    return pd.DataFrame(rows)


def compared_text(results: dict[str, ExportResult]) -> str:
    """How many test images the measured formats were compared on."""
    counts = sorted({r.compared_images for r in results.values() if r.compared_images})
    if not counts:
        return "No format was measured on the test split."
    return f"Measured on {', '.join(f'{c:,}' for c in counts)} test images."
