"""Integrated Gradients (Sundararajan et al. 2017) from a blurred-image baseline, batched.

IG_i = (x_i - x'_i) * mean_k d score / d x_i at x' + a_k (x - x'), with a_k the midpoints of
`steps` equal intervals of [0, 1] (a Riemann sum of the path integral) and the score the class
logit (`class_score`). The baseline x' is the image under a wide Gaussian blur, which removes
the small structures that could be evidence while keeping the overall exposure, so the
attribution says which details, not which brightness, moved the logit (a black baseline
would credit every bright pixel). The map is |IG| scaled to a maximum of 1 per image.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from covgan.explain.class_score import POSITIVE, score_model

DEFAULT_IG_STEPS = 32
DEFAULT_BASELINE_SIGMA = 5.0


def gaussian_blur(images: tf.Tensor, sigma: float) -> tf.Tensor:
    """A separable Gaussian blur of (B, H, W, 1) images, edges reflected."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = tf.constant(taps / taps.sum(), tf.float32)
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    rows = tf.nn.conv2d(padded, tf.reshape(taps, (-1, 1, 1, 1)), 1, "VALID")
    return tf.nn.conv2d(rows, tf.reshape(taps, (1, -1, 1, 1)), 1, "VALID")


def make_integrated_gradients_fn(classifier: keras.Model, *, steps: int = DEFAULT_IG_STEPS,
                                 sigma: float = DEFAULT_BASELINE_SIGMA,
                                 target_class: int = POSITIVE) -> Callable:
    """Compiles batched IG: images (B, H, W, 1) -> maps (B, H, W) in [0, 1].

    All B * steps interpolated images go through the classifier as one batch per call, so
    callers bound B (the explanation pipeline passes chunks).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1. Received: steps={steps}.")
    scorer = score_model(classifier)
    alphas = tf.constant((np.arange(steps) + 0.5) / steps, tf.float32)

    @tf.function(reduce_retracing=True)
    def integrated_gradients(images):
        images = tf.convert_to_tensor(images, tf.float32)
        baseline = gaussian_blur(images, sigma)
        delta = images - baseline
        path = baseline[:, None] + alphas[None, :, None, None, None] * delta[:, None]
        path = tf.reshape(path, (-1, *images.shape[1:]))
        with tf.GradientTape() as tape:
            tape.watch(path)
            _, score, _ = scorer(path, target_class)
        gradients = tf.reshape(tape.gradient(score, path), (-1, steps, *images.shape[1:]))
        attribution = tf.reduce_sum(tf.abs(delta * tf.reduce_mean(gradients, axis=1)), axis=-1)
        peak = tf.reduce_max(attribution, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(attribution, peak)

    return integrated_gradients


def make_integrated_gradients_map(classifier: keras.Model, layer: str | None = None) -> Callable:
    """The registry's Integrated Gradients (`covgan.explain.maps`), at the default steps and
    baseline; it reads no layer."""
    return make_integrated_gradients_fn(classifier)
