"""Evaluate page: everything a reviewer needs to trust (or not) a run's model, on its own test split."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core.charts import epoch_figure
from core.errors import StudioError
from core.evaluation import (
    TOP_K,
    confusion_figure,
    evaluate_predictions,
    evaluate_run,
    grad_cam,
    html_report,
    labelled_grid,
    load_run_model,
    load_test_data,
    load_uploaded_model,
    overlay_heatmap,
    predict_image,
    probabilities,
    run_config,
)
from core.runs import find_run, read_metrics
from ui.jobs import manager, pick_run

GRID_IMAGES = 18
GALLERY_IMAGES = 24
CAM_IMAGES = 6

st.title("Evaluate")
mgr = manager()


def model_stamp(run) -> str:
    path = run.model_path()
    return f"{path}:{path.stat().st_mtime_ns}"


@st.cache_data(max_entries=8, show_spinner="Scoring the test split…")
def cached_evaluation(run_dir: str, stamp: str):
    return evaluate_run(find_run(mgr.workspace, run_dir))


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def cached_model(run_dir: str, stamp: str):
    return load_run_model(find_run(mgr.workspace, run_dir))


@st.cache_data(max_entries=4, show_spinner="Writing the report…")
def cached_report(run_dir: str, stamp: str, _evaluation, _grid) -> str:
    return html_report(find_run(mgr.workspace, run_dir), _evaluation, _grid)


@st.cache_data(max_entries=4, show_spinner=False)
def cached_test_data(run_dir: str, stamp: str):
    return load_test_data(find_run(mgr.workspace, run_dir))


run = pick_run("eval_run", "No trained run yet: train one on the Train page, then its evaluation appears here.")
try:
    stamp = model_stamp(run)
    evaluation = cached_evaluation(str(run.path), stamp)
    images, labels, names = cached_test_data(str(run.path), stamp)
    model = cached_model(str(run.path), stamp)
    logits = run_config(run).model.output == "logits"
except StudioError as err:
    st.error(str(err))
    st.stop()

# --- Headline numbers -------------------------------------------------------------------------------
m1, m2, m3, m4 = st.columns(4)
m1.metric("Test accuracy", f"{evaluation.accuracy:.2%}")
m2.metric("Test loss", f"{evaluation.loss:.4f}")
m3.metric(f"Top-{TOP_K} accuracy", f"{evaluation.top_k_accuracy:.2%}" if evaluation.top_k_accuracy is not None else "—")
m4.metric("Test images", f"{len(labels):,}")
if run.state != "finished":
    st.caption(f"This run is {run.state}; its {run.model_path().name} is evaluated.")

# --- Confusion matrix -------------------------------------------------------------------------------
st.subheader("Confusion matrix")
normalized = st.toggle("Row-normalized rates", key="cm_normalized")
figure = confusion_figure(evaluation, normalized)
# Invisible square markers on the cell centres make every cell clickable (heat maps have no point
# selection). They carry the hover text; hover must stay on for them, as "skip" also drops click events.
grid_y, grid_x = np.meshgrid(range(len(names)), range(len(names)), indexing="ij")
counts = evaluation.confusion.ravel()
figure.data[0].hoverinfo = "skip"
figure.add_trace(
    go.Scatter(
        x=[names[j] for j in grid_x.ravel()],
        y=[names[i] for i in grid_y.ravel()],
        mode="markers",
        marker=dict(size=max(8, min(40, 400 // len(names))), symbol="square", opacity=0),
        customdata=counts,
        hovertemplate="true: %{y}<br>predicted: %{x}<br>count: %{customdata}<extra></extra>",
        showlegend=False,
    )
)
event = st.plotly_chart(figure, key="confusion_chart", on_select="rerun", selection_mode="points")
points = (event or {}).get("selection", {}).get("points", []) if event else []
if points:
    st.session_state["cell_true"], st.session_state["cell_pred"] = points[0]["y"], points[0]["x"]
pairs = evaluation.confused_pairs()
if "cell_true" not in st.session_state:
    st.session_state["cell_true"] = pairs[0]["true"] if pairs else names[0]
    st.session_state["cell_pred"] = pairs[0]["predicted"] if pairs else names[0]
c1, c2 = st.columns(2)
with c1:
    cell_true = st.selectbox("Cell: true class", names, key="cell_true")
with c2:
    cell_pred = st.selectbox("Cell: predicted class", names, key="cell_pred")
in_cell = np.flatnonzero((labels == names.index(cell_true)) & (evaluation.predicted == names.index(cell_pred)))
st.caption(
    f"{len(in_cell)} test images are of class **{cell_true}** and predicted **{cell_pred}** "
    "(click a cell above to choose it)."
)
if len(in_cell):
    shown = in_cell[:GALLERY_IMAGES]
    st.image(
        labelled_grid(
            images[shown],
            [f"pred: {cell_pred} ({evaluation.confidence[i]:.0%})" for i in shown],
            [cell_true == cell_pred] * len(shown),
            columns=8,
            tile=80,
        )
    )

# --- Per-class metrics and confusions ---------------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    st.subheader("Per-class metrics")
    table = pd.DataFrame(evaluation.per_class)
    averages = pd.DataFrame(
        [{"class": "macro avg", **evaluation.macro}, {"class": "weighted avg", **evaluation.weighted}]
    )
    st.dataframe(
        pd.concat([table, averages], ignore_index=True).round(3),
        hide_index=True,
        width="stretch",
        key="per_class_table",
    )
with right:
    st.subheader("Most confused pairs")
    if pairs:
        st.dataframe(pd.DataFrame(pairs).round(3), hide_index=True, width="stretch", key="confused_pairs")
    else:
        st.success("No confusions: every test image is classified correctly.")

# --- Mistakes and the prediction grid ---------------------------------------------------------------
st.subheader("Misclassified images, most confident first")
wrong = evaluation.mistakes()
if len(wrong):
    shown = wrong[:GALLERY_IMAGES]
    captions = [
        f"pred: {names[evaluation.predicted[i]]} ({evaluation.confidence[i]:.0%})\ntrue: {names[labels[i]]}"
        for i in shown
    ]
    st.image(labelled_grid(images[shown], captions, [False] * len(shown), columns=8, tile=96))
    st.caption(f"{len(wrong)} of {len(labels)} test images are misclassified.")
else:
    st.success("No misclassified test images.")

st.subheader("Predictions on test images")
sample = np.random.default_rng(0).choice(len(labels), size=min(GRID_IMAGES, len(labels)), replace=False)
captions = [f"pred: {names[evaluation.predicted[i]]}\ntrue: {names[labels[i]]}" for i in sample]
correct = [bool(evaluation.predicted[i] == labels[i]) for i in sample]
prediction_grid = labelled_grid(images[sample], captions, correct)
st.image(prediction_grid, caption="Green: right. Red: wrong.")

# --- Grad-CAM ---------------------------------------------------------------------------------------
st.subheader("Where the model looks (Grad-CAM)")
cam_pick = sample[:CAM_IMAGES]
try:
    cams = grad_cam(model, images[cam_pick])
    overlays = [overlay_heatmap(images[i], cam) for i, cam in zip(cam_pick, cams, strict=True)]
    st.image(
        labelled_grid(
            np.stack(overlays),
            [f"pred: {names[evaluation.predicted[i]]}" for i in cam_pick],
            [bool(evaluation.predicted[i] == labels[i]) for i in cam_pick],
            columns=CAM_IMAGES,
        ),
        caption="Red: the regions that raised the predicted class's score most.",
    )
except StudioError as err:
    st.info(str(err))

# --- Try it yourself --------------------------------------------------------------------------------
st.subheader("Try it yourself")
t1, t2 = st.columns(2)
with t1:
    upload = st.file_uploader("Upload an image", type=["png", "jpg", "jpeg", "bmp", "gif", "webp"], key="try_upload")
with t2:
    # The browser asks for camera access as soon as camera_input is drawn: only when asked for.
    photo = (
        st.camera_input("Take a picture", key="try_camera")
        if st.toggle("Use the camera", key="try_use_camera")
        else None
    )
picture = photo or upload
if picture is not None:
    try:
        probs, pixels = predict_image(model, picture.getvalue(), images.shape[1:], logits)
        top = np.argsort(-probs)[: min(5, len(names))]
        p1, p2 = st.columns([1, 3])
        p1.image(pixels if pixels.shape[-1] == 3 else pixels[..., 0], caption="as the model sees it", width=160)
        fig = px.bar(
            x=probs[top][::-1],
            y=[names[i] for i in top][::-1],
            orientation="h",
            labels={"x": "probability", "y": "class"},
            range_x=[0, 1],
            title=f"Prediction: {names[top[0]]} ({probs[top[0]]:.1%})",
        )
        fig.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10))
        p2.plotly_chart(fig, key="try_chart")
    except StudioError as err:
        st.error(str(err))

# --- Another model on the same test split -------------------------------------------------------------
with st.expander("Score another Keras model on this test split"):
    st.caption(
        "Upload a .keras file (for example one trained elsewhere). It is loaded with Keras safe mode "
        "only, from a temporary file deleted right after loading, and stays in your session."
    )
    other = st.file_uploader("Keras model", type=["keras"], key="other_model_upload")
    if other is not None:
        try:
            other_model = load_uploaded_model(other.getvalue(), other.name, images.shape[1:], len(names))
            logits_out = other_model.layers[-1].get_config().get("activation") != "softmax"
            other_eval = evaluate_predictions(labels, probabilities(other_model, images, logits_out), names)
            o1, o2 = st.columns(2)
            o1.metric(
                f"{other.name}: test accuracy",
                f"{other_eval.accuracy:.2%}",
                delta=f"{100 * (other_eval.accuracy - evaluation.accuracy):+.2f} points vs this run",
            )
            o2.metric(f"{other.name}: test loss", f"{other_eval.loss:.4f}")
        except StudioError as err:
            st.error(str(err))

# --- Learning curves and the report -----------------------------------------------------------------
st.subheader("Learning curves")
_, epochs = read_metrics(run.path)
if epochs:
    l1, l2 = st.columns(2)
    l1.plotly_chart(epoch_figure(epochs, "accuracy"), key="eval_curve_accuracy")
    l2.plotly_chart(epoch_figure(epochs, "loss"), key="eval_curve_loss")
else:
    st.caption("This run has no stored epoch metrics.")

st.download_button(
    "Download the HTML report",
    cached_report(str(run.path), stamp, evaluation, prediction_grid),
    file_name=f"{run.run_id}-report.html",
    mime="text/html",
    key="report_download",
    help="One standalone file: config, curves, confusion matrix, per-class table, sample predictions.",
)
