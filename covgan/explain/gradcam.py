"""Grad-CAM (Selvaraju et al. 2017) and input-gradient saliency, batched.

Works for plain functional, nested (VGG16 as a sub-model) and Sequential
classifiers: the classifier is re-traced as one flat chain of its leaf layers
(the same layer objects, so the same weights), which makes the last convolution's
activations and the output reachable in one graph. The re-traced model is checked
against the original on a probe batch.

Both differentiate the class logit (`class_score`), never p, so a confident classifier
still gets a map.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from covgan.explain.class_score import POSITIVE, last_convolution, leaf_layers, score_model

__all__ = ["POSITIVE", "leaf_layers", "last_convolution", "make_gradcam_fn",
           "make_saliency_fn", "make_gradcam_map", "make_saliency_map"]


def make_gradcam_fn(classifier: keras.Model, layer: str | None = None,
                    target_class: int = POSITIVE) -> Callable:
    """Compiles batched Grad-CAM: images (B, H, W, 1) -> (heatmaps (B, H, W) in [0, 1], probs).

    Heatmaps are ReLU(sum_k alpha_k A_k) with alpha_k the spatial mean of
    d score / d A_k, bilinearly resized to the input and scaled to a maximum of 1
    per image (all zeros where nothing speaks for the class).
    """
    scorer = score_model(classifier, layer or last_convolution(classifier))

    @tf.function(reduce_retracing=True)
    def gradcam(images):
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            activations, score, probabilities = scorer(images, target_class)
        gradients = tape.gradient(score, activations)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, tf.shape(images)[1:3], method="bilinear")[..., 0]
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(cam, peak), probabilities

    return gradcam


def make_saliency_fn(classifier: keras.Model, target_class: int = POSITIVE) -> Callable:
    """Compiles input-gradient saliency: |d score / d x|, scaled to a maximum of 1 per image."""
    scorer = score_model(classifier)

    @tf.function(reduce_retracing=True)
    def saliency(images):
        images = tf.convert_to_tensor(images, tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(images)
            _, score, _ = scorer(images, target_class)
        magnitude = tf.reduce_max(tf.abs(tape.gradient(score, images)), axis=-1)
        peak = tf.reduce_max(magnitude, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(magnitude, peak)

    return saliency


def make_gradcam_map(classifier: keras.Model, layer: str | None = None) -> Callable:
    """The registry's Grad-CAM (`covgan.explain.maps`): images -> heatmaps alone."""
    gradcam = make_gradcam_fn(classifier, layer)
    return lambda images: gradcam(images)[0]


def make_saliency_map(classifier: keras.Model, layer: str | None = None) -> Callable:
    """The registry's input gradient (`covgan.explain.maps`); it reads no layer."""
    return make_saliency_fn(classifier)
