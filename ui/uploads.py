"""What a visitor uploads, held in their own session only: never on disk, never in the config, never shared.

One home for the ZIP, the per-class images (files and camera pictures) and the Keras archives; the Dataset
page draws the uploaders from here, and a training job gets a copy through :func:`uploads_for_source`.
"""

from __future__ import annotations

import streamlit as st

from core.config import DataConfig

ZIP_KEY = "zip_upload"
ZIP_NAME_KEY = "zip_upload_name"
CLASS_IMAGES_KEY = "class_images"
SEEN_IMAGES_KEY = "class_image_ids"
KERAS_KEY = "keras_upload"
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
FIRST_CLASSES = ("class 1", "class 2")


def uploads_for_source(source: str) -> dict:
    """This session's uploaded bytes for a source, as ``load_dataset``'s keyword arguments."""
    if source == "zip":
        return {"zip_bytes": st.session_state.get(ZIP_KEY)}
    if source == "images":
        return {"class_images": st.session_state.get(CLASS_IMAGES_KEY)}
    keras_files = st.session_state.get(KERAS_KEY, {}).get(source)
    return {"keras_files": keras_files} if keras_files else {}


def has_uploads(source: str) -> bool:
    return any(uploads_for_source(source).values())


def zip_uploader(data: DataConfig) -> bool:
    """The ZIP uploader; True once this session holds a ZIP (its name becomes ``data.path``)."""
    upload = st.file_uploader("ZIP with one folder per class", type=["zip"], key="zip_uploader")
    if upload is not None:
        st.session_state[ZIP_KEY] = upload.getvalue()
        st.session_state[ZIP_NAME_KEY] = upload.name
    if not st.session_state.get(ZIP_KEY):
        st.info("Upload a ZIP whose top level (or single root folder) holds one folder per class, images inside.")
        return False
    data.path = st.session_state.get(ZIP_NAME_KEY, "uploaded.zip")
    return True


def class_images_editor() -> bool:
    """Classes with file uploads and camera pictures, as in Teachable Machine; True once two classes have images."""
    classes = st.session_state.setdefault(CLASS_IMAGES_KEY, {name: [] for name in FIRST_CLASSES})
    seen = st.session_state.setdefault(SEEN_IMAGES_KEY, set())
    with st.form("add_class", clear_on_submit=True, border=False):
        new_name = st.text_input("New class name", key="new_class_name")
        if st.form_submit_button("Add class") and new_name.strip():
            classes.setdefault(new_name.strip(), [])
    for name in list(classes):
        with st.expander(f"{name} — {len(classes[name])} images", expanded=len(classes[name]) == 0):
            files = st.file_uploader(
                f"Images of '{name}'", accept_multiple_files=True, key=f"class_upload::{name}", type=IMAGE_TYPES
            )
            photo = st.camera_input(f"Take a picture of '{name}'", key=f"class_camera::{name}")
            for item in [*(files or []), *([photo] if photo else [])]:
                if (name, item.file_id) not in seen:  # a rerun hands the same files again
                    seen.add((name, item.file_id))
                    classes[name].append((item.name, item.getvalue()))
            if st.button(f"Remove class '{name}'", key=f"class_remove::{name}"):
                del classes[name]
                st.rerun()
    if sum(bool(images) for images in classes.values()) < 2:
        st.info("Add images to at least two classes (upload files or take pictures) to build a dataset.")
        return False
    return True


def keras_archive_uploader(source: str, wanted: str) -> None:
    """Offered when a Keras set is not in the cache: the visitor uploads the archive keras.datasets would fetch."""
    files = st.file_uploader(f"Upload {wanted}", accept_multiple_files=True, key="keras_uploader", type=["npz", "gz"])
    if files:
        st.session_state.setdefault(KERAS_KEY, {})[source] = {f.name: f.getvalue() for f in files}
        st.rerun()
