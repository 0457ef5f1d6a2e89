"""The frozen classifier C: VGG16 presets, loading any Keras classifier, freezing.

Every classifier covgan works with takes images (B, 128, 128, 1) in [0, 1] and
returns probabilities (B, 2), p(positive) = probabilities[:, 1]. Models with a
1-unit sigmoid or a 2-unit softmax (or logit) output are adapted to that by
`adapt_classifier`, the one place that knows about output conventions.
"""

from __future__ import annotations

import os
import pathlib
import re

import keras
import numpy as np
from numpy.typing import ArrayLike

from covgan.errors import CovganError
from covgan.models.precision import in_global_policy
from covgan.models.seeding import glorot_uniform
from covgan.shapes import IMAGE_SHAPE

# Convolution widths of the five VGG16 blocks, per preset.
PRESETS = {
    "vgg16": (64, 128, 256, 512, 512),  # the paper's: keras.applications.VGG16
    "tiny": (8, 16, 32, 64, 64),  # the same topology at 1/8 of the widths
}
_CONVS_PER_BLOCK = (2, 2, 3, 3, 3)
# The mean of ImageNet's caffe-style BGR channel means, for the 1-channel adaptation.
_IMAGENET_MEAN = float(np.mean([103.939, 116.779, 123.68]))


def build_classifier(preset: str = "tiny", *, imagenet_weights: str | os.PathLike | None = None,
                     seed: int | None = None) -> keras.Model:
    """Builds an untrained VGG16-style classifier.

    Args:
        preset: "vgg16" (keras.applications.VGG16 conv base, ~14.7M parameters)
            or "tiny" (same topology, 1/8 of the widths).
        imagenet_weights: optional path to a local VGG16 "notop" weights file
            (vgg16 preset only). Its first convolution is adapted to one channel
            by summing the RGB kernels; inputs are scaled to 0-255 and centred.
        seed: seed of every initial weight: the convolutions' He-normal, each from a seed of
            its own, and the head's Glorot-uniform.

    Returns:
        A `keras.Model` mapping "images" (B, 128, 128, 1) to "probabilities" (B, 2).
    """
    if preset not in PRESETS:
        raise CovganError(f"Unknown classifier preset {preset!r}; choose one of {sorted(PRESETS)}.")
    if imagenet_weights and preset != "vgg16":
        raise CovganError("--imagenet-weights needs --preset vgg16.")
    images = keras.Input(IMAGE_SHAPE, name="images")
    if imagenet_weights:
        x = keras.layers.Rescaling(255.0, offset=-_IMAGENET_MEAN, name="normalise")(images)
        backbone = _imagenet_vgg16(imagenet_weights)
    else:
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="normalise")(images)
        backbone = _vgg_backbone(preset, seed)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(2, activation="softmax",
                                 kernel_initializer=glorot_uniform(seed, "probabilities"),
                                 name="probabilities", dtype="float32")(x)
    return keras.Model(images, outputs, name=f"classifier_{preset}")


def _vgg_backbone(preset, seed):
    """The VGG16 convolutional base; the paper preset comes from keras.applications."""
    widths = PRESETS[preset]
    if preset == "vgg16":
        base = keras.applications.VGG16(include_top=False, weights=None, input_shape=IMAGE_SHAPE)
        # From scratch, Keras' default Glorot init left VGG16 at chance; He-normal trains.
        # Each convolution from its own seed, as in the tiny preset: one shared seeded
        # initialiser draws the same values for the same shape, and started block 3's last two
        # convolutions identical, and the five of blocks 4-5 (runs trained before 2026-11-28).
        for layer in base.layers:
            if isinstance(layer, keras.layers.Conv2D):
                block, conv = re.fullmatch(r"block(\d)_conv(\d)", layer.name).groups()
                layer.kernel.assign(_conv_init(seed, int(block), int(conv))(layer.kernel.shape))
        return base
    inputs = keras.Input(IMAGE_SHAPE)
    x = inputs
    for block, (width, convs) in enumerate(zip(widths, _CONVS_PER_BLOCK), start=1):
        for conv in range(1, convs + 1):
            x = keras.layers.Conv2D(
                width, 3, padding="same", activation="relu",
                kernel_initializer=_conv_init(seed, block, conv),
                name=f"block{block}_conv{conv}",
            )(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=f"vgg16_{preset}")


