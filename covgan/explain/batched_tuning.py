"""Pivotal tuning of a gated G's branch for many images at once.

`PivotalTuner` fits one image at a time: a step is a batch of one, a few thousand weights and
one pass through C's feature path, too small to keep even 2 cores busy. Here K images are
tuned in one loop, each by its own copy of the branch: the copies are stacked weights
(K, *shape), the branch runs with row k's weights on image k (`per_row_weights`), and the sum
of the images' objectives gives each copy its own image's gradient, to rounding
(tests/explain/test_batched_tuning.py). The objective, the learning rate and Adam are
`PivotalTuner`'s with layers="branch"; the weights are not the same to the digit (Adam's
normalised steps carry the grouped convolution's other rounding into other paths), the fit is
as good (docs/results/performance.md, Batched tuning).

Only the branch: tuning all of G per image would stack every weight of G K times, and its
counterpart terms differ. Where grouped convolutions have no gradient (TF's CPU kernels
without oneDNN), `batched_tuning_works` is False and the commands tune one image at a time
per tuner, TUNING_THREADS tuners at once.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from covgan.explain.adam import adam_update
from covgan.explain.per_row_weights import (
    check_supported,
    grouped_convolution_gradients_work,
    per_row_call,
    stacked,
)
from covgan.explain.pivotal_tuning import FitTerms, residual_weights
from covgan.explain.settings import TuningSettings
from covgan.models.generator import residual_branch_layers, split_at_branch


class BranchFit:
    """The batched fit of a gated G's branch as functions of tensors, with no variables of its
    own: `BatchedBranchTuner` compiles it, and the exported explain signature runs it inside its
    graph (covgan.export.signatures), so both tune the same way.

    Args:
        generator: the run's G, with a gated branch; never changed.
        settings: `TuningSettings` with layers="branch".
        classifier: C, where the settings have a classifier term.
        convolution: how the per-row branch convolves while fitting (per_row_weights.
            CONVOLUTIONS): "grouped" where grouped convolutions have gradients here
            (`batched_tuning_works`), "patches" in a graph that must run anywhere.
    """

    def __init__(self, generator: keras.Model, settings: TuningSettings,
                 classifier: keras.Model | None = None, convolution: str = "grouped"):
        if settings.layers != "branch":
            raise ValueError(f"Batched tuning fits a gated G's branch. Received: {settings}.")
        self.generator = generator
        self.settings = settings
        self.convolution = convolution
        # G's own layers: the stacked copies are tensors of the loop, G's variables stay put.
        self.trunk, self.head = split_at_branch(generator)
        check_supported(self.head)
        self.terms = FitTerms(settings, classifier)

    def fit(self, images, z1, z2, steps):
        """Each image's own copy of the branch, fitted for `steps` (a tensor) Adam steps at
        its codes. Returns (weights: the stacked copies, in the order of the head's trainable
        variables, (K, *shape) each; the objective before (K,); after (K,))."""
        target, seen = self.terms.read(images)
        pixel_weights = residual_weights(self.generator, self.settings, images, z1, z2)
        inputs = self.trunk([z1, z2], training=False)

        def objective(weights):  # (K,): each image's own, through its own branch
            drawn = per_row_call(self.head, weights, inputs, self.convolution)
            return self.terms.per_image(drawn, images, target, seen, pixel_weights)

        start = stacked(self.head, tf.shape(images)[0])
        zeros = [tf.zeros_like(w) for w in start]

        def step(t, weights, first, second):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                # The sum: each copy's gradient is its own image's (no copy reaches another).
                loss = tf.reduce_sum(objective(weights))
            gradients = tape.gradient(loss, weights)
            moved = [adam_update(m, v, g, tf.cast(t + 1, tf.float32), self.settings.learning_rate)
                     for m, v, g in zip(first, second, gradients)]
            return (t + 1, [w - update for w, (_, _, update) in zip(weights, moved)],
                    [m for m, _, _ in moved], [v for _, v, _ in moved])

        _, weights, _, _ = tf.while_loop(lambda t, *_: t < steps, step,
                                         [tf.constant(0), start, zeros, list(zeros)])
        return weights, objective(start), objective(weights)

    def draw(self, weights, z1, z2):
        """G(z1, z2) with row k drawn by weights[.][k] (K rows, or 1 shared by every row);
        forward only, so the grouped convolution serves on every device."""
        return per_row_call(self.head, weights, self.trunk([z1, z2], training=False))


class BatchedBranchTuner:
    """Tunes a gated G's branch for a batch of images, one copy of the branch per image.

    Example:
        tuner = BatchedBranchTuner(generator, tuning_settings(True), classifier)
        tuner.tune(images, z1, z2)            # K images and their inverted codes
        tuned = tuner.with_branch_of(k)       # G with image k's tuned branch
        tuned([z1[k:k + 1], z2[k:k + 1]])     # ~ images[k]

    Args:
        generator: the run's G, with a gated branch; never changed.
        settings: `TuningSettings` with layers="branch" and steps > 0.
        classifier: C, where the settings have a classifier term.
    """

    def __init__(self, generator: keras.Model, settings: TuningSettings,
                 classifier: keras.Model | None = None):
        if settings.steps < 1 or settings.layers != "branch":
            raise ValueError("Batched tuning fits a gated G's branch for steps >= 1. Received: "
                             f"{settings}.")
        self.generator = generator
        self.settings = settings
        self.branch_fit = BranchFit(generator, settings, classifier)
        self.terms = self.branch_fit.terms
        self._fit = tf.function(self.branch_fit.fit, reduce_retracing=True)
        # One G whose branch takes each image's tuned weights in turn (`with_branch_of`).
        self.tuned = keras.models.clone_model(generator)
        self.tuned.set_weights(generator.get_weights())
        self._tuned_branch = split_at_branch(self.tuned)[1].trainable_variables
        self.last_weights: list[np.ndarray] | None = None
        self.last_loss: np.ndarray | None = None

    def tune(self, images: ArrayLike, z1: ArrayLike, z2: ArrayLike,
             steps: int | None = None) -> np.ndarray:
        """Fits a copy of the branch to each image at its inverted codes.

        Args:
            images: (K, 128, 128, 1) in [0, 1].
            z1, z2: (K, d1), (K, d2): their inversions.
            steps: this call's steps in place of the settings' (one traced loop runs any
                number: a benchmark times tunings of several lengths).

        Returns:
            (K, 2): each image's objective before and after tuning (also `last_loss`); the
            tuned branches are kept for `with_branch_of` until the next call.
        """
        images, z1, z2 = (tf.convert_to_tensor(np.asarray(a, np.float32)) for a in (images, z1, z2))
        if not images.shape[0] == z1.shape[0] == z2.shape[0]:
            raise ValueError("Batched tuning needs one pair of codes per image. Received: "
                             f"images {images.shape}, z1 {z1.shape}, z2 {z2.shape}.")
        weights, before, after = self._fit(
            images, z1, z2, tf.constant(self.settings.steps if steps is None else steps))
        self.last_weights = [w.numpy() for w in weights]
        self.last_loss = np.stack([before.numpy(), after.numpy()], axis=1)
        return self.last_loss

    def with_branch_of(self, index: int) -> keras.Model:
        """This tuner's copy of G with image `index`'s tuned branch from the last `tune` (the
        copy is shared: the next call changes it)."""
        if self.last_weights is None:
            raise ValueError("Nothing is tuned yet: call tune first.")
        for variable, weights in zip(self._tuned_branch, self.last_weights):
            variable.assign(weights[index])
        return self.tuned


def batched_tuning_works(generator: keras.Model, settings: TuningSettings) -> bool:
    """Whether `BatchedBranchTuner` can tune this G with these settings here: a gated G's
    branch of layers it can run per image, computing in float32, and grouped convolutions
    with a gradient."""
    if settings.layers != "branch" or not settings.steps or not residual_branch_layers(generator):
        return False
    head = split_at_branch(generator)[1]
    try:
        check_supported(head)
    except ValueError:
        return False
    # Under a mixed policy the layers compute in another dtype than the stacked float32 copies.
    if any(layer.compute_dtype != "float32" for layer in head.layers if layer.weights):
        return False
    return grouped_convolution_gradients_work()


@functools.lru_cache(maxsize=2)
def batched_tuner_for(generator: keras.Model, settings: TuningSettings,
                      classifier: keras.Model | None = None) -> BatchedBranchTuner:
    """The batched tuner of (G, settings), kept for the next call (building one clones G and
    traces its loop; an audit or a localisation tunes batch after batch with the same G)."""
    return BatchedBranchTuner(generator, settings, classifier)
