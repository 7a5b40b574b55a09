"""Exporting a run's model in the registry's formats, each measured against Keras in its own runtime, with
the verdict of the fidelity checks computed here for the page and the CLI alike.

Everything lands in ``RUN/exports/`` with a ``manifest.json``; a revisit reuses what is there for the same
model file. One failed format records its error and leaves the others; a full disk stops the export with
a DiskFull error, and leaves no part file: every format is written to a temporary name, then renamed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np

from core.errors import StudioError
from core.evaluation import check_model_fits, load_run_model, load_test_data, probabilities, run_config
from core.files import MB, DiskFull, atomic_write_bytes, atomic_write_json, disk_full_guard, is_disk_full, read_json
from core.formats import FORMATS, REGISTRY, ExportContext, ExportResult, metadata, usage_readme
from core.i18n import _, language, ngettext, percent
from core.runs import RunInfo

EXPORT_DIR = "exports"
MANIFEST = "manifest.json"
EXTRA_FILES = ("labels.txt", "metadata.json", "README.md")  # written with every export
MAX_COMPARE_IMAGES = 2000
# Part of every manifest's model stamp: bump it when the files a format writes change, so exports made by an
# older studio are made again instead of reused. 2: the web demo runs no inline script (#11). 3: metadata in
# every .tflite, ONNX and MediaPipe files, the web demo's camera and Pillow-exact resize, top-1 agreement (#14).
# 4: .h5 and .weights.h5, the SavedModel in TensorFlow Serving's layout with a named output (#17).
# 5: the web demo runs camera.js, the camera script the Live page shares (pause, full screen, moving bars) (#15).
# 6: the web demo's words come in a JSON block in the language it is made in, <html lang> set (#21); a web
# demo made in another language is made again (only it: the manifest records its language).
EXPORTER_VERSION = 6


@dataclass(frozen=True)
class Check:
    """One fidelity target and whether the export meets it."""

    label: str
    passed: bool
    detail: str


def model_stamp(run: RunInfo) -> str:
    """Changes when the model file or the exporter does: exports are reused only while it stays the same."""
    path = run.model_path()
    return f"v{EXPORTER_VERSION}:{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"


def read_manifest(run: RunInfo) -> dict[str, ExportResult]:
    """Exports already made for the run's current model file; a damaged manifest (or entry) counts as none."""
    data = read_json(run.path / EXPORT_DIR / MANIFEST, {})
    if not isinstance(data, dict) or not isinstance(data.get("formats"), dict):
        return {}
    try:
        if data.get("model") != model_stamp(run):
            return {}
    except (StudioError, OSError):
        return {}
    done = {}
    for fmt, result in data["formats"].items():
        try:
            if fmt in REGISTRY and isinstance(result, dict) and result.get("format", fmt) == fmt:
                done[fmt] = _checked_result(ExportResult(**result))
        except (TypeError, ValueError):
            continue  # an entry from another version, or garbage: exported again when asked
    return done


def _checked_result(result: ExportResult) -> ExportResult:
    """An ExportResult read from JSON, refused unless each field has its type."""
    texts = (result.path, result.error, result.language)
    numbers = (
        result.size_bytes,
        result.test_accuracy,
        result.max_abs_diff,
        result.latency_ms,
        result.compared_images,
        result.seconds,
        result.agreement,
    )
    if not all(t is None or isinstance(t, str) for t in texts):
        raise ValueError("not a text")
    if not all(n is None or (isinstance(n, (int, float)) and not isinstance(n, bool)) for n in numbers):
        raise ValueError("not a number")
    if result.path and (result.path.startswith("/") or ".." in result.path.split("/")):
        raise ValueError("a path outside the run")
    return result


