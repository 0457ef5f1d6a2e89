"""The paper's evaluation of a trained GAN (`covgan evaluate`).

- Class consistency: draws of z1, each rendered once with z2 = 0 and three times
  with z2 ~ N(0, I); all images classified; accuracy against the intended class;
  repeated over seeds (mean and standard deviation), as in Dravid & Katsaggelos.
- Monotonicity: traversals G(z1, n * 0.1 * z2), n = 0..10, for random pairs: the
  fraction whose p(positive) never falls by more than 0.01 from one step to the
  next, and the mean Spearman rho between n and p.
- Frechet distance between real and generated images on the classifier's
  penultimate features (Inception weights cannot be downloaded here).
- Code overlap (covgan's, not the paper's): for random z1, how much two disease codes'
  changes G(z1, z2) - G(z1, 0) lie in the same places (`losses.change_overlap`, 1: the same
  places). Near 1, every code draws one change, and no inversion can move it to where a
  film's own finding is; it is what `--lambda-spread` asks to lower.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from covgan.errors import CovganError
from covgan.evaluation import metrics
from covgan.explain.traverse import DEFAULT_STEP_SIZE, DEFAULT_STEPS, traverse
from covgan.models import losses
from covgan.models.classifier import TwoClassProbabilities, positive_probability
from covgan.models.generator import code_sizes

POSITIVE_DRAWS = 3


def make_probability_fn(generator, classifier):
    """A compiled p(positive) of G(z1, z2), for fast batched scoring."""

    @tf.function(reduce_retracing=True)
    def probability(z1, z2):
        return positive_probability(classifier, generator([z1, z2], training=False))

    return probability


def class_consistency(generator, classifier, *, repeats=1000, seed=0, batch=500,
                      probability_fn=None):
    """Accuracy of C on G's images against the class G was asked for (one seed).

    Returns:
        dict with accuracy, negative (z2 = 0) and positive accuracies.
    """
    rng = np.random.default_rng(seed)
    d1, d2 = code_sizes(generator)
    z1 = rng.standard_normal((repeats, d1)).astype(np.float32)
    z1 = np.concatenate([z1, np.repeat(z1, POSITIVE_DRAWS, axis=0)])
    z2 = np.concatenate([np.zeros((repeats, d2), np.float32),
                         rng.standard_normal((repeats * POSITIVE_DRAWS, d2)).astype(np.float32)])
    intended = np.concatenate([np.zeros(repeats), np.ones(repeats * POSITIVE_DRAWS)])
    probability_fn = probability_fn or make_probability_fn(generator, classifier)
    p = np.concatenate([probability_fn(z1[i : i + batch], z2[i : i + batch]).numpy()
                        for i in range(0, len(z1), batch)])
    correct = (p >= 0.5) == (intended == 1)
    return {
        "accuracy": float(correct.mean()),
        "negative": float(correct[intended == 0].mean()),
        "positive": float(correct[intended == 1].mean()),
    }


def traversal_monotonicity(generator, classifier, *, pairs=1000, seed=0, tolerance=0.01,
                           steps=DEFAULT_STEPS, step_size=DEFAULT_STEP_SIZE, batch=100):
    """Fraction of monotone traversals and mean Spearman rho over random (z1, z2) pairs."""
    rng = np.random.default_rng(seed)
    d1, d2 = code_sizes(generator)
    z1 = rng.standard_normal((pairs, d1)).astype(np.float32)
    z2 = rng.standard_normal((pairs, d2)).astype(np.float32)
    probabilities = np.concatenate([
        traverse(generator, classifier, z1[i : i + batch], z2[i : i + batch], steps=steps,
                 step_size=step_size, chunk=512)[1].numpy()
        for i in range(0, pairs, batch)
    ])
    rhos = np.array([metrics.spearman(np.arange(steps + 1), p) for p in probabilities])
    return {
        "monotonic_fraction": float(
            np.mean([metrics.monotone(p, tolerance) for p in probabilities])
        ),
        "spearman_mean": float(np.nanmean(rhos)) if np.isfinite(rhos).any() else None,
        "spearman_undefined": int(np.isnan(rhos).sum()),  # constant p along the path
        "pairs": pairs,
        "tolerance": tolerance,
        "steps": steps,
        "step_size": step_size,
    }


def code_overlap(generator, *, draws=256, seed=0, batch=128):
    """{mean, median, draws}: the overlap of two random codes' changes of the same z1, over
    `draws` random z1 (each change against that z1's counterpart G(z1, 0)). A G whose codes
    change nothing scores 0: read it beside class consistency."""
    rng = np.random.default_rng(seed)
    d1, d2 = code_sizes(generator)
    overlaps = []
    for start in range(0, draws, batch):
        n = min(batch, draws - start)
        z1 = rng.standard_normal((n, d1)).astype(np.float32)
        codes = rng.standard_normal((2, n, d2)).astype(np.float32)
        counterpart = generator([z1, np.zeros_like(codes[0])], training=False)
        changes = [generator([z1, code], training=False) - counterpart for code in codes]
        overlaps.append(np.asarray(losses.change_overlap(*changes)))
    overlaps = np.concatenate(overlaps)
    return {"mean": float(overlaps.mean()), "median": float(np.median(overlaps)),
            "draws": draws}


def feature_model(classifier):
    """The classifier's penultimate features: the input of its final Dense layer.

    Returns:
        (keras.Model mapping images to features, a description of the layer).
    """
    model = classifier
    if isinstance(model.layers[-1], TwoClassProbabilities):  # an adapted user model
        model = next(layer for layer in reversed(model.layers) if isinstance(layer, keras.Model))
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense):
        raise CovganError(f"Cannot find the classifier's penultimate layer (ends in {last.name}).")
    features = keras.Model(model.inputs, last.input)
    return features, f"{model.name}: input of {last.name} ({features.output_shape[-1]}-d)"


def frechet_distance(generator, classifier, real_images, *, positive_rate=0.5, seed=0, batch=250):
    """Frechet distance between real images and as many generated ones, on C's features."""
    features, description = feature_model(classifier)
    count = len(real_images)
    rng = np.random.default_rng(seed)
    d1, d2 = code_sizes(generator)
    z1 = rng.standard_normal((count, d1)).astype(np.float32)
    y = (rng.random(count) < positive_rate).astype(np.float32)
    z2 = rng.standard_normal((count, d2)).astype(np.float32) * y[:, None]

    @tf.function(reduce_retracing=True)
    def generated_features(a, b):
        return features(generator([a, b], training=False), training=False)

    fake = np.concatenate(
        [
            generated_features(z1[i : i + batch], z2[i : i + batch]).numpy()
            for i in range(0, count, batch)
        ]
    )
    real = np.concatenate(
        [
            features(real_images[i : i + batch], training=False).numpy()
            for i in range(0, count, batch)
        ]
    )
    return {
        "value": metrics.frechet_distance(real, fake),
        "features": description,
        "real": count,
        "generated": count,
    }


def evaluate_gan(
    generator: keras.Model,
    classifier: keras.Model,
    real_images: np.ndarray,
    *,
    repeats: int = 1000,
    seeds: int = 5,
    pairs: int = 1000,
    positive_rate: float = 0.5,
    seed: int = 0,
    progress: Callable | None = None,
) -> dict:
    """The full evaluation; `progress(label)` is told when each part starts."""
    probability_fn = make_probability_fn(generator, classifier)
    per_seed = []
    for k in range(seeds):
        if progress:
            progress(f"class consistency, seed {k + 1}/{seeds}")
        per_seed.append(
            class_consistency(
                generator, classifier, repeats=repeats, seed=seed + k, probability_fn=probability_fn
            )
        )
    accuracies = np.array([s["accuracy"] for s in per_seed])
    if progress:
        progress("traversal monotonicity")
    monotonicity = traversal_monotonicity(generator, classifier, pairs=pairs, seed=seed + 10_000)
    if progress:
        progress("code overlap")
    overlap = code_overlap(generator, seed=seed + 20_000)
    if progress:
        progress("Frechet distance")
    return {
        "class_consistency": {
            "mean": float(accuracies.mean()),
            "std": float(accuracies.std(ddof=1)) if seeds > 1 else 0.0,
            "repeats": repeats,
            "seeds": seeds,
            "images_per_seed": repeats * (1 + POSITIVE_DRAWS),
            "per_seed": per_seed,
        },
        "monotonic_fraction": monotonicity["monotonic_fraction"],
        "spearman_mean": monotonicity["spearman_mean"],
        "monotonicity": monotonicity,
        "code_overlap": overlap,
        "frechet_distance": frechet_distance(
            generator, classifier, real_images, positive_rate=positive_rate, seed=seed
        ),
    }
