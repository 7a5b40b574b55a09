"""Train page: start a background training job, watch it live, stop it, and browse the run history."""

import pandas as pd
import streamlit as st

from core.access import Action
from core.charts import metric_name, overlay_figure
from core.errors import StudioError
from core.i18n import _
from core.runs import HISTORY_COLUMNS, default_run_name, delete_run, history_rows, read_metrics, rename_run
from ui.access import can, current_user, refusal
from ui.continue_run import continue_controls
from ui.jobs import fresh_runs, manager, run_selectbox, show_damage
from ui.state import config
from ui.train import STATE_STYLE, draw_curves, live_view, settings_summary
from ui.uploads import uploads_for_job

COMPARED_METRICS = ["val_accuracy", "val_loss", "accuracy", "loss"]

cfg = config()
mgr = manager()
if can(Action.TRAIN):
    mgr.prepare()  # a trainer imports TensorFlow now, so that Start starts at once
st.title(_("Train"))

# --- Start ------------------------------------------------------------------------------------------
st.markdown(settings_summary(cfg))
st.caption(
    _(
        "Change these on the Dataset and Model pages. Training runs on the server in the background: you can "
        "click around, switch pages or reload the browser while it trains."
    )
)
name_col, button_col = st.columns([3, 1])
with name_col:
    run_name = st.text_input(
        _("Run name (optional)"),
        key="run_name_input",
        placeholder=default_run_name(cfg),
    )
with button_col:
    st.write("")
    may_train = can(Action.TRAIN)
    start = st.button(
        _("Start training"), type="primary", key="start_training", width="stretch", disabled=not may_train
    )
if not may_train:
    st.caption(refusal(Action.TRAIN))
if start:
    try:
        busy = mgr.busy_with()
        job = mgr.submit(cfg, uploads_for_job(cfg.data.source), name=run_name.strip() or None, owner=current_user())
        st.session_state["watch_run"] = st.session_state["selected_run"] = job.run_id
        if busy is not None:
            note = _("{holder} is training in this workspace: yours is queued and starts when it ends.")
            st.session_state["start_note"] = note.format(holder=busy)
        st.rerun()  # the whole page again: the sidebar, drawn before this button, polls from now on
    except StudioError as err:
        st.error(str(err))
if note := st.session_state.pop("start_note", None):
    st.info(note)

shown = live_view()

# --- History ----------------------------------------------------------------------------------------
st.divider()
st.subheader(_("Run history"))
runs = fresh_runs()
if not runs:
    st.caption(_("No runs yet in {workspace}.").format(workspace=mgr.workspace.resolve()))
    st.stop()
history = pd.DataFrame(history_rows(runs)).rename(columns=lambda c: _(HISTORY_COLUMNS.get(c, c)))
st.dataframe(history, hide_index=True, width="stretch", key="history_table")
by_id = {r.run_id: r for r in runs}
compare = st.multiselect(
    _("Compare runs"), list(by_id), default=list(by_id)[:2], key="compare_runs", format_func=lambda rid: by_id[rid].name
)
metric = st.radio(_("Curve"), COMPARED_METRICS, horizontal=True, key="compare_metric", format_func=metric_name)
if compare:
    curves = {f"{by_id[rid].name} ({rid[-4:]})": read_metrics(by_id[rid].path)[1] for rid in compare}
    st.plotly_chart(overlay_figure(curves, metric), key="compare_chart")

st.markdown(_("**Open a run**"))
run = run_selectbox(runs, key="history_run")
chosen = run.run_id
show_damage(run)
if run.state in STATE_STYLE and run.status.error:
    STATE_STYLE[run.state](_("{state}: {error}").format(state=run.state.label, error=run.status.error))
if run.state == "interrupted" and run.has_model():
    st.caption(_("Its last good checkpoint is kept and can be evaluated and exported."))
owner = run.status.owner
if run.state.live and mgr.get(chosen) is None and chosen != shown:
    said = _("This run is {state} in another process (pid {pid} on {host}).")
    st.info(said.format(state=run.state.label, pid=run.status.pid, host=run.status.host))
    if st.button(
        _("Stop this run"),
        key="stop_other_run",
        disabled=not can(Action.STOP, owner),
        help=_("It ends at its next step."),
    ):
        mgr.stop(chosen)
        st.toast(_("Asked it to stop at its next step…"))
if chosen != shown:  # the live view above draws that one's
    draw_curves(*read_metrics(run.path), key="saved", run_id=chosen)
continue_controls(run, mgr)

c1, c2, c3 = st.columns([2, 1, 1])
with c1:
    new_name = st.text_input(_("New name"), value=run.name, key=f"rename_{chosen}")
with c2:
    st.write("")
    may_rename = can(Action.RENAME, owner)
    if st.button(_("Rename"), key="rename_run", width="stretch", disabled=not may_rename):
        try:
            rename_run(run.path, new_name, mgr.live_ids())
            st.rerun()
        except StudioError as err:
            st.error(str(err))
with c3:
    st.write("")
    may_delete = can(Action.DELETE, owner)
    if st.button(_("Delete run"), key="delete_run", width="stretch", disabled=run.state.live or not may_delete):
        st.session_state["confirm_delete"] = chosen
if not (may_rename and may_delete):
    st.caption(refusal(Action.DELETE, owner))
if st.session_state.get("confirm_delete") == chosen:
    st.warning(_("Delete {name} ({run}) and all its files?").format(name=run.name, run=chosen))
    if st.button(_("Yes, delete it"), key="confirm_delete_run", disabled=not may_delete):
        st.session_state.pop("confirm_delete", None)
        try:
            delete_run(run.path, mgr.workspace, mgr.live_ids())
            st.session_state.pop("selected_run", None)
            st.rerun()
        except StudioError as err:
            st.error(str(err))
