"""Where a model looks: Grad-CAM heat maps on the last convolutional features, blended over the image."""

from __future__ import annotations

import numpy as np

from core.errors import StudioError
from core.i18n import _


def last_conv_layer(model):
    """The last top-level layer with a 4-D output (a conv layer, or a whole pretrained base)."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        if shape is not None and len(shape.shape) == 4 and layer.__class__.__name__ not in ("InputLayer", "Rescaling"):
            return layer
    raise StudioError(_("This model has no convolutional layer, so Grad-CAM has nothing to show."))


def grad_cam(model, images: np.ndarray, class_index: np.ndarray | None = None) -> np.ndarray:
    """Grad-CAM maps (N×H×W, 0..1) for ``class_index`` (default: the predicted class) at the input's size."""
    import keras
    import tensorflow as tf

    layer = last_conv_layer(model)
    grad_model = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    x = tf.convert_to_tensor(images.astype(np.float32))
    with tf.GradientTape() as tape:
        features, outputs = grad_model(x, training=False)
        if class_index is None:
            class_index = tf.argmax(outputs, axis=1).numpy()
        scores = tf.gather(outputs, class_index, axis=1, batch_dims=1)
    grads = tape.gradient(scores, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[..., None]
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0)


_JET = np.array([[0, 0, 0.5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0.5, 0, 0]])


def overlay_heatmap(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (H×W×C uint8) with a jet-coloured heat map blended on top, as RGB uint8."""
    stops = np.linspace(0, 1, len(_JET))
    colours = np.stack([np.interp(cam, stops, _JET[:, i]) for i in range(3)], axis=-1) * 255
    base = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    return np.clip((1 - alpha) * base + alpha * colours, 0, 255).astype(np.uint8)
