"""Model page: start from a tutorial's recipe, shape it with sliders, and see at once what was built."""

import pandas as pd
import streamlit as st

from core.config import (
    ACTIVATIONS,
    INITIALIZERS,
    MAX_BLOCKS,
    MAX_DENSE,
    MOBILENET_ALPHAS,
    MONITORS,
    OPTIMIZERS,
    SCHEDULES,
    StudioConfig,
    apply_preset,
)
from core.data import default_image_size
from core.errors import StudioError
from core.models import build_model, reference_params, summarize
from core.presets import PRESETS
from ui.data import current_dataset
from ui.jobs import sidebar_status
from ui.state import bound, config, replace_config

LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 1e-1)
REGULARIZATION = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
KERNELS = (1, 3, 5, 7)


@st.cache_data(max_entries=64, show_spinner="Building the model…")
def model_summary(model_json: str, input_shape: tuple, num_classes: int):
    model_config = StudioConfig.from_json(model_json).model
    built = build_model(model_config, input_shape, num_classes)
    return summarize(built.model), built.notes


@st.cache_data(max_entries=16, show_spinner=False)
def tutorial_params(preset_id: str) -> int:
    return reference_params(preset_id)


def with_value(options: tuple, value) -> list:
    """Options for a select_slider, with the current value (say, from an uploaded config) among them."""
    return sorted({*options, value})


def on_preset_change() -> None:
    chosen = st.session_state["model.preset"]
    cfg = config()
    if chosen != "custom":
        cfg.model = apply_preset(chosen, cfg.model)
    elif cfg.model.architecture == "mobilenetv2":
        # "custom" is your own CNN: start it from the CIFAR recipe rather than a pretrained base.
        cfg.model = apply_preset("tutorial-cifar", cfg.model)
        cfg.model.preset = "custom"
    for key in [k for k in st.session_state.keys() if isinstance(k, str) and k.startswith("model.")]:
        if key != "model.preset":
            del st.session_state[key]


cfg = config()
sidebar_status()
st.title("Model")

# --- Config file -----------------------------------------------------------------------------------
with st.sidebar:
    st.download_button(
        "Download config (JSON)",
        cfg.to_json(),
        file_name="cnn-studio-config.json",
        mime="application/json",
        key="config_download",
    )
    uploaded = st.file_uploader("Restore a config", type=["json"], key="config_upload")
    if uploaded is not None and st.session_state.get("config_upload_id") != uploaded.file_id:
        st.session_state["config_upload_id"] = uploaded.file_id
        try:
            replace_config(StudioConfig.from_json(uploaded.getvalue()))
            st.rerun()
        except StudioError as err:
            st.error(f"{uploaded.name}: {err}")

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

preset_ids = [*PRESETS, "custom"]
bound(
    st.selectbox,
    "Start from",
    "model.preset",
    options=preset_ids,
    on_change=on_preset_change,
    format_func=lambda p: f"{p} — {PRESETS[p].title}" if p in PRESETS else "custom — your own CNN",
)
if cfg.model.preset in PRESETS:
    st.caption(PRESETS[cfg.model.preset].source)

