"""The Train page's live view of a job and the curves of a run, redrawn while it trains."""

from __future__ import annotations

import streamlit as st

from core.access import Action
from core.charts import batch_loss_figure, epoch_figure, lr_figure
from core.status import Phase, RunState
from ui.access import can, refusal
from ui.jobs import POLL_SECONDS, manager, progress_text

STATE_STYLE = {"finished": st.success, "stopped": st.warning, "failed": st.error, "interrupted": st.warning}


def draw_curves(batches: list[dict], epochs: list[dict], key: str) -> None:
    """Batch loss, epoch loss and accuracy (training vs validation) and the learning rate."""
    left, right = st.columns(2)
    with left:
        st.plotly_chart(batch_loss_figure(batches), key=f"{key}_batch_loss")
        st.plotly_chart(epoch_figure(epochs, "loss"), key=f"{key}_epoch_loss")
    with right:
        st.plotly_chart(epoch_figure(epochs, "accuracy"), key=f"{key}_epoch_accuracy")
        st.plotly_chart(lr_figure(batches, epochs), key=f"{key}_lr")


@st.fragment(run_every=POLL_SECONDS)
def live_view() -> None:
    """The watched (or active) job: progress, Stop, its result once done, and its live curves."""
    mgr = manager()
    run_id = st.session_state.get("watch_run")
    job = mgr.get(run_id) if run_id else mgr.active()
    if job is None:
        return
    batches, epochs, progress = job.store.snapshot()
    st.subheader(f"Run {job.run_id}")
    if job.state == RunState.QUEUED:
        active = mgr.active()
        st.info(f"Queued behind {active.run_id if active else 'another run'}.")
    elif job.state == RunState.RUNNING and progress.phase != Phase.TRAINING:
        st.progress(0.0, text=f"{progress.text()}…")
    elif job.state == RunState.RUNNING:
        st.progress(progress.fraction, text=progress_text(job))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Epoch", f"{progress.epoch}/{progress.epochs}")
        m2.metric("Images / s", f"{progress.images_per_second or 0:,.0f}")
        m3.metric("Elapsed", f"{progress.elapsed:.0f} s")
        m4.metric("ETA", f"{progress.eta or 0:.0f} s")
    if job.state.live:
        may_stop = can(Action.STOP, job.owner)
        stop_help = (
            "Ends at the next batch; the best weights so far are kept." if may_stop else refusal(Action.STOP, job.owner)
        )
        if st.button("Stop", key="stop_training", disabled=not may_stop, help=stop_help):
            mgr.stop(job.run_id)
            st.toast("Stopping at the next batch…")
    else:
        show_result(job.result)
        if st.session_state.get("refreshed_after") != job.run_id:
            st.session_state["refreshed_after"] = job.run_id
            st.rerun(scope="app")  # the history below now has the finished run, with its final state
    draw_curves(batches, epochs, key="live")


def show_result(result) -> None:
    if result is None:
        return
    summary = f"Run {result.status} after {result.epochs_completed} epochs in {result.seconds:.0f} s"
    if result.best_val_accuracy is not None:
        summary += f" · best validation accuracy {result.best_val_accuracy:.3f}"
    if result.test_accuracy is not None:
        summary += f" · test accuracy {result.test_accuracy:.3f}"
    STATE_STYLE.get(result.status, st.info)(summary + (f". {result.error}" if result.error else "."))
