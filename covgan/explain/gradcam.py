"""Grad-CAM (Selvaraju et al. 2017) and input-gradient saliency, batched.

Works for plain functional, nested (VGG16 as a sub-model) and Sequential
classifiers: the classifier is re-traced as one flat chain of its leaf layers
(the same layer objects, so the same weights), which makes the last convolution's
activations and the output reachable in one graph. The re-traced model is checked
against the original on a probe batch.

The class score is log p_c - log p_other: for a 2-way softmax this is exactly the
logit difference, and for a sigmoid the logit, so gradients do not saturate as p does.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from covgan.errors import CovganError

POSITIVE = 1


def leaf_layers(model):
    """The non-input leaf layers of a chain-structured model, nested models inlined."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def last_convolution(model):
    """Name of the last 2-D convolution, searched through nested models."""
    convolutions = [
        layer.name for layer in leaf_layers(model) if isinstance(layer, keras.layers.Conv2D)
    ]
    if not convolutions:
        raise CovganError("The classifier has no Conv2D layer for Grad-CAM; pass --layer.")
    return convolutions[-1]


def activation_model(classifier, layer=None):
    """A model: images -> (activations of `layer`, probabilities (B, 2)).

    Raises:
        CovganError: unknown layer, or a classifier that is not a chain of layers.
    """
    layer = layer or last_convolution(classifier)
    images = keras.Input(classifier.inputs[0].shape[1:])
    x, activations = images, None
    try:
        for leaf in leaf_layers(classifier):
            x = leaf(x)
            if leaf.name == layer:
                activations = x
    except Exception as error:
        raise CovganError(
            "Grad-CAM needs a chain-structured classifier (plain, nested or Sequential); "
            f"re-tracing failed ({type(error).__name__})."
        ) from None
    if activations is None:
        raise CovganError(f"No layer named {layer!r} in the classifier.")
    rebuilt = keras.Model(images, [activations, x])
    probe = np.random.default_rng(0).random((2, *classifier.inputs[0].shape[1:])).astype("float32")
    if not np.allclose(rebuilt(probe)[1], classifier(probe, training=False), atol=1e-4):
        raise CovganError("Grad-CAM could not re-trace this classifier faithfully (branching?).")
    return rebuilt


def class_score(probabilities, target_class):
    """log p_c - log p_other, the 2-class logit difference."""
    p = tf.clip_by_value(tf.cast(probabilities, tf.float32), 1e-7, 1.0)
    return tf.math.log(p[:, target_class]) - tf.math.log(p[:, 1 - target_class])


def make_gradcam_fn(classifier: keras.Model, layer: str | None = None,
                    target_class: int = POSITIVE) -> Callable:
    """Compiles batched Grad-CAM: images (B, H, W, 1) -> (heatmaps (B, H, W) in [0, 1], probs).

    Heatmaps are ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of
    d score / d A_k, bilinearly resized to the input and scaled to a maximum of 1
    per image (all zeros where nothing speaks for the class).
    """
    model = activation_model(classifier, layer)

    @tf.function(reduce_retracing=True)
    def gradcam(images):
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            activations, probabilities = model(images, training=False)
            score = class_score(probabilities, target_class)
        gradients = tape.gradient(score, activations)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, tf.shape(images)[1:3], method="bilinear")[..., 0]
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(cam, peak), tf.cast(probabilities, tf.float32)

    return gradcam


def make_saliency_fn(classifier: keras.Model, target_class: int = POSITIVE) -> Callable:
    """Compiles input-gradient saliency: |d score / d x|, scaled to a maximum of 1 per image."""

    @tf.function(reduce_retracing=True)
    def saliency(images):
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            score = class_score(classifier(images, training=False), target_class)
        magnitude = tf.reduce_max(tf.abs(tape.gradient(score, images)), axis=-1)
        peak = tf.reduce_max(magnitude, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(magnitude, peak)

    return saliency