def _remove_partial_files(out) -> None:
    """Temporary files and folders a failed export left in ``out`` (converters write ``*.tmp`` first)."""
    for child in out.iterdir() if out.is_dir() else ():
        if ".tmp" in child.name:
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def export_run(
    run: RunInfo,
    formats: Iterable[str] = FORMATS,
    compare: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, ExportResult]:
    """Write the formats into RUN/exports (reusing the ones already there) and measure each against Keras."""
    formats = list(formats)
    unknown = [f for f in formats if f not in REGISTRY]
    if unknown:
        raise StudioError(
            _("Unknown export format '{format}': choose from {choices}.").format(
                format=unknown[0], choices=", ".join(FORMATS)
            )
        )
    out = run.path / EXPORT_DIR
    stamp = model_stamp(run)
    size = max(run.model_path().stat().st_size, MB)  # about what one format's file takes
    model = load_run_model(run)
    images, labels, names = load_test_data(run)
    check_model_fits(run, model, images, names)
    logits = run_config(run).model.output == "logits"
    done = read_manifest(run)
    with disk_full_guard(run.path.parent, size):
        if not done and out.exists():
            shutil.rmtree(out)  # exports of an older model file
        out.mkdir(parents=True, exist_ok=True)
        try:
            _export_formats(run, out, stamp, done, formats, compare, progress, model, images, labels, names, logits)
        except BaseException:
            _remove_partial_files(out)
            raise
    return {fmt: done[fmt] for fmt in formats}


def _export_formats(run, out, stamp, done, formats, compare, progress, model, images, labels, names, logits) -> None:
    images, labels = images[:MAX_COMPARE_IMAGES], labels[:MAX_COMPARE_IMAGES]
    ctx = ExportContext(run, out, model, images, labels, names, logits, probabilities(model, images, logits=False))
    atomic_write_bytes(out / "labels.txt", ("\n".join(names) + "\n").encode())
    meta = metadata(ctx)
    atomic_write_json(out / "metadata.json", meta)
    atomic_write_bytes(out / "README.md", usage_readme(meta).encode())
    for fmt in formats:
        previous = done.get(fmt)
        if previous and not previous.error and previous.path and (run.path / previous.path).exists():
            if not REGISTRY[fmt].localized or previous.language == language():
                continue  # the same file again (a web demo: in the language asked for)
        if progress:
            progress(_("Exporting {format}…").format(format=_(REGISTRY[fmt].label)))
        start = time.perf_counter()
        try:
            result = _export_one(ctx, fmt, compare)
        except DiskFull:
            raise
        except Exception as err:  # one format failing must leave the others; a full disk stops them all
            if is_disk_full(err):
                raise DiskFull(str(err), 0) from None  # named with the workspace and the size by the guard
            message = str(err).strip().splitlines()[-1][:400] if str(err).strip() else _("no message")
            result = ExportResult(fmt, error=f"{type(err).__name__}: {message}")
            _remove_partial_files(ctx.out)
        result.seconds = time.perf_counter() - start
        if REGISTRY[fmt].localized:
            result.language = language()
        done[fmt] = result
        atomic_write_json(out / MANIFEST, {"model": stamp, "formats": {k: v.to_dict() for k, v in done.items()}})


def _export_one(ctx: ExportContext, fmt: str, compare: bool) -> ExportResult:
    entry = REGISTRY[fmt]
    path = ctx.out / entry.file
    tmp = path.with_name(f".{secrets.token_hex(4)}.tmp-{path.name}")  # same suffix: converters may look at it
    try:
        entry.convert(ctx, tmp)
        os.replace(tmp, path)  # a reader (or a download) never sees a half-written file
    finally:
        tmp.unlink(missing_ok=True)
    result = ExportResult(fmt, str(path.relative_to(ctx.run.path)), path.stat().st_size)
    if compare and entry.run is not None:
        outputs, result.latency_ms = entry.run(ctx, path)
        probs = np.asarray(outputs, dtype=np.float64) if entry.gives_probabilities else ctx.probabilities(outputs)
        result.test_accuracy = float(np.mean(probs.argmax(axis=1) == ctx.labels))
        result.max_abs_diff = float(np.max(np.abs(probs - ctx.reference)))
        result.agreement = float(np.mean(probs.argmax(axis=1) == ctx.reference.argmax(axis=1)))
        result.compared_images = len(ctx.labels)
    return result


