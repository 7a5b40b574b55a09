"""What a visitor uploads, held in their own session only: never on disk, never in the config, never shared.

The one home for the ZIP, the per-class images (files and camera pictures) and the Keras archives: the
session keys are read and written here only. The Dataset page draws the uploaders from here, ``current_dataset``
and a training job get the bytes through :func:`uploads_for_source` / :func:`uploads_for_job`.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from core.budget import memory_budget
from core.config import DataConfig
from core.data import check_allowed, check_planned_size
from core.errors import StudioError
from core.i18n import _, ngettext, number
from ui.access import visitor_roots
from ui.state import config

# Tests and browser tests put bytes under the first keys directly: keep these names.
ZIP_KEY = "zip_upload"
ZIP_NAME_KEY = "zip_upload_name"
CLASS_IMAGES_KEY = "class_images"
SEEN_IMAGES_KEY = "class_image_ids"
KERAS_KEY = "keras_upload"
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
FIRST_CLASSES = ("class 1", "class 2")
UPLOAD_SOURCES = ("zip", "images")  # sources with nothing to read but the session's uploads

ClassImages = dict[str, list[tuple[str, bytes]]]


# --- ZIP ----------------------------------------------------------------------------------------------


def store_zip(name: str, data: bytes) -> None:
    st.session_state[ZIP_KEY] = data
    st.session_state[ZIP_NAME_KEY] = name


def zip_bytes() -> bytes | None:
    return st.session_state.get(ZIP_KEY)


def zip_name() -> str:
    return st.session_state.get(ZIP_NAME_KEY, "uploaded.zip")


# --- Per-class images ---------------------------------------------------------------------------------


def class_images() -> ClassImages:
    """Class name → [(file name, bytes)], starting with two empty classes as Teachable Machine does."""
    return st.session_state.setdefault(CLASS_IMAGES_KEY, {name: [] for name in FIRST_CLASSES})


def _seen() -> set[tuple[str, str]]:
    return st.session_state.setdefault(SEEN_IMAGES_KEY, set())


def add_class(name: str) -> bool:
    """Adds an empty class (names are stripped); False for a blank name. An existing class is kept as it is."""
    name = name.strip()
    if not name:
        return False
    class_images().setdefault(name, [])
    return True


def remove_class(name: str) -> None:
    class_images().pop(name, None)
    seen = _seen()
    seen -= {item for item in seen if item[0] == name}  # a class added again under this name starts afresh


def add_class_files(name: str, files: Iterable[UploadedFile]) -> int:
    """Appends the files not yet added to the class and returns how many were new: every rerun hands the
    uploader's and camera's files again, and only their file_id tells a new picture from the same one."""
    images, seen, added = class_images().setdefault(name, []), _seen(), 0
    for item in files:
        if (name, item.file_id) not in seen:
            seen.add((name, item.file_id))
            images.append((item.name, item.getvalue()))
            added += 1
    return added


# --- Keras archives -----------------------------------------------------------------------------------


def store_keras_files(source: str, files: dict[str, bytes]) -> None:
    st.session_state.setdefault(KERAS_KEY, {})[source] = files


def keras_files(source: str) -> dict[str, bytes] | None:
    return st.session_state.get(KERAS_KEY, {}).get(source) or None


# --- For loading and training ---------------------------------------------------------------------------


def uploads_for_source(source: str) -> dict:
    """This session's uploaded bytes for a source, as ``load_dataset``'s keyword arguments."""
    if source == "zip":
        return {"zip_bytes": zip_bytes()}
    if source == "images":
        return {"class_images": st.session_state.get(CLASS_IMAGES_KEY)}
    files = keras_files(source)
    return {"keras_files": files} if files else {}


def has_uploads(source: str) -> bool:
    """True when this session holds bytes for the source: classes without a single image hold none."""
    return any(any(v.values()) if isinstance(v, dict) else bool(v) for v in uploads_for_source(source).values())


def uploads_for_job(source: str) -> dict:
    """The uploads a training job of this source gets (a copy travels with it: the session may end first);
    StudioError when the source needs uploads that this session does not hold.

    A server folder job also gets ``allowed_roots``: the training process reads the folder only inside the
    folders this server allows, as the Dataset page does. A folder outside them is refused here already, before
    a run folder exists (the job trains the session's config). Every job gets the visitor's memory ``budget``,
    and a source whose decoded size is known to be over it is refused here too."""
    if source in UPLOAD_SOURCES and not has_uploads(source):
        raise StudioError(
            _(
                "The '{source}' source has no uploaded images in this session: add them on the Dataset page first."
            ).format(source=source)
        )
    budget = memory_budget(visitor=True)
    if source == "folder":
        roots = visitor_roots()
        check_allowed(config().data.path, roots)
        return {"allowed_roots": roots, "budget": budget}
    uploads = uploads_for_source(source)
    check_planned_size(config().data, uploads.get("zip_bytes"), uploads.get("class_images"), budget)
    return {**uploads, "budget": budget}


# --- Widgets ------------------------------------------------------------------------------------------


def zip_uploader(data: DataConfig) -> bool:
    """The ZIP uploader; True once this session holds a ZIP (its name becomes ``data.path``)."""
    upload = st.file_uploader(_("ZIP with one folder per class"), type=["zip"], key="zip_uploader")
    if upload is not None:
        store_zip(upload.name, upload.getvalue())
    if not zip_bytes():
        st.info(_("Upload a ZIP whose top level (or single root folder) holds one folder per class, images inside."))
        return False
    data.path = zip_name()
    return True


def class_images_editor() -> bool:
    """Classes with file uploads and camera pictures, as in Teachable Machine; True once two classes have images."""
    classes = class_images()
    with st.form("add_class", clear_on_submit=True, border=False):
        new_name = st.text_input(_("New class name"), key="new_class_name")
        if st.form_submit_button(_("Add class")):
            add_class(new_name)
    for name in list(classes):
        count = len(classes[name])
        title = ngettext("{name} — {count} image", "{name} — {count} images", count)
        with st.expander(title.format(name=name, count=number(count)), expanded=count == 0):
            files = st.file_uploader(
                _("Images of '{name}'").format(name=name),
                accept_multiple_files=True,
                key=f"class_upload::{name}",
                type=IMAGE_TYPES,
            )
            photo = st.camera_input(_("Take a picture of '{name}'").format(name=name), key=f"class_camera::{name}")
            add_class_files(name, [*(files or []), *([photo] if photo else [])])
            if st.button(_("Remove class '{name}'").format(name=name), key=f"class_remove::{name}"):
                remove_class(name)
                st.rerun()
    if sum(bool(images) for images in classes.values()) < 2:
        st.info(_("Add images to at least two classes (upload files or take pictures) to build a dataset."))
        return False
    return True


def keras_archive_uploader(source: str, wanted: str) -> None:
    """Offered when a Keras set is not in the cache: the visitor uploads the archive keras.datasets would fetch."""
    files = st.file_uploader(
        _("Upload {file}").format(file=_(wanted)), accept_multiple_files=True, key="keras_uploader", type=["npz", "gz"]
    )
    if files:
        store_keras_files(source, {f.name: f.getvalue() for f in files})
        st.rerun()
