"""The Train page's "Continue or fine-tune" block for the opened run: train it further from its last epoch, or
start a new run from its weights on the Dataset page's data (a new classifier head when the classes differ)."""

from __future__ import annotations

import json

import streamlit as st

from core.access import Action
from core.config import StudioConfig
from core.errors import StudioError
from core.i18n import _, ngettext, number
from core.resume import HEAD_NOTE_WORDS, MAX_EPOCHS, fine_tune_config, run_history, source_model_path
from core.runs import CLASSES_FILE, FINAL_MODEL, RunInfo
from ui.access import can, current_user, refusal
from ui.data import current_dataset
from ui.state import config
from ui.uploads import uploads_for_job

DEFAULT_MORE_EPOCHS = 5


def continue_controls(run: RunInfo, manager) -> None:
    """Draw the block for ``run`` (nothing while it trains); a click queues the job and watches it."""
    if run.state.live:
        return
    if run.status.parent_run:
        st.caption(_("Fine-tuned from run {run}.").format(run=run.status.parent_run))
        for note in run.status.notes:
            if HEAD_NOTE_WORDS in note or _(HEAD_NOTE_WORDS) in note:
                st.info(note)
    with st.expander(_("Continue or fine-tune this run")):
        may_train = can(Action.TRAIN)
        if not may_train:
            st.caption(refusal(Action.TRAIN))
        _continue(run, manager, may_train)
        st.divider()
        _fine_tune(run, manager, may_train)


def _continue(run: RunInfo, manager, may_train: bool) -> None:
    done = run_history(run.path).epoch_count
    if not (run.path / FINAL_MODEL).is_file():
        st.caption(_("It ended before its first epoch: there is no checkpoint to continue from."))
        return
    left = MAX_EPOCHS - done
    if left < 1:
        st.caption(_("It has trained {count} epochs, the most a run can.").format(count=number(done)))
        return
    more = st.number_input(
        ngettext("More epochs (it has trained {count})", "More epochs (it has trained {count})", done).format(
            count=number(done)
        ),
        min_value=1,
        max_value=left,
        value=min(DEFAULT_MORE_EPOCHS, left),
        key=f"more_epochs_{run.run_id}",
    )
    st.caption(_("Same folder, settings and split; the optimizer state and the charts go on from its last epoch."))
    if st.button(_("Continue training"), key="continue_run", disabled=not may_train):
        try:
            source = StudioConfig.from_dict(run.config).data.source
            job = manager.resume(run.run_id, int(more), uploads_for_job(source), owner=current_user())
        except StudioError as err:
            st.error(str(err))
            return
        _watch(job.run_id)


def _fine_tune(run: RunInfo, manager, may_train: bool) -> None:
    cfg = config()
    st.markdown(_("**New run from its weights** on the Dataset page's data ({source})").format(source=cfg.data.source))
    try:
        tuned = fine_tune_config(run.path, cfg.data)
        dataset = current_dataset(tuned.data)
        source = source_model_path(run.path)
    except StudioError as err:
        st.caption(_("Not possible now: {reason}").format(reason=err))
        return
    said = _(
        "Its model and training settings, its weights ({file}) as the start, at its input size ({size} px, {colour})."
    )
    st.caption(said.format(file=source.name, size=tuned.data.image_size, colour=tuned.data.color_mode))
    classes = _classes(run)
    if classes is not None and classes != dataset.class_names:
        said = _(
            "This dataset has other classes ({count}) than the run ({before}): the classifier head starts anew, the "
            "other layers from its weights."
        )
        st.info(said.format(count=number(len(dataset.class_names)), before=number(len(classes))))
    if st.button(_("Fine-tune on this dataset"), key="fine_tune_run", disabled=not may_train):
        try:
            job = manager.submit(
                tuned,
                uploads_for_job(tuned.data.source),
                name=f"{run.name[:180]} fine-tuned",
                owner=current_user(),
                init_from=source,
            )
        except StudioError as err:
            st.error(str(err))
            return
        _watch(job.run_id)


def _classes(run: RunInfo) -> list[str] | None:
    try:
        return json.loads((run.path / CLASSES_FILE).read_text())
    except (OSError, ValueError):
        return None


def _watch(run_id: str) -> None:
    st.session_state["watch_run"] = st.session_state["selected_run"] = run_id
    st.session_state.pop("history_run", None)  # the run picker opens the new run on the next script run
    st.rerun()
