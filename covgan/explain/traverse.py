"""Latent traversal: G(z1, n * lambda * z2) for n = 0..N, with C's p(positive) at each step.

n = 0 is the negative counterpart (z2 = 0); n = N with lambda = 1/N is the
image itself; n > N extrapolates. Everything here is a pure function of tensors.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from covgan.explain.maps import carried_onto_image
from covgan.explain.settings import DEFAULT_STEP_SIZE, DEFAULT_STEPS
from covgan.models.classifier import positive_probability

__all__ = ["DEFAULT_STEPS", "DEFAULT_STEP_SIZE", "traversal_scales", "traversal_codes", "traverse",
           "traverse_to_image", "walk_on_image", "crossing_step", "difference_maps",
           "make_difference_map_fn"]



def traversal_scales(steps: int = DEFAULT_STEPS, step_size: float = DEFAULT_STEP_SIZE,
                     extrapolate: int = 0) -> np.ndarray:
    """The multipliers n * lambda of z2, for n = 0 .. steps + extrapolate."""
    return np.arange(steps + extrapolate + 1, dtype=np.float32) * np.float32(step_size)


def traversal_codes(z1: tf.Tensor, z2: tf.Tensor, scales: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The codes of every step, flattened: row b * S + n is (z1[b], scales[n] * z2[b]).

    One definition for the library and the serving signature (graph-safe, no Python loops).

    Args:
        z1: (B, d1) tensor.
        z2: (B, d2) tensor.
        scales: (S,) tensor of multipliers, from `traversal_scales`.

    Returns:
        codes1 (B * S, d1), codes2 (B * S, d2).
    """
    codes1 = tf.repeat(z1, tf.shape(scales)[0], axis=0)
    codes2 = tf.reshape(scales[None, :, None] * z2[:, None, :], (-1, tf.shape(z2)[-1]))
    return codes1, codes2


def traverse(generator: keras.Model, classifier: keras.Model, z1: ArrayLike, z2: ArrayLike, *,
             steps: int = DEFAULT_STEPS, step_size: float = DEFAULT_STEP_SIZE,
             extrapolate: int = 0, chunk: int = 64) -> tuple[tf.Tensor, tf.Tensor]:
    """Renders the traversal of each (z1, z2) pair and classifies every step.

    Args:
        generator: G(z1, z2) -> images.
        classifier: images -> probabilities (B, 2).
        z1: (B, d1) structure codes.
        z2: (B, d2) disease codes.
        steps: N, the number of steps to reach z2.
        step_size: lambda.
        extrapolate: extra steps past z2.
        chunk: images generated per call (bounds memory).

    Returns:
        images (B, S, 128, 128, 1) and probabilities (B, S) of the positive class,
        S = steps + extrapolate + 1, as tf tensors.
    """
    z1 = tf.convert_to_tensor(z1, tf.float32)
    z2 = tf.convert_to_tensor(z2, tf.float32)
    scales = tf.constant(traversal_scales(steps, step_size, extrapolate))
    count, length = tf.shape(z1)[0], scales.shape[0]
    codes1, codes2 = traversal_codes(z1, z2, scales)
    images, probabilities = [], []
    total = int(codes1.shape[0])
    for start in range(0, total, chunk):
        batch = generator([codes1[start : start + chunk], codes2[start : start + chunk]],
                          training=False)
        images.append(batch)
        probabilities.append(positive_probability(classifier, batch))
    images = tf.reshape(tf.concat(images, 0), (count, length, *images[0].shape[1:]))
    probabilities = tf.reshape(tf.concat(probabilities, 0), (count, length))
    return images, probabilities


def traverse_to_image(generator: keras.Model, classifier: keras.Model, z1: ArrayLike,
                      z2: ArrayLike, *, steps: int = DEFAULT_STEPS,
                      extrapolate: int = 0) -> tuple[tf.Tensor, tf.Tensor]:
    """The walk from the counterpart G(z1, 0) (n = 0) to G(z1, z2) itself (n = steps).

    z2 is an inverted code, so the walk takes steps of z2 / steps; `extrapolate`
    continues past the image. Returns what `traverse` returns.
    """
    return traverse(generator, classifier, z1, tf.convert_to_tensor(z2, tf.float32) / steps,
                    steps=steps, step_size=1.0, extrapolate=extrapolate)


def walk_on_image(classifier: keras.Model, walk: ArrayLike,
                  images: ArrayLike) -> tuple[tf.Tensor, tf.Tensor]:
    """The walk as it shows on the patient's own film, and the classifier along it.

    Frame n is the image with the walk's change still to come taken out, x + G(z1, n z2 /
    N) - G(z1, z2), clipped to [0, 1]: frame 0 is the trust rule's add-back (this film
    without the walk's change), frame N the image itself. The GAN's own frames show its
    drawing of a chest; these show this chest, with only what the walk changes moving. The
    default map integrates the classifier's gradient along them. Graph-safe.

    Args:
        classifier: images -> probabilities (B, 2).
        walk: (B, S, H, W, 1) frames from the counterpart to the image (no extrapolation).
        images: (B, H, W, 1).

    Returns:
        frames (B, S, H, W, 1) and their p(positive) (B, S), as tf tensors.
    """
    walk = tf.convert_to_tensor(walk, tf.float32)
    frames = tf.clip_by_value(carried_onto_image(walk, tf.convert_to_tensor(images, tf.float32)),
                              0.0, 1.0)
    flat = tf.reshape(frames, (-1, *frames.shape[2:]))
    return frames, tf.reshape(positive_probability(classifier, flat), tf.shape(walk)[:2])


def crossing_step(probabilities: ArrayLike, threshold: float = 0.5) -> np.ndarray:
    """The first step at which p(positive) reaches `threshold`, or -1 if it never does.

    Args:
        probabilities: (B, S) array.

    Returns:
        (B,) int array.
    """
    above = np.asarray(probabilities) >= threshold
    first = above.argmax(axis=1)
    return np.where(above.any(axis=1), first, -1)


def difference_maps(images: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Signed and absolute last-minus-first maps of traversals (B, S, H, W, C) -> (B, H, W, C)."""
    images = np.asarray(images)
    signed = images[:, -1] - images[:, 0]
    return signed, np.abs(signed)


def make_difference_map_fn(classifier: keras.Model | None = None,
                           layer: str | None = None) -> Callable:
    """The registry's |difference| (`covgan.explain.maps`): walks (B, S, H, W, C) -> the
    walk's last-minus-first change, |.| summed over channels, scaled to a maximum of 1 per
    image. It reads no classifier: everything the GAN changes, read or not."""

    def difference_map(walks):
        walks = tf.convert_to_tensor(walks, tf.float32)
        change = tf.reduce_sum(tf.abs(walks[:, -1] - walks[:, 0]), axis=-1)
        peak = tf.reduce_max(change, axis=(1, 2), keepdims=True)
        return tf.math.divide_no_nan(change, peak)

    return difference_map
