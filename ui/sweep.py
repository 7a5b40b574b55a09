"""The Sweep page's helpers: the search form, the live trial table and Optuna's figures.

A sweep runs in its own process (``python -m core sweep --sweep ID``), each trial a run under the workspace's
trainer lock; this web process reads the sweep's Optuna storage (Optuna and Plotly only, never TensorFlow).
"""

from __future__ import annotations

import pandas as pd
import plotly.io
import streamlit as st

from core.access import Action
from core.charts import metric_name
from core.config import StudioConfig
from core.errors import StudioError
from core.i18n import _, number
from core.sweep import (
    METRICS,
    create_sweep,
    default_param_texts,
    figures,
    is_running,
    list_sweeps,
    parse_param,
    start_in_background,
    stop_sweep,
    summary,
)
from ui.access import can, refusal
from ui.state import replace_config

POLL_SECONDS = 2.0
UPLOAD_SOURCES = ("zip", "images")  # their bytes live in the page's session: a sweep process cannot read them
DEFAULT_TRIALS = 10
DEFAULT_TRIAL_EPOCHS = 3


def start_form(workspace, cfg: StudioConfig) -> str | None:
    """The form for a new sweep over the session's config; the new sweep's id once started."""
    if cfg.data.source in UPLOAD_SOURCES and not cfg.data.path:
        st.info(
            _(
                "Sweeps run in their own process and read the data from the server: use a built-in, Keras or server "
                "folder source on the Dataset page (uploads stay in your browser session)."
            )
        )
        return None
    with st.form("sweep_form"):
        text = st.text_area(
            _("Searched fields, one per line (FIELD=LOW:HIGH, FIELD=LOW:HIGH:log or FIELD=A,B,C)"),
            "\n".join(default_param_texts()),
            key="sweep_params",
            height=150,
        )
        c1, c2, c3 = st.columns(3)
        trials = c1.number_input(_("Trials"), 1, 200, DEFAULT_TRIALS, key="sweep_trials")
        epochs = c2.number_input(_("Epochs per trial"), 1, 500, min(DEFAULT_TRIAL_EPOCHS, cfg.training.epochs))
        metric = c3.selectbox(_("Metric"), METRICS, key="sweep_metric", format_func=metric_name)
        may = can(Action.TRAIN)
        go = st.form_submit_button(_("Start the sweep"), type="primary", disabled=not may)
    if not may:
        st.caption(refusal(Action.TRAIN))
    if not go:
        return None
    try:
        params = [parse_param(line) for line in text.splitlines() if line.strip()]
        base = StudioConfig.from_json(cfg.to_json())
        base.training.epochs = int(epochs)
        spec = create_sweep(workspace, base, params, int(trials), metric)
        start_in_background(workspace, spec.sweep_id)
    except StudioError as err:
        st.error(str(err))
        return None
    return spec.sweep_id


def pick_sweep(workspace) -> str | None:
    ids = list_sweeps(workspace)
    if not ids:
        st.caption(_("No sweeps yet."))
        return None
    preferred = st.session_state.get("open_sweep")
    return st.selectbox(_("Sweep"), ids, index=ids.index(preferred) if preferred in ids else 0, key="sweep_pick")


def show_sweep(workspace, sweep_id: str) -> None:
    """Trials (live while the sweep runs), stop/resume, the best config and the figures."""
    running = is_running(workspace, sweep_id)
    st.fragment(run_every=POLL_SECONDS if running else None)(_trials)(workspace, sweep_id)
    c1, c2 = st.columns(2)
    may = can(Action.TRAIN)
    if running and c1.button(_("Stop the sweep"), key="stop_sweep", disabled=not may):
        stop_sweep(workspace, sweep_id)
        st.toast(_("No new trial starts; the training trial stops at its next step."))
    if not running and c1.button(_("Resume the sweep"), key="resume_sweep", disabled=not may):
        start_in_background(workspace, sweep_id)
        st.rerun()
    result = summary(workspace, sweep_id)
    best = result["best"]
    if best is not None:
        said = _("Best: trial {trial}, {metric} {value} with {params}")
        st.success(
            said.format(
                trial=best["number"],
                metric=metric_name(result["metric"]),
                value=number(best["value"], 4),
                params=best["params"],
            )
        )
        if c2.button(_("Use the best config"), key="use_best_config", type="primary"):
            replace_config(StudioConfig.from_dict(best["config"]))
            st.toast(_("The best trial's settings are now the project's: see the Model page."))
    charts = figures(workspace, sweep_id)
    waiting = {
        "parallel": _("Parallel coordinates: shown once one trial has finished."),
        "importance": _("Parameter importance: shown once two trials have finished."),
    }
    for key, said in waiting.items():
        if charts[key] is not None:
            st.plotly_chart(plotly.io.from_json(charts[key]), key=f"sweep_{key}")
        else:
            st.caption(said)


def _trials(workspace, sweep_id: str) -> None:
    result = summary(workspace, sweep_id)
    done = sum(t["state"] in ("complete", "pruned", "fail") for t in result["trials"])
    running = is_running(workspace, sweep_id)
    if running:
        said = _("**{done} of {budget} trials** · {metric} · running")
    elif result["stopped"]:
        said = _("**{done} of {budget} trials** · {metric} · stopped")
    else:
        said = _("**{done} of {budget} trials** · {metric} · not running")
    st.markdown(said.format(done=number(done), budget=number(result["budget"]), metric=metric_name(result["metric"])))
    states = {
        "complete": _("complete"),
        "pruned": _("pruned"),
        "fail": _("failed"),
        "running": _("running"),
        "waiting": _("waiting"),
    }
    rows = [
        {
            _("trial"): t["number"],
            _("state"): states.get(t["state"], t["state"]),
            metric_name(result["metric"]): t["value"],
            _("run"): t["run_id"],
            **t["params"],
        }
        for t in result["trials"]
    ]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="sweep_trials_table")
