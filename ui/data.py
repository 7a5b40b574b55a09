"""Loading the configured dataset with the right cache for each source, within a visitor's memory budget.

Server-side sources (built-in, Keras, a server folder) are cached once for all sessions; uploaded
data is kept in the uploader's own session only. A server folder is read only inside the folders the
admin allows (``CNN_STUDIO_DATA_ROOTS``, see :func:`core.data.data_roots`).

Every load is checked against a visitor's budget (:func:`core.budget.memory_budget`) before it decodes:
the decoded size is known from the entry count. What a visitor brings (a ZIP, images, Keras archives, a
server folder) is then decoded in a worker child (:mod:`core.worker`) with a memory limit, so a file that
still asks for more (a decoder's own buffers) fails that visitor's load, never the server.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from core.budget import MemoryBudget, memory_budget
from core.charts import channel_names
from core.config import AugmentConfig, DataConfig
from core.data import ChannelStats, Dataset, PlannedSize, Split, load_dataset, mosaic, planned_size, size_summary
from core.errors import StudioError
from core.i18n import _, language, ngettext, number
from core.worker import run_in_worker
from ui.access import visitor_roots
from ui.uploads import uploads_for_source
from ui.workers import served

DATASET_CACHE_KEY = "dataset_cache"
PLANNED_KEY = "dataset_planned"  # (source, id and length of the upload, load fields) → PlannedSize
PREVIEW_IMAGES, PREVIEW_VARIANTS = 4, 5  # augmentation preview: originals, random variants of each
WORKER_OVERHEAD_MB = 1024  # a load's child beyond its array: Python, Pillow's buffers, the copy sent back

# Fields that change how images are loaded (not how they are split).
LOAD_FIELDS = ("source", "path", "image_size", "color_mode", "shapes_count", "seed")


def load_fields(config: DataConfig) -> dict:
    data = dataclasses.asdict(config)
    fields = {k: data[k] for k in LOAD_FIELDS}
    if config.source != "builtin:shapes":
        fields.pop("seed")  # only the generated set depends on the seed
    return fields


@st.cache_resource(max_entries=6, show_spinner=False)
def _shared_dataset(fields: tuple, roots: tuple[str, ...], _budget: MemoryBudget, lang: str) -> Dataset:
    # Not keyed on the budget: on a machine where it follows the memory available it changes at every call.
    # Keyed on the language: the skipped files' reasons and a streamed set's note are sentences.
    config = DataConfig(**dict(fields))
    if config.source == "folder":
        request = _("Reading the folder '{path}'").format(path=config.path)
        return _in_worker(config, {}, list(roots), _budget, request, sample_streamed=True)  # over budget: a sample
    return load_dataset(config, allowed_roots=roots, budget=_budget)


def _in_worker(
    config: DataConfig, uploads: dict, roots: list[str], budget: MemoryBudget, request: str, **options
) -> Dataset:
    """Decode in a child with room for the array twice (it is pickled back) and the uploaded bytes."""
    mib = 2**20  # the worker's limit is in MiB
    upload_mb = len(uploads.get("zip_bytes") or b"") // mib
    limit_mb = 2 * budget.bytes // mib + upload_mb + WORKER_OVERHEAD_MB
    return run_in_worker(
        load_dataset,
        config,
        **uploads,
        **options,
        allowed_roots=roots,
        budget=budget,
        request=request,
        memory_mb=limit_mb,
    )


def planned(config: DataConfig) -> PlannedSize | None:
    """What the session's source will decode to (None while unknown), remembered for the upload and the
    load fields so a rerun does not read a large ZIP's directory again. StudioError for a ZIP that fails."""
    uploads = uploads_for_source(config.source)
    data = uploads.get("zip_bytes")
    fingerprint = (id(data), len(data), hash(data[:4096]), hash(data[-4096:])) if data else None
    key = (config.source, fingerprint, repr(sorted(load_fields(config).items())), language())
    if config.source == "images":  # a count of small lists: cheap, and their contents change in place
        return planned_size(config, class_images=uploads.get("class_images"))
    memo = st.session_state.get(PLANNED_KEY)
    if not memo or memo[0] != key:
        memo = (key, planned_size(config, zip_bytes=data))
        st.session_state[PLANNED_KEY] = memo
    return memo[1]


