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
from core.metrics import TOP_K, Evaluation
from core.pictures import png_base64
from core.runs import CONFIG_FILE, RunInfo, read_metrics


def html_report(run: RunInfo, evaluation: Evaluation, samples: np.ndarray | None = None) -> str:
    """A standalone HTML page (Plotly inlined, images embedded) with config, curves, confusion, per-class table."""
    _, epochs = read_metrics(run.path)
    config = (run.path / CONFIG_FILE).read_text()
    figures = [confusion_figure(evaluation), confusion_figure(evaluation, normalized=True)]
    if epochs:
        figures += [epoch_figure(epochs, "accuracy"), epoch_figure(epochs, "loss")]
    parts = [_figure(fig, f"figure-{i}") for i, fig in enumerate(figures)]
    rows = "".join(
        f"<tr><td>{html.escape(r['class'])}</td><td>{r['precision']:.3f}</td><td>{r['recall']:.3f}</td>"
        f"<td>{r['f1']:.3f}</td><td>{r['support']}</td></tr>"
        for r in evaluation.per_class
    )
    for label, avg in (("macro avg", evaluation.macro), ("weighted avg", evaluation.weighted)):
        rows += (
            f"<tr class='avg'><td>{label}</td><td>{avg['precision']:.3f}</td><td>{avg['recall']:.3f}</td>"
            f"<td>{avg['f1']:.3f}</td><td>{avg['support']}</td></tr>"
        )
    status = run.status
    top = (
        f"<li>top-{TOP_K} accuracy: {evaluation.top_k_accuracy:.4f}</li>"
        if evaluation.top_k_accuracy is not None
        else ""
    )
    grid = (
        f'<h2>Sample predictions</h2><img alt="sample predictions" src="data:image/png;base64,{png_base64(samples)}">'
        if samples is not None
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{_csp()}
<title>CNN Studio report: {html.escape(run.name)}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}tr.avg{{font-weight:bold}}pre{{background:#f5f5f5;padding:1em;overflow:auto}}</style>
</head><body>
<h1>{html.escape(run.name)}</h1>
<p>Run <code>{html.escape(run.run_id)}</code> · dataset {html.escape(str(status.dataset or ""))} · preset
{html.escape(str(status.preset or ""))} · {status.params or "?"} parameters ·
{status.epochs_completed}
epochs · status {html.escape(run.state)}</p>
<h2>Test results</h2><ul><li>test images: {len(evaluation.labels)}</li><li>accuracy: {evaluation.accuracy:.4f}</li>
<li>loss: {evaluation.loss:.4f}</li>{top}</ul>
<div id="confusion-matrix">{parts[0]}{parts[1]}</div>
<h2>Per-class metrics</h2><table id="per-class"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>
<th>support</th></tr>{rows}</table>
<h2>Learning curves</h2>{"".join(parts[2:]) or "<p>No stored metrics.</p>"}
{grid}
<h2>Config</h2><pre>{html.escape(config)}</pre>
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
