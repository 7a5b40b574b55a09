"""Dataset page: pick a source, explore the images, choose the split and preview augmentation."""

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from core.config import FLIP_MODES, MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, SOURCES
from core.data import (
    KERAS_ARCHIVES,
    channel_stats,
    default_image_size,
    mosaic,
    preview_augmentation,
    sample_indices,
    size_summary,
    split_dataset,
)
from core.errors import StudioError
from ui.data import current_dataset
from ui.jobs import sidebar_status
from ui.state import bound, config

SOURCE_LABELS = {
    "builtin:shapes": "Shapes — built-in, generated (RGB)",
    "builtin:digits": "Digits — built-in, scikit-learn (8×8 handwriting)",
    "keras:mnist": "MNIST — Keras dataset",
    "keras:fashion_mnist": "Fashion-MNIST — Keras dataset",
    "keras:cifar10": "CIFAR-10 — Keras dataset",
    "keras:cifar100": "CIFAR-100 — Keras dataset",
    "zip": "ZIP of class folders — upload",
    "folder": "Folder of class folders — on the server",
    "images": "Your own images per class — upload or camera",
}
SAMPLES_PER_CLASS = 8
MAX_GRID_CLASSES = 20
CHANNEL_COLOURS = ("#d62728", "#2ca02c", "#1f77b4")

cfg = config()
sidebar_status()
st.title("Dataset")
st.caption("Bring images, look at them, and choose how they are split and augmented. Every page uses this choice.")


def on_source_change() -> None:
    # Each source has its own natural size (28 for MNIST, 32 for CIFAR, …); start there.
    st.session_state["data.image_size"] = default_image_size(st.session_state["data.source"])


if not cfg.data.image_size:
    cfg.data.image_size = default_image_size(cfg.data.source)

left, right = st.columns([2, 1])
with left:
    source = bound(
        st.selectbox,
        "Source",
        "data.source",
        options=list(SOURCES),
        format_func=SOURCE_LABELS.get,
        on_change=on_source_change,
    )
with right:
    bound(
        st.radio,
        "Colour",
        "data.color_mode",
        options=["auto", "rgb", "grayscale"],
        horizontal=True,
        help="auto keeps grayscale sources at one channel and colour sources at three.",
    )

c1, c2 = st.columns(2)
with c1:
    bound(
        st.slider,
        "Image size (pixels, square)",
        "data.image_size",
        min_value=MIN_IMAGE_SIZE,
        max_value=MAX_IMAGE_SIZE,
        step=1,
    )
with c2:
    if source == "builtin:shapes":
        bound(st.slider, "Number of generated images", "data.shapes_count", step=20)

if source == "zip":
    upload = st.file_uploader("ZIP with one folder per class", type=["zip"], key="zip_uploader")
    if upload is not None:
        st.session_state["zip_upload"] = upload.getvalue()
        st.session_state["zip_upload_name"] = upload.name
    if not st.session_state.get("zip_upload"):
        st.info("Upload a ZIP whose top level (or single root folder) holds one folder per class, images inside.")
        st.stop()
    cfg.data.path = st.session_state.get("zip_upload_name", "uploaded.zip")
elif source == "folder":
    bound(st.text_input, "Folder on the server", "data.path", placeholder="/data/flowers")
    if not cfg.data.path:
        st.info("Type the path of a folder on the server that holds one subfolder per class.")
        st.stop()
elif source == "images":
    classes = st.session_state.setdefault("class_images", {"class 1": [], "class 2": []})
    seen = st.session_state.setdefault("class_image_ids", set())
    with st.form("add_class", clear_on_submit=True, border=False):
        new_name = st.text_input("New class name", key="new_class_name")
        if st.form_submit_button("Add class") and new_name.strip():
            classes.setdefault(new_name.strip(), [])
    for name in list(classes):
        with st.expander(f"{name} — {len(classes[name])} images", expanded=len(classes[name]) == 0):
            files = st.file_uploader(
                f"Images of '{name}'",
                accept_multiple_files=True,
                key=f"class_upload::{name}",
                type=["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"],
            )
            photo = st.camera_input(f"Take a picture of '{name}'", key=f"class_camera::{name}")
            for item in [*(files or []), *([photo] if photo else [])]:
                if (name, item.file_id) not in seen:
                    seen.add((name, item.file_id))
                    classes[name].append((item.name, item.getvalue()))
            if st.button(f"Remove class '{name}'", key=f"class_remove::{name}"):
                del classes[name]
                st.rerun()
    if sum(bool(v) for v in classes.values()) < 2:
        st.info("Add images to at least two classes (upload files or take pictures) to build a dataset.")
        st.stop()

try:
    dataset = current_dataset(cfg.data)
except StudioError as err:
    st.error(str(err))
    if source in KERAS_ARCHIVES:
        _, wanted = KERAS_ARCHIVES[source]
        files = st.file_uploader(
            f"Upload {wanted}", accept_multiple_files=True, key="keras_uploader", type=["npz", "gz"]
        )
        if files:
            st.session_state.setdefault("keras_upload", {})[source] = {f.name: f.getvalue() for f in files}
            st.rerun()
    st.stop()

# --- Overview ---------------------------------------------------------------------------------------
counts = dataset.class_counts()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Images", f"{len(dataset.labels):,}")
m2.metric("Classes", dataset.num_classes)
m3.metric("Image shape", "×".join(map(str, dataset.image_shape)))
m4.metric("Skipped files", len(dataset.skipped))
if dataset.skipped:
    with st.expander(f"{len(dataset.skipped)} files were skipped — the rest loaded"):
        st.dataframe(pd.DataFrame(dataset.skipped, columns=["file", "reason"]), hide_index=True, width="stretch")

