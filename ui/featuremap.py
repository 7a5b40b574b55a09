"""The Evaluate page's feature map: a Streamlit component (assets/featuremap/) fed from the warm worker's
penultimate-layer projection; a clicked dot's image and prediction beside it."""

from __future__ import annotations

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from core.charts import prediction_figure
from core.components import component_folder, feature_map_sources
from core.featuremap import FeatureMap, thumbnails
from core.i18n import _, language, ngettext, number, percent
from core.metrics import Evaluation
from core.runs import find_run
from ui.jobs import manager
from ui.workers import served

_map = components.declare_component("feature_map", path=str(component_folder("featuremap", feature_map_sources())))
PICKED_SIZE = 160  # pixels: the clicked image beside the map


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_feature_map(run_dir: str, stamp: str, lang: str) -> FeatureMap:
    run = find_run(manager().workspace, run_dir)
    return served("feature_map", str(run.path), request=_("Feature map"))


def cached_feature_map(run_dir: str, stamp: str) -> FeatureMap:
    """The run's feature map (numbers only; the spinner and any error in the visitor's language)."""
    with st.spinner(_("Placing the test images by their features (PCA and t-SNE)…")):
        return _cached_feature_map(run_dir, stamp, language())


def map_words(fmap: FeatureMap) -> dict[str, str]:
    """Every word the component shows, in the visitor's language ({placeholders} it fills per dot)."""
    return {
        "lang": language(),
        "title": _("CNN Studio feature map"),
        "legend": _("true class"),
        "pca_x": _("PCA axis 1 ({share} of the variance)").format(share=percent(float(fmap.explained[0]), 0)),
        "pca_y": _("PCA axis 2 ({share})").format(share=percent(float(fmap.explained[1]), 0)),
        "tip_true": _("true: {true}"),
        "tip_predicted": _("predicted: {predicted} ({confidence})"),
    }


def _coordinates(points: np.ndarray) -> list[list[float]]:
    return [np.round(points[:, 0], 4).tolist(), np.round(points[:, 1], 4).tolist()]


def feature_map_block(run_dir: str, stamp: str, evaluation: Evaluation, images: np.ndarray) -> None:
    """The map of the run's test images and, once a dot is clicked, that image with its prediction."""
    fmap = cached_feature_map(run_dir, stamp)
    shown = fmap.indices
    thumbs = thumbnails(images[shown])
    names = evaluation.class_names
    wrong = int(np.sum(evaluation.predicted[shown] != evaluation.labels[shown]))
    note = ngettext(
        "{count} test image · {wrong} misclassified (✕) · hover a dot to see it, click to open it",
        "{count} test images · {wrong} misclassified (✕) · hover a dot to see it, click to open it",
        len(shown),
    ).format(count=number(len(shown)), wrong=number(wrong))
    left, right = st.columns([3, 1])
    with left:
        picked = _map(
            tsne=_coordinates(fmap.tsne),
            pca=_coordinates(fmap.pca),
            explained=[float(v) for v in fmap.explained],
            indices=shown.tolist(),
            labels=evaluation.labels[shown].tolist(),
            predicted=evaluation.predicted[shown].tolist(),
            confidence=np.round(evaluation.confidence[shown], 4).tolist(),
            class_names=names,
            thumbs=thumbs.tobytes(),
            thumb_shape=list(thumbs.shape[1:]),
            note=note,
            words=map_words(fmap),
            key=f"feature_map_{stamp}_{language()}",
            default=None,
        )
    st.caption(
        _(
            "Each dot is a test image, placed by the '{layer}' layer's output: the features the model's last "
            "layer classifies. t-SNE keeps images with similar features together; PCA shows the two directions in "
            "which they vary most. A class that forms its own cluster is one the model has learned to tell apart."
        ).format(layer=fmap.layer)
    )
    with right:
        if not picked or not isinstance(picked.get("index"), int) or not 0 <= picked["index"] < len(images):
            st.caption(_("Click a dot to see its image and the model's prediction here."))
            return
        i = picked["index"]
        image = images[i] if images.shape[-1] == 3 else images[i][..., 0]
        truth, guess = names[evaluation.labels[i]], names[evaluation.predicted[i]]
        caption = _("Test image {index}: true class {true}").format(index=number(i), true=truth)
        st.image(image, width=PICKED_SIZE, caption=caption)
        verdict = _("Predicted {predicted} ({confidence})").format(
            predicted=guess, confidence=percent(evaluation.confidence[i], 0)
        )
        (st.success if truth == guess else st.error)(verdict)
        st.plotly_chart(prediction_figure(evaluation.probabilities[i], names), key="feature_map_prediction")
