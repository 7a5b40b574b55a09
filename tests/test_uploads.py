"""ui/uploads.py: the session's uploads, through the Dataset page's real widgets and through its functions."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import class_zip, image_bytes, make_class_files

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 120


@pytest.fixture
def images_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="data.source").select("images").run()
    assert not at.exception
    return at


def png(name: str, seed: int) -> tuple[str, bytes, str]:
    return (name, image_bytes(seed=seed), "image/png")


def test_per_class_uploads_are_added_once_however_often_the_page_reruns(images_page):
    at = images_page
    at.file_uploader(key="class_upload::class 1").set_value([png("a.png", 1), png("b.png", 2)]).run()
    at.run()  # a rerun hands the same two files again
    at.camera_input(key="class_camera::class 1").set_value(("photo.jpg", image_bytes(fmt="JPEG"), "image/jpeg")).run()
    at.run()
    assert [name for name, _ in at.session_state["class_images"]["class 1"]] == ["a.png", "b.png", "photo.jpg"]
    assert any("at least two classes" in i.value for i in at.info), "one class with images is not a dataset"
    at.file_uploader(key="class_upload::class 2").set_value([png("c.png", 3), png("d.png", 4)]).run()
    assert not at.exception
    assert next(m.value for m in at.metric if m.label == "Classes") == "2"
    assert next(m.value for m in at.metric if m.label == "Images") == "5"


def test_classes_are_added_and_removed_with_their_widgets(images_page):
    at = images_page
    at.text_input(key="new_class_name").input("  cats ")
    next(b for b in at.button if b.label == "Add class").click().run()  # a form sends its fields with the submit
    assert list(at.session_state["class_images"]) == ["class 1", "class 2", "cats"]
    assert at.file_uploader(key="class_upload::cats").label == "Images of 'cats'"
    at.file_uploader(key="class_upload::cats").set_value([png("a.png", 1)]).run()
    at.button(key="class_remove::cats").click().run()
    assert not at.exception
    assert list(at.session_state["class_images"]) == ["class 1", "class 2"]
    assert not any(name == "cats" for name, _ in at.session_state["class_image_ids"]), "its upload ids are forgotten"
    assert not [u for u in at.file_uploader if u.key == "class_upload::cats"]


def test_uploaded_zip_is_kept_and_names_the_dataset(images_page):
    at = images_page
    at.selectbox(key="data.source").select("zip").run()
    assert any("Upload a ZIP" in i.value for i in at.info)
    data = class_zip(make_class_files({"cats": 6, "dogs": 6}))
    at.file_uploader(key="zip_uploader").set_value(("pets.zip", data, "application/zip")).run()
    assert not at.exception
    assert at.session_state["zip_upload"] == data and at.session_state["studio_config"].data.path == "pets.zip"
    assert next(m.value for m in at.metric if m.label == "Classes") == "2"


def _uploads_script() -> None:
    """Stores one upload of each kind and writes what loading and a job would get (run by AppTest)."""
    import streamlit as st

    from core.errors import StudioError
    from ui import uploads

    def job_uploads(source: str) -> dict:
        given = uploads.uploads_for_job(source)
        assert given.pop("budget").bytes <= 2000 * 1000**2  # at most a visitor's memory budget
        return given

    results = {}
    for source in ("zip", "images", "keras:mnist", "builtin:shapes"):
        try:
            results[source] = job_uploads(source)
        except StudioError as err:
            results[source] = str(err)
    st.session_state["before"] = results
    uploads.store_zip("d.zip", b"zip bytes")
    uploads.add_class("up")
    uploads.store_keras_files("keras:mnist", {"mnist.npz": b"npz bytes"})
    st.session_state["class_images"]["up"].append(("a.png", b"png bytes"))
    sources = ("zip", "images", "keras:mnist", "keras:cifar10")
    st.session_state["after"] = {source: job_uploads(source) for source in sources}


def test_uploads_for_job_hands_over_the_sessions_bytes_for_each_source():
    at = AppTest.from_function(_uploads_script, default_timeout=TIMEOUT).run()
    assert not at.exception
    before, after = at.session_state["before"], at.session_state["after"]
    assert "'zip' source has no uploaded images" in before["zip"] and "'images' source" in before["images"]
    assert before["keras:mnist"] == {} and before["builtin:shapes"] == {}
    assert after["zip"] == {"zip_bytes": b"zip bytes"}
    assert after["images"]["class_images"]["up"] == [("a.png", b"png bytes")]
    assert set(after["images"]["class_images"]) == {"class 1", "class 2", "up"}
    assert after["keras:mnist"] == {"keras_files": {"mnist.npz": b"npz bytes"}}
    assert after["keras:cifar10"] == {}, "an archive serves only the set it was uploaded for"


def test_training_an_upload_source_without_uploads_says_where_to_add_them(images_page, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(tmp_path / "runs"))
    images_page.switch_page("app_pages/train.py").run()
    images_page.button(key="start_training").click().run()
    assert not images_page.exception and "watch_run" not in images_page.session_state
    assert any("'images' source has no uploaded images in this session" in e.value for e in images_page.error)
