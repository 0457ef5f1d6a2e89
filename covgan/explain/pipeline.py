"""One radiograph (or a batch) explained: inversion, traversal and every explanation map.

A pure function of arrays and models; the `covgan explain` command writes the files.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from covgan.explain.batched_tuning import batched_tuner_for, batched_tuning_works
from covgan.explain.invert import InversionSettings, invert, make_inversion_fn, score_inversion
from covgan.explain.maps import build_map, explanation_maps
from covgan.explain.pivotal_tuning import tuner_for
from covgan.explain.settings import TUNING_BATCH, TUNING_THREADS, TuningSettings
from covgan.explain.traverse import (
    DEFAULT_STEPS,
    crossing_step,
    difference_maps,
    traverse_to_image,
    walk_on_image,
)

# Images explained at a time (progress is reported after each): a tuning batch, so the tuning
# groups the images as one call would, and the inversion's starts follow each image. 32 RSNA
# films with explain's defaults took 217 s in chunks of 16 and 210 s in one (a throw-away
# measurement, one run each).
PROGRESS_CHUNK = TUNING_BATCH


def explain(generator: keras.Model, classifier: keras.Model, images: ArrayLike, *,
            settings: InversionSettings = InversionSettings(), steps: int = DEFAULT_STEPS,
            extrapolate: int = 0, layer: str | None = None, seed: int = 0,
            image_maps: bool = True, encoder: keras.Model | None = None,
            tuning: TuningSettings = TuningSettings(),
            progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Everything the report shows, for every image.

    Args:
        generator: the run's G.
        classifier: the run's (adapted) C.
        images: (N, 128, 128, 1) in [0, 1].
        settings: inversion settings (Eq. 2).
        steps: the walk's steps: n * z2 / steps for n = 0..steps.
        extrapolate: steps the walk goes on past the image (n = steps + 1, ...).
        layer: Grad-CAM layer (default: the last convolution).
        seed: seed of the inversion's random starts.
        encoder: the run's E, for `settings.z1_start` "encoder".
        image_maps: also compute the maps of the image alone (Grad-CAM, input gradient,
            Integrated Gradients), which no inversion changes; False leaves them out, for a
            caller that repeats the inversion with other seeds.
        tuning: pivotal tuning after the inversion (`TuningSettings`; steps 0: none). With it,
            each image's scores, walk and maps come from its own tuned copy of G.
        progress: called with the number of images just explained, after each PROGRESS_CHUNK
            (the images are explained that many at a time; an image's starts follow the image
            and its tuning batch is the same, so the result is the whole batch's).

    Returns:
        `invert`'s dict plus: traversal (N, S, 128, 128, 1), traversal_probabilities (N, S),
        crossing_step (N,), difference (signed, last minus first step, N, 128, 128, 1),
        film_walk (N, steps + 1, 128, 128, 1: the walk to the image carried onto the image
        itself, `walk_on_image`) and film_walk_probabilities (N, steps + 1),
        and every registered map (`covgan.explain.maps`), (N, 128, 128) in [0, 1] under its
        key: traversal_map (|difference|), latent_gradients, film_gradients (the default:
        latent gradients taken on the walk carried onto the image), gradcam, saliency (the input
        gradient), integrated_gradients. They are the exported explain signature's output
        names (covgan.explain.in_graph computes the same in one graph), so a server's answer
        reads the same. With tuning, also ssim_untuned and trusted_untuned (the
        inversion's own, before tuning) and tuning_loss (N, 2: the objective before, after).
    """
    images = np.asarray(images, np.float32)
    if len(images) > PROGRESS_CHUNK:
        parts = []
        for start in range(0, len(images), PROGRESS_CHUNK):
            chunk = images[start : start + PROGRESS_CHUNK]
            parts.append(explain(generator, classifier, chunk, settings=settings, steps=steps,
                                 extrapolate=extrapolate, layer=layer, seed=seed,
                                 image_maps=image_maps, encoder=encoder, tuning=tuning,
                                 progress=progress))
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    result = invert(generator, classifier, images, settings=settings, seed=seed, encoder=encoder,
                    solver=_compiled(make_inversion_fn, generator, classifier, settings,
                                     rows=len(images)))
    if tuning.steps and tuning.where == "all":
        result, traversal, probabilities = _tune_each(generator, classifier, images, result,
                                                      tuning, steps, extrapolate)
    else:
        traversal, probabilities = traverse_to_image(generator, classifier, result["z1"],
                                                     result["z2"], steps=steps,
                                                     extrapolate=extrapolate)
        traversal, probabilities = traversal.numpy(), probabilities.numpy()
        if tuning.steps:  # --tune-where untrusted: the untrusted rows tuned, the others kept
            untrusted = ~np.asarray(result["trusted"], bool)
            result, traversal, probabilities = _tune_some(
                generator, classifier, images, result, traversal, probabilities, untrusted,
                tuning, steps, extrapolate)
    at_image = traversal[:, : steps + 1]
    signed, _ = difference_maps(at_image)
    film_walk, film_walk_probabilities = walk_on_image(classifier, at_image, images)
    explained = {
        **result,
        "traversal": traversal,
        "traversal_probabilities": probabilities,
        "crossing_step": crossing_step(probabilities),
        "difference": signed,
        "film_walk": film_walk.numpy(),
        "film_walk_probabilities": film_walk_probabilities.numpy(),
    }
    for record in explanation_maps():
        if record.needs_walk or image_maps:
            explained[record.key] = _chunked(
                # Keyed by the map's `make`: the two latent-gradient maps share one function.
                lambda rows, make=record.make: _compiled(build_map, make, classifier, layer,
                                                         rows=rows),
                record.inputs(at_image, images), record.chunk)
    if progress:
        progress(len(images))
    return explained