def planned_caption(config: DataConfig) -> str | None:
    """'Decoded: 60,000 images at 224×224×3: 9.0 GB decoded (budget 2.0 GB)', said before decoding."""
    try:
        plan = planned(config)
    except StudioError:
        return None  # the load below shows the ZIP's own message
    if plan is None:
        return None
    budget = memory_budget(visitor=True)
    over = plan.bytes(1) > budget.bytes or (plan.channels and plan.bytes() > budget.bytes)
    return _("{plan} — :red[over the budget]").format(plan=plan.text(budget)) if over else plan.text(budget)


def current_dataset(config: DataConfig) -> Dataset:
    """The dataset the config describes; raises StudioError with the reason when it cannot be loaded
    (over the visitor's memory budget included, said before anything is decoded)."""
    fields = load_fields(config)
    uploads = uploads_for_source(config.source)
    budget = memory_budget(visitor=True)
    if config.source in ("zip", "images") or uploads:
        key = _digest({**fields, "lang": language()}, uploads)  # skip reasons are sentences in the language
        cache = st.session_state.setdefault(DATASET_CACHE_KEY, {})
        if key not in cache:
            plan = planned(config)
            if plan is not None:
                plan.check(budget)  # at once, before a worker starts
            with st.spinner(_("Reading your images…")):
                cache.clear()  # one uploaded dataset per session at a time
                if config.source == "images":
                    request = _("Reading your images")
                else:
                    request = _("Reading '{path}'").format(path=config.path)
                cache[key] = _in_worker(config, uploads, visitor_roots(), budget, request)
        return cache[key]
    # The roots are part of the key: a folder is never served from the cache once it is no longer allowed.
    with st.spinner(_("Loading dataset…")):
        return _shared_dataset(tuple(sorted(fields.items())), tuple(visitor_roots()), budget, language())


@st.cache_data(max_entries=16, show_spinner=False)
def _augmented(originals: np.ndarray, augment: AugmentConfig, seed: int) -> np.ndarray:
    return served("augmentation_preview", originals, augment, PREVIEW_VARIANTS, seed, request=_("Augmenting"))


def augmentation_preview(dataset: Dataset, augment: AugmentConfig, seed: int) -> None:
    """A few real training images beside random augmentations of them, as training sees them."""
    if not augment.active:
        st.caption(_("No augmentation: move a slider to see random variants of real samples here."))
        return
    rng = np.random.default_rng(seed)
    originals = dataset.images[rng.choice(len(dataset.images), size=PREVIEW_IMAGES, replace=False)]
    variants = _augmented(originals, augment, seed)
    rows = [np.concatenate([orig[None], var]) for orig, var in zip(originals, variants, strict=False)]
    st.image(
        mosaic(rows),
        caption=_("First column: original. Others: random augmentations of it, as training sees them."),
        width=min(900, 140 * (PREVIEW_VARIANTS + 1)),
    )


def skipped_files(dataset: Dataset) -> None:
    """The files that were skipped and why, folded (nothing when every file loaded)."""
    if skipped := len(dataset.skipped):
        title = ngettext(
            "{count} file was skipped — the rest loaded", "{count} files were skipped — the rest loaded", skipped
        )
        with st.expander(title.format(count=number(skipped))):
            table = pd.DataFrame(dataset.skipped, columns=[_("file"), _("reason")])
            st.dataframe(table, hide_index=True, width="stretch")


def statistics_tables(dataset: Dataset, stats: ChannelStats) -> None:
    """The source files' sizes and modes, and each channel's mean and standard deviation."""
    st.table(pd.DataFrame(size_summary(dataset).items(), columns=[_("property"), _("value")]).set_index(_("property")))
    per_channel = {
        _("mean"): [number(v, 1) for v in stats.mean],  # as text: st.table would print every float with 4 decimals
        _("std"): [number(v, 1) for v in stats.std],
        _("mean (0–1)"): [number(v / 255, 3) for v in stats.mean],
        _("std (0–1)"): [number(v / 255, 3) for v in stats.std],
    }
    st.table(pd.DataFrame(per_channel, index=pd.Index(channel_names(len(stats.mean)), name=_("channel"))))


def split_table(dataset: Dataset, split: Split) -> pd.DataFrame:
    """Images of each class in each split, and the totals."""
    parts = {"train": _("train"), "validation": _("validation"), "test": _("test")}
    counts = {parts[k]: v for k, v in split.counts(dataset.labels, dataset.num_classes).items()}
    table = pd.DataFrame(counts, index=dataset.class_names)
    table.loc[_("total")] = table.sum()
    return table


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
