"""The Train page's live view of a job and the curves of a run, redrawn while it trains."""

from __future__ import annotations

import threading
from collections import OrderedDict

import streamlit as st

from core.access import Action
from core.charts import batch_loss_figure, epoch_figure, lr_figure, overfitting_note
from core.data import default_image_size
from core.i18n import _, duration, language, ngettext, number, percent, short_duration
from core.status import Phase, RunState
from ui.access import can, refusal
from ui.jobs import POLL_SECONDS, live_now, manager, poll_while_live, progress_text

STATE_STYLE = {"finished": st.success, "stopped": st.warning, "failed": st.error, "interrupted": st.warning}


FIGURES_KEPT = 16  # curve sets kept for all sessions: a few runs, a few versions each

_figures: OrderedDict[tuple, tuple] = OrderedDict()
_figures_lock = threading.Lock()


def curve_figures(run_id: str, batches: list[dict], epochs: list[dict]) -> tuple:
    """The four figures of a run's curves as they are now, built once for every session that shows them: a room
    watching one run would otherwise build the same four figures in each tab every second (#18). Read-only
    after building (Streamlit only serializes them)."""
    version = (language(), run_id, len(batches), batches[-1]["step"] if batches else 0, len(epochs), str(epochs[-1:]))
    with _figures_lock:
        if version in _figures:
            _figures.move_to_end(version)
            return _figures[version]
    figures = (
        batch_loss_figure(batches),
        epoch_figure(epochs, "loss"),
        epoch_figure(epochs, "accuracy"),
        lr_figure(batches, epochs),
    )
    with _figures_lock:
        _figures[version] = figures
        while len(_figures) > FIGURES_KEPT:
            _figures.popitem(last=False)
    return figures


def settings_summary(cfg) -> str:
    """The data, model and training settings a new run takes, in two lines of markdown."""
    d, t = cfg.data, cfg.training
    size = d.image_size or default_image_size(d.source)
    shares = (("train", 1 - d.val_split - d.test_split), ("val", d.val_split), ("test", d.test_split))
    data = _("**Data** {source} at {size}×{size} · split {train} / {val} / {test} · seed {seed}").format(
        source=d.source, size=size, seed=d.seed, **{k: percent(v, 0) for k, v in shares}
    )
    training = ngettext(
        "**Model** {preset} · **Training** {epochs} epoch, batch {batch}, {optimizer} at {rate}, {schedule} schedule",
        "**Model** {preset} · **Training** {epochs} epochs, batch {batch}, {optimizer} at {rate}, {schedule} schedule",
        t.epochs,
    ).format(
        preset=cfg.model.preset,
        epochs=number(t.epochs),
        batch=number(t.batch_size),
        optimizer=t.optimizer,
        rate=f"{t.learning_rate:g}",
        schedule=t.schedule,
    )
    if t.early_stopping:
        training = _("{settings}, early stopping").format(settings=training)
    return f"{data}  \n{training}"


def draw_curves(batches: list[dict], epochs: list[dict], key: str, run_id: str) -> None:
    """Batch loss, epoch loss and accuracy (training vs validation) and the learning rate."""
    batch_loss, epoch_loss, epoch_accuracy, rate = curve_figures(run_id, batches, epochs)
    left, right = st.columns(2)
    with left:
        st.plotly_chart(batch_loss, key=f"{key}_batch_loss")
        st.plotly_chart(epoch_loss, key=f"{key}_epoch_loss")
    with right:
        st.plotly_chart(epoch_accuracy, key=f"{key}_epoch_accuracy")
        st.plotly_chart(rate, key=f"{key}_lr")
    note = overfitting_note(epochs)
    if note:
        st.info(note, icon=":material/trending_up:")


def live_view() -> str | None:
    """The watched run (the one this session started), else the run queued or training in the workspace, whoever
    trains it (this server, the command line, another replica): progress, Stop, its result once done, and its
    live curves. Refreshed every POLL_SECONDS only while a run is live (see poll_while_live: idle tabs poll
    nothing, #18). Returns the id of the run it shows."""
    return poll_while_live(_live_fragment, POLL_SECONDS)


