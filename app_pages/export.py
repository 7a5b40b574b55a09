"""Export page: TF.js and TFLite models (and more) with their fidelity measured, ready to download."""

import pandas as pd
import streamlit as st

from core.errors import StudioError
from core.export import EXPORT_DIR, FORMAT_TITLES, FORMATS, TFLITE_FILES, export_run, read_manifest
from ui.jobs import manager, pick_run

FLOAT_TOLERANCE = 1e-4
INT8_MAX_ACCURACY_LOSS = 0.01
INT8_MAX_SIZE_SHARE = 0.30

st.title("Export")
mgr = manager()

run = pick_run("export_run", "No trained run yet: train one on the Train page, then export it here.")

formats = st.multiselect(
    "Formats", list(FORMATS), default=list(FORMATS), key="export_formats", format_func=FORMAT_TITLES.get
)
compare = st.checkbox(
    "Measure each format on the run's test split (accuracy, difference from Keras, latency)",
    value=True,
    key="export_compare",
)
if st.button("Export", type="primary", key="export_button", disabled=not formats):
    with st.status("Exporting…", expanded=True) as status:
        try:
            results = export_run(run, formats, compare=compare, progress=st.write)
            failed = [fmt for fmt, r in results.items() if r.error]
            status.update(
                label="Exported" + (f", {len(failed)} failed" if failed else ""),
                state="error" if failed else "complete",
                expanded=bool(failed),
            )
        except StudioError as err:
            status.update(label="Export failed", state="error")
            st.error(str(err))

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
reference = done.get("keras")
keras_accuracy = reference.test_accuracy if reference else None
rows = []
for fmt in FORMATS:
    result = done.get(fmt)
    if result is None:
        continue
    delta = (
        (result.test_accuracy - keras_accuracy)
        if keras_accuracy is not None and result.test_accuracy is not None
        else None
    )
    rows.append(
        {
            "format": FORMAT_TITLES[fmt],
            "file": result.path.split("/")[-1] if result.path else "—",
            "size (KB)": round(result.size_bytes / 1024, 1) if result.size_bytes else None,
            "test accuracy": result.test_accuracy,
            "vs Keras (points)": None if delta is None else round(100 * delta, 2),
            "max |Δ probability|": result.max_abs_diff,
            "latency (ms/image)": result.latency_ms,
            "images compared": result.compared_images,
            "status": f"failed: {result.error}" if result.error else "ok",
        }
    )
st.dataframe(
    pd.DataFrame(rows),
    hide_index=True,
    width="stretch",
    key="comparison_table",
    column_config={
        "test accuracy": st.column_config.NumberColumn(format="%.4f"),
        "max |Δ probability|": st.column_config.NumberColumn(format="%.2e"),
        "latency (ms/image)": st.column_config.NumberColumn(format="%.3f"),
    },
)
st.caption(
    "Keras runs in TensorFlow, TFLite in LiteRT's interpreter, TF.js in the TF.js runtime (CPU backend, "
    "in Node on the server). Latency is one image at a time on this server's CPU."
)

checks = []
for fmt in ("tflite", "tfjs"):
    r = done.get(fmt)
    if r and r.max_abs_diff is not None:
        checks.append(
            (
                f"{FORMAT_TITLES[fmt]} matches Keras to {FLOAT_TOLERANCE:g}",
                r.max_abs_diff <= FLOAT_TOLERANCE,
                f"max difference {r.max_abs_diff:.1e}",
            )
        )
int8, float32 = done.get("tflite-int8"), done.get("tflite")
if int8 and int8.test_accuracy is not None and keras_accuracy is not None:
    loss = keras_accuracy - int8.test_accuracy
    checks.append(
        ("int8 loses at most 1 point of test accuracy", loss <= INT8_MAX_ACCURACY_LOSS, f"{100 * loss:+.2f} points")
    )