def _tune_some(generator, classifier, images, result, traversal, probabilities, tuned, tuning,
               steps, extrapolate):
    """The untuned result, walks and probabilities with the `tuned` rows replaced by their
    tuned ones; every row gets ssim_untuned and trusted_untuned, the untuned rows a NaN
    tuning_loss: a tuned result's keys even where no row is tuned, so chunks concatenate."""
    part, walks, walk_probabilities = {}, None, None
    if tuned.any():
        part = {key: np.asarray(value)[tuned] for key, value in result.items()}
        part, walks, walk_probabilities = _tune_each(generator, classifier, images[tuned],
                                                     part, tuning, steps, extrapolate)
    merged = {key: np.array(value, copy=True) for key, value in result.items()}
    merged["ssim_untuned"] = np.asarray(result["ssim"]).copy()
    merged["trusted_untuned"] = np.asarray(result["trusted"]).copy()
    merged["tuning_loss"] = np.full((len(tuned), 2), np.nan, np.float32)
    for key, value in part.items():
        merged[key][tuned] = value
    if tuned.any():
        traversal, probabilities = traversal.copy(), probabilities.copy()
        traversal[tuned], probabilities[tuned] = walks, walk_probabilities
    return merged, traversal, probabilities


def _tune_each(generator, classifier, images, result, tuning, steps, extrapolate):
    """Pivotal tuning of every image (TUNING_BATCH at once where `batched_tuning_works`, else
    one at a time per tuner, TUNING_THREADS of them at once); then each image's scores and
    walk through its own tuned copy of G. Returns the updated result, the walks and their
    probabilities."""
    tune = _tune_in_batches if batched_tuning_works(generator, tuning) else _tune_in_threads
    done = tune(generator, classifier, images, result["z1"], result["z2"], tuning, steps,
                extrapolate)
    scores, walks, walk_probabilities, tuning_loss = zip(*done)
    tuned_scores = {key: np.concatenate([np.asarray(s[key]) for s in scores])
                    for key in scores[0]}
    result = {**result, **tuned_scores, "ssim_untuned": result["ssim"],
              "trusted_untuned": result["trusted"],
              "tuning_loss": np.asarray(tuning_loss, np.float32)}
    return result, np.concatenate(walks), np.concatenate(walk_probabilities)


