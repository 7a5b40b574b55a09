"""The Live page's camera component and the block that feeds it a run's TF.js model (exported on first use)."""

from __future__ import annotations

import streamlit as st
import streamlit.components.v1 as components

from core.components import LIVE_FORMAT, LiveModel, component_folder, live_model, live_sources
from core.errors import StudioError
from core.export import model_stamp
from core.formats import camera_words
from core.i18n import _, language, ngettext, number
from core.runs import find_run
from ui.jobs import manager, show_damage
from ui.workers import Progress, served

# Streamlit serves this folder's files to the component's frame (the page, camera.js, preprocess.js, tf.min.js).
_camera = components.declare_component("live_camera", path=str(component_folder("live", live_sources())))


def run_model(run) -> LiveModel | None:
    """The run's TF.js model, exported first in a warm worker when the run has none (kept in its folder)."""
    model = live_model(run)
    if model is not None:
        return model
    with st.status(_("Making this run's TF.js model (once: it is kept with the run)…"), expanded=True) as status:
        try:
            request = _("Exporting run '{name}' for the Live page").format(name=run.name)
            served("export", str(run.path), [LIVE_FORMAT], True, Progress(), request=request, on_progress=st.write)
        except StudioError as err:
            status.update(label=_("The TF.js model could not be made"), state="error")
            st.error(str(err))
            return None
        model = live_model(run)
        status.update(label=_("TF.js model ready"), state="complete" if model else "error", expanded=model is None)
    if model is None:
        st.error(
            _("Exporting run '{name}' to TF.js failed: the Export page's comparison table says why.").format(
                name=run.name
            )
        )
    return model


def live_words() -> dict[str, str]:
    """The camera component's words in the session's language: camera.js's, with the Live page's drop text."""
    return camera_words() | {
        "drop": _(
            "No camera? Drop a picture here, or click to choose one: it is classified in this browser, never uploaded."
        ),
        "loadHint": _("Export the run again on the Export page."),
    }


def live_view(run_id: str, autostart: bool = True) -> None:
    """The live camera classifier for run ``run_id`` of the workspace (a run picker or a ``?run=`` link names
    it): the camera starts as the model is loaded, unless ``autostart`` is off."""
    try:
        run = find_run(manager().workspace, run_id)
    except StudioError as err:
        st.error(str(err))
        return
    show_damage(run, stop_if_unusable=True)
    model = run_model(run)
    if model is None:
        return
    names = model.meta.get("class_names", [])
    classes = ngettext("{count} class", "{count} classes", len(names)).format(count=number(len(names)))
    st.caption(
        _(
            "**{name}** · {classes} · classified in this browser with TF.js, frame after frame: no picture or "
            "frame leaves your computer. Refused the camera? Drop or choose a picture below the bars."
        ).format(name=run.name, classes=classes)
    )
    _camera(
        meta=model.meta,
        artifacts=model.artifacts,
        weights=model.weights,
        autostart=autostart,
        words=live_words(),
        lang=language(),
        # A new frame for another run, model file or language (the frame reads its words once).
        key=f"live_camera_{run.run_id}_{model_stamp(run)}_{language()}",
        default=None,
    )
