"""The app's own Streamlit components (the Live page's camera, the Evaluate page's feature map): the folders
Streamlit serves them from, and a run's TF.js model as the camera component receives it (metadata and graph as
data, weights as bytes). No Streamlit here, no TensorFlow.

The camera component runs the web demo's own camera script (assets/webdemo/camera.js), so the Live page and
the exported demo classify a frame one way. Streamlit serves a declared component's folder but no file reached
through a link out of it, so each folder is assembled: assets/<component>/ and the files it shares (the demo's
scripts, TF.js's tf.min.js, Plotly's plotly.min.js), copied once into a folder named by their content (a
changed file makes a new folder)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import StudioError
from core.export import EXPORT_DIR, read_manifest
from core.files import read_json
from core.formats import TFJS_LIBRARY, WEBDEMO_TEMPLATE, graph_model_artifacts
from core.i18n import _
from core.runs import RunInfo
from core.runtimes import ROOT

ASSETS = ROOT / "assets"
SHARED_FILES = ("csp-shim.js", "preprocess.js", "camera.js", "demo.css")  # from the web demo's folder
LIVE_FORMAT = "tfjs"  # the export the Live page classifies with


@dataclass(frozen=True)
class LiveModel:
    """What the component needs to classify: the export's metadata.json, the graph model's artifacts (model.json's
    fields) and its weights."""

    meta: dict
    artifacts: dict
    weights: bytes


def _own_files(component: str) -> dict[str, Path]:
    return {p.name: p for p in sorted((ASSETS / component).iterdir()) if p.is_file()}


def live_sources() -> dict[str, Path]:
    """Each file of the Live page's camera component by the name it is served under."""
    if not TFJS_LIBRARY.is_file():
        raise StudioError(_("The TF.js library file (tf.min.js) is missing: run 'make install' (npm ci)."))
    files = _own_files("live") | {name: WEBDEMO_TEMPLATE.parent / name for name in SHARED_FILES}
    return files | {"tf.min.js": TFJS_LIBRARY}


def feature_map_sources() -> dict[str, Path]:
    """Each file of the Evaluate page's feature-map component: its own, and the Plotly the plotly package ships."""
    import plotly

    return _own_files("featuremap") | {"plotly.min.js": Path(plotly.__file__).parent / "package_data" / "plotly.min.js"}


def component_folder(component: str, sources: dict[str, Path], base: Path | None = None) -> Path:
    """The folder of ``component`` with ``sources`` under ``base`` (default: the temp folder, $TMPDIR),
    assembled if it is not there yet. Named by the files' content: servers of different versions never share
    one, and two servers assembling the same one at once each rename a complete copy into place."""
    base = Path(base or tempfile.gettempdir())
    digest = hashlib.sha256()
    for name, path in sources.items():
        digest.update(name.encode() + b"\0" + path.read_bytes())
    folder = base / f"cnn-studio-{component}-{digest.hexdigest()[:16]}"
    if folder.is_dir():
        return folder
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".cnn-studio-{component}-"))
    for name, path in sources.items():
        shutil.copyfile(path, tmp / name)
    tmp.chmod(0o755)
    try:
        tmp.rename(folder)
    except OSError:  # another server put the same folder in place first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def live_model(run: RunInfo) -> LiveModel | None:
    """The run's TF.js graph model as exported for its current model file, or None when it is not exported yet
    (or its files are damaged: exporting again writes them anew)."""
    result = read_manifest(run).get(LIVE_FORMAT)
    model_dir = run.path / EXPORT_DIR / "tfjs_model"
    meta = read_json(run.path / EXPORT_DIR / "metadata.json", None)
    if result is None or result.error or not isinstance(meta, dict) or not (model_dir / "model.json").is_file():
        return None
    try:
        artifacts, weights = graph_model_artifacts(model_dir)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return LiveModel(meta, artifacts, weights)