def _conv_init(seed, block, conv):
    return keras.initializers.HeNormal(seed=None if seed is None else seed * 100 + block * 10
                                       + conv)


def _imagenet_vgg16(weights_path):
    path = pathlib.Path(weights_path)
    if not path.is_file():
        raise CovganError(f"ImageNet weights file not found: {path}.")
    try:
        rgb = keras.applications.VGG16(
            include_top=False, weights=str(path), input_shape=(*IMAGE_SHAPE[:2], 3)
        )
    except Exception as error:
        raise CovganError(
            f"{path} is not a VGG16 notop weights file ({_first_line(error)})."
        ) from None
    gray = keras.applications.VGG16(include_top=False, weights=None, input_shape=IMAGE_SHAPE)
    for source, target in zip(rgb.layers, gray.layers):
        weights = source.get_weights()
        if weights and source.name == "block1_conv1":
            weights[0] = weights[0].sum(axis=2, keepdims=True)
        target.set_weights(weights)
    return gray


@keras.saving.register_keras_serializable(package="covgan")
class TwoClassProbabilities(keras.layers.Layer):
    """Turns a 1-unit or 2-unit output (probabilities or logits) into (B, 2) probabilities."""

    def __init__(self, from_logits=False, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = from_logits

    def call(self, outputs):
        outputs = keras.ops.cast(outputs, "float32")
        if outputs.shape[-1] == 1:
            positive = keras.ops.sigmoid(outputs) if self.from_logits else outputs
            return keras.ops.concatenate([1.0 - positive, positive], axis=-1)
        return keras.ops.softmax(outputs, axis=-1) if self.from_logits else outputs

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


def adapt_classifier(model: keras.Model) -> keras.Model:
    """Checks a Keras classifier and returns one with covgan's (B, 2) probability output.

    Raises:
        CovganError: input is not (128, 128, 1), or output is not 1 or 2 units.
    """
    if len(model.inputs) != 1 or tuple(model.inputs[0].shape[1:]) != IMAGE_SHAPE:
        shapes = [tuple(i.shape) for i in model.inputs]
        raise CovganError(
            f"The classifier must take one (None, 128, 128, 1) input. Received: {shapes}."
        )
    if len(model.outputs) != 1 or model.outputs[0].shape[-1] not in (1, 2):
        shapes = [tuple(o.shape) for o in model.outputs]
        raise CovganError(
            "The classifier must have one output of 1 unit (sigmoid) or 2 units (softmax). "
            f"Received: {shapes}."
        )
    activation = getattr(getattr(model.layers[-1], "activation", None), "__name__", "")
    from_logits = activation == "linear"
    units = model.outputs[0].shape[-1]
    if units == 2 and not from_logits and model.outputs[0].dtype == "float32":
        return model
    images = keras.Input(IMAGE_SHAPE, name="images")
    probabilities = TwoClassProbabilities(from_logits, name="probabilities")(model(images))
    return keras.Model(images, probabilities, name=f"adapted_{model.name}")


def load_classifier(path: str | os.PathLike) -> keras.Model:
    """Loads a .keras classifier in safe mode and adapts it (see `adapt_classifier`).

    Raises:
        CovganError: the file is missing, not a loadable Keras model, or the
            wrong shape.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CovganError(f"Classifier file not found: {path}.")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise CovganError(
            f"{path} is not a Keras model covgan can load safely ({_first_line(error)})."
        ) from None
    if not isinstance(model, keras.Model):
        raise CovganError(f"{path} holds a {type(model).__name__}, not a Keras model.")
    return adapt_classifier(in_global_policy(model))


def freeze(model: keras.Model) -> keras.Model:
    """Marks every weight of `model` non-trainable and returns it."""
    model.trainable = False
    return model


def positive_probability(classifier: keras.Model, images: ArrayLike):
    """p(positive) (B,) float32 of an adapted classifier, in inference mode."""
    return keras.ops.cast(classifier(images, training=False)[:, 1], "float32")


def _first_line(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__
