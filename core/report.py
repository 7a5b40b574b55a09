"""The standalone HTML report of a run's evaluation: config, curves, confusion matrix, per-class table, samples.

One file with Plotly inlined and images embedded, so it opens anywhere without the app.
"""

from __future__ import annotations

import html
import json

import numpy as np

from core.charts import confusion_figure, epoch_figure
from core.metrics import TOP_K, Evaluation
from core.pictures import png_base64
from core.runs import CONFIG_FILE, RunInfo, read_metrics


def html_report(run: RunInfo, evaluation: Evaluation, samples: np.ndarray | None = None) -> str:
    """A standalone HTML page (Plotly inlined, images embedded) with config, curves, confusion, per-class table."""
    import plotly.io as pio

    _, epochs = read_metrics(run.path)
    config = (run.path / CONFIG_FILE).read_text()
    figures = [confusion_figure(evaluation), confusion_figure(evaluation, normalized=True)]
    if epochs:
        figures += [epoch_figure(epochs, "accuracy"), epoch_figure(epochs, "loss")]
    parts = [
        pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, fig in enumerate(figures)
    ]
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
<html lang="en"><head><meta charset="utf-8"><title>CNN Studio report: {html.escape(run.name)}</title>
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
<script type="application/json" id="evaluation-data">{html.escape(json.dumps(evaluation.to_dict()))}</script>
</body></html>"""
