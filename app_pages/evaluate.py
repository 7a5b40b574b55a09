"""Evaluate page: everything a reviewer needs to trust (or not) a run's model, on its own test split. The
headline numbers first, then one tab per question; only the open tab is computed (Streamlit's lazy tabs)."""

import numpy as np
import streamlit as st

from core.charts import epoch_figure
from core.errors import StudioError
from core.i18n import N_, _, language, number, percent
from core.metrics import TOP_K
from core.pictures import labelled_grid
from core.report import STATE_WORDS
from core.runs import read_metrics
from ui.evaluate import (
    cached_evaluation,
    cached_grad_cam,
    cached_report,
    cached_test_data,
    confusion_matrix_block,
    mistakes_block,
    model_stamp,
    other_model_block,
    per_class_block,
    try_it_block,
)
from ui.featuremap import feature_map_block
from ui.jobs import pick_run, show_damage

GRID_IMAGES = 18
CAM_IMAGES = 6
TABS = [N_("Confusion matrix"), N_("Try it yourself"), N_("Feature map"), N_("Mistakes"), N_("Per class")]
TABS += [N_("Grad-CAM"), N_("Learning curves")]

st.title(_("Evaluate"))
run = pick_run("eval_run", _("No trained run yet: train one on the Train page, then its evaluation appears here."))
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
m1.metric(_("Test accuracy"), percent(evaluation.accuracy, 2))
m2.metric(_("Test loss"), number(evaluation.loss, 4))
top_k = evaluation.top_k_accuracy
m3.metric(_("Top-{k} accuracy").format(k=TOP_K), percent(top_k, 2) if top_k is not None else "—")
m4.metric(_("Test images"), number(len(labels)))
if run.state != "finished":
    state = _(STATE_WORDS.get(str(run.state), str(run.state)))
    st.caption(_("This run is {state}; its {file} is evaluated.").format(state=state, file=run.model_path().name))

# A fixed random sample of predictions: the Mistakes tab, Grad-CAM and the report show it.
sample = np.random.default_rng(0).choice(len(labels), size=min(GRID_IMAGES, len(labels)), replace=False)
correct = [bool(evaluation.predicted[i] == labels[i]) for i in sample]
sample_grid = labelled_grid(
    images[sample],
    [
        _("pred: {predicted}\ntrue: {true}").format(predicted=names[evaluation.predicted[i]], true=names[labels[i]])
        for i in sample
    ],
    correct,
)

matrix, try_it, fmap, mistakes, per_class, cam, curves = st.tabs(
    [_(t) for t in TABS], key="eval_tab", on_change="rerun"
)
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
        mistakes_block(evaluation, images, sample_grid)
if per_class.open:
    with per_class:
        per_class_block(evaluation)
if cam.open:
    with cam:
        cam_pick = sample[:CAM_IMAGES]
        try:
            overlays = cached_grad_cam(str(run.path), stamp, tuple(int(i) for i in cam_pick))
            cam_captions = [_("pred: {predicted}").format(predicted=names[evaluation.predicted[i]]) for i in cam_pick]
            grid = labelled_grid(np.stack(overlays), cam_captions, correct[:CAM_IMAGES], columns=CAM_IMAGES)
            st.image(grid, caption=_("Red: the regions that raised the predicted class's score most."))
        except StudioError as err:
            st.info(str(err))
if curves.open:
    with curves:
        _metrics, epochs = read_metrics(run.path)
        if epochs:
            l1, l2 = st.columns(2)
            l1.plotly_chart(epoch_figure(epochs, "accuracy"), key="eval_curve_accuracy")
            l2.plotly_chart(epoch_figure(epochs, "loss"), key="eval_curve_loss")
        else:
            st.caption(_("This run has no stored epoch metrics."))

# --- Another model and the report -------------------------------------------------------------------
with st.expander(_("Score another Keras model on this test split")):
    other_model_block(evaluation, images)
st.download_button(
    _("Download the HTML report"),
    cached_report(str(run.path), stamp, language(), evaluation, sample_grid),
    file_name=f"{run.run_id}-report.html",
    mime="text/html",
    key="report_download",
    help=_("One standalone file: config, curves, confusion matrix, per-class table, sample predictions."),
)
