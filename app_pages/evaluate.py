"""Evaluate page: everything a reviewer needs to trust (or not) a run's model, on its own test split. The
headline numbers first, then one tab per question; only the open tab is computed (Streamlit's lazy tabs)."""

import numpy as np
import pandas as pd
import streamlit as st

from core.charts import epoch_figure
from core.errors import StudioError
from core.metrics import TOP_K
from core.pictures import labelled_grid
from core.runs import read_metrics
from ui.evaluate import (
    GALLERY_IMAGES,
    cached_evaluation,
    cached_grad_cam,
    cached_report,
    cached_test_data,
    confusion_matrix_block,
    model_stamp,
    other_model_block,
    try_it_block,
)
from ui.featuremap import feature_map_block
from ui.jobs import pick_run, show_damage

GRID_IMAGES = 18
CAM_IMAGES = 6
TABS = ["Confusion matrix", "Try it yourself", "Feature map", "Mistakes", "Per class", "Grad-CAM", "Learning curves"]

st.title("Evaluate")
run = pick_run("eval_run", "No trained run yet: train one on the Train page, then its evaluation appears here.")
show_damage(run, stop_if_unusable=True)
try:
    stamp = model_stamp(run)
    evaluation = cached_evaluation(str(run.path), stamp)
    images, labels, names = cached_test_data(str(run.path), stamp)
except StudioError as err:
    st.error(str(err))
    st.stop()

# --- Headline numbers -------------------------------------------------------------------------------
m1, m2, m3, m4 = st.columns(4)
m1.metric("Test accuracy", f"{evaluation.accuracy:.2%}")
m2.metric("Test loss", f"{evaluation.loss:.4f}")
top_k = evaluation.top_k_accuracy
m3.metric(f"Top-{TOP_K} accuracy", f"{top_k:.2%}" if top_k is not None else "—")
m4.metric("Test images", f"{len(labels):,}")
if run.state != "finished":
    st.caption(f"This run is {run.state}; its {run.model_path().name} is evaluated.")

# A fixed random sample of predictions: the Mistakes tab, Grad-CAM and the report show it.
sample = np.random.default_rng(0).choice(len(labels), size=min(GRID_IMAGES, len(labels)), replace=False)
correct = [bool(evaluation.predicted[i] == labels[i]) for i in sample]
sample_grid = labelled_grid(
    images[sample], [f"pred: {names[evaluation.predicted[i]]}\ntrue: {names[labels[i]]}" for i in sample], correct
)

matrix, try_it, fmap, mistakes, per_class, cam, curves = st.tabs(TABS, key="eval_tab", on_change="rerun")
if matrix.open:
    with matrix:
        confusion_matrix_block(evaluation, images)
if try_it.open:
    with try_it:
        try_it_block(str(run.path), stamp, names)
if fmap.open:
    with fmap:
        try:
            feature_map_block(str(run.path), stamp, evaluation, images)
        except StudioError as err:
            st.info(str(err))
if mistakes.open:
    with mistakes:
        wrong = evaluation.mistakes()
        if len(wrong):
            shown = wrong[:GALLERY_IMAGES]
            captions = [
                f"{names[evaluation.predicted[i]]} {evaluation.confidence[i]:.0%}\ntrue: {names[labels[i]]}"
                for i in shown
            ]
            st.image(labelled_grid(images[shown], captions, [False] * len(shown), columns=8, tile=96))
            st.caption(f"{len(wrong):,} of {len(labels):,} test images are misclassified; the most confident first.")
        else:
            st.success("No misclassified test images.")
        with st.expander("A random sample of predictions"):
            st.image(sample_grid, caption="Green: right. Red: wrong.")
if per_class.open:
    with per_class:
        averages = [{"class": "macro avg", **evaluation.macro}, {"class": "weighted avg", **evaluation.weighted}]
        table = pd.DataFrame([*evaluation.per_class, *averages])
        scores = {c: st.column_config.NumberColumn(format="%.3f") for c in ("precision", "recall", "f1")}
        st.dataframe(table, hide_index=True, width="stretch", key="per_class_table", column_config=scores)
        st.subheader("Most confused pairs")
        pairs = evaluation.confused_pairs()
        if pairs:
            st.dataframe(pd.DataFrame(pairs).round(3), hide_index=True, width="stretch", key="confused_pairs")
        else:
            st.success("No confusions: every test image is classified correctly.")
if cam.open:
    with cam:
        cam_pick = sample[:CAM_IMAGES]
        try:
            overlays = cached_grad_cam(str(run.path), stamp, tuple(int(i) for i in cam_pick))
            cam_captions = [f"pred: {names[evaluation.predicted[i]]}" for i in cam_pick]
            grid = labelled_grid(np.stack(overlays), cam_captions, correct[:CAM_IMAGES], columns=CAM_IMAGES)
            st.image(grid, caption="Red: the regions that raised the predicted class's score most.")
        except StudioError as err:
            st.info(str(err))
if curves.open:
    with curves:
        _, epochs = read_metrics(run.path)
        if epochs:
            l1, l2 = st.columns(2)
            l1.plotly_chart(epoch_figure(epochs, "accuracy"), key="eval_curve_accuracy")
            l2.plotly_chart(epoch_figure(epochs, "loss"), key="eval_curve_loss")
        else:
            st.caption("This run has no stored epoch metrics.")

# --- Another model and the report -------------------------------------------------------------------
with st.expander("Score another Keras model on this test split"):
    other_model_block(evaluation, images)
st.download_button(
    "Download the HTML report",
    cached_report(str(run.path), stamp, evaluation, sample_grid),
    file_name=f"{run.run_id}-report.html",
    mime="text/html",
    key="report_download",
    help="One standalone file: config, curves, confusion matrix, per-class table, sample predictions.",
)
