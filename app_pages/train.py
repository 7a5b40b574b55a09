"""Train page: start a background training job, watch it live, stop it, and browse the run history."""

import datetime

import pandas as pd
import streamlit as st

from core.charts import batch_loss_figure, epoch_figure, lr_figure, overlay_figure
from core.data import default_image_size
from core.errors import StudioError
from core.runs import delete_run, list_runs, read_metrics, rename_run
from core.status import Phase, RunState
from ui.jobs import POLL_SECONDS, manager, progress_text, sidebar_status, uploads_for_job
from ui.state import config

STATE_STYLE = {"finished": st.success, "stopped": st.warning, "failed": st.error, "interrupted": st.warning}

cfg = config()
mgr = manager()
sidebar_status()
st.title("Train")


def draw_curves(batches: list[dict], epochs: list[dict], key: str) -> None:
    left, right = st.columns(2)
    with left:
        st.plotly_chart(batch_loss_figure(batches), key=f"{key}_batch_loss")
        st.plotly_chart(epoch_figure(epochs, "loss"), key=f"{key}_epoch_loss")
    with right:
        st.plotly_chart(epoch_figure(epochs, "accuracy"), key=f"{key}_epoch_accuracy")
        st.plotly_chart(lr_figure(batches, epochs), key=f"{key}_lr")


# --- Start ------------------------------------------------------------------------------------------
size = cfg.data.image_size or default_image_size(cfg.data.source)
t = cfg.training
st.markdown(
    f"**Data** {cfg.data.source} at {size}×{size} · split {1 - cfg.data.val_split - cfg.data.test_split:.0%} / "
    f"{cfg.data.val_split:.0%} / {cfg.data.test_split:.0%} · seed {cfg.data.seed}  \n"
    f"**Model** {cfg.model.preset} · **Training** {t.epochs} epochs, batch {t.batch_size}, {t.optimizer} at "
    f"{t.learning_rate:g}, {t.schedule} schedule" + (", early stopping" if t.early_stopping else "")
)
st.caption(
    "Change these on the Dataset and Model pages. Training runs on the server in the background: you can "
    "click around, switch pages or reload the browser while it trains."
)
name_col, button_col = st.columns([3, 1])
with name_col:
    run_name = st.text_input(
        "Run name (optional)", key="run_name_input", placeholder=f"{cfg.model.preset} on {cfg.data.source}"
    )
with button_col:
    st.write("")
    start = st.button("Start training", type="primary", key="start_training", width="stretch")
if start:
    try:
        uploads = uploads_for_job(cfg.data.source)
        if cfg.data.source in ("zip", "images") and not any(uploads.values()):
            raise StudioError(
                f"The '{cfg.data.source}' source has no uploaded images in this session: add them on "
                "the Dataset page first."
            )
        busy = mgr.active()
        job = mgr.submit(cfg, uploads, name=run_name.strip() or None)
        st.session_state["watch_run"] = job.run_id
        st.session_state["selected_run"] = job.run_id
        if busy is not None:
            st.info(f"Another run ({busy.run_id}) is training on this server: yours is queued and starts when it ends.")
    except StudioError as err:
        st.error(str(err))


# --- Live view --------------------------------------------------------------------------------------
@st.fragment(run_every=POLL_SECONDS)
def live_view() -> None:
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
        st.progress(0.0, text=f"{progress.phase}…")
    elif job.state == RunState.RUNNING:
        st.progress(progress.fraction, text=progress_text(job))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Epoch", f"{progress.epoch}/{progress.epochs}")
        m2.metric("Images / s", f"{progress.images_per_second or 0:,.0f}")
        m3.metric("Elapsed", f"{progress.elapsed:.0f} s")
        m4.metric("ETA", f"{progress.eta or 0:.0f} s")
    if job.state.live:
        if st.button("Stop", key="stop_training", help="Ends at the next batch; the best weights so far are kept."):
            mgr.stop(job.run_id)
            st.toast("Stopping at the next batch…")
    else:
        result = job.result
        show = STATE_STYLE.get(result.status if result else "stopped", st.info)
        if result is not None:
            summary = f"Run {result.status} after {result.epochs_completed} epochs in {result.seconds:.0f} s"
            if result.best_val_accuracy is not None:
                summary += f" · best validation accuracy {result.best_val_accuracy:.3f}"
            if result.test_accuracy is not None:
                summary += f" · test accuracy {result.test_accuracy:.3f}"
            show(summary + (f". {result.error}" if result.error else "."))
        if st.session_state.get("refreshed_after") != job.run_id:
            st.session_state["refreshed_after"] = job.run_id
            st.rerun(scope="app")  # the history below now has the finished run
    draw_curves(batches, epochs, key="live")


