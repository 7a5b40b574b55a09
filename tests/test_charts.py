"""Dataset figures and the run history rows, built in core from plain data."""

import numpy as np

from core.charts import channel_names, class_counts_figure, pixel_histogram_figure, sample_grid_figure
from core.config import StudioConfig
from core.runs import history_rows, list_runs
from core.status import RunState, update_status


def test_class_counts_title_states_the_imbalance():
    fig = class_counts_figure(["a", "b", "c"], np.array([10, 40, 20]))
    assert "largest/smallest = 4.0×" in fig.layout.title.text
    assert list(fig.data[0].y) == [10, 40, 20]


def test_sample_grid_labels_each_row_with_its_class():
    fig = sample_grid_figure(np.zeros((60, 90, 3), np.uint8), ["cat", "dog"], row_height=30)
    assert list(fig.layout.yaxis.ticktext) == ["cat", "dog"] and list(fig.layout.yaxis.tickvals) == [15, 45]


def test_histogram_has_one_trace_per_channel():
    assert [t.name for t in pixel_histogram_figure(np.ones((3, 256))).data] == ["red", "green", "blue"]
    assert channel_names(1) == ["gray"] and len(pixel_histogram_figure(np.ones((1, 256))).data) == 1


def test_history_rows_show_each_runs_state_and_scores(tmp_path):
    for name, state, accuracy in (("20260101-a", RunState.FINISHED, 0.91234), ("20260102-b", RunState.FAILED, None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(StudioConfig().to_json())
        update_status(tmp_path / name, state=state, name=name, params=1234, test_accuracy=accuracy, duration=12.4)
    rows = history_rows(list_runs(tmp_path))
    assert [r["run"] for r in rows] == ["20260102-b", "20260101-a"], "newest first"
    assert rows[1]["status"] == "finished" and rows[1]["test acc"] == "0.912" and rows[1]["parameters"] == "1,234"
    assert rows[0]["status"] == "failed" and rows[0]["test acc"] == "—" and rows[0]["duration"] == "12 s"


def test_a_long_run_sends_a_few_hundred_batch_points_with_the_last_one():
    from core.charts import MAX_BATCH_POINTS, batch_loss_figure, lr_figure, thinned

    batches = [{"step": i + 1, "loss": 1 / (i + 1), "lr": 1e-3} for i in range(5003)]
    for figure in (batch_loss_figure(batches), lr_figure(batches, [])):
        for trace in figure.data:
            assert len(trace.x) <= MAX_BATCH_POINTS + 1 and trace.x[-1] == 5003 and trace.x[0] == 1
    assert thinned(list(range(10)), 4) == [0, 3, 6, 9] and thinned(list(range(11)), 4) == [0, 3, 6, 9, 10]
    assert thinned(list(range(5)), 10) == list(range(5))


def test_epoch_axes_tick_whole_epochs_and_metrics_read_as_words():
    from core.charts import epoch_figure, lr_figure, metric_name, overlay_figure

    epochs = [{"epoch": e, "accuracy": 0.5, "val_accuracy": 0.4, "lr": 10.0**-e} for e in (1, 2, 3)]
    fig = overlay_figure({"run a": epochs, "run b": epochs[:2]}, "val_accuracy")
    assert (
        fig.layout.title.text == "Validation accuracy by epoch" and fig.layout.yaxis.title.text == "validation accuracy"
    )
    assert (fig.layout.xaxis.tick0, fig.layout.xaxis.dtick, fig.layout.xaxis.tickformat) == (1, 1, "d")
    long = [{"epoch": e, "loss": 1.0} for e in range(1, 101)]
    assert epoch_figure(long, "loss").layout.xaxis.dtick == 10, "at most a dozen whole-epoch ticks"
    lr = lr_figure([], epochs).layout.yaxis
    assert (lr.type, lr.dtick, lr.tickformat) == ("log", 1, ".0e"), "one tick per decade, all written 1e-3"
    assert (
        metric_name("val_loss") == "validation loss"
        and metric_name("val_top_3_accuracy") == "validation top 3 accuracy"
    )


def test_class_names_that_look_like_numbers_stay_names_on_the_axes():
    from core.charts import prediction_figure

    assert class_counts_figure(["3", "7"], np.array([5, 6])).layout.xaxis.type == "category"
    assert prediction_figure(np.array([0.2, 0.8]), ["3", "7"]).layout.yaxis.type == "category"


def test_the_overfitting_note_appears_only_when_validation_loss_rises_as_training_loss_falls():
    from core.charts import overfitting_note

    def epochs(train, val):
        return [{"epoch": i + 1, "loss": a, "val_loss": b} for i, (a, b) in enumerate(zip(train, val, strict=True))]

    rising = overfitting_note(epochs([1.0, 0.6, 0.4, 0.2, 0.1], [0.9, 0.5, 0.45, 0.55, 0.7]))
    assert rising and "epoch 3 (0.450)" in rising and "0.700" in rising and "early stopping" in rising
    assert overfitting_note(epochs([1.0, 0.6, 0.4, 0.3], [0.9, 0.6, 0.5, 0.45])) is None  # still improving
    assert overfitting_note(epochs([1.0, 0.6, 0.4, 0.3], [0.9, 0.6, 0.5, 0.52])) is None  # within noise
    assert overfitting_note(epochs([1.0, 0.6], [0.5, 0.9])) is None  # too few epochs to tell
    from core.i18n import using

    with using("zh-CN"):
        assert "过拟合" in overfitting_note(epochs([1.0, 0.6, 0.4, 0.2, 0.1], [0.9, 0.5, 0.45, 0.55, 0.7]))