if int8 and float32 and int8.size_bytes and float32.size_bytes:
    share = int8.size_bytes / float32.size_bytes
    checks.append(("int8 file at most 30% of float32", share <= INT8_MAX_SIZE_SHARE, f"{share:.0%}"))
for label, ok, detail in checks:
    (st.success if ok else st.warning)(f"{'✓' if ok else '✗'} {label}: {detail}")
for fmt, result in done.items():
    if result.error:
        st.error(f"{FORMAT_TITLES[fmt]} failed: {result.error}. The other formats are still available.")

# --- Downloads --------------------------------------------------------------------------------------
st.subheader("Downloads")
out = run.path / EXPORT_DIR
cols = st.columns(3)
downloads = [(fmt, run.path / r.path) for fmt, r in done.items() if r.path and not r.error]
downloads += [(name, out / name) for name in ("labels.txt", "metadata.json")]
for i, (label, path) in enumerate(downloads):
    if path.is_file():
        with cols[i % 3]:
            st.download_button(
                f"{FORMAT_TITLES.get(label, label)}",
                path.read_bytes(),
                file_name=path.name,
                key=f"download_{label}",
                width="stretch",
            )

# --- Usage ------------------------------------------------------------------------------------------
st.subheader("Use it")
meta = (out / "metadata.json").read_text() if (out / "metadata.json").is_file() else "{}"
shape = run.status.image_shape or [0, 0, 0]
h, w, c = shape
logits = "apply softmax" in meta
num_classes = run.status.num_classes or 0
gray_step = (
    "\n  .mul([0.299, 0.587, 0.114]).sum(2, true)                  // grayscale, as in training" if c == 1 else ""
)
js_tab, kotlin_tab, python_tab, meta_tab = st.tabs(
    ["JavaScript (TF.js)", "Android / Kotlin (LiteRT)", "Python (LiteRT)", "metadata.json"]
)
with js_tab:
    st.code(
        f"""<script src="tf.min.js"></script>
<script>
// Serve model/ (from tfjs_model.zip or the web demo) over HTTP next to this page.
const model = await tf.loadGraphModel("model/model.json");
const pixels = tf.browser.fromPixels(imageElement, 3)      // 0..255, HxWx3
  .resizeBilinear([{h}, {w}]).toFloat(){gray_step}
  .expandDims(0);                                           // [1, {h}, {w}, {c}], raw pixels: the model normalizes
const probs = {"tf.softmax(model.predict(pixels))" if logits else "model.predict(pixels)"};
const best = (await probs.argMax(1).data())[0];             // index into labels.txt
</script>""",
        language="html",
    )
with kotlin_tab:
    st.code(
        f"""// build.gradle: implementation("com.google.ai.edge.litert:litert:1.0.1")
val interpreter = Interpreter(FileUtil.loadMappedFile(context, "{TFLITE_FILES["tflite"]}"))
val input = ByteBuffer.allocateDirect(4 * {h} * {w} * {c}).order(ByteOrder.nativeOrder())
// Fill with raw pixel values 0..255 as floats, {"R, G, B" if c == 3 else "gray"} per pixel, row by row ({w}x{h}).
val output = Array(1) {{ FloatArray({num_classes}) }}
interpreter.run(input, output)
val best = output[0].indices.maxBy {{ output[0][it] }}      // line `best` of labels.txt""",
        language="kotlin",
    )
with python_tab:
    st.code(
        f"""import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="{TFLITE_FILES["tflite"]}")
interpreter.allocate_tensors()
image = Image.open("photo.jpg").convert("{"RGB" if c == 3 else "L"}").resize(({w}, {h}), Image.BILINEAR)
pixels = np.asarray(image, dtype=np.float32).reshape(1, {h}, {w}, {c})   # raw 0..255
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
interpreter.invoke()
scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
labels = open("labels.txt").read().splitlines()
print(labels[int(scores.argmax())])""",
        language="python",
    )
with meta_tab:
    st.code(meta, language="json")