def fidelity_checks(results: dict[str, ExportResult]) -> list[Check]:
    """Each registry target the measured exports can be held to: closeness to Keras, accuracy kept, size."""
    checks = []
    keras = results.get("keras")
    for fmt, entry in REGISTRY.items():
        result = results.get(fmt)
        if result is None or result.error:
            continue
        label, name = _(entry.label), _(entry.name)
        if entry.tolerance is not None and result.max_abs_diff is not None:
            passed = result.max_abs_diff <= entry.tolerance
            check = _("{format} matches Keras to {tolerance}").format(format=label, tolerance=f"{entry.tolerance:g}")
            detail = _("max difference {value}").format(value=f"{result.max_abs_diff:.1e}")
            checks.append(Check(check, passed, detail))
        if entry.min_agreement is not None and result.agreement is not None:
            check = _("{format} gives Keras's top-1 class on at least {share} of test images").format(
                format=name, share=percent(entry.min_agreement, 0)
            )
            checks.append(Check(check, result.agreement >= entry.min_agreement, percent(result.agreement, 2)))
        if entry.max_accuracy_loss is not None and None not in (result.test_accuracy, keras and keras.test_accuracy):
            loss = keras.test_accuracy - result.test_accuracy
            points = 100 * entry.max_accuracy_loss
            check = ngettext(
                "{format} loses at most {points} point of test accuracy",
                "{format} loses at most {points} points of test accuracy",
                1 if points == 1 else 2,
            ).format(format=name, points=f"{points:g}")
            detail = _("{points} points").format(points=f"{100 * loss:+.2f}")
            checks.append(Check(check, loss <= entry.max_accuracy_loss, detail))
        if entry.max_size_share is not None:
            other_id, share_max = entry.max_size_share
            other = results.get(other_id)
            if other and other.size_bytes and result.size_bytes:
                share = result.size_bytes / other.size_bytes
                check = _("{format} file at most {share} of {other}").format(
                    format=name, share=percent(share_max, 0), other=_(REGISTRY[other_id].name)
                )
                checks.append(Check(check, share <= share_max, percent(share, 0)))
    return checks


def comparison_rows(results: dict[str, ExportResult]) -> list[dict]:
    """The comparison table: per format its file, size, accuracy, distance from Keras, latency and state."""
    keras = results.get("keras")
    rows = []
    for fmt, entry in REGISTRY.items():
        result = results.get(fmt)
        if result is None:
            continue
        delta = None
        if keras and keras.test_accuracy is not None and result.test_accuracy is not None:
            delta = round(100 * (result.test_accuracy - keras.test_accuracy), 2)
        rows.append(
            {
                "format": _(entry.label),
                "file": result.path.split("/")[-1] if result.path else "—",
                "size (KB)": round(result.size_bytes / 1024, 1) if result.size_bytes else None,
                "test accuracy": result.test_accuracy,
                "vs Keras (points)": delta,
                "max |Δ probability|": result.max_abs_diff,
                "top-1 = Keras": result.agreement,
                "latency (ms/image)": result.latency_ms,
                "images compared": result.compared_images,
                "runtime": _(entry.runtime) if entry.runtime else "—",
                "status": f"failed: {result.error}" if result.error else "ok",
            }
        )
    return rows


def export_summary(run: RunInfo, results: dict[str, ExportResult]) -> dict:
    """The CLI's JSON: per format its result with an absolute path, the checks and whether all passed."""
    formats = {}
    for fmt, result in results.items():
        formats[fmt] = {**result.to_dict(), "path": str(run.path / result.path) if result.path else None}
    checks = fidelity_checks(read_manifest(run) | results)
    return {
        "run_dir": str(run.path),
        "formats": formats,
        "checks": [asdict(check) for check in checks],
        "passed": all(c.passed for c in checks) and all(r.error is None for r in results.values()),
    }