live_view()

# --- History ----------------------------------------------------------------------------------------
st.divider()
st.subheader("Run history")
runs = list_runs(mgr.workspace, mgr.live_ids())
if not runs:
    st.caption(f"No runs yet in {mgr.workspace.resolve()}.")
    st.stop()


def fmt(value, pattern="{:.3f}"):
    return pattern.format(value) if isinstance(value, (int, float)) else "—"


rows = []
for run in runs:
    s = run.status
    created = s.created
    rows.append(
        {
            "run": run.run_id,
            "name": run.name,
            "status": str(run.state),
            "dataset": s.dataset or "—",
            "preset": s.preset or "—",
            "parameters": fmt(s.params, "{:,}"),
            "best val acc": fmt(s.best_val_accuracy),
            "test acc": fmt(s.test_accuracy),
            "epochs": s.epochs_completed,
            "duration": fmt(s.duration, "{:.0f} s"),
            "started": datetime.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if created else "—",
        }
    )
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="history_table")
ids = [r.run_id for r in runs]
by_id = {r.run_id: r for r in runs}

compare = st.multiselect(
    "Compare runs", ids, default=ids[:2], key="compare_runs", format_func=lambda rid: by_id[rid].name
)
metric = st.radio("Curve", ["val_accuracy", "val_loss", "accuracy", "loss"], horizontal=True, key="compare_metric")
if compare:
    curves = {f"{by_id[rid].name} ({rid[-4:]})": read_metrics(by_id[rid].path)[1] for rid in compare}
    st.plotly_chart(overlay_figure(curves, metric), key="compare_chart")

st.markdown("**Open a run**")
default = st.session_state.get("selected_run")
chosen = st.selectbox(
    "Run",
    ids,
    index=ids.index(default) if default in ids else 0,
    key="history_run",
    format_func=lambda rid: f"{by_id[rid].name} · {by_id[rid].state} · {rid}",
)
st.session_state["selected_run"] = chosen
run = by_id[chosen]
if run.state in STATE_STYLE and run.status.error:
    STATE_STYLE[run.state](f"{run.state}: {run.status.error}")
if run.state == "interrupted" and run.has_model():
    st.caption("Its last good checkpoint is kept and can be evaluated and exported.")
if chosen != st.session_state.get("watch_run") or mgr.get(chosen) is None:
    batches, epochs = read_metrics(run.path)
    draw_curves(batches, epochs, key="saved")

c1, c2, c3 = st.columns([2, 1, 1])
with c1:
    new_name = st.text_input("New name", value=run.name, key=f"rename_{chosen}")
with c2:
    st.write("")
    if st.button("Rename", key="rename_run", width="stretch"):
        try:
            rename_run(run.path, new_name)
            st.rerun()
        except StudioError as err:
            st.error(str(err))
with c3:
    st.write("")
    if st.button("Delete run", key="delete_run", width="stretch", disabled=chosen in mgr.live_ids()):
        st.session_state["confirm_delete"] = chosen
if st.session_state.get("confirm_delete") == chosen:
    st.warning(f"Delete {run.name} ({chosen}) and all its files?")
    if st.button("Yes, delete it", key="confirm_delete_run"):
        delete_run(run.path, mgr.workspace)
        st.session_state.pop("confirm_delete", None)
        st.session_state.pop("selected_run", None)
        st.rerun()
