"""Which explanation points at the lesions? Traversal difference vs Grad-CAM vs gradient.

Held-out positives with lesion masks are explained (inversion, traversal, Grad-CAM,
saliency) and each method's map is scored against the mask with the same four
scores, plus deletion and insertion curves through the classifier. The
inversion's own quality is reported beside it, since a difference map is only as
good as the reconstruction it comes from.
"""

from __future__ import annotations

import keras
import numpy as np

from covgan.evaluation import localisation
from covgan.evaluation.metrics import monotone
from covgan.explain.invert import COUNTERPART, IMAGE, InversionSettings
from covgan.explain.pipeline import explain
from covgan.models.classifier import positive_probability

METHODS = ("traversal", "gradcam", "gradient")


def score_localisation(generator: keras.Model, classifier: keras.Model, images: np.ndarray,
                       masks: np.ndarray, *, settings: InversionSettings = InversionSettings(),
                       seed: int = 0, curves: bool = True) -> dict:
    """Scores the three maps of every image against its mask.

    Args:
        images: (N, 128, 128, 1) positives.
        masks: (N, 128, 128) boolean lesion masks.

    Returns:
        {"methods": {method: {pointing_game, relevance_mass, iou_topk, auroc,
        deletion_auc, insertion_auc}}, "n": N, "inversion": {...}}.
    """
    result = explain(generator, classifier, images, settings=settings, seed=seed)
    maps = {
        "traversal": np.abs(result["difference"][..., 0]),
        "gradcam": result["gradcam"],
        "gradient": result["saliency"],
    }

    def probability(batch):
        return np.asarray(positive_probability(classifier, batch))

    methods = {}
    for method in METHODS:
        per_image = [localisation.localisation_scores(m, k) for m, k in zip(maps[method], masks)]
        summary = localisation.summarise(per_image)
        if curves:
            scored = [localisation.deletion_insertion(probability, image, m)
                      for image, m in zip(images, maps[method])]
            summary["deletion_auc"] = float(np.mean([c["deletion_auc"] for c in scored]))
            summary["insertion_auc"] = float(np.mean([c["insertion_auc"] for c in scored]))
        methods[method] = summary
    trusted, p = result["trusted"], result["probabilities"]
    walks = result["traversal_probabilities"]
    return {
        "methods": methods,
        "n": int(len(images)),
        "inversion": {
            "median_ssim": float(np.median(result["ssim"])),
            "trusted_fraction": float(np.mean(trusted)),
            "counterpart_negative_fraction": float(np.mean(p[:, COUNTERPART] < 0.5)),
            "non_decreasing_fraction": float(np.mean(
                [monotone(walk, tolerance=0.0) for walk in walks])),
            "non_decreasing_fraction_tolerance_0.01": float(np.mean(
                [monotone(walk, tolerance=0.01) for walk in walks])),
            "image_positive_fraction": float(np.mean(p[:, IMAGE] >= 0.5)),
        },
        "methods_on_trusted_only": {
            method: localisation.summarise([
                localisation.localisation_scores(m, k)
                for m, k, t in zip(maps[method], masks, trusted) if t
            ]) for method in METHODS
        } if trusted.any() else None,
    }


def table(scores: dict) -> str:
    """A plain-text table of the method scores, for people (stderr)."""
    keys = ("pointing_game", "relevance_mass", "iou_topk", "auroc", "deletion_auc",
            "insertion_auc")
    lines = [f"{'method':<10}" + "".join(f"{k:>16}" for k in keys)]
    for method, values in scores["methods"].items():
        cells = "".join(f"{values[k]:>16.3f}" if values.get(k) is not None else f"{'-':>16}"
                        for k in keys)
        lines.append(f"{method:<10}{cells}")
    lines.append(f"n = {scores['n']}; deletion: lower is better; all others: higher is better")
    return "\n".join(lines)