def _tune_in_batches(generator, classifier, images, z1, z2, tuning, steps, extrapolate):
    """Each image's (scores, walk, p, tuning loss), its branch tuned with TUNING_BATCH - 1
    others'."""
    tuner = batched_tuner_for(generator, tuning, classifier if tuning.uses_classifier else None)
    scored_walk = _compiled(_make_scored_walk_fn, tuner.tuned, classifier, steps, extrapolate)
    done = []
    for start in range(0, len(images), TUNING_BATCH):
        batch = slice(start, start + TUNING_BATCH)
        losses = tuner.tune(images[batch], z1[batch], z2[batch])
        for k, i in enumerate(range(start, start + len(losses))):
            tuner.with_branch_of(k)
            score, walk, p = scored_walk(*(a[i : i + 1] for a in (images, z1, z2)))
            done.append((score, walk.numpy(), p.numpy(), tuple(losses[k])))
    return done


def _tune_in_threads(generator, classifier, images, z1, z2, tuning, steps, extrapolate):
    """Each image's (scores, walk, p, tuning loss), tuned alone by one of TUNING_THREADS
    tuners running at once."""
    done = [None] * len(images)
    threads = min(TUNING_THREADS, len(images))  # a tuner not needed is not built

    def tune_every(slot):
        tuner = tuner_for(generator, tuning, classifier if tuning.uses_classifier else None,
                          slot)
        # The tuner's copy is one model whose weights change in place: compiled once, reused.
        scored_walk = _compiled(_make_scored_walk_fn, tuner.tuned, classifier, steps,
                                extrapolate)
        for i in range(slot, len(images), threads):
            image, z1_i, z2_i = (a[i : i + 1] for a in (images, z1, z2))
            tuner.tune(image, z1_i, z2_i)
            score, walk, p = scored_walk(image, z1_i, z2_i)
            done[i] = (score, walk.numpy(), p.numpy(), tuner.last_loss)

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for finished in [pool.submit(tune_every, slot) for slot in range(threads)]:
            finished.result()  # raises what the thread raised
    return done


@functools.lru_cache(maxsize=32)
def _compiled(make, *arguments, rows=None):
    """`make(*arguments)`, kept: each of these builds a tf.function, and a new one traces
    again (seconds for the inversion's solver) where an audit or a localisation explains batch
    after batch with the same models and settings.

    One function per batch size (`rows`, part of the key only): a tf.function called at a
    second size retraces with relaxed shapes and computes slightly differently, and the
    inversion amplifies that, so an image's explanation would depend on the batch sizes the
    process met before. Kept apart, it depends on its own batch alone: the same in one
    command, in a long audit, and in any Beam worker."""
    return make(*arguments)


def _make_scored_walk_fn(generator, classifier, steps, extrapolate):
    """Compiles one image's `score_inversion` and walk (image, z1, z2) -> (scores, walk, p):
    run eagerly after each image's tuning they took a sixth as long as the tuning itself."""

    @tf.function(reduce_retracing=True)
    def scored_walk(image, z1, z2):
        walk, p = traverse_to_image(generator, classifier, z1, z2, steps=steps,
                                    extrapolate=extrapolate)
        return score_inversion(generator, classifier, image, z1, z2), walk, p

    return scored_walk


def _chunked(function_for, inputs, chunk):
    """`function_for(rows)` over `inputs` `chunk` images at a time (0: all at once),
    concatenated as numpy: some maps expand each image into many classifier inputs."""
    chunk = chunk or len(inputs)
    parts = [inputs[i : i + chunk] for i in range(0, len(inputs), chunk)]
    return np.concatenate([np.asarray(function_for(len(part))(part)) for part in parts])