imbalance = counts.max() / max(counts.min(), 1)
fig = px.bar(
    x=dataset.class_names,
    y=counts,
    labels={"x": "class", "y": "images"},
    title=f"Images per class (largest/smallest = {imbalance:.1f}×)",
)
fig.update_layout(height=320, margin=dict(t=40, b=10))
st.plotly_chart(fig, key="class_counts_chart")

# --- Samples ----------------------------------------------------------------------------------------
st.subheader("Samples")
shown = list(range(min(dataset.num_classes, MAX_GRID_CLASSES)))
if dataset.num_classes > MAX_GRID_CLASSES:
    names = st.multiselect("Classes to show", dataset.class_names, default=dataset.class_names[:10], key="grid_classes")
    shown = [dataset.class_names.index(n) for n in names] or shown[:10]
picks = sample_indices(dataset.labels, dataset.num_classes, SAMPLES_PER_CLASS, seed=cfg.data.seed)
grid = mosaic([dataset.images[picks[c]] for c in shown])
row_h = dataset.image_shape[0] + 2
grid_fig = px.imshow(grid)
grid_fig.update_layout(height=max(200, 60 * len(shown)), margin=dict(l=10, r=10, t=10, b=10))
grid_fig.update_xaxes(showticklabels=False)
grid_fig.update_yaxes(
    tickvals=[i * row_h + row_h / 2 for i in range(len(shown))], ticktext=[dataset.class_names[c] for c in shown]
)
st.plotly_chart(grid_fig, key="sample_grid")

# --- Statistics -------------------------------------------------------------------------------------
st.subheader("Image and channel statistics")
stats = channel_stats(dataset.images)
channel_names = ["gray"] if dataset.image_shape[-1] == 1 else ["red", "green", "blue"]
s1, s2 = st.columns([1, 2])
with s1:
    st.table(pd.DataFrame(size_summary(dataset).items(), columns=["property", "value"]).set_index("property"))
    st.table(
        pd.DataFrame(
            {
                "channel": channel_names,
                "mean": stats.mean.round(2),
                "std": stats.std.round(2),
                "mean (0–1)": (stats.mean / 255).round(4),
                "std (0–1)": (stats.std / 255).round(4),
            }
        ).set_index("channel")
    )
with s2:
    hist_fig = go.Figure()
    for c, name in enumerate(channel_names):
        colour = "#555555" if name == "gray" else CHANNEL_COLOURS[c]
        hist_fig.add_trace(go.Scatter(x=np.arange(256), y=stats.histograms[c], name=name, line=dict(color=colour)))
    hist_fig.update_layout(
        title="Pixel value histogram per channel",
        xaxis_title="pixel value",
        yaxis_title="pixels",
        height=320,
        margin=dict(t=40, b=10),
    )
    st.plotly_chart(hist_fig, key="pixel_histogram")

# --- Split ------------------------------------------------------------------------------------------
st.subheader("Train / validation / test split")
p1, p2, p3 = st.columns(3)
with p1:
    bound(st.slider, "Validation fraction", "data.val_split", step=0.05)
with p2:
    if dataset.official_test is not None:
        bound(
            st.checkbox, f"Use the official test set ({len(dataset.official_test):,} images)", "data.use_official_test"
        )
    if dataset.official_test is None or not cfg.data.use_official_test:
        bound(st.slider, "Test fraction", "data.test_split", step=0.05)
with p3:
    bound(st.number_input, "Seed (split, shapes and augmentation)", "data.seed", step=1)
try:
    split = split_dataset(dataset, cfg.data.val_split, cfg.data.test_split, cfg.data.seed, cfg.data.use_official_test)
except StudioError as err:
    st.error(str(err))
else:
    per_split = split.counts(dataset.labels, dataset.num_classes)
    table = pd.DataFrame(per_split, index=dataset.class_names)
    table.loc["total"] = table.sum()
    st.caption("Stratified: every class keeps its share in each split. The same seed gives the same split.")
    st.dataframe(table, width="stretch", key="split_table")

# --- Augmentation -----------------------------------------------------------------------------------
st.subheader("Augmentation (training only)")
a1, a2, a3, a4, a5 = st.columns(5)
with a1:
    bound(st.selectbox, "Flip", "augment.flip", options=list(FLIP_MODES))
with a2:
    bound(st.slider, "Rotation (±degrees)", "augment.rotation", step=5.0)
with a3:
    bound(st.slider, "Zoom (±fraction)", "augment.zoom", step=0.05)
with a4:
    bound(st.slider, "Translation (±fraction)", "augment.translation", step=0.05)
with a5:
    bound(st.slider, "Contrast (±factor)", "augment.contrast", step=0.05)
if cfg.augment.active:
    rng = np.random.default_rng(cfg.data.seed)
    originals = dataset.images[rng.choice(len(dataset.images), size=4, replace=False)]
    variants = preview_augmentation(originals, cfg.augment, variants=5, seed=cfg.data.seed)
    rows = [np.concatenate([orig[None], var]) for orig, var in zip(originals, variants, strict=False)]
    st.image(
        mosaic(rows),
        caption="First column: original. Others: random augmentations of it, as training sees them.",
        width=min(900, 140 * 6),
    )
else:
    st.caption("No augmentation: move a slider to see random variants of real samples here.")