def _live_fragment(live_at_run: tuple[str, ...]) -> str | None:
    mgr = manager()
    live = live_now(live_at_run)
    watched = st.session_state.get("watch_run")
    view = mgr.view(watched) if watched else None
    if view is None and live:
        view = mgr.view(live[0])
    if view is None:
        return None
    # Kept for this session: once it ends, the page shows its result until the user closes it (a reload while
    # it trains lands here too).
    st.session_state["watch_run"] = view.run_id
    progress = view.progress
    st.subheader(_("Run {run}").format(run=view.run_id))
    if view.elsewhere:
        said = _("Trained by {trainer}, not by this server: followed through its run folder.")
        st.caption(said.format(trainer=view.elsewhere))
    if view.state == RunState.QUEUED:
        st.info(_("Queued behind {holder}: it starts when that run ends.").format(holder=_ahead_of(view, live)))
    elif view.state == RunState.RUNNING and progress.phase != Phase.TRAINING:
        # Never backwards: after the last epoch the bar stays full while the test split is scored.
        st.progress(
            1.0 if progress.phase == Phase.TESTING else 0.0, text=_("{progress}…").format(progress=progress.text())
        )
    elif view.state == RunState.RUNNING:
        st.progress(progress.fraction, text=progress_text(view))
        m1, m2, m3, m4 = st.columns(4)
        m1.metric(_("Epoch"), f"{number(progress.epoch)}/{number(progress.epochs)}")
        # Unknown until the first batches are timed: a dash, not a zero that reads as a measurement.
        speed = progress.images_per_second
        m2.metric(_("Images / s"), number(speed, 0) if speed else "–")
        m3.metric(_("Elapsed"), short_duration(progress.elapsed))
        m4.metric(_("ETA"), short_duration(progress.eta) if progress.eta else "–")
    if view.state.live:
        may_stop = can(Action.STOP, view.owner)
        stop_help = _("Ends at the next batch; the best weights so far are kept.")
        stop_help = stop_help if may_stop else refusal(Action.STOP, view.owner)
        # The run is bound when the button is drawn: by the click, another run may be the workspace's live one.
        st.button(
            _("Stop"), key="stop_training", disabled=not may_stop, help=stop_help, on_click=_stop, args=(view.run_id,)
        )
        if st.session_state.pop("stopping", None) == view.run_id:
            st.toast(_("Stopping at the next batch…"))
    else:
        show_result(view.result)
        st.button(_("Close"), key="close_watched_run", on_click=_close, help=_("Hide this run's result from the top."))
        other = next((mgr.view(rid) for rid in live if rid != view.run_id), None)
        if other is not None:
            st.caption(
                _("Run {run} is {state} in this workspace now.").format(run=other.run_id, state=other.state.label)
            )
            watch = _("Watch run {run}").format(run=other.run_id)
            st.button(watch, key="watch_live_run", on_click=_watch, args=(other.run_id,))
    if view.batches or view.epochs:  # a queued run has none yet: four empty charts redrawn every second cost
        draw_curves(view.batches, view.epochs, key="live", run_id=view.run_id)
    return view.run_id


def _stop(run_id: str) -> None:
    if manager().stop(run_id):
        st.session_state["stopping"] = run_id


def _close() -> None:
    st.session_state.pop("watch_run", None)


def _watch(run_id: str) -> None:
    st.session_state["watch_run"] = run_id


def _ahead_of(view, live: list[str]) -> str:
    """What a queued run waits for: the run that holds the workspace's trainer (any process), else the job this
    server runs first."""
    if view.progress.phase == Phase.WAITING and view.progress.waiting_for:
        return view.progress.waiting_for
    ahead = [rid for rid in live if rid != view.run_id]
    return _("run {run}").format(run=ahead[0]) if ahead else _("another run")


def show_result(result) -> None:
    if result is None:
        return
    state = RunState(result.status)
    parts = [
        ngettext(
            "Run {state} after {count} epoch in {duration}",
            "Run {state} after {count} epochs in {duration}",
            result.epochs_completed,
        ).format(state=state.label, count=number(result.epochs_completed), duration=duration(result.seconds))
    ]
    if result.best_val_accuracy is not None:
        parts.append(_("best validation accuracy {value}").format(value=number(result.best_val_accuracy, 3)))
    if result.test_accuracy is not None:
        parts.append(_("test accuracy {value}").format(value=number(result.test_accuracy, 3)))
    summary = " · ".join(parts)
    said = (
        _("{summary}. {error}").format(summary=summary, error=result.error)
        if result.error
        else _("{summary}.").format(summary=summary)
    )
    STATE_STYLE.get(state, st.info)(said)
