"""The training job registry as the pages see it: the shared manager, the sidebar status line the entry
draws under every page, and the run picker."""

from __future__ import annotations

import streamlit as st

from core.jobs import JobManager, get_manager
from core.runs import DAMAGED_FIX, list_runs, workspace_dir
from core.status import RunState

POLL_SECONDS = 1.0


def manager() -> JobManager:
    return get_manager(workspace_dir())


def progress_text(job) -> str:
    if job.state == RunState.QUEUED:
        return str(RunState.QUEUED)
    return job.store.snapshot()[2].text()


def sidebar_status() -> None:
    """A one-line status of the running job in the sidebar, refreshed while it runs."""
    with st.sidebar:
        _status_fragment()


@st.fragment(run_every=2.0)
def _status_fragment() -> None:
    job = manager().active()
    queued = manager().queued()
    if job is None:
        return
    st.caption(f"Training **{job.run_id}**: {progress_text(job)}" + (f" · {len(queued)} queued" if queued else ""))
    st.progress(job.store.snapshot()[2].fraction)


def run_selectbox(runs: list, key: str, label: str = "Run"):
    """A selectbox over runs (name · state · id, and "damaged" for a run with damaged files), remembering the
    choice across pages; returns the RunInfo."""
    ids = [r.run_id for r in runs]
    by_id = {r.run_id: r for r in runs}
    preferred = st.session_state.get("selected_run")
    chosen = st.selectbox(
        label,
        ids,
        index=ids.index(preferred) if preferred in ids else 0,
        key=key,
        format_func=lambda rid: f"{by_id[rid].name} · {by_id[rid].state}{_damaged_mark(by_id[rid])} · {rid}",
    )
    st.session_state["selected_run"] = chosen
    return by_id[chosen]


def _damaged_mark(run) -> str:
    return " · damaged" if run.damaged else ""


def show_damage(run, stop_if_unusable: bool = False) -> None:
    """Say what is damaged in the run. With ``stop_if_unusable``, a run whose model, test split, class names or
    config are damaged ends the page with one error (pages that evaluate or export it)."""
    if stop_if_unusable and run.unusable:
        st.error(f"Run '{run.name}' is damaged: {run.unusable}. {DAMAGED_FIX[0].upper()}{DAMAGED_FIX[1:]}.")
        st.stop()
    if run.damaged:
        usable = not run.unusable and run.has_model()
        usable = " Its model and test split are intact: it can still be evaluated and exported." if usable else ""
        st.warning(f"Run '{run.name}' is damaged: {run.damaged}.{usable}")


def fresh_runs() -> list:
    """All runs of the workspace, read now: states are never older than this script run."""
    mgr = manager()
    return list_runs(mgr.workspace, mgr.live_ids())


def pick_run(key: str, empty_message: str):
    """A run with a model file, chosen in a selectbox shared across pages (latest by default); stops the
    page with ``empty_message`` when there is none."""
    runs = [r for r in fresh_runs() if r.has_model()]
    if not runs:
        st.info(empty_message)
        st.stop()
    return run_selectbox(runs, key)
