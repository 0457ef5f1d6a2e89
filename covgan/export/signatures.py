"""The serving signatures as pure tf.functions: generate, traverse, invert, explain,
explain_untuned; classify, gradcam.

Each takes batched, named tensors and returns a dict of named tensors (the keys
are the contract in docs/guide/serving.md and docs/design.md). Nothing here assigns a
variable: loops carry their state as tensors, and the inversion's random starts
come from a stateless generator seeded by the export, so concurrent requests
share nothing and the same request always gets the same answer.

Every signature first rejects NaN or infinite inputs with InvalidArgumentError,
which TF Serving and `covgan serve` both answer with INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from covgan.explain.gradcam import make_gradcam_fn
from covgan.explain.in_graph import (
    graph_tuning_works,
    make_graph_explain,
    make_graph_inversion,
    untuned_walk,
)
from covgan.explain.invert import score_inversion
from covgan.explain.per_row_weights import grouped_convolution_gradients_work
from covgan.explain.settings import TuningSettings, tuning_settings
from covgan.explain.traverse import traversal_scales
from covgan.export.settings import ServingSettings
from covgan.models.classifier import positive_probability
from covgan.models.generator import code_sizes, residual_branch_layers
from covgan.shapes import IMAGE_SHAPE

__all__ = ["ServingSettings", "generator_signatures", "classifier_signatures", "served_tuning",
           "served_convolution"]

GENERATOR_SIGNATURES = ("serving_default", "traverse", "invert", "explain", "explain_untuned")
CLASSIFIER_SIGNATURES = ("serving_default", "gradcam")


def _finite(tensor, name):
    return tf.debugging.check_numerics(tensor, f"{name} contains NaN or Inf")


def generator_signatures(generator: keras.Model, classifier: keras.Model,
                         settings: ServingSettings = ServingSettings(),
                         encoder: keras.Model | None = None) -> dict[str, Callable]:
    """The covgan_generator model's signatures: {name: tf.function with an input signature}.

    explain computes what `covgan explain` computes with its defaults (covgan.explain.
    in_graph): the inversion, the per-image tuning of a gated G's branch (`served_tuning`: by
    default of the images the trust rule does not trust untuned), the walk through each tuned
    image's own branch, every registered map (covgan.explain.maps:
    |difference|, latent gradients on the walk and on the film, Grad-CAM, the input gradient and
    Integrated Gradients, 43
    classifier passes per image, which a request's batch bound keeps in hand) and the trust
    verdict with its parts (ssim, probabilities, add_back_probabilities; ssim_untuned,
    trusted_untuned, tuning_loss). explain_untuned is the same without the tuning. Settings that
    change the answer (steps, tuning steps, seed) are fixed at export and recorded in
    assets.extra/covgan.json.

    `encoder` (E, images -> [z1, z2]) is needed, and built into invert and explain, where
    `settings.inversion.z1_start` is "encoder".
    """
    d1, d2 = code_sizes(generator)
    steps = settings.traverse_steps
    scales = tf.constant(traversal_scales(steps - 1, settings.step_size))
    inversion = make_graph_inversion(generator, classifier, settings.inversion, settings.seed,
                                     encoder)
    tuning = served_tuning(generator, settings)
    explanation = make_graph_explain(
        generator, classifier, inversion=settings.inversion,
        tuning=tuning, steps=steps - 1, seed=settings.seed,
        layer=settings.gradcam_layer, encoder=encoder, invert=inversion,
        convolution=served_convolution(settings))
    z1_spec = tf.TensorSpec([None, d1], tf.float32, name="z1")
    z2_spec = tf.TensorSpec([None, d2], tf.float32, name="z2")
    images_spec = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name="images")

    def walk(z1, z2):
        frames, p = untuned_walk(generator, classifier, scales, z1, z2)
        return {"images": frames, "probabilities": p, "difference": frames[:, -1] - frames[:, 0]}

    @tf.function(input_signature=[z1_spec, z2_spec])
    def generate(z1, z2):
        images = generator([_finite(z1, "z1"), _finite(z2, "z2")], training=False)
        return {"images": images, "probabilities": positive_probability(classifier, images)}

    @tf.function(input_signature=[z1_spec, z2_spec])
    def traverse(z1, z2):
        return walk(_finite(z1, "z1"), _finite(z2, "z2"))

    @tf.function(input_signature=[images_spec])
    def invert(images):
        images = _finite(images, "images")
        z1, z2, _, _ = inversion(images)
        return score_inversion(generator, classifier, images, z1, z2)

    @tf.function(input_signature=[images_spec])
    def explain(images):
        return explanation(_finite(images, "images"))

    @tf.function(input_signature=[images_spec])
    def explain_untuned(images):
        return explanation(_finite(images, "images"), tune=False)

    # Where nothing is tuned the two are one graph: traced and saved once, under both names.
    return {"serving_default": generate, "traverse": traverse, "invert": invert,
            "explain": explain, "explain_untuned": explain_untuned if tuning.steps else explain}


def served_convolution(settings: ServingSettings) -> str:
    """The explain signature's per-image convolution while tuning (ServingSettings.
    tuning_convolution; None: "grouped" where this process has its gradient)."""
    if settings.tuning_convolution is not None:
        return settings.tuning_convolution
    return "grouped" if grouped_convolution_gradients_work() else "patches"


def served_tuning(generator: keras.Model, settings: ServingSettings) -> TuningSettings:
    """The explain signature's tuning: `covgan explain`'s default for this G (a gated G's
    branch, its steps, terms and rate, the images it tunes) or `settings.tune_steps` and
    `settings.tune_where` of it; none where the graph
    cannot tune this G (`graph_tuning_works`: any G without a gated branch, which `covgan
    explain` does not tune by default either)."""
    gated = bool(residual_branch_layers(generator))
    tuning = tuning_settings(gated, steps=settings.tune_steps, where=settings.tune_where)
    return tuning if graph_tuning_works(generator, tuning) else TuningSettings()


def classifier_signatures(classifier: keras.Model,
                          settings: ServingSettings = ServingSettings()) -> dict[str, Callable]:
    """The covgan_classifier model's signatures: classify (serving_default) and gradcam."""
    gradcam_fn = make_gradcam_fn(classifier, settings.gradcam_layer)
    images_spec = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name="images")

    @tf.function(input_signature=[images_spec])
    def classify(images):
        probabilities = classifier(_finite(images, "images"), training=False)
        return {"probabilities": tf.cast(probabilities, tf.float32)}

    @tf.function(input_signature=[images_spec])
    def gradcam(images):
        heatmaps, probabilities = gradcam_fn(_finite(images, "images"))
        return {"heatmaps": heatmaps, "probabilities": probabilities}

    return {"serving_default": classify, "gradcam": gradcam}
