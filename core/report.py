"""The standalone HTML report of a run's evaluation: config, curves, confusion matrix, per-class table, samples.

One file with Plotly inlined and images embedded, so it opens anywhere without the app. It runs only its own
two inline scripts (Plotly's library and a fixed loader), allowed by their sha256 hashes in the page's
Content-Security-Policy; the figures, with the class names in them, are JSON data blocks the loader hands to
Plotly, and every name in the HTML is escaped text (see core/htmlsafe.py).
"""

from __future__ import annotations

import html
import json
from functools import cache

import numpy as np

from core.charts import confusion_figure, epoch_figure
from core.htmlsafe import csp_meta, json_block, normalize_script, script_hash
from core.i18n import N_, _, language, ngettext, number
from core.metrics import TOP_K, Evaluation
from core.pictures import png_base64
from core.runs import CONFIG_FILE, RunInfo, read_metrics

# A run's state in the report's status line (RunState values, looked up in the report's language).
STATE_WORDS = {
    "queued": N_("queued"),
    "running": N_("running"),
    "finished": N_("finished"),
    "stopped": N_("stopped"),
    "failed": N_("failed"),
    "interrupted": N_("interrupted"),
}


def html_report(run: RunInfo, evaluation: Evaluation, samples: np.ndarray | None = None) -> str:
    """A standalone HTML page (Plotly inlined, images embedded) with config, curves, confusion, per-class table.

    Its words (headings, table headers, figure titles and axes) are in the current language
    (:func:`core.i18n.language`: the caller's, or ``core.i18n.using(lang)``), and ``<html lang>`` says which;
    class names and the config stay as they are."""
    _metrics, epochs = read_metrics(run.path)
    config = (run.path / CONFIG_FILE).read_text()
    figures = [confusion_figure(evaluation), confusion_figure(evaluation, normalized=True)]
    if epochs:
        figures += [epoch_figure(epochs, "accuracy"), epoch_figure(epochs, "loss")]
    parts = [_figure(fig, f"figure-{i}") for i, fig in enumerate(figures)]
    rows = "".join(
        f"<tr><td>{html.escape(r['class'])}</td><td>{number(r['precision'], 3)}</td><td>{number(r['recall'], 3)}</td>"
        f"<td>{number(r['f1'], 3)}</td><td>{number(r['support'])}</td></tr>"
        for r in evaluation.per_class
    )
    for label, avg in ((_("macro avg"), evaluation.macro), (_("weighted avg"), evaluation.weighted)):
        rows += (
            f"<tr class='avg'><td>{html.escape(label)}</td><td>{number(avg['precision'], 3)}</td>"
            f"<td>{number(avg['recall'], 3)}</td><td>{number(avg['f1'], 3)}</td><td>{number(avg['support'])}</td></tr>"
        )
    status = run.status
    results = [
        _("Test images: {count}").format(count=number(len(evaluation.labels))),
        _("Accuracy: {value}").format(value=number(evaluation.accuracy, 4)),
        _("Loss: {value}").format(value=number(evaluation.loss, 4)),
    ]
    if evaluation.top_k_accuracy is not None:
        results.append(_("Top-{k} accuracy: {value}").format(k=TOP_K, value=number(evaluation.top_k_accuracy, 4)))
    items = "".join(f"<li>{html.escape(item)}</li>" for item in results)
    # The words outside a format call are looked up here: pybabel does not read messages inside f-strings.
    words = {
        "results": _("Test results"),
        "matrix": _("Confusion matrix"),
        "per_class": _("Per-class metrics"),
        "curves": _("Learning curves"),
        "no_curves": _("This run has no stored epoch metrics."),
        "samples": _("Sample predictions"),
        "samples_alt": _("sample predictions"),
        "config": _("Config"),
    }
    w = {key: html.escape(text) for key, text in words.items()}
    grid = (
        f'<h2>{w["samples"]}</h2><img alt="{w["samples_alt"]}" src="data:image/png;base64,{png_base64(samples)}">'
        if samples is not None
        else ""
    )
    summary = ngettext(
        "Run {run_id} · dataset {dataset} · preset {preset} · {params} parameters · {epochs} epoch · status {state}",
        "Run {run_id} · dataset {dataset} · preset {preset} · {params} parameters · {epochs} epochs · status {state}",
        status.epochs_completed or 0,
    ).format(
        run_id=f"<code>{html.escape(run.run_id)}</code>",
        dataset=html.escape(str(status.dataset or "—")),
        preset=html.escape(str(status.preset or "—")),
        params=number(status.params) if status.params else "?",
        epochs=number(status.epochs_completed or 0),
        state=html.escape(_(STATE_WORDS.get(str(run.state), str(run.state)))),
    )
    lang = language()
    title = _("CNN Studio report: {name}").format(name=run.name)
    headers = "".join(
        f"<th>{html.escape(h)}</th>" for h in (_("class"), _("precision"), _("recall"), _("F1"), _("support"))
    )
    curves = "".join(parts[2:]) or f"<p>{w['no_curves']}</p>"
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
{_csp()}
<title>{html.escape(title)}</title>
<style>body{{font-family:Helvetica,Arial,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em auto;
max-width:1100px;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}tr.avg{{font-weight:bold}}pre{{background:#f5f5f5;padding:1em;overflow:auto}}</style>
</head><body>
<h1>{html.escape(run.name)}</h1>
<p>{summary}</p>
<h2>{w["results"]}</h2><ul>{items}</ul>
<h2>{w["matrix"]}</h2>
<div id="confusion-matrix">{parts[0]}{parts[1]}</div>
<h2>{w["per_class"]}</h2><table id="per-class"><tr>{headers}</tr>{rows}</table>
<h2>{w["curves"]}</h2><div id="learning-curves">{curves}</div>
{grid}
<h2>{w["config"]}</h2><pre>{html.escape(config)}</pre>
{json_block("evaluation-data", evaluation.to_dict())}
<script>{_plotly_js()}</script>
<script>{FIGURE_LOADER}</script>
</body></html>"""


# The report's only script besides Plotly's library: it draws every figure from its JSON block. Figures are
# data (JSON.parse), never script, so a class name in them cannot run; Plotly shows names as SVG text.
FIGURE_LOADER = normalize_script("""
document.querySelectorAll('script[type="application/json"].plotly-figure').forEach(function (block) {
  var figure = JSON.parse(block.textContent);
  var layout = figure.layout || {};
  var div = document.createElement("div");
  div.className = "plotly-graph-div";
  div.style.width = layout.width ? layout.width + "px" : "100%";
  div.style.height = layout.height ? layout.height + "px" : "100%";
  block.parentNode.insertBefore(div, block);
  Plotly.newPlot(div, figure.data, layout, {responsive: true});
});
""")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return normalize_script(get_plotlyjs())


@cache
def _csp() -> str:
    """Scripts: only Plotly's and the loader, by hash (no 'unsafe-eval': the heat maps and line charts here
    need none). Styles: inline, because Plotly sets style attributes as it draws (styles cannot run script).
    Images: the embedded sample grid and Plotly's PNG download (data: and blob: URLs)."""
    return csp_meta(
        script_src=[script_hash(_plotly_js()), script_hash(FIGURE_LOADER)],
        style_src=["'unsafe-inline'"],
        img_src=["data:", "blob:"],
    )


def _figure(fig, block_id: str) -> str:
    """A Plotly figure as a JSON data block that FIGURE_LOADER draws in its place."""
    return json_block(block_id, json.loads(fig.to_json()), class_name="plotly-figure")
