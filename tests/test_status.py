"""Run status and live progress are types read and written through core.status."""

import json

import pytest

from core.status import STATUS_FILE, Phase, Progress, RunState, RunStatus, read_status, update_status


def test_status_round_trips_through_its_file_and_keeps_the_json_key(tmp_path):
    update_status(tmp_path, state=RunState.RUNNING, name="first", params=12, image_shape=[28, 28, 1])
    status = update_status(tmp_path, state=RunState.FINISHED, test_accuracy=0.9)
    assert status == read_status(tmp_path)
    assert status.state is RunState.FINISHED and status.name == "first" and status.params == 12
    raw = json.loads((tmp_path / STATUS_FILE).read_text())
    assert raw["status"] == "finished" and "state" not in raw
    assert not list(tmp_path.glob("*.tmp")), "written atomically, nothing left behind"


def test_older_or_damaged_files_read_safely(tmp_path):
    (tmp_path / STATUS_FILE).write_text('{"status": "exploded", "name": "x", "from_a_newer_version": 1}')
    status = read_status(tmp_path)
    assert status.state is RunState.INTERRUPTED and status.name == "x"
    (tmp_path / STATUS_FILE).write_text("{torn")
    assert read_status(tmp_path) == RunStatus()


def test_unknown_fields_are_refused_on_write(tmp_path):
    with pytest.raises(TypeError, match="statuss"):
        update_status(tmp_path, statuss="finished")
    with pytest.raises(TypeError, match="epoc"):
        Progress().update(epoc=3)
    with pytest.raises(ValueError):
        Progress().update(phase="dancing")


def test_states_know_whether_they_are_live_or_ended_well():
    assert [s for s in RunState if s.live] == [RunState.QUEUED, RunState.RUNNING]
    assert {s for s in RunState if s.ended_well} == {RunState.FINISHED, RunState.STOPPED}
    assert Phase.ended(RunState.STOPPED) is Phase.STOPPED and Phase.ended(RunState.INTERRUPTED) is Phase.FAILED


def test_progress_text_and_fraction():
    progress = Progress()
    assert progress.text() == "starting" and progress.fraction == 0.0
    progress.update(phase="training", epoch=2, epochs=4, step=5, steps_per_epoch=10, eta=12.4)
    assert progress.phase is Phase.TRAINING
    assert progress.text() == "epoch 2/4, batch 5/10, ETA 0:12" and progress.fraction == pytest.approx(15 / 40)
