"""The serving signatures as pure tf.functions: generate, traverse, invert, explain; classify,
gradcam.

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
from covgan.explain.invert import (
    best_restarts,
    make_inversion_fn,
    score_inversion,
)
from covgan.explain.traverse import traversal_codes, traversal_scales
from covgan.export.settings import ServingSettings
from covgan.models.classifier import positive_probability
from covgan.models.generator import code_sizes
from covgan.shapes import IMAGE_SHAPE

__all__ = ["ServingSettings", "generator_signatures", "classifier_signatures"]

GENERATOR_SIGNATURES = ("serving_default", "traverse", "invert", "explain")
CLASSIFIER_SIGNATURES = ("serving_default", "gradcam")


def _finite(tensor, name):
    return tf.debugging.check_numerics(tensor, f"{name} contains NaN or Inf")


def generator_signatures(generator: keras.Model, classifier: keras.Model,
                         settings: ServingSettings = ServingSettings(),
                         encoder: keras.Model | None = None) -> dict[str, Callable]:
    """The covgan_generator model's signatures: {name: tf.function with an input signature}.

    `encoder` (E, images -> [z1, z2]) is needed, and built into invert and explain, where
    `settings.inversion.z1_start` is "encoder".
    """
    from_encoder = settings.inversion.z1_start == "encoder"
    if from_encoder and encoder is None:
        raise ValueError("The inversion starts at the encoder but no encoder was given. "
                         "Received: encoder=None.")
    d1, d2 = code_sizes(generator)
    steps = settings.traverse_steps
    restarts = max(1, settings.inversion.restarts)
    scales = tf.constant(traversal_scales(steps - 1, settings.step_size))
    solve = make_inversion_fn(generator, classifier, settings.inversion)
    gradcam_fn = make_gradcam_fn(classifier, settings.gradcam_layer)
    z1_spec = tf.TensorSpec([None, d1], tf.float32, name="z1")
    z2_spec = tf.TensorSpec([None, d2], tf.float32, name="z2")
    images_spec = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name="images")

    def walk(z1, z2):
        count = tf.shape(z1)[0]
        codes1, codes2 = traversal_codes(z1, z2, scales)
        frames = generator([codes1, codes2], training=False)
        p = tf.reshape(positive_probability(classifier, frames), (count, steps))
        frames = tf.reshape(frames, (count, steps, *IMAGE_SHAPE))
        return {"images": frames, "probabilities": p,
                "difference": frames[:, -1] - frames[:, 0]}

    def inversion(images):
        count = tf.shape(images)[0]
        repeated = tf.repeat(images, restarts, axis=0)
        seed = tf.constant([settings.seed, 0], tf.int64)
        if settings.inversion.z1_start == "zeros":
            z1_start = tf.zeros([count * restarts, d1])
        else:
            z1_start = tf.random.stateless_normal([count * restarts, d1], seed=seed)
        z2_start = tf.random.stateless_normal([count * restarts, d2], seed=seed + [0, 1])
        if from_encoder:
            # Each image's first start (rows are image-major) at E(x), as invert.start_codes.
            e1, e2 = encoder(images, training=False)
            first = tf.equal(tf.range(count * restarts) % restarts, 0)[:, None]
            z1_start = tf.where(first, tf.repeat(e1, restarts, axis=0), z1_start)
            z2_start = tf.where(first, tf.repeat(e2, restarts, axis=0), z2_start)
        z1, z2, loss, _ = solve(repeated, z1_start, z2_start)
        pick = best_restarts(loss, restarts)
        return score_inversion(generator, classifier, images, tf.gather(z1, pick),
                               tf.gather(z2, pick))

    @tf.function(input_signature=[z1_spec, z2_spec])
    def generate(z1, z2):
        images = generator([_finite(z1, "z1"), _finite(z2, "z2")], training=False)
        return {"images": images, "probabilities": positive_probability(classifier, images)}

    @tf.function(input_signature=[z1_spec, z2_spec])
    def traverse(z1, z2):
        return walk(_finite(z1, "z1"), _finite(z2, "z2"))

    @tf.function(input_signature=[images_spec])
    def invert(images):
        return inversion(_finite(images, "images"))

    @tf.function(input_signature=[images_spec])
    def explain(images):
        # invert's own trace, reused: the inversion is most of a signature's tracing time.
        result = invert(images)
        walked = walk(result["z1"], result["z2"])
        heatmaps, _ = gradcam_fn(images)
        return {**result, "traversal": walked["images"],
                "traversal_probabilities": walked["probabilities"],
                "difference": walked["difference"], "gradcam": heatmaps}

    return {"serving_default": generate, "traverse": traverse, "invert": invert,
            "explain": explain}


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
