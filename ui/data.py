"""Loading the configured dataset with the right cache for each source.

Server-side sources (built-in, Keras, a server folder) are cached once for all sessions; uploaded
data is kept in the uploader's own session only. A server folder is read only inside the folders the
admin allows (``CNN_STUDIO_DATA_ROOTS``, see :func:`core.data.data_roots`).
"""

from __future__ import annotations

import dataclasses
import hashlib

import streamlit as st

from core.config import DataConfig
from core.data import Dataset, load_dataset
from ui.access import visitor_roots
from ui.uploads import uploads_for_source

DATASET_CACHE_KEY = "dataset_cache"

# Fields that change how images are loaded (not how they are split).
LOAD_FIELDS = ("source", "path", "image_size", "color_mode", "shapes_count", "seed")


def load_fields(config: DataConfig) -> dict:
    data = dataclasses.asdict(config)
    fields = {k: data[k] for k in LOAD_FIELDS}
    if config.source != "builtin:shapes":
        fields.pop("seed")  # only the generated set depends on the seed
    return fields


@st.cache_resource(max_entries=6, show_spinner="Loading dataset…")
def _shared_dataset(fields: tuple, roots: tuple[str, ...]) -> Dataset:
    return load_dataset(DataConfig(**dict(fields)), allowed_roots=roots)


def current_dataset(config: DataConfig) -> Dataset:
    """The dataset the config describes; raises StudioError with the reason when it cannot be loaded."""
    fields = load_fields(config)
    uploads = uploads_for_source(config.source)
    if config.source in ("zip", "images") or uploads:
        key = _digest(fields, uploads)
        cache = st.session_state.setdefault(DATASET_CACHE_KEY, {})
        if key not in cache:
            with st.spinner("Reading your images…"):
                cache.clear()  # one uploaded dataset per session at a time
                cache[key] = load_dataset(config, **uploads, allowed_roots=visitor_roots())
        return cache[key]
    # The roots are part of the key: a folder is never served from the cache once it is no longer allowed.
    return _shared_dataset(tuple(sorted(fields.items())), tuple(visitor_roots()))


def _digest(fields: dict, uploads: dict) -> str:
    h = hashlib.sha256(repr(sorted(fields.items())).encode())
    if uploads.get("zip_bytes"):
        h.update(uploads["zip_bytes"])
    for name, files in sorted((uploads.get("class_images") or {}).items()):
        h.update(name.encode())
        for fname, data in files:
            h.update(fname.encode())
            h.update(hashlib.sha256(data).digest())
    for name, data in sorted((uploads.get("keras_files") or {}).items()):
        h.update(name.encode())
        h.update(data)
    return h.hexdigest()
