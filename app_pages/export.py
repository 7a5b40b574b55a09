"""Export page: TF.js, ONNX, TFLite and MediaPipe models (and more) with their fidelity measured, ready to
download, and a snippet per platform."""

import json

import streamlit as st

from core.errors import StudioError
from core.export import EXPORT_DIR, EXTRA_FILES, fidelity_checks, read_manifest
from core.files import read_json
from core.formats import FORMATS, REGISTRY
from core.i18n import _
from core.images import RESIZE_METHOD
from core.serving import DEFAULT_PORT, docker_command, local_requests, serve_command, serving_name
from ui.export import compared_text, comparison_table, download_help
from ui.jobs import pick_run, show_damage
from ui.workers import Progress, served

DOWNLOAD_COLUMNS = 2  # wide enough for the longest format label

st.title(_("Export"))
run = pick_run("export_run", _("No trained run yet: train one on the Train page, then export it here."))
show_damage(run, stop_if_unusable=True)

formats = st.multiselect(
    _("Formats"), list(FORMATS), default=list(FORMATS), key="export_formats", format_func=lambda f: _(REGISTRY[f].label)
)
compare = st.checkbox(
    _("Measure each format on the run's test split (accuracy, difference from Keras, latency)"),
    value=True,
    key="export_compare",
)
if st.button(_("Export"), type="primary", key="export_button", disabled=not formats):
    with st.status(_("Exporting…"), expanded=True) as status:
        try:
            request = _("Exporting run '{name}'").format(name=run.name)
            results = served(
                "export", str(run.path), formats, compare, Progress(), request=request, on_progress=st.write
            )
            failed = [fmt for fmt, r in results.items() if r.error]
            status.update(
                label=_("Exported, {count} failed").format(count=len(failed)) if failed else _("Exported"),
                state="error" if failed else "complete",
                expanded=bool(failed),
            )
        except StudioError as err:
            status.update(label=_("Export failed"), state="error")
            st.error(str(err))

# --- Serve it over HTTP: TensorFlow Serving's REST API, here or in Docker (needs the model, not the exports) ---
with st.expander(_("Serve it over HTTP (TensorFlow Serving's REST API)")):
    st.caption(
        _(
            "From this project's folder, serve the run's model on port {port} with TensorFlow Serving's REST API "
            "(batched; pictures as raw 0..255 arrays or as image files in base64, resized as here). Or unzip "
            "saved_model.zip and run TensorFlow Serving itself: a client works unchanged against either."
        ).format(port=DEFAULT_PORT)
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
        _(
            "Nothing exported for this run yet: choose formats and press Export. Exports are kept in the run "
            "folder and reused on later visits."
        )
    )
    st.stop()

# --- Fidelity ---------------------------------------------------------------------------------------
st.subheader(_("Comparison"))
st.table(comparison_table(done), hide_index=True)  # a table that wraps its text: every column on the page
st.caption(
    _(
        "Each format runs in its own runtime on this server's CPU (the MediaPipe files in MediaPipe Tasks' "
        "ImageClassifier, one picture at a time as an app calls it); latency is one image at a time. "
        "*top-1 = Keras*: the share of test images whose best class is the one Keras gives. "
        "{measured} —: not measured for that format."
    ).format(measured=compared_text(done))
)
for check in fidelity_checks(done):
    mark = "✓" if check.passed else "✗"
    (st.success if check.passed else st.warning)(
        _("{mark} {check}: {detail}").format(mark=mark, check=check.label, detail=check.detail)
    )
for fmt, result in done.items():
    if result.error:
        message = _("{format} failed: {error}. The other formats are still available.")
        st.error(message.format(format=_(REGISTRY[fmt].label), error=result.error))

# --- Downloads --------------------------------------------------------------------------------------
st.subheader(_("Downloads"))
out = run.path / EXPORT_DIR
ready = [(fmt, done[fmt]) for fmt in FORMATS if fmt in done]  # in the registry's order
downloads = [(fmt, _(REGISTRY[fmt].label), run.path / r.path, r) for fmt, r in ready if r.path and not r.error]
downloads += [(name, name, out / name, None) for name in EXTRA_FILES]
cols = st.columns(DOWNLOAD_COLUMNS)
for i, (key, label, path, result) in enumerate(d for d in downloads if d[2].is_file()):
    with cols[i % DOWNLOAD_COLUMNS]:
        st.download_button(
            label,
            path.read_bytes(),
            file_name=path.name,
            key=f"download_{key}",
            width="stretch",
            help=download_help(path, result),
        )

# --- Usage ------------------------------------------------------------------------------------------
st.subheader(_("Use it"))
st.caption(
    _(
        "webdemo.zip opens offline from file:// or any static server and classifies the camera stream or a "
        "picture. The web demo, these snippets and the Evaluate page's try-it make a picture into model input "
        "one way: {resize}. So the same picture gets the same probabilities everywhere."
    ).format(resize=_(RESIZE_METHOD))
)
meta = read_json(out / "metadata.json", {})
meta = meta if isinstance(meta, dict) else {}
try:
    snippets = [(_(s.title), s.language, s.code(meta)) for f in FORMATS for s in REGISTRY[f].snippets] if meta else []
except (KeyError, TypeError, ValueError, IndexError):  # a damaged metadata.json
    st.warning(_("{file} is damaged: press Export again to write it anew.").format(file=f"{EXPORT_DIR}/metadata.json"))
    snippets = []
tabs = st.tabs([snippet[0] for snippet in snippets] + ["metadata.json"])
for tab, (_title, code_language, code) in zip(tabs, snippets, strict=False):
    tab.code(code, language=code_language)
tabs[-1].code(json.dumps(meta, indent=2), language="json")
