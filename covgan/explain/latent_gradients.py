"""The classifier-weighted traversal map: latent integrated gradients along the walk.

For a traversal G(z1, t z2), t from 0 (the negative counterpart) to 1 (the reconstruction),
the map is

    | (G(z1, z2) - G(z1, 0)) * mean_t d score / d x at G(z1, t z2) |

with the score the classifier's class logit (`class_score`). It keeps the part of the GAN's
change that the classifier responds to along the way (the latent integrated gradients of the
authors' follow-up work, medXGAN), where |difference| alone also shows every change the
classifier ignores. The map is scaled to a maximum of 1 per image.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from covgan.explain.class_score import POSITIVE, score_model


def make_latent_gradients_fn(classifier: keras.Model, target_class: int = POSITIVE) -> Callable:
    """Compiles the map: traversals (B, S, H, W, 1), first step t = 0, last t = 1 -> (B, H, W).

    The mean gradient is taken over the S frames of the walk as rendered (the trapezoid rule
    over an even grid, with the end points weighted half).
    """
    scorer = score_model(classifier)

    @tf.function(reduce_retracing=True)
    def latent_gradients(traversals):
        traversals = tf.convert_to_tensor(traversals, tf.float32)
        steps = tf.shape(traversals)[1]
        frames = tf.reshape(traversals, (-1, *traversals.shape[2:]))
        with tf.GradientTape() as tape:
            tape.watch(frames)
            _, score, _ = scorer(frames, target_class)
        gradients = tf.reshape(tape.gradient(score, frames), tf.shape(traversals))
        weights = tf.ones([steps], tf.float32)
        weights = tf.tensor_scatter_nd_update(weights, [[0], [steps - 1]], [0.5, 0.5])
        weights = weights / tf.reduce_sum(weights)
        mean_gradient = tf.einsum("bshwc,s->bhwc", gradients, weights)
        change = traversals[:, -1] - traversals[:, 0]
        attribution = tf.reduce_sum(tf.abs(change * mean_gradient), axis=-1)
        peak = tf.reduce_max(attribution, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(attribution, peak)

    return latent_gradients


def make_latent_gradients_map(classifier: keras.Model, layer: str | None = None) -> Callable:
    """The registry's latent gradients (`covgan.explain.maps`); it reads no layer."""
    return make_latent_gradients_fn(classifier)
