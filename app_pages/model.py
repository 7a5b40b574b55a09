"""Model page: start from a tutorial's recipe, shape it with sliders, and see at once what was built."""

import pandas as pd
import streamlit as st

from core.config import apply_preset, apply_recipe
from core.data import default_image_size
from core.errors import StudioError
from core.i18n import N_, _, language, number
from core.presets import PRESETS
from ui.data import current_dataset
from ui.state import config, config_file_sidebar, field_group, field_widget, group_fields, replace_config
from ui.workers import served

# The page's blocks: each draws the fields its group holds in the field table (core/config.py).
GROUPS = {
    "base": N_("MobileNetV2 base"),
    "blocks": "",  # titled after the architecture
    "head": N_("Head"),
    "layers": N_("Activation, initialization, regularization, input normalization"),
    "training": N_("Training settings"),
}


@st.cache_data(max_entries=64, show_spinner=False)
def model_summary(model_json: str, input_shape: tuple, num_classes: int, lang: str):  # lang: the notes are sentences
    return served("model_summary", model_json, input_shape, num_classes, request=_("Building the model"))


@st.cache_data(max_entries=16, show_spinner=False)
def tutorial_params(preset_id: str) -> int:
    return served(
        "preset_params", preset_id, request=_("Counting the {preset} recipe's parameters").format(preset=preset_id)
    )


def preset_name(preset_id: str) -> str:
    if preset_id in PRESETS:
        return f"{preset_id} — {_(PRESETS[preset_id].title)}"
    return _("custom — your own CNN") if preset_id == "custom" else preset_id


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
st.title(_("Model"))

config_file_sidebar()

try:
    dataset = current_dataset(cfg.data)
    input_shape, num_classes = dataset.image_shape, dataset.num_classes
    shape = "×".join(map(str, input_shape))
    st.caption(
        _("For the dataset on the Dataset page: {shape} images, {count} classes.").format(
            shape=shape, count=num_classes
        )
    )
except StudioError as err:
    size = cfg.data.image_size or default_image_size(cfg.data.source)
    input_shape, num_classes = (size, size, 3), 10
    st.warning(
        _("The Dataset page's dataset does not load ({reason}). Showing the model for {shape} and 10 classes.").format(
            reason=err, shape=f"{size}×{size}×3"
        )
    )

field_widget("model.preset", on_change=on_preset_change, format_func=preset_name)
if cfg.model.preset in PRESETS:
    st.caption(_(PRESETS[cfg.model.preset].source))

settings, result = st.columns([1, 1], gap="large")
with settings:
    for group, title in GROUPS.items():
        if group_fields(group):
            blocks = _("Residual stages") if cfg.model.architecture == "resnet" else _("Convolutional blocks")
            with st.expander(_(title) if title else blocks, expanded=group != "layers"):
                field_group(group)

with result:
    try:
        with st.spinner(_("Building the model…")):
            summary, notes = model_summary(cfg.to_json(), tuple(input_shape), num_classes, language())
        st.session_state["last_model"] = (summary, notes, cfg.model.preset)
        valid = True
    except StudioError as err:
        st.error(str(err))
        valid = False
        if "last_model" not in st.session_state:
            st.stop()
        summary, notes, _preset = st.session_state["last_model"]
        st.caption(_("Below: the last valid model."))
    m1, m2, m3 = st.columns(3)
    m1.metric(_("Parameters"), number(summary.total_params))
    m2.metric(_("Trainable"), number(summary.trainable_params))
    m3.metric(_("Non-trainable"), number(summary.non_trainable_params))
    m4, m5, m6 = st.columns(3)
    m4.metric(_("FLOPs per image"), f"{number(summary.flops / 1e6, 1)} M")
    m5.metric(_("Weights (float32)"), f"{number(summary.weight_bytes / 1e6, 2)} MB")
    m6.metric(_("Layers"), len(summary.layers))
    for note in notes:
        st.warning(note)
    preset_id = cfg.model.preset
    if valid and preset_id in PRESETS:
        native = PRESETS[preset_id].input_shape
        reference = tutorial_params(preset_id)
        if summary.total_params != reference:
            st.info(
                _(
                    "The {preset} recipe is written for {native} images and 10 classes ({reference} parameters). With "
                    "these settings, {shape} images and {count} classes it has {params}."
                ).format(
                    preset=preset_id,
                    native="×".join(map(str, native)),
                    reference=number(reference),
                    shape="×".join(map(str, input_shape)),
                    count=num_classes,
                    params=number(summary.total_params),
                )
            )
        else:
            st.success(
                _("Same parameter count as the {preset} recipe: {count}.").format(
                    preset=preset_id, count=number(reference)
                )
            )
    table = pd.DataFrame([vars(row) for row in summary.layers])
    table.columns = [_("layer"), _("type"), _("output shape"), _("parameters")]
    column = {_("parameters"): st.column_config.NumberColumn(format="localized")}  # 18,496 as the metrics write it
    st.dataframe(table, hide_index=True, width="stretch", key="layer_table", column_config=column)

st.subheader(_("Layer diagram"))
st.graphviz_chart(summary.dot, width="stretch")
