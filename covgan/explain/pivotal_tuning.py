"""Pivotal tuning after Eq. 2 (Roich et al., "Pivotal Tuning for Latent-based Editing of Real
Images", 2021), anchored at the negative counterpart.

Eq. 2 only moves the codes, so whatever G cannot draw from any code stays in the residual
x - G(z1, z2); on the phantoms that is the lesions, the very evidence the classifier uses, and
the walk then explains the GAN's idea of "positive" rather than this radiograph. Here a copy G'
of G is fine-tuned on one image, codes fixed at the inverted (z1, z2) (the pivot):

    min_G'  MSE(G'(z1, z2), x) + anchor_weight * MSE(G'(z1, 0), G(z1, 0))

so G' reproduces the image while its counterpart stays the untuned G's: the detail the codes
could not reach lands in what the walk from z2 = 0 to z2 changes. With `counterpart_fit` the
anchor gives way to fitting the counterpart to the image where the inversion did not miss,
held negative by C (`TuningSettings`), so the walk no longer also redraws the anatomy. With
`layers="branch"` (a gated-residual G) only the branch that z2 turns up is tuned: G'(z1, 0) is
G(z1, 0) exactly, the anchor term is dropped, and a step costs a fraction of a whole-G step.
Adam is written out over slot variables owned here, so one traced loop serves every image:
`tune` reassigns the copy's weights and the slots instead of building new ones.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from covgan.explain.adam import adam_update
from covgan.explain.class_score import feature_convolution, score_model
from covgan.explain.settings import TUNING_THREADS, TuningSettings
from covgan.models import losses
from covgan.models.classifier import positive_probability
from covgan.models.generator import split_at_branch


class PivotalTuner:
    """A reusable copy of G and its compiled tuning loop.

    Example:
        tuner = PivotalTuner(generator, TuningSettings(steps=200))
        tuned = tuner.tune(image, z1, z2)   # valid until the next call
        tuned([z1, z2])                     # ~ image

    Args:
        generator: the run's G; never changed.
        settings: `TuningSettings` (steps > 0).
        classifier: C, for `settings.bce_weight` > 0 (the tuned reconstruction's p held to the
            image's, as Eq. 2 holds the codes') or `settings.feature_weight` > 0 (its
            activations at `settings.feature_layer` held to the image's).
    """

    def __init__(self, generator: keras.Model, settings: TuningSettings,
                 classifier: keras.Model | None = None):
        if settings.steps < 1:
            raise ValueError(f"Pivotal tuning needs steps >= 1. Received: steps={settings.steps}.")
        self.generator = generator
        self.classifier = classifier
        self.settings = settings
        self.tuned = keras.models.clone_model(generator)
        self.tuned.set_weights(generator.get_weights())
        self._branch_only = settings.layers == "branch"
        if self._branch_only:  # split_at_branch refuses a G without a gated branch
            # The trunk runs once per image; each step draws through the branch's head alone.
            self._trunk, self._drawing = split_at_branch(self.tuned)
        else:
            self._drawing = self.tuned
        self._copies = list(zip(self.tuned.weights, generator.weights))
        self._moments = [(tf.Variable(tf.zeros_like(w), trainable=False),
                          tf.Variable(tf.zeros_like(w), trainable=False))
                         for w in self._drawing.trainable_variables]
        self.terms = FitTerms(settings, classifier)
        self._fit = tf.function(self._fit_steps, reduce_retracing=True)
        self.last_loss: tuple[float, float] | None = None

    def tune(self, image: ArrayLike, z1: ArrayLike, z2: ArrayLike) -> keras.Model:
        """Resets the copy to G and fits it to one image at its inverted codes.

        Args:
            image: (1, 128, 128, 1) in [0, 1].
            z1, z2: (1, d1), (1, d2): the image's inversion.

        Returns:
            The tuned copy (this tuner's; the next call overwrites it). `last_loss` then holds
            the objective before and after tuning.
        """
        image, z1, z2 = (tf.convert_to_tensor(np.asarray(a, np.float32)) for a in (image, z1, z2))
        if image.shape[0] != 1 or z1.shape[0] != 1 or z2.shape[0] != 1:
            raise ValueError("Pivotal tuning fits one image at a time. Received: "
                             f"image {image.shape}, z1 {z1.shape}, z2 {z2.shape}.")
        for copy, source in self._copies:
            copy.assign(source)
        for m, v in self._moments:
            m.assign(tf.zeros_like(m))
            v.assign(tf.zeros_like(v))
        anchor = self.generator([z1, tf.zeros_like(z2)], training=False)
        target, seen = self.terms.read(image)
        before, after = self._fit(image, z1, z2, anchor, target, seen,
                                  residual_weights(self.generator, self.settings, image, z1, z2))
        self.last_loss = (float(before), float(after))
        return self.tuned

    def _objective(self, image, inputs, anchor, target, seen, pixel_weights):
        # All of G: rows G'(z1, z2), G'(z1, 0). The branch: G'(z1, z2) from the trunk's parts.
        drawn = self._drawing(inputs, training=False)
        fidelity = self.terms.per_image(drawn[:1], image, target, seen, pixel_weights)[0]
        if self._branch_only:  # the counterpart cannot move
            return fidelity
        if not self.settings.counterpart_fit:
            return fidelity + self.settings.anchor_weight * losses.mean_squared_error(
                drawn[1:], anchor)[0]
        # The image as it would read negative: fitted where the inversion drew it (the focus's
        # weights inverted), free where it missed, and read negative by C.
        kept = 1.0 / pixel_weights
        kept = kept / tf.reduce_mean(kept)
        counterpart = drawn[1:]
        return (fidelity
                + self.settings.counterpart_fit * tf.reduce_mean(
                    kept * tf.square(counterpart - image))
                + self.settings.bce_weight * losses.binary_cross_entropy(
                    tf.zeros([1]), positive_probability(self.classifier, counterpart))[0])

    def _fit_steps(self, image, z1, z2, anchor, target, seen, pixel_weights):
        s = self.settings
        weights = self._drawing.trainable_variables
        if self._branch_only:
            inputs = self._trunk([z1, z2], training=False)
        else:
            inputs = [tf.concat([z1, z1], axis=0), tf.concat([z2, tf.zeros_like(z2)], axis=0)]
        before = self._objective(image, inputs, anchor, target, seen, pixel_weights)
        for step in tf.range(s.steps):
            with tf.GradientTape() as tape:
                loss = self._objective(image, inputs, anchor, target, seen, pixel_weights)
            gradients = tape.gradient(loss, weights)
            t = tf.cast(step + 1, tf.float32)
            for weight, gradient, (m, v) in zip(weights, gradients, self._moments):
                new_m, new_v, update = adam_update(m, v, gradient, t, s.learning_rate)
                m.assign(new_m)
                v.assign(new_v)
                weight.assign_sub(update)
        return before, self._objective(image, inputs, anchor, target, seen, pixel_weights)


class FitTerms:
    """The terms of tuning's objective that fit the reconstruction to the image, each image's
    own (a batch of reconstructions gives one value per image): the pixel fit (weighted by
    `pixel_weights` under residual focus), the classifier-feature term and the classifier term.
    Shared by `PivotalTuner` and the batched branch tuner."""

    def __init__(self, settings: TuningSettings, classifier: keras.Model | None):
        if settings.uses_classifier and classifier is None:
            raise ValueError("Tuning with bce_weight or feature_weight > 0 needs the classifier. "
                             "Received: classifier=None.")
        self.settings = settings
        self.classifier = classifier
        if settings.feature_weight:
            layer = settings.feature_layer or feature_convolution(classifier)
            traced = score_model(classifier, layer).model
            # Only the path to the layer: the rest of C would run every step for nothing.
            self._features = keras.Model(traced.inputs, traced.outputs[0])
            # With the classifier term too, one pass gives both: the layer's activations and
            # p, so the path to the layer (most of C's work) runs once a step, not twice.
            self._seen_and_read = keras.Model(traced.inputs, [traced.outputs[0],
                                                              traced.outputs[2]])

    def read(self, images):
        """What C makes of the images, fixed for every step: p (bce_weight) and the feature
        layer's activations (feature_weight); zeros where the term is off."""
        rows = [tf.shape(images)[0]]
        target = (positive_probability(self.classifier, images) if self.settings.bce_weight
                  else tf.zeros(rows))
        seen = (self._features(images, training=False) if self.settings.feature_weight
                else tf.zeros(rows))
        return target, seen

    def per_image(self, drawn, images, target, seen, pixel_weights):
        """(B,): each reconstruction's fit to its image."""
        s = self.settings
        if s.residual_focus:
            fidelity = _mean_per_image(pixel_weights * tf.square(drawn - images))
        else:
            fidelity = losses.mean_squared_error(drawn, images)
        if s.feature_weight and s.bce_weight:
            drawn_seen, read = self._seen_and_read(drawn, training=False)
            read = tf.cast(read[:, 1], tf.float32)
        elif s.feature_weight:
            drawn_seen = self._features(drawn, training=False)
        elif s.bce_weight:
            read = positive_probability(self.classifier, drawn)
        if s.feature_weight:
            fidelity += s.feature_weight * _mean_per_image(tf.square(drawn_seen - seen)) / (
                _mean_per_image(tf.square(seen)) + 1e-8)
        if s.bce_weight:
            fidelity += s.bce_weight * losses.binary_cross_entropy(target, read)
        return fidelity


def residual_weights(generator, settings: TuningSettings, images, z1, z2):
    """Each pixel's weight in the fit, mean 1 in each image: 1 + residual_focus * |r| /
    mean|r| for the untuned residual r = x - G(z1, z2) (all ones without focus)."""
    if not settings.residual_focus:
        return tf.ones_like(images)
    missed = tf.abs(images - generator([z1, z2], training=False))
    weights = 1.0 + settings.residual_focus * missed / (
        tf.reduce_mean(missed, axis=[1, 2, 3], keepdims=True) + 1e-8)
    return weights / tf.reduce_mean(weights, axis=[1, 2, 3], keepdims=True)


def _mean_per_image(values):
    """(B, ...) -> (B,): the mean over all but the first axis."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


@functools.lru_cache(maxsize=2 * TUNING_THREADS)
def tuner_for(generator: keras.Model, settings: TuningSettings,
              classifier: keras.Model | None = None, slot: int = 0) -> PivotalTuner:
    """The tuner of (G, settings), kept for the next call: building one clones G and traces
    its loop (seconds), and an audit or a localisation over seeds explains batch after batch
    with the same G. `slot` tells apart the tuners of images tuned at the same time (each has
    its own copy of G). Kept: every slot of a run's G and of, at most, one other."""
    return PivotalTuner(generator, settings, classifier)