settings, result = st.columns([1, 1], gap="large")
with settings:
    arch = cfg.model.architecture
    if arch == "mobilenetv2":
        with st.expander("MobileNetV2 base", expanded=True):
            bound(st.select_slider, "Width multiplier (alpha)", "model.mobilenet_alpha", options=list(MOBILENET_ALPHAS))
            bound(st.checkbox, "Use ImageNet weights (from the Keras cache)", "model.pretrained")
    else:
        label = "Residual stages" if arch == "resnet" else "Convolutional blocks"
        with st.expander(label, expanded=True):
            blocks = bound(
                st.slider, f"Number of {label.lower()}", "model.conv_blocks", min_value=1, max_value=MAX_BLOCKS
            )
            cols = st.columns(3)
            for i in range(blocks):
                with cols[i % 3]:
                    bound(
                        st.number_input,
                        f"Filters, block {i + 1}",
                        f"model.filters.{i}",
                        step=8,
                    )
            per_block = "Residual blocks per stage" if arch == "resnet" else "Convolutions per block"
            bound(st.slider, per_block, "model.convs_per_block", min_value=1, max_value=3)
            bound(
                st.select_slider, "Kernel size", "model.kernel_size", options=with_value(KERNELS, cfg.model.kernel_size)
            )
            if arch == "cnn":
                bound(st.radio, "Padding", "model.padding", options=["valid", "same"], horizontal=True)
                bound(st.radio, "Pooling", "model.pooling", options=["max", "average", "none"], horizontal=True)
                bound(st.checkbox, "Pool after the last block too", "model.pool_last")
                bound(st.checkbox, "BatchNormalization in each block", "model.batch_norm")
            bound(st.slider, "Dropout after each block", "model.block_dropout", step=0.05)
    with st.expander("Head", expanded=True):
        bound(st.radio, "Feature maps to vector", "model.head", options=["flatten", "global_average"], horizontal=True)
        bound(
            st.slider,
            "Dropout before the dense layers",
            "model.flatten_dropout",
            step=0.05,
        )
        dense = bound(st.slider, "Dense layers", "model.dense_layers", min_value=0, max_value=MAX_DENSE)
        cols = st.columns(3)
        for i in range(dense):
            with cols[i]:
                bound(
                    st.number_input,
                    f"Units, dense {i + 1}",
                    f"model.dense_units.{i}",
                    step=16,
                )
        bound(st.slider, "Dropout after each dense layer", "model.dense_dropout", step=0.05)
        bound(
            st.radio,
            "Output",
            "model.output",
            options=["softmax", "logits"],
            horizontal=True,
            help="The loss follows: sparse categorical cross-entropy on probabilities or on logits.",
        )
    with st.expander("Activation, initialization, regularization, input normalization"):
        bound(st.selectbox, "Activation", "model.activation", options=list(ACTIVATIONS))
        bound(st.selectbox, "Kernel initializer", "model.initializer", options=list(INITIALIZERS))
        bound(st.select_slider, "L1 regularization", "model.l1", options=with_value(REGULARIZATION, cfg.model.l1))
        bound(st.select_slider, "L2 regularization", "model.l2", options=with_value(REGULARIZATION, cfg.model.l2))
        bound(
            st.radio,
            "Normalization (first layer of the model)",
            "model.normalization",
            options=["unit", "symmetric", "standardize"],
            horizontal=True,
            format_func={
                "unit": "to [0, 1]",
                "symmetric": "to [-1, 1]",
                "standardize": "standardize (training-set mean/std)",
            }.get,
            help="The model takes raw 0–255 pixels; this layer scales them, in training and after export.",
        )
    with st.expander("Training settings", expanded=True):
        t = cfg.training
        bound(st.selectbox, "Optimizer", "training.optimizer", options=list(OPTIMIZERS))
        bound(
            st.select_slider,
            "Learning rate",
            "training.learning_rate",
            options=with_value(LEARNING_RATES, t.learning_rate),
            format_func=lambda v: f"{v:g}",
        )
        if t.optimizer in ("sgd", "rmsprop"):
            bound(st.slider, "Momentum", "training.momentum", step=0.01)
        if t.optimizer == "adamw":
            bound(
                st.select_slider,
                "Weight decay",
                "training.weight_decay",
                options=with_value((0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.05), t.weight_decay),
            )
        bound(
            st.selectbox,
            "Learning-rate schedule",
            "training.schedule",
            options=list(SCHEDULES),
            format_func={
                "constant": "constant",
                "step": "step decay",
                "cosine": "cosine decay",
                "plateau": "reduce on plateau",
            }.get,
        )
        if t.schedule == "step":
            bound(
                st.slider,
                "Decay every N epochs",
                "training.step_epochs",
            )
            bound(st.slider, "Decay factor", "training.step_factor", step=0.05)
        if t.schedule == "plateau":
            bound(
                st.slider,
                "Plateau patience (epochs)",
                "training.plateau_patience",
            )
            bound(st.slider, "Plateau factor", "training.plateau_factor", step=0.05)
        bound(st.select_slider, "Batch size", "training.batch_size", options=with_value(BATCH_SIZES, t.batch_size))
        bound(
            st.slider,
            "Epochs",
            "training.epochs",
        )
        bound(st.slider, "Label smoothing", "training.label_smoothing", step=0.05)
        if bound(st.checkbox, "Early stopping", "training.early_stopping"):
            bound(st.selectbox, "Monitor", "training.monitor", options=list(MONITORS))
            bound(
                st.slider,
                "Patience (epochs)",
                "training.patience",
            )
            bound(st.checkbox, "Restore the best weights", "training.restore_best")

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
    st.dataframe(table, hide_index=True, width="stretch", key="layer_table")

st.subheader("Layer diagram")
st.graphviz_chart(summary.dot, width="stretch")
