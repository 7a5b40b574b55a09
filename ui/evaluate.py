"""The Evaluate page's cached core calls and its interactive blocks (confusion cells, try-it, another model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.charts import clickable_confusion_figure, prediction_figure
from core.errors import StudioError
from core.evaluation import load_test_data, score_uploaded_model
from core.i18n import _, language, ngettext, number, percent
from core.metrics import Evaluation, evaluate_predictions
from core.pictures import labelled_grid
from core.report import html_report
from core.runs import find_run
from ui.jobs import manager
from ui.workers import served

GALLERY_IMAGES = 24  # test images shown at most in a gallery (a confusion cell, the mistakes)
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]


def model_stamp(run) -> str:
    """Changes whenever the run's model file does: the caches below key on it."""
    path = run.model_path()
    return f"{path}:{path.stat().st_mtime_ns}"


# The spinners' words are looked up where the cached call is made (a decorator's text is fixed at import,
# before any visitor's language is known); a StudioError a call raises is not cached, so its message is made
# in the language of the visitor who sees it.


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_evaluation(run_dir: str, stamp: str, lang: str) -> Evaluation:
    run = find_run(manager().workspace, run_dir)  # only runs of this workspace
    return served("evaluation", str(run.path), request=_("Scoring run '{name}'").format(name=run.name))


def cached_evaluation(run_dir: str, stamp: str) -> Evaluation:
    with st.spinner(_("Scoring the test split…")):
        return _cached_evaluation(run_dir, stamp, language())


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_grad_cam(run_dir: str, stamp: str, indices: tuple[int, ...], lang: str) -> list[np.ndarray]:
    run = find_run(manager().workspace, run_dir)
    return served("grad_cam_overlays", str(run.path), list(indices), request=_("Grad-CAM"))


def cached_grad_cam(run_dir: str, stamp: str, indices: tuple[int, ...]) -> list[np.ndarray]:
    with st.spinner(_("Computing Grad-CAM…")):
        return _cached_grad_cam(run_dir, stamp, indices, language())


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_picture(run_dir: str, stamp: str, data: bytes, lang: str) -> tuple[np.ndarray, np.ndarray]:
    run = find_run(manager().workspace, run_dir)
    return served("classify_picture", str(run.path), data, request=_("Classifying the picture"))


