"""Where a map's mass lies on a chest film, and what a walk changes about the whole chest.

The audit's building blocks (issue: `covgan audit`), pure numpy/OpenCV functions of one
(128, 128) image at a time:

- `body_mask`: the patient's outline (everything brighter than the air around it, holes
  filled).
- `approximate_lung_mask`: a classical estimate of the lung fields, the dark aerated regions
  inside the body (Otsu threshold inside the body outline, then closing and opening, the
  largest components kept). Approximate: use real lung masks where there are any (phantoms
  know theirs).
- `region_masks`: lungs, the rest of the thorax, outside the body (these three partition the
  image), and two overlapping views: the outer border band and the four corners, where text
  and laterality markers sit.
- `mass_by_region`: each region's share of a map's (non-negative) mass.
- `global_measures` and `global_change`: mean intensity, contrast, thorax width and height,
  lung-field area and border brightness of an image, and how they change from a negative
  counterpart to its reconstruction, with a bootstrap 95% interval over a group. A chest
  that narrows toward the negative class is an age or habitus shortcut, whatever the heat
  maps say.
"""

from __future__ import annotations

import cv2
import numpy as np

REGIONS = ("lungs", "thorax", "outside_body", "border", "corner_upper_left",
           "corner_upper_right", "corner_lower_left", "corner_lower_right")
MEASURES = ("mean_intensity", "contrast", "thorax_width", "thorax_height", "lung_area",
            "border_brightness")
# The border band and the corner squares, as fractions of the image side.
BORDER_FRACTION = 4 / 128
CORNER_FRACTION = 0.15
# The lung estimate leaves out this frame of the film (as a fraction of its side).
FRAME_FRACTION = 0.06
# Lung components smaller than this share of the image are noise, not a lung field.
MIN_LUNG_SHARE = 0.01


def _as_image(image):
    image = np.asarray(image, np.float32)
    return image[..., 0] if image.ndim == 3 else image


def _fill_holes(mask):
    """The mask with every region the outside cannot reach filled in."""
    padded = np.pad(mask.astype(np.uint8), 1)
    outside = padded.copy()
    cv2.floodFill(outside, None, (0, 0), 1)
    return (padded | (1 - outside)).astype(bool)[1:-1, 1:-1]


def _largest_components(mask, keep, min_pixels=1):
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    chosen = [i + 1 for i in np.argsort(areas)[::-1][:keep] if areas[i] >= min_pixels]
    return np.isin(labels, chosen)


def body_mask(image) -> np.ndarray:
    """The patient: the largest region brighter than the air around it, holes filled.

    The threshold is a tenth of the way from the darkest to the brightest smoothed pixel; on a
    film that the body fills edge to edge, that is nearly the whole image.
    """
    smooth = cv2.GaussianBlur(_as_image(image), (0, 0), 1.5)
    low, high = np.percentile(smooth, 1), np.percentile(smooth, 99)
    mask = smooth > low + 0.1 * (high - low)
    return _fill_holes(_largest_components(mask, keep=1))


