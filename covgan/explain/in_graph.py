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
from covgan.explain.traverse import traversal_codes, traversal_scales, walk_on_image
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
    128, 128, 1), traversal_probabilities (B, S), difference (B, 128, 128, 1), film_walk
    (B, S, 128, 128, 1) and film_walk_probabilities (B, S) (`walk_on_image`), every
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
        z1, z2, loss, ran = invert(images)
        scores = score_inversion(generator, classifier, images, z1, z2)
        untuned = {"ssim_untuned": scores["ssim"], "trusted_untuned": scores["trusted"]}
        if tuned and tuning.where == "all":
            scores, walk, walk_p, tuning_loss = _tuned(fit, classifier, tuning.steps, scales,
                                                       images, z1, z2, scores["counterparts"])
            extra = {**untuned, "tuning_loss": tuning_loss}
        else:
            walk, walk_p = untuned_walk(generator, classifier, scales, z1, z2)
            extra = {}
        if tuned and tuning.where == "untrusted":
            scores, walk, walk_p, tuning_loss = _tune_untrusted(
                fit, classifier, tuning.steps, scales, images, z1, z2, scores, walk, walk_p)
            extra = {**untuned, "tuning_loss": tuning_loss}
        film_walk, film_walk_p = walk_on_image(classifier, walk, images)
        result = {**scores, **extra, "loss": loss, "steps": ran, "traversal": walk,
                  "traversal_probabilities": walk_p, "difference": walk[:, -1] - walk[:, 0],
                  "film_walk": film_walk, "film_walk_probabilities": film_walk_p}
        for record, function in maps:
            result[record.key] = function(record.inputs(walk, images))
        return result

    return explain


def untuned_walk(generator, classifier, scales, z1, z2):
    """`_walk` drawn by G itself (the explanation's untuned walk and the traverse signature)."""
    return _walk(lambda codes1, codes2: generator([codes1, codes2], training=False), classifier,
                 scales, z1, z2)


def _walk(draw, classifier, scales, z1, z2):
    """Each row's walk (B, S, 128, 128, 1) and its p(positive) (B, S), drawn by `draw`:
    (codes1, codes2) -> images, one frame per scale of z2."""
    frames_per_image = scales.shape[0]
    codes1, codes2 = traversal_codes(z1, z2, scales)
    frames = draw(codes1, codes2)
    walk_p = tf.reshape(positive_probability(classifier, frames), (-1, frames_per_image))
    return tf.reshape(frames, (-1, frames_per_image, *IMAGE_SHAPE)), walk_p


def _tuned(fit, classifier, steps, scales, images, z1, z2, counterparts):
    """Every row's branch tuned `steps` Adam steps, then its scores and walk through its own
    tuned branch. Returns (scores, walk, walk_p, tuning_loss (B, 2): before, after)."""
    weights, before, after = fit.fit(images, z1, z2, tf.constant(steps))
    # The branch is multiplied by 0 at z2 = 0: the counterpart is the untuned G's.
    scores = score_drawn(classifier, images, z1, z2, fit.draw(weights, z1, z2), counterparts)
    repeated = [tf.repeat(w, scales.shape[0], axis=0) for w in weights]
    walk, walk_p = _walk(lambda codes1, codes2: fit.draw(repeated, codes1, codes2),
                         classifier, scales, z1, z2)
    return scores, walk, walk_p, tf.stack([before, after], axis=1)


def _tune_untrusted(fit, classifier, steps, scales, images, z1, z2, scores, walk, walk_p):
    """The untuned scores and walks with the rows the trust rule does not trust replaced by
    their `_tuned` ones (`TuningSettings.where` "untrusted", as pipeline._tune_some): only those
    rows are tuned, and none where every row is trusted. Returns (scores, walk, walk_p,
    tuning_loss), the untuned rows' tuning_loss NaN."""
    rows = tf.where(tf.logical_not(scores["trusted"]))[:, 0]
    picked = [tf.gather(t, rows) for t in (images, z1, z2, scores["counterparts"])]

    def tune_rows():
        return _tuned(fit, classifier, steps, scales, *picked)

    def tune_none():  # the same structure with no rows
        return ({key: tf.gather(value, rows) for key, value in scores.items()},
                tf.gather(walk, rows), tf.gather(walk_p, rows), tf.zeros([0, 2]))

    part, part_walk, part_walk_p, part_loss = tf.cond(tf.size(rows) > 0, tune_rows, tune_none)
    at = rows[:, None]

    def replaced(untuned, tuned_rows):
        return tf.tensor_scatter_nd_update(untuned, at, tf.cast(tuned_rows, untuned.dtype))

    no_loss = tf.fill([tf.shape(images)[0], 2], float("nan"))
    merged = {key: replaced(value, part[key]) for key, value in scores.items()}
    return (merged, replaced(walk, part_walk), replaced(walk_p, part_walk_p),
            replaced(no_loss, part_loss))