def cached_picture(run_dir: str, stamp: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    with st.spinner(_("Classifying…")):
        return _cached_picture(run_dir, stamp, data, language())


@st.cache_data(max_entries=4, show_spinner=False)
def _cached_report(run_dir: str, stamp: str, lang: str, _evaluation, _grid) -> str:
    return html_report(find_run(manager().workspace, run_dir), _evaluation, _grid)


def cached_report(run_dir: str, stamp: str, lang: str, evaluation, grid) -> str:
    """The run's HTML report in ``lang`` (the visitor's language: its headings, tables and figures)."""
    with st.spinner(_("Writing the report…")):
        return _cached_report(run_dir, stamp, lang, evaluation, grid)


@st.cache_data(max_entries=4, show_spinner=False)
def cached_test_data(run_dir: str, stamp: str):
    return load_test_data(find_run(manager().workspace, run_dir))


@st.cache_data(max_entries=4, show_spinner=False)
def _cached_upload_scores(file_id: str, _data: bytes, name: str, images: np.ndarray, num_classes: int):
    return score_uploaded_model(_data, name, images, num_classes)


def cached_upload_scores(file_id: str, data: bytes, name: str, images: np.ndarray, num_classes: int):
    """The uploaded model's probabilities on a run's test images, keyed on the upload and the images, so a
    rerun does not start another process. A StudioError is not cached (st.cache_data keeps only results)."""
    with st.spinner(_("Scoring the uploaded model in a separate process…")):
        return _cached_upload_scores(file_id, data, name, images, num_classes)


def _clicked_cell(names: list[str]) -> None:
    """A new click on the matrix (its selection, kept in the chart's state) chooses the cell; a click already
    applied does not undo a later choice in the cell selectboxes."""
    event = st.session_state.get("confusion_chart") or {}
    points = (event.get("selection") or {}).get("points") or []
    click = (str(points[0].get("y")), str(points[0].get("x"))) if points else None
    if click and click != st.session_state.get("cell_click") and click[0] in names and click[1] in names:
        st.session_state["cell_true"], st.session_state["cell_pred"] = click
    st.session_state["cell_click"] = click


def confusion_matrix_block(evaluation: Evaluation, images: np.ndarray) -> None:
    """The clickable matrix, the chosen cell outlined on it, and that cell's test images beside it."""
    names, labels = evaluation.class_names, evaluation.labels
    _clicked_cell(names)
    if "cell_true" not in st.session_state or st.session_state["cell_true"] not in names:
        pairs = evaluation.confused_pairs()
        st.session_state["cell_true"] = pairs[0]["true"] if pairs else names[0]
        st.session_state["cell_pred"] = pairs[0]["predicted"] if pairs else names[0]
    if st.session_state.get("cell_pred") not in names:
        st.session_state["cell_pred"] = names[0]
    chosen = (names.index(st.session_state["cell_true"]), names.index(st.session_state["cell_pred"]))
    left, right = st.columns([3, 2])
    with left:
        normalized = st.toggle(_("Row-normalized rates"), key="cm_normalized")
        figure = clickable_confusion_figure(evaluation, normalized, selected=chosen)
        st.plotly_chart(figure, key="confusion_chart", on_select="rerun", selection_mode="points")
    with right:
        c1, c2 = st.columns(2)
        cell_true = c1.selectbox(_("Cell: true class"), names, key="cell_true")
        cell_pred = c2.selectbox(_("Cell: predicted class"), names, key="cell_pred")
        in_cell = np.flatnonzero((labels == names.index(cell_true)) & (evaluation.predicted == names.index(cell_pred)))
        st.caption(
            ngettext(
                "{count} test image is of class **{true}** and predicted **{predicted}** "
                "(click a cell of the matrix to choose it; it is outlined in orange).",
                "{count} test images are of class **{true}** and predicted **{predicted}** "
                "(click a cell of the matrix to choose it; it is outlined in orange).",
                len(in_cell),
            ).format(count=number(len(in_cell)), true=cell_true, predicted=cell_pred)
        )
        if len(in_cell):
            shown = in_cell[:GALLERY_IMAGES]
            captions = [_("{confidence} sure").format(confidence=percent(evaluation.confidence[i], 0)) for i in shown]
            grid = labelled_grid(images[shown], captions, [cell_true == cell_pred] * len(shown), columns=4, tile=80)
            if len(in_cell) > len(shown):
                caption = _("Confidence in {predicted}; the first {shown}").format(
                    predicted=cell_pred, shown=number(len(shown))
                )
            else:
                caption = _("Confidence in {predicted}").format(predicted=cell_pred)
            st.image(grid, caption=caption)


def try_it_block(run_dir: str, stamp: str, names: list[str]) -> None:
    """Classify an uploaded image or a camera picture, preprocessed as the training images were."""
    t1, t2 = st.columns(2)
    upload = t1.file_uploader(_("Upload an image"), type=IMAGE_TYPES, key="try_upload")
    with t2:
        # The browser asks for camera access as soon as camera_input is drawn: only when asked for.
        use_camera = st.toggle(_("Use the camera"), key="try_use_camera")
        photo = st.camera_input(_("Take a picture"), key="try_camera") if use_camera else None
    picture = photo or upload
    if picture is None:
        return
    try:
        probs, pixels = cached_picture(run_dir, stamp, picture.getvalue())
    except StudioError as err:
        st.error(str(err))
        return
    p1, p2 = st.columns([1, 3])
    p1.image(pixels if pixels.shape[-1] == 3 else pixels[..., 0], caption=_("as the model sees it"), width=160)
    p2.plotly_chart(prediction_figure(probs, names), key="try_chart")
    st.caption(
        _(
            "Resized with Pillow's bilinear filter, as in training: the exported web demo and the Export page's "
            "snippets resize the same way, so they give this picture the same probabilities."
        )
    )


def other_model_block(evaluation: Evaluation, images: np.ndarray) -> None:
    """Score an uploaded .keras model (safe mode only) on this run's test split, beside the run's own score."""
    st.caption(
        _(
            "Upload a .keras file (for example one trained elsewhere). It is loaded with Keras safe mode "
            "only, in a separate process with its own memory and time limit, from a temporary file deleted "
            "right after loading; only its scores come back to this page."
        )
    )
    other = st.file_uploader(_("Keras model"), type=["keras"], key="other_model_upload")
    if other is None:
        return
    try:
        names = evaluation.class_names
        scores = cached_upload_scores(other.file_id, other.getvalue(), other.name, images, len(names))
        other_eval = evaluate_predictions(evaluation.labels, scores, names)
    except StudioError as err:
        st.error(str(err))
        return
    o1, o2 = st.columns(2)
    points = 100 * (other_eval.accuracy - evaluation.accuracy)
    o1.metric(
        _("{name}: test accuracy").format(name=other.name),
        percent(other_eval.accuracy, 2),
        delta=_("{points} points vs this run").format(points=("+" if points >= 0 else "") + number(points, 2)),
    )
    o2.metric(_("{name}: test loss").format(name=other.name), number(other_eval.loss, 4))


def mistakes_block(evaluation: Evaluation, images: np.ndarray, sample_grid: np.ndarray) -> None:
    """The misclassified test images, the most confident first, and a random sample of predictions."""
    names, labels = evaluation.class_names, evaluation.labels
    wrong = evaluation.mistakes()
    if len(wrong):
        shown = wrong[:GALLERY_IMAGES]
        captions = [
            _("{predicted} {confidence}\ntrue: {true}").format(
                predicted=names[evaluation.predicted[i]],
                confidence=percent(evaluation.confidence[i], 0),
                true=names[labels[i]],
            )
            for i in shown
        ]
        st.image(labelled_grid(images[shown], captions, [False] * len(shown), columns=8, tile=96))
        st.caption(
            ngettext(
                "{wrong} of {count} test image is misclassified; the most confident first.",
                "{wrong} of {count} test images are misclassified; the most confident first.",
                len(labels),
            ).format(wrong=number(len(wrong)), count=number(len(labels)))
        )
    else:
        st.success(_("No misclassified test images."))
    with st.expander(_("A random sample of predictions")):
        st.image(sample_grid, caption=_("Green: right. Red: wrong."))


def per_class_block(evaluation: Evaluation) -> None:
    """Precision, recall and F1 per class with their averages, and the most confused pairs."""
    averages = [{"class": _("macro avg"), **evaluation.macro}, {"class": _("weighted avg"), **evaluation.weighted}]
    table = pd.DataFrame([*evaluation.per_class, *averages])
    scores = {
        "class": st.column_config.TextColumn(_("class")),
        "precision": st.column_config.NumberColumn(_("precision"), format="%.3f"),
        "recall": st.column_config.NumberColumn(_("recall"), format="%.3f"),
        "f1": st.column_config.NumberColumn(_("F1"), format="%.3f"),
        "support": st.column_config.NumberColumn(_("support")),
    }
    st.dataframe(table, hide_index=True, width="stretch", key="per_class_table", column_config=scores)
    st.subheader(_("Most confused pairs"))
    pairs = evaluation.confused_pairs()
    if not pairs:
        st.success(_("No confusions: every test image is classified correctly."))
        return
    columns = {
        "true": st.column_config.TextColumn(_("true class")),
        "predicted": st.column_config.TextColumn(_("predicted class")),
        "count": st.column_config.NumberColumn(_("count")),
        "share of true class": st.column_config.NumberColumn(_("share of true class"), format="%.3f"),
    }
    st.dataframe(
        pd.DataFrame(pairs).round(3), hide_index=True, width="stretch", key="confused_pairs", column_config=columns
    )
