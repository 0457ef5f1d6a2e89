"""The explanation as one TensorFlow graph, for the exported explain signature.

`covgan explain` with its defaults inverts each image, tunes a gated G's branch per image
where the trust rule does not trust the untuned explanation, walks from the counterpart to
the image (through the tuned branch where there is one), computes every registered map and
judges trust on the reconstruction the walk ends at (covgan.explain.pipeline). Here the same
steps are written with tensors alone, so a SavedModel signature computes them under the stock
TF Serving model server:

- the inversion's random starts come from TensorFlow's stateless generator, seeded by the
  seed and each image's fingerprint (`stateless_starts`, as `invert`), so an image gets the
  same starts from `covgan explain`, from any request and from any split of one;
- each row's branch is tuned on its own stacked copy of the branch weights (`BranchFit`, as
  the batched tuner); `convolution` "grouped" is the batched tuner's own arithmetic, "patches"
  has a gradient on every TF build (TF's own CPU kernels refuse grouped-convolution
  gradients) and reaches an equally good fit by another path (on 8 RSNA films, 400 steps: the
  tuned reconstructions differed by 0.011 on average against a residual of 0.038, the
  objectives by under 5%; one throw-away measurement);
- the walk and the scores are drawn through each row's tuned branch (forward only);
- with `TuningSettings.where` "untrusted" only the untrusted rows are gathered and tuned, and
  their scores and walks scattered back over the untuned ones (none where all are trusted).

Nothing assigns a variable, so concurrent requests share nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from covgan.explain.batched_tuning import BranchFit
from covgan.explain.invert import (
    InversionSettings,
    best_restarts,
    make_inversion_fn,
    score_drawn,
    score_inversion,
    stateless_starts,
)
from covgan.explain.maps import explanation_maps
from covgan.explain.settings import DEFAULT_STEPS, TuningSettings
from covgan.explain.traverse import traversal_codes, traversal_scales
from covgan.models.classifier import positive_probability
from covgan.models.generator import code_sizes, residual_branch_layers
from covgan.shapes import IMAGE_SHAPE


def make_graph_inversion(generator: keras.Model, classifier: keras.Model,
                         settings: InversionSettings, seed: int,
                         encoder: keras.Model | None = None) -> Callable:
    """images -> (z1, z2, loss, steps) of each image's best start, as `invert` finds them with
    the same seed (`stateless_starts`: the starts follow each image). A tf.function: the
    signatures that call it share its trace (the inversion is most of an export's tracing
    time)."""
    if settings.z1_start == "encoder" and encoder is None:
        raise ValueError("The inversion starts at the encoder but no encoder was given. "
                         "Received: encoder=None.")
    solve = make_inversion_fn(generator, classifier, settings)
    d1, d2 = code_sizes(generator)
    restarts = max(1, settings.restarts)

    @tf.function(reduce_retracing=True)
    def inversion(images):
        encoded = encoder(images, training=False) if settings.z1_start == "encoder" else None
        starts = stateless_starts(images, restarts, d1, d2, settings, seed, encoded)
        z1, z2, loss, ran = solve(tf.repeat(images, restarts, axis=0), *starts)
        pick = best_restarts(loss, restarts)
        return tuple(tf.gather(t, pick) for t in (z1, z2, loss, ran))

    return inversion


def graph_tuning_works(generator: keras.Model, tuning: TuningSettings) -> bool:
    """Whether the graph can tune this G with these settings: a gated G's branch only (tuning
    all of G per row would stack every weight of G per image)."""
    return bool(tuning.steps) and tuning.layers == "branch" and bool(
        residual_branch_layers(generator))


def make_graph_explain(generator: keras.Model, classifier: keras.Model, *,
                       inversion: InversionSettings = InversionSettings(),
                       tuning: TuningSettings = TuningSettings(), steps: int = DEFAULT_STEPS,
                       seed: int = 0, layer: str | None = None,
                       encoder: keras.Model | None = None,
                       invert: Callable | None = None,
                       convolution: str = "grouped") -> Callable:
    """explain(images, tune=True): images (B, 128, 128, 1) -> `covgan.explain.pipeline.
    explain`'s dict, as tensors; tune=False (a Python bool) leaves the tuning out.

    Args:
        tuning: per-image tuning of a gated G's branch (steps 0: none; `where` "untrusted":
            only the rows the trust rule does not trust untuned, the others keep their untuned
            walk); anything else is refused (`graph_tuning_works`).
        steps: the walk's steps to the image (S = steps + 1 frames), no extrapolation.
        seed: the inversion's seed.
        layer: Grad-CAM's layer (None: the last convolution).
        invert: a `make_graph_inversion` of the same settings to share (its trace).
        convolution: how the tuning convolves per image (per_row_weights.CONVOLUTIONS).

    The outputs: invert's (z1, z2, loss, steps, reconstructions, counterparts,
    probabilities, mse, ssim, add_backs, add_back_probabilities, trusted), traversal (B, S,
    128, 128, 1), traversal_probabilities (B, S), difference (B, 128, 128, 1), every
    registered map under its key, and with tuning ssim_untuned, trusted_untuned and
    tuning_loss (B, 2).
    """
    if tuning.steps and not graph_tuning_works(generator, tuning):
        raise ValueError("The served explanation tunes a gated G's branch only. Received: "
                         f"{tuning} for a G with"
                         f"{'' if residual_branch_layers(generator) else 'out'} a gated branch.")
    invert = invert or make_graph_inversion(generator, classifier, inversion, seed, encoder)
    fit = BranchFit(generator, tuning, classifier, convolution) if tuning.steps else None
    scales = tf.constant(traversal_scales(steps, 1.0 / steps))
    maps = [(record, record.build(classifier, layer)) for record in explanation_maps()]

    def explain(images, tune=True):
        tuned = tune and fit is not None
        count = tf.shape(images)[0]
        z1, z2, loss, ran = invert(images)
        scores = score_inversion(generator, classifier, images, z1, z2)
        codes1, codes2 = traversal_codes(z1, z2, scales)
        frames_per_image = scales.shape[0]
        extra = {}
        if tuned and tuning.where == "all":
            weights, before, after = fit.fit(images, z1, z2, tf.constant(tuning.steps))
            extra = {"ssim_untuned": scores["ssim"], "trusted_untuned": scores["trusted"],
                     "tuning_loss": tf.stack([before, after], axis=1)}
            # The branch is multiplied by 0 at z2 = 0: the counterpart is the untuned G's.
            scores = score_drawn(classifier, images, z1, z2, fit.draw(weights, z1, z2),
                                 scores["counterparts"])
            frames = fit.draw([tf.repeat(w, frames_per_image, axis=0) for w in weights],
                              codes1, codes2)
        else:
            frames = generator([codes1, codes2], training=False)
        walk_p = tf.reshape(positive_probability(classifier, frames), (count, frames_per_image))
        walk = tf.reshape(frames, (count, frames_per_image, *IMAGE_SHAPE))
        if tuned and tuning.where == "untrusted":
            scores, extra, walk, walk_p = _tune_untrusted(fit, classifier, tuning.steps, scales,
                                                          images, z1, z2, scores, walk, walk_p)
        result = {**scores, **extra, "loss": loss, "steps": ran, "traversal": walk,
                  "traversal_probabilities": walk_p, "difference": walk[:, -1] - walk[:, 0]}
        for record, function in maps:
            result[record.key] = function(walk if record.needs_walk else images)
        return result

    return explain


def _tune_untrusted(fit, classifier, steps, scales, images, z1, z2, scores, walk, walk_p):
    """The untuned scores and walks with the rows the trust rule does not trust replaced by
    their tuned ones (`TuningSettings.where` "untrusted", as pipeline._tune_some): only those
    rows are tuned (`fit`, `steps` Adam steps), and none where every row is trusted. The
    untuned rows get a NaN tuning_loss. Returns (scores, extra, walk, walk_p)."""
    rows = tf.where(tf.logical_not(scores["trusted"]))[:, 0]
    picked = [tf.gather(t, rows) for t in (images, z1, z2, scores["counterparts"])]
    frames_per_image = scales.shape[0]

    def tune_rows():
        part_images, part_z1, part_z2, counterparts = picked
        weights, before, after = fit.fit(part_images, part_z1, part_z2, tf.constant(steps))
        part = score_drawn(classifier, part_images, part_z1, part_z2,
                           fit.draw(weights, part_z1, part_z2), counterparts)
        codes1, codes2 = traversal_codes(part_z1, part_z2, scales)
        frames = fit.draw([tf.repeat(w, frames_per_image, axis=0) for w in weights],
                          codes1, codes2)
        frames_p = positive_probability(classifier, frames)
        return (part, tf.reshape(frames, (-1, *walk.shape[1:])),
                tf.reshape(frames_p, (-1, frames_per_image)), tf.stack([before, after], 1))

    def tune_none():  # the same structure with no rows
        return ({key: tf.gather(value, rows) for key, value in scores.items()},
                tf.gather(walk, rows), tf.gather(walk_p, rows), tf.zeros([0, 2]))

    part, part_walk, part_walk_p, part_loss = tf.cond(tf.size(rows) > 0, tune_rows, tune_none)
    at = rows[:, None]

    def replaced(untuned, tuned_rows):
        return tf.tensor_scatter_nd_update(untuned, at, tf.cast(tuned_rows, untuned.dtype))

    no_loss = tf.fill([tf.shape(images)[0], 2], float("nan"))
    extra = {"ssim_untuned": scores["ssim"], "trusted_untuned": scores["trusted"],
             "tuning_loss": replaced(no_loss, part_loss)}
    merged = {key: replaced(value, part[key]) for key, value in scores.items()}
    return merged, extra, replaced(walk, part_walk), replaced(walk_p, part_walk_p)
