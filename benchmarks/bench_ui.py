"""How fast the app answers a person (issue #15.5): one ``streamlit run``, one headless Chromium, each figure the
median of 3 (the spread beside it).

* First paint, cold: the first visitor of a freshly started server, from ``page.goto`` until the Dataset page
  shows its title and its "Images" metric (one sample: only the first visitor is cold).
* First paint: a new session (a new browser context) on the warm server, same end point.
* Page switch: a click in the sidebar until the new page shows its title and content (tests/browser.py
  ``PAGE_CONTENT``), over Dataset → Model → Train → Dataset …
* Slider → layer table: on the Model page, a key press on the "Blocks" slider until the parameter count has
  changed and the rerun that redraws the layer table has finished.
* Click → first chart point: Train's Start button until the batch-loss chart shows its first point (built-in
  digits, ``mnist`` preset, 2 epochs).
* Chart refresh interval: while that run trains, the seconds between two changes of the batch-loss chart's
  point count (median over the run, then the median of the 3 runs).

The goals are the issue's, for an idle 2-core machine; the load average is printed beside the table.

Run: flock /tmp/cnn-bench.lock .venv/bin/python benchmarks/bench_ui.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import browser as b  # noqa: E402

REPEATS = 3
EPOCHS = 2
POLL_SECONDS = 0.02  # how often the chart's point count is read while a run trains
TRAIN_TIMEOUT_SECONDS = 300
VIEWPORT = {"width": 1400, "height": 900}
SWITCHES = ["Model", "Train", "Dataset"]
GOALS = {  # seconds, the targets on an idle 2-core machine
    "first paint": 3.0,
    "page switch": 1.0,
    "slider → layer table": 0.5,
    "click → first chart point": 3.0,
    "chart refresh interval": 1.0,
}


def batch_points(page) -> int:
    """Points on the Train page's batch-loss chart (0 before it is drawn)."""
    return page.evaluate(
        "() => { const p = [...document.querySelectorAll('.js-plotly-plot')]"
        ".find(e => e.layout && e.layout.title && String(e.layout.title.text || '').includes('Batch loss'));"
        " return p && p.data && p.data[0] && p.data[0].x ? p.data[0].x.length : 0; }"
    )


def first_paint(context, url: str) -> float:
    page = context.new_page()
    start = time.perf_counter()
    page.goto(url)
    b.wait_for_page(page, "Dataset")
    seconds = time.perf_counter() - start
    page.close()
    return seconds


def page_switches(page, repeats: int) -> list[float]:
    times = []
    for title in (SWITCHES * repeats)[: max(repeats, len(SWITCHES))]:
        start = time.perf_counter()
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        b.wait_for_page(page, title)
        times.append(time.perf_counter() - start)
        b.wait_for_app(page)
    return times


def slider_to_table(page, repeats: int) -> list[float]:
    """Blocks down and up by one, each key press until the new parameter count is drawn and the run ends."""
    thumb = b.widget(page, "stSlider", "Blocks (stages for ResNet)").locator('input[type="range"]')
    times = []
    for i in range(repeats):
        before = b.metric(page, "Parameters")
        start = time.perf_counter()
        thumb.press("ArrowLeft" if i % 2 == 0 else "ArrowRight")
        page.wait_for_function(
            "(before) => { const m = [...document.querySelectorAll('[data-testid=stMetric]')]"
            ".find(e => e.innerText.startsWith('Parameters'));"
            " return m && !m.innerText.includes(before); }",
            arg=before,
        )
        b.wait_for_app(page, start_window=0)
        times.append(time.perf_counter() - start)
    return times


def training_run(page) -> tuple[float, float | None]:
    """(seconds from the Start click to the chart's first point, median seconds between chart updates).

    The previous run's chart may stay on the page until the new run draws its own: the new run's chart is the
    one whose point count is below the finished run's (it starts again from its first batches)."""
    previous = batch_points(page)
    b.click_button(page, "start_training")
    start = time.perf_counter()
    deadline = start + TRAIN_TIMEOUT_SECONDS
    first, changes, last_count = None, [], previous
    while time.perf_counter() < deadline:
        count = batch_points(page)
        now = time.perf_counter()
        if first is None and count and (previous == 0 or count < previous):
            first, previous = now - start, 0
            changes.append(now)
        elif first is not None and count != last_count:
            changes.append(now)
        last_count = count
        if first is not None and page.get_by_text("Run finished").count():
            break
        time.sleep(POLL_SECONDS)
    if first is None:
        raise RuntimeError("the batch-loss chart never showed a point")
    intervals = [b - a for a, b in zip(changes, changes[1:], strict=False)]
    return first, statistics.median(intervals) if intervals else None


def set_up_training(page) -> None:
    """Digits, the mnist preset, 2 epochs: a short run."""
    b.navigate(page, "Dataset")
    b.select(page, "Source", "Digits")
    b.navigate(page, "Model")
    b.select(page, "Start from", "mnist")
    b.set_slider(page, "Epochs", EPOCHS)
    b.navigate(page, "Train")


def summary(values: list[float]) -> tuple[float, str]:
    return statistics.median(values), f"{min(values):.2f}–{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp, sync_playwright() as playwright:
        tmp = Path(tmp)
        with b.streamlit_process(tmp / "runs", tmp / "streamlit.log") as (url, _):
            browser = b.launch(playwright)
            try:
                cold = browser.new_context(viewport=VIEWPORT)
                results["first paint, cold server"] = [first_paint(cold, url)]
                cold.close()
                paints = []
                for _ in range(args.repeats):
                    context = browser.new_context(viewport=VIEWPORT)
                    paints.append(first_paint(context, url))
                    context.close()
                results["first paint"] = paints
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(b.TIMEOUT_MS)
                b.goto(page, url)
                results["page switch"] = page_switches(page, args.repeats)
                b.navigate(page, "Model")
                results["slider → layer table"] = slider_to_table(page, args.repeats)
                set_up_training(page)
                starts, refreshes = [], []
                for _ in range(args.repeats):
                    first, refresh = training_run(page)
                    starts.append(first)
                    if refresh is not None:
                        refreshes.append(refresh)
                    b.wait_for_app(page)
                results["click → first chart point"] = starts
                results["chart refresh interval"] = refreshes
                context.close()
            finally:
                browser.close()
    load_after = os.getloadavg()
    print(
        f"median of {args.repeats} (cold first paint: 1 sample); load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f} (1 min), 2-core machine"
    )
    print("| measure | median (s) | range (s) | goal (s) |")
    print("| --- | --- | --- | --- |")
    for name, values in results.items():
        if not values:
            print(f"| {name} | — | — | |")
            continue
        median, spread = summary(values)
        goal = GOALS.get(name)
        print(f"| {name} | {median:.2f} | {spread} | {'≤ ' + format(goal, 'g') if goal else ''} |")


if __name__ == "__main__":
    main()
