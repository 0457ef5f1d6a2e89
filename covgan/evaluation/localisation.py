"""How well an explanation map points at the lesions a mask marks.

All scores take one map and one boolean mask of the same shape (H, W):

- pointing game (Zhang et al. 2016): does the map's maximum fall inside the mask
  (within `tolerance` pixels)? Where several pixels share the maximum, the score is the
  share of them inside the mask, so a flat or all-zero map scores the mask's area share
  (chance), never the first pixel in memory order (a corner).
- relevance mass (Arras et al. 2022): the share of the map's total inside the mask.
- IoU of the top pixels: the map's top k% against the mask; k defaults to the
  mask's own area, so a perfect map scores 1. Ties are broken at random (seeded), as in the
  deletion and insertion orders.
- AUROC: the map as a pixel classifier of the mask (0.5 = chance).
- surround contrast: the map's mean inside the mask over its mean in the band just around it;
  for a reconstruction residual, how much worse the lesions are reproduced than the tissue
  beside them (1 = as well), whatever the residual is elsewhere in the image.

Deletion and insertion curves (Petsiuk et al. 2018) use the classifier:
pixels are removed from (or inserted into) the image in the map's order and
p(positive) is recorded; a good map makes deletion fall and insertion rise fast.
"""

import cv2
import numpy as np

from covgan.evaluation.metrics import roc_auc


def ranking(saliency, seed=0):
    """Pixel indices (flat) from the highest value to the lowest, ties in seeded random order."""
    values = np.asarray(saliency, np.float64).ravel()
    tie_break = np.random.default_rng(seed).random(values.size)
    return np.lexsort((tie_break, -values))


def pointing_game(saliency, mask, tolerance=0):
    """Share of the map's maximal pixels inside the mask (dilated by `tolerance` pixels).

    1.0 or 0.0 for a map with one peak; the mask's area share for a constant map.
    """
    mask = np.asarray(mask, bool)
    if tolerance:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * tolerance + 1,) * 2)
        mask = cv2.dilate(mask.astype(np.uint8), kernel) > 0
    saliency = np.asarray(saliency)
    peaks = saliency == saliency.max()
    return float(mask[peaks].mean())


def relevance_mass(saliency, mask):
    """Share of the (non-negative) map's mass inside the mask; 0 for an empty map."""
    saliency = np.clip(np.asarray(saliency, np.float64), 0, None)
    total = saliency.sum()
    return float(saliency[np.asarray(mask, bool)].sum() / total) if total > 0 else 0.0


def iou_top(saliency, mask, fraction=None, seed=0):
    """IoU between the map's top `fraction` of pixels (default: the mask's area) and the mask."""
    mask = np.asarray(mask, bool)
    count = int(round((fraction if fraction is not None else mask.mean()) * mask.size))
    if count == 0:
        return 0.0
    top = np.zeros(mask.size, bool)
    top[ranking(saliency, seed)[:count]] = True
    top = top.reshape(mask.shape)
    return float((top & mask).sum() / (top | mask).sum())


# The width in pixels of the band around a mask that `surround_contrast` compares it with: a
# lesion's neighbourhood (1/16 of a 128-pixel image's side), not the rest of the image.
SURROUND_WIDTH = 8


def surround_contrast(values, mask, width=SURROUND_WIDTH):
    """Mean of `values` inside the mask over their mean in the band `width` pixels wide around
    it (None where the mask or the band is empty, or the band's mean is 0)."""
    mask = np.asarray(mask, bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1,) * 2)
    band = (cv2.dilate(mask.astype(np.uint8), kernel) > 0) & ~mask
    values = np.asarray(values, np.float64)
    if not mask.any() or not band.any() or values[band].mean() <= 0:
        return None
    return float(values[mask].mean() / values[band].mean())


def pixel_auroc(saliency, mask):
    """AUROC of the map's values as a detector of mask pixels (None if the mask is empty)."""
    return roc_auc(np.asarray(mask, bool).ravel(), np.asarray(saliency).ravel())


def localisation_scores(saliency, mask, tolerance=0, seed=0):
    """All four mask scores for one map (`seed`: the order of tied pixels for the top k)."""
    return {
        "pointing_game": pointing_game(saliency, mask, tolerance),
        "relevance_mass": relevance_mass(saliency, mask),
        "iou_topk": iou_top(saliency, mask, seed=seed),
        "auroc": pixel_auroc(saliency, mask),
    }


def summarise(per_image):
    """Means over images of each score (None where no image had one)."""
    keys = per_image[0].keys() if per_image else ()
    result = {}
    for key in keys:
        values = [s[key] for s in per_image if s[key] is not None]
        result[key] = float(np.mean(values)) if values else None
    return result


def deletion_insertion(probability_fn, image, saliency, *, steps=16, blur_sigma=5.0, seed=0):
    """p(positive) as pixels are deleted from / inserted into the image in the map's order.

    Deleted pixels take a heavily blurred copy's value (not black, which would be
    out of distribution); insertion starts from that blurred copy.

    Args:
        probability_fn: images (N, H, W, 1) -> p(positive) (N,), numpy.
        image: (H, W, 1) in [0, 1].
        saliency: (H, W).
        steps: points on each curve after the start.
        seed: order of pixels with equal map values.

    Returns:
        dict with fractions, deletion and insertion curves, and their areas (trapezoid).
    """
    image = np.asarray(image, np.float32)
    blurred = cv2.GaussianBlur(image[..., 0], (0, 0), blur_sigma)[..., None]
    order = ranking(saliency, seed)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    deleted, inserted = [], []
    for fraction in fractions:
        chosen = np.zeros(order.size, bool)
        chosen[order[: int(round(fraction * order.size))]] = True
        chosen = chosen.reshape(image.shape[:2])[..., None]
        deleted.append(np.where(chosen, blurred, image))
        inserted.append(np.where(chosen, image, blurred))
    p = np.asarray(probability_fn(np.stack(deleted + inserted)))
    deletion, insertion = p[: len(fractions)], p[len(fractions) :]
    return {
        "fractions": fractions.tolist(),
        "deletion": deletion.tolist(),
        "insertion": insertion.tolist(),
        "deletion_auc": float(np.trapezoid(deletion, fractions)),
        "insertion_auc": float(np.trapezoid(insertion, fractions)),
    }
