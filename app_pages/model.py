"""Model page: start from a tutorial's recipe, shape it with sliders, and see at once what was built."""

import pandas as pd
import streamlit as st

from core.config import apply_preset, apply_recipe
from core.data import default_image_size
from core.errors import StudioError
from core.presets import PRESETS
from ui.data import current_dataset
from ui.state import config, config_file_sidebar, field_group, field_widget, group_fields, replace_config
from ui.workers import served

# The page's blocks: each draws the fields its group holds in the field table (core/config.py).
GROUPS = {
    "base": "MobileNetV2 base",
    "blocks": "",  # titled after the architecture
    "head": "Head",
    "layers": "Activation, initialization, regularization, input normalization",
    "training": "Training settings",
}


@st.cache_data(max_entries=64, show_spinner="Building the model…")
def model_summary(model_json: str, input_shape: tuple, num_classes: int):
    return served("model_summary", model_json, input_shape, num_classes, request="Building the model")


@st.cache_data(max_entries=16, show_spinner=False)
def tutorial_params(preset_id: str) -> int:
    return served("preset_params", preset_id, request=f"Counting the {preset_id} recipe's parameters")


def on_preset_change() -> None:
    chosen = st.session_state["model.preset"]
    cfg = config()
    if chosen != "custom":
        apply_recipe(cfg, chosen)  # the compact recipe also sets its training settings and augmentation
    elif cfg.model.architecture == "mobilenetv2":
        # "custom" is your own CNN: start it from the CIFAR recipe rather than a pretrained base.
        cfg.model = apply_preset("tutorial-cifar", cfg.model)
        cfg.model.preset = "custom"
    replace_config(cfg)  # widgets on screen get the recipe's values (a deleted key would send the old back)


cfg = config()
st.title("Model")

config_file_sidebar()

try:
    dataset = current_dataset(cfg.data)
    input_shape, num_classes = dataset.image_shape, dataset.num_classes
    st.caption(f"For the dataset on the Dataset page: {'×'.join(map(str, input_shape))} images, {num_classes} classes.")
except StudioError as err:
    size = cfg.data.image_size or default_image_size(cfg.data.source)
    input_shape, num_classes = (size, size, 3), 10
    st.warning(
        f"The Dataset page's dataset does not load ({err}). Showing the model for {size}×{size}×3 and 10 classes."
    )

field_widget("model.preset", on_change=on_preset_change)
if cfg.model.preset in PRESETS:
    st.caption(PRESETS[cfg.model.preset].source)

settings, result = st.columns([1, 1], gap="large")
with settings:
    for group, title in GROUPS.items():
        if group_fields(group):
            blocks = "Residual stages" if cfg.model.architecture == "resnet" else "Convolutional blocks"
            with st.expander(title or blocks, expanded=group != "layers"):
                field_group(group)

with result:
    try:
        summary, notes = model_summary(cfg.to_json(), tuple(input_shape), num_classes)
        st.session_state["last_model"] = (summary, notes, cfg.model.preset)
        valid = True
    except StudioError as err:
        st.error(str(err))
        valid = False
        if "last_model" not in st.session_state:
            st.stop()
        summary, notes, _ = st.session_state["last_model"]
        st.caption("Below: the last valid model.")
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", f"{summary.total_params:,}")
    m2.metric("Trainable", f"{summary.trainable_params:,}")
    m3.metric("Non-trainable", f"{summary.non_trainable_params:,}")
    m4, m5, m6 = st.columns(3)
    m4.metric("FLOPs per image", f"{summary.flops / 1e6:,.1f} M")
    m5.metric("Weights (float32)", f"{summary.weight_bytes / 1e6:,.2f} MB")
    m6.metric("Layers", len(summary.layers))
    for note in notes:
        st.warning(note)
    preset_id = cfg.model.preset
    if valid and preset_id in PRESETS:
        native = PRESETS[preset_id].input_shape
        reference = tutorial_params(preset_id)
        if summary.total_params != reference:
            st.info(
                f"The {preset_id} recipe is written for {'×'.join(map(str, native))} images and 10 classes "
                f"({reference:,} parameters). With these settings, {'×'.join(map(str, input_shape))} images and "
                f"{num_classes} classes it has {summary.total_params:,}."
            )
        else:
            st.success(f"Same parameter count as the {preset_id} recipe: {reference:,}.")
    table = pd.DataFrame([vars(row) for row in summary.layers])
    table.columns = ["layer", "type", "output shape", "parameters"]
    column = {"parameters": st.column_config.NumberColumn(format="localized")}  # 18,496 as the metrics write it
    st.dataframe(table, hide_index=True, width="stretch", key="layer_table", column_config=column)

st.subheader("Layer diagram")
st.graphviz_chart(summary.dot, width="stretch")
