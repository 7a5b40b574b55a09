"""The training job registry as the pages see it: the shared manager, the sidebar status line the entry
draws under every page, and the run picker."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core.i18n import _, ngettext, number
from core.jobs import JobManager, RunView, get_manager
from core.runs import list_runs, workspace_dir
from core.status import RunState

POLL_SECONDS = 1.0  # the Train page's live view, while a run is queued or training
SIDEBAR_POLL_SECONDS = 2.0


def manager() -> JobManager:
    return get_manager(workspace_dir())


def poll_while_live(body: Callable, seconds: float):
    """Draw ``body(live_at_run)`` as a fragment that reruns every ``seconds`` only while a run is queued or
    training in the workspace: this server's jobs, and runs another process trains (the command line, another
    replica: their trainer lock and status.json say so). ``live_at_run`` is the live runs' ids, decided now, at
    each run of the page's script; returns what ``body`` returns (on a run of the whole page).

    Why (#18): Streamlit runs ``gc.collect(2)`` after every rerun, a fragment's included, so every tab that polls
    costs the server CPU, and a room full of idle tabs that each poll every second or two costs it a core. An
    idle tab therefore reruns nothing on its own. The price, accepted: an idle tab does not notice a run that
    another visitor (or the command line) starts until its own next interaction (a click, a page switch, a
    reload); from then on it polls until that run ends."""
    live = tuple(manager().workspace_live())
    return st.fragment(run_every=seconds if live else None)(body)(live)


def live_now(live_at_run: tuple[str, ...]) -> list[str]:
    """The runs live in the workspace now. When one that was live as the page ran has ended, the whole page runs
    once more (``st.rerun(scope="app")``): it then shows the result and the history with the run's end state,
    and stops polling if nothing else is live."""
    live = manager().workspace_live()
    if set(live_at_run) - set(live):
        st.rerun(scope="app")
    return live


def sidebar_status() -> None:
    """A one-line status of the run that trains in the workspace (whoever trains it) in the sidebar, refreshed
    while it trains."""
    with st.sidebar:
        poll_while_live(_status_fragment, SIDEBAR_POLL_SECONDS)


def _status_fragment(live_at_run: tuple[str, ...]) -> None:
    live = live_now(live_at_run)
    view = manager().view(live[0]) if live else None
    if view is None:
        return
    if view.state == RunState.QUEUED:
        st.caption(_("Queued **{run}**: {progress}").format(run=view.run_id, progress=view.progress.text()))
        return
    if view.elsewhere:
        line = _("Training **{run}** (another process): {progress}")
    else:
        line = _("Training **{run}**: {progress}")
    line = line.format(run=view.run_id, progress=progress_text(view))
    if len(live) > 1:
        waiting = len(live) - 1
        line = ngettext("{status} · {count} queued", "{status} · {count} queued", waiting).format(
            status=line, count=number(waiting)
        )
    st.caption(line)
    st.progress(view.progress.fraction)


def progress_text(view: RunView) -> str:
    return RunState.QUEUED.label if view.state == RunState.QUEUED else view.progress.text()


def run_selectbox(runs: list, key: str, label: str | None = None):
    """A selectbox over runs (name · state · id, and "damaged" for a run with damaged files), remembering the
    choice across pages; returns the RunInfo."""
    ids = [r.run_id for r in runs]
    by_id = {r.run_id: r for r in runs}
    preferred = st.session_state.get("selected_run")
    if preferred in ids:  # the run chosen on another page, or just started: the widget's own state is older
        st.session_state[key] = preferred
    chosen = st.selectbox(
        label or _("Run"),
        ids,
        key=key,
        on_change=_remember_run,
        args=(key,),
        format_func=lambda rid: _run_option(by_id[rid]),
    )
    st.session_state["selected_run"] = chosen
    return by_id[chosen]


def _remember_run(key: str) -> None:
    st.session_state["selected_run"] = st.session_state[key]


def _run_option(run) -> str:
    """A run as the picker lists it: its name (data, as created), its state and id."""
    if run.damaged:
        return _("{name} · {state} · damaged · {run}").format(name=run.name, state=run.state.label, run=run.run_id)
    return _("{name} · {state} · {run}").format(name=run.name, state=run.state.label, run=run.run_id)


def show_damage(run, stop_if_unusable: bool = False) -> None:
    """Say what is damaged in the run. With ``stop_if_unusable``, a run whose model, test split, class names or
    config are damaged ends the page with one error (pages that evaluate or export it)."""
    if stop_if_unusable and run.unusable:
        said = _("Run '{name}' is damaged: {problem}. Delete the run or train it again.")
        st.error(said.format(name=run.name, problem=run.unusable))
        st.stop()
    if run.damaged:
        if not run.unusable and run.has_model():
            said = _(
                "Run '{name}' is damaged: {problem}. Its model and test split are intact: it can still be evaluated "
                "and exported."
            )
        else:
            said = _("Run '{name}' is damaged: {problem}.")
        st.warning(said.format(name=run.name, problem=run.damaged))


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
