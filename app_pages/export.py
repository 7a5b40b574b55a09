"""Export page: TF.js, ONNX, TFLite and MediaPipe models (and more) with their fidelity measured, ready to
download, and a snippet per platform."""

import json

import streamlit as st

from core.errors import StudioError
from core.export import EXPORT_DIR, EXTRA_FILES, fidelity_checks, read_manifest
from core.files import read_json
from core.formats import FORMATS, REGISTRY
from core.images import RESIZE_METHOD
from core.serving import DEFAULT_PORT, docker_command, local_requests, serve_command, serving_name
from ui.export import compared_text, comparison_table, file_size
from ui.jobs import pick_run, show_damage
from ui.workers import Progress, served

DOWNLOAD_COLUMNS = 2  # wide enough for the longest format label

st.title("Export")
run = pick_run("export_run", "No trained run yet: train one on the Train page, then export it here.")
show_damage(run, stop_if_unusable=True)

formats = st.multiselect(
    "Formats", list(FORMATS), default=list(FORMATS), key="export_formats", format_func=lambda f: REGISTRY[f].label
)
compare = st.checkbox(
    "Measure each format on the run's test split (accuracy, difference from Keras, latency)",
    value=True,
    key="export_compare",
)
if st.button("Export", type="primary", key="export_button", disabled=not formats):
    with st.status("Exporting…", expanded=True) as status:
        try:
            request = f"Exporting run '{run.name}'"
            results = served(
                "export", str(run.path), formats, compare, Progress(), request=request, on_progress=st.write
            )
            failed = [fmt for fmt, r in results.items() if r.error]
            status.update(
                label="Exported" + (f", {len(failed)} failed" if failed else ""),
                state="error" if failed else "complete",
                expanded=bool(failed),
            )
        except StudioError as err:
            status.update(label="Export failed", state="error")
            st.error(str(err))

# --- Serve it over HTTP: TensorFlow Serving's REST API, here or in Docker (needs the model, not the exports) ---
with st.expander("Serve it over HTTP (TensorFlow Serving's REST API)"):
    st.caption(
        f"From this project's folder, serve the run's model on port {DEFAULT_PORT} with TensorFlow Serving's REST "
        "API (batched; pictures as raw 0..255 arrays or as image files in base64, resized as here). Or unzip "
        "saved_model.zip and run TensorFlow Serving itself: a client works unchanged against either."
    )
    st.code(f"{serve_command(run)}\n{local_requests(serving_name(run))}", language="bash")
    st.code(docker_command(serving_name(run)), language="bash")

try:
    done = read_manifest(run)
except StudioError as err:
    st.error(str(err))
    st.stop()
if not done:
    st.info(
        "Nothing exported for this run yet: choose formats and press Export. Exports are kept in the run "
        "folder and reused on later visits."
    )
    st.stop()

# --- Fidelity ---------------------------------------------------------------------------------------
st.subheader("Comparison")
st.table(comparison_table(done), hide_index=True)  # a table that wraps its text: every column on the page
st.caption(
    "Each format runs in its own runtime on this server's CPU (the MediaPipe files in MediaPipe Tasks' "
    "ImageClassifier, one picture at a time as an app calls it); latency is one image at a time. "
    "*top-1 = Keras*: the share of test images whose best class is the one Keras gives. "
    f"{compared_text(done)} —: not measured for that format."
)
for check in fidelity_checks(done):
    (st.success if check.passed else st.warning)(f"{'✓' if check.passed else '✗'} {check.label}: {check.detail}")
for fmt, result in done.items():
    if result.error:
        st.error(f"{REGISTRY[fmt].label} failed: {result.error}. The other formats are still available.")

# --- Downloads --------------------------------------------------------------------------------------
st.subheader("Downloads")
out = run.path / EXPORT_DIR
ready = [(fmt, done[fmt]) for fmt in FORMATS if fmt in done]  # in the registry's order
downloads = [(fmt, REGISTRY[fmt].label, run.path / r.path) for fmt, r in ready if r.path and not r.error]
downloads += [(name, name, out / name) for name in EXTRA_FILES]
cols = st.columns(DOWNLOAD_COLUMNS)
for i, (key, label, path) in enumerate(d for d in downloads if d[2].is_file()):
    with cols[i % DOWNLOAD_COLUMNS]:
        size = file_size(path.stat().st_size)
        st.download_button(
            label,
            path.read_bytes(),
            file_name=path.name,
            key=f"download_{key}",
            width="stretch",
            help=f"{path.name}, {size}",
        )

# --- Usage ------------------------------------------------------------------------------------------
st.subheader("Use it")
st.caption(
    "webdemo.zip opens offline from file:// or any static server and classifies the camera stream or a picture. "
    f"The web demo, these snippets and the Evaluate page's try-it make a picture into model input one way: "
    f"{RESIZE_METHOD}. So the same picture gets the same probabilities everywhere."
)
meta = read_json(out / "metadata.json", {})
meta = meta if isinstance(meta, dict) else {}
try:
    snippets = [(s.title, s.language, s.code(meta)) for fmt in FORMATS for s in REGISTRY[fmt].snippets] if meta else []
except (KeyError, TypeError, ValueError, IndexError):  # a damaged metadata.json
    st.warning(f"{EXPORT_DIR}/metadata.json is damaged: press Export again to write it anew.")
    snippets = []
tabs = st.tabs([title for title, _, _ in snippets] + ["metadata.json"])
for tab, (_, language, code) in zip(tabs, snippets, strict=False):
    tab.code(code, language=language)
tabs[-1].code(json.dumps(meta, indent=2), language="json")
