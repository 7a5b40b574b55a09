"""Dataset page: pick a source, explore the images, choose the split and preview augmentation."""

import streamlit as st

from core.access import Action
from core.charts import class_counts_figure, pixel_histogram_figure, sample_grid_figure
from core.config import field_info
from core.data import (
    KERAS_ARCHIVES,
    channel_stats,
    data_roots,
    default_image_size,
    mosaic,
    roots_text,
    sample_indices,
    split_dataset,
)
from core.errors import StudioError
from core.i18n import _, number
from ui.access import can
from ui.data import (
    augmentation_preview,
    current_dataset,
    planned_caption,
    skipped_files,
    split_table,
    statistics_tables,
)
from ui.state import config, field_group, field_widget
from ui.uploads import class_images_editor, keras_archive_uploader, zip_uploader

SAMPLES_PER_CLASS = 8
MAX_GRID_CLASSES = 20

cfg = config()
st.title(_("Dataset"))
st.caption(_("Bring images, look at them, and choose how they are split and augmented. Every page uses this choice."))


def on_source_change() -> None:
    # Each source has its own natural size (28 for MNIST, 32 for CIFAR, …); start there.
    st.session_state["data.image_size"] = default_image_size(st.session_state["data.source"])


if not cfg.data.image_size:
    cfg.data.image_size = default_image_size(cfg.data.source)
# One row of settings, so that the sample grid starts above the fold.
left, middle, right = st.columns([2, 1, 1.2])
with left:
    sources = [s for s in field_info("data.source").spec.choices if s != "folder" or can(Action.READ_SERVER_FOLDERS)]
    source = field_widget("data.source", on_change=on_source_change, options=sources)
with middle:
    field_widget("data.color_mode")
with right:
    field_widget("data.image_size")
    size_note = st.empty()  # the decoded size, said once the source's files are known (before decoding)
if source == "builtin:shapes":
    with left:
        field_widget("data.shapes_count")

ready = True
if source == "zip":
    ready = zip_uploader(cfg.data)
elif source == "folder":
    field_widget("data.path", _("Folder on the server"), placeholder="/data/flowers")
    st.caption(roots_text(data_roots()))  # the folders the admin allows, and how to add one
    if not cfg.data.path:
        st.info(_("Type the path of a folder on the server that holds one subfolder per class."))
        ready = False
elif source == "images":
    ready = class_images_editor()
if not ready:
    st.stop()
if note := planned_caption(cfg.data):
    size_note.caption(_("In memory: {size}").format(size=note))

try:
    dataset = current_dataset(cfg.data)
except StudioError as err:
    st.error(str(err))
    if source in KERAS_ARCHIVES:
        keras_archive_uploader(source, KERAS_ARCHIVES[source][1])
    st.stop()

if dataset.streamed_note:  # a folder over the memory budget: explored from a sample, trained from disk
    st.info(dataset.streamed_note)
# --- Overview ---------------------------------------------------------------------------------------
m1, m2, m3, m4 = st.columns(4)
m1.metric(_("Images"), number(len(dataset.labels)))
m2.metric(_("Classes"), dataset.num_classes)
m3.metric(_("Image shape"), "×".join(map(str, dataset.image_shape)))
m4.metric(_("Skipped files"), len(dataset.skipped))
skipped_files(dataset)

# --- Samples, the payoff first, beside the class counts -----------------------------------------------
samples, counts = st.columns([3, 2])
with samples:
    shown = list(range(min(dataset.num_classes, MAX_GRID_CLASSES)))
    if dataset.num_classes > MAX_GRID_CLASSES:
        names = st.multiselect(
            _("Classes to show"), dataset.class_names, default=dataset.class_names[:10], key="grid_classes"
        )
        shown = [dataset.class_names.index(n) for n in names] or shown[:10]
    picks = sample_indices(dataset.labels, dataset.num_classes, SAMPLES_PER_CLASS, seed=cfg.data.seed)
    grid = mosaic([dataset.images[picks[c]] for c in shown])
    row_names = [dataset.class_names[c] for c in shown]
    st.plotly_chart(
        sample_grid_figure(grid, row_names, dataset.image_shape[0] + 2, SAMPLES_PER_CLASS), key="sample_grid"
    )
with counts:
    st.plotly_chart(class_counts_figure(dataset.class_names, dataset.class_counts()), key="class_counts_chart")

# --- Statistics -------------------------------------------------------------------------------------
st.subheader(_("Image and channel statistics"))
stats = channel_stats(dataset.images)
s1, s2 = st.columns([1, 2])
with s1:
    statistics_tables(dataset, stats)
with s2:
    st.plotly_chart(pixel_histogram_figure(stats.histograms), key="pixel_histogram")

# --- Split ------------------------------------------------------------------------------------------
st.subheader(_("Train / validation / test split"))
p1, p2, p3 = st.columns(3)
with p1:
    field_widget("data.val_split")
with p2:
    if dataset.official_test is not None:
        official = _("Use the official test set ({count} images)").format(count=number(len(dataset.official_test)))
        field_widget("data.use_official_test", official)
    if dataset.official_test is None or not cfg.data.use_official_test:
        field_widget("data.test_split")
with p3:
    field_widget("data.seed")
try:
    split = split_dataset(dataset, cfg.data.val_split, cfg.data.test_split, cfg.data.seed, cfg.data.use_official_test)
except StudioError as err:
    st.error(str(err))
else:
    st.caption(_("Stratified: every class keeps its share in each split. The same seed gives the same split."))
    st.dataframe(split_table(dataset, split), width="stretch", key="split_table")

# --- Augmentation -----------------------------------------------------------------------------------
st.subheader(_("Augmentation (training only)"))
field_group("augment", columns=5)
augmentation_preview(dataset, cfg.augment, cfg.data.seed)