def approximate_lung_mask(image, body=None) -> np.ndarray:
    """The lung fields estimated from the image alone (approximate; see the module doc)."""
    image = _as_image(image)
    body = body_mask(image) if body is None else np.asarray(body, bool)
    # Away from the body's edge, where skin and air blend, and from the film's edge, where a
    # film that the body fills still shows air, markers and collimation.
    inner = cv2.erode(body.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    frame = max(1, round(FRAME_FRACTION * image.shape[0]))
    inner[:frame], inner[-frame:], inner[:, :frame], inner[:, -frame:] = False, False, False, False
    if inner.sum() < 16:
        return np.zeros_like(body)
    smooth = cv2.GaussianBlur(image, (0, 0), 1.0)
    values = np.clip(smooth[inner] * 255, 0, 255).astype(np.uint8)
    threshold, _ = cv2.threshold(values, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    dark = (smooth * 255 < threshold) & inner
    # Ribs cross the fields as bright bands: close them; an opening cuts thin bridges and
    # drops specks.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    dark = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN,
                            cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
    return _fill_holes(_largest_components(dark, keep=2,
                                           min_pixels=int(MIN_LUNG_SHARE * dark.size)))


def _border_band(size):
    """The outer BORDER_FRACTION band of a (size, size) film."""
    band = max(1, round(BORDER_FRACTION * size))
    border = np.ones((size, size), bool)
    border[band:-band, band:-band] = False
    return border


def region_masks(image, lungs=None) -> dict[str, np.ndarray]:
    """REGIONS as boolean masks. lungs, thorax and outside_body partition the image; border
    and the corners overlap them. `lungs`: a true lung mask, else the approximate estimate."""
    image = _as_image(image)
    size = image.shape[0]
    body = body_mask(image)
    lungs = approximate_lung_mask(image, body) if lungs is None else np.asarray(lungs, bool)
    lungs = lungs & body
    masks = {"lungs": lungs, "thorax": body & ~lungs, "outside_body": ~body,
             "border": _border_band(size)}
    corner = max(1, round(CORNER_FRACTION * size))
    for name, rows, columns in (("corner_upper_left", slice(0, corner), slice(0, corner)),
                                ("corner_upper_right", slice(0, corner), slice(-corner, None)),
                                ("corner_lower_left", slice(-corner, None), slice(0, corner)),
                                ("corner_lower_right", slice(-corner, None),
                                 slice(-corner, None))):
        mask = np.zeros_like(body)
        mask[rows, columns] = True
        masks[name] = mask
    return masks


def mass_by_region(heatmap, masks) -> dict[str, float]:
    """Each region's share of the map's non-negative mass (0 everywhere for an empty map)."""
    heatmap = np.clip(_as_image(heatmap).astype(np.float64), 0, None)
    total = heatmap.sum()
    return {name: float(heatmap[mask].sum() / total) if total > 0 else 0.0
            for name, mask in masks.items()}


def global_measures(image, lungs=None) -> dict[str, float]:
    """MEASURES of one image; widths, heights and areas as fractions of the image."""
    image = _as_image(image)
    size = image.shape[0]
    body = body_mask(image)
    lungs = approximate_lung_mask(image, body) if lungs is None else np.asarray(lungs, bool)
    rows, columns = np.nonzero(body)
    return {
        "mean_intensity": float(image.mean()),
        "contrast": float(image[body].std()) if body.any() else 0.0,
        "thorax_width": float(np.ptp(columns) + 1) / size if body.any() else 0.0,
        "thorax_height": float(np.ptp(rows) + 1) / size if body.any() else 0.0,
        "lung_area": float(lungs.mean()),
        "border_brightness": float(image[_border_band(size)].mean()),
    }


def measure_changes(counterparts, reconstructions) -> dict[str, np.ndarray]:
    """Per measure, reconstruction minus counterpart, one value per image."""
    changes = {name: [] for name in MEASURES}
    for counterpart, reconstruction in zip(counterparts, reconstructions):
        before, after = global_measures(counterpart), global_measures(reconstruction)
        for name in MEASURES:
            changes[name].append(after[name] - before[name])
    return {name: np.asarray(values, np.float64) for name, values in changes.items()}


def global_change(counterparts, reconstructions, *, seed=0,
                  resamples=1000) -> dict[str, dict[str, float]]:
    """Per measure, reconstruction minus counterpart over a group: {mean, low, high}, the
    bounds a bootstrap 95% interval of the mean over images (seeded)."""
    return change_intervals(measure_changes(counterparts, reconstructions), seed=seed,
                            resamples=resamples)


def change_intervals(changes, *, seed=0, resamples=1000) -> dict[str, dict[str, float]]:
    """{mean, low, high} of each measure's per-image changes (`measure_changes`)."""
    rng = np.random.default_rng(seed)
    result = {}
    for name, values in changes.items():
        values = np.asarray(values, np.float64)
        if values.size == 0:
            result[name] = {"mean": 0.0, "low": 0.0, "high": 0.0}
            continue
        means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
        low, high = np.percentile(means, [2.5, 97.5])
        result[name] = {"mean": float(values.mean()), "low": float(low), "high": float(high)}
    return result
