"""A whole group's evidence: where each map's mass lies on average, what the walk changes about
the chest, and the plain-language flags a reviewer reads first.

The aggregation of `covgan audit` (issue 11), free of models: it takes the maps and the
inversions a pipeline has already computed for a group of images (positives, false positives,
false negatives) and returns numbers; the command and its report are built on it.

Flags and their thresholds (FLAG_THRESHOLDS; the README lists them):

- outside_lungs: the default map's mass outside the lung fields, as a share, above 0.5;
- corner_*: one corner square (15% of the side: 2.25% of the area) holding more than 10% of
  the default map's mass (4.4x its area), where text and laterality markers sit;
- border: the outer 4-pixel band (12% of the area) holding more than 25%;
- narrower_counterparts: the negative counterparts' thorax narrower than the reconstructions'
  by more than 3% of the image width, with the 95% interval of the change above 0 (the walk
  widens the chest to make it positive: an age or habitus shortcut);
- darker / brighter: the walk changing the mean intensity by more than 0.03 with its interval
  away from 0 (exposure, not a finding).
"""

from __future__ import annotations

import numpy as np

from covgan.evaluation.regions import REGIONS, global_change, mass_by_region, region_masks

FLAG_THRESHOLDS = {
    "outside_lungs": 0.5,
    "corner": 0.10,
    "border": 0.25,
    "narrower_counterparts": 0.03,
    "intensity_change": 0.03,
}
CORNERS = {"corner_upper_left": "upper-left", "corner_upper_right": "upper-right",
           "corner_lower_left": "lower-left", "corner_lower_right": "lower-right"}


def group_summary(images, maps, *, lungs=None, counterparts=None, reconstructions=None,
                  seed=0) -> dict:
    """One group's aggregates.

    Args:
        images: (N, H, W[, 1]) the group's radiographs.
        maps: {method: (N, H, W[, 1])} explanation maps of those images.
        lungs: per image a lung mask, or None where the data set has none (then the
            approximate estimate is used and the result says so).
        counterparts, reconstructions: (N, H, W[, 1]) G(z1, 0) and G(z1, z2) of each image's
            inversion, for the walk's global change (left out where None).
        seed: of the bootstrap intervals.

    Returns:
        {n, lungs: "masks" | "approximate", methods: {method: {regions: {REGION: mean share},
        mean_map: (H, W) array}}, global_change: {MEASURE: {mean, low, high}}}; mean_map is
        for pictures and is not JSON.
    """
    images = np.asarray(images, np.float32)
    count = len(images)
    lungs = [None] * count if lungs is None else list(lungs)
    known = all(mask is not None for mask in lungs)
    masks = [region_masks(image, mask) for image, mask in zip(images, lungs)]
    methods = {}
    for method, values in maps.items():
        values = np.asarray(values, np.float32).reshape(count, *images.shape[1:3])
        shares = [mass_by_region(value, mask) for value, mask in zip(values, masks)]
        methods[method] = {
            "regions": {name: float(np.mean([s[name] for s in shares])) if shares else 0.0
                        for name in REGIONS},
            "mean_map": values.mean(axis=0) if count else np.zeros(images.shape[1:3]),
        }
    summary = {"n": count, "lungs": "masks" if known else "approximate", "methods": methods}
    if counterparts is not None and reconstructions is not None:
        summary["global_change"] = global_change(counterparts, reconstructions, seed=seed)
    return summary


def _flag(id_, text, value, threshold):
    return {"id": id_, "text": text, "value": round(float(value), 4), "threshold": threshold}


def flags(summary: dict, default_map: str, group: str = "positives") -> list[dict]:
    """The flags one group raises, each {id, text, value, threshold}, strongest evidence
    first within each kind."""
    found = []
    regions = summary["methods"][default_map]["regions"]
    where = f"in the {group.replace('_', ' ')} ({summary['n']} images, {default_map} map)"
    outside = 1.0 - regions["lungs"]
    if outside > FLAG_THRESHOLDS["outside_lungs"]:
        found.append(_flag("outside_lungs", f"Most of the evidence lies outside the lungs "
                           f"{where}: {outside:.0%} of the map's mass"
                           + (" (lung fields estimated, not drawn)"
                              if summary["lungs"] == "approximate" else "") + ".",
                           outside, FLAG_THRESHOLDS["outside_lungs"]))
    for region, name in sorted(CORNERS.items(), key=lambda item: -regions[item[0]]):
        if regions[region] > FLAG_THRESHOLDS["corner"]:
            found.append(_flag(region, f"The {name} corner carries {regions[region]:.0%} of "
                               f"the evidence {where}, where text and laterality markers "
                               "sit.", regions[region], FLAG_THRESHOLDS["corner"]))
    if regions["border"] > FLAG_THRESHOLDS["border"]:
        found.append(_flag("border", f"The outer border carries {regions['border']:.0%} of the "
                           f"evidence {where}.", regions["border"], FLAG_THRESHOLDS["border"]))
    change = summary.get("global_change")
    if change:
        width = change["thorax_width"]
        if width["mean"] > FLAG_THRESHOLDS["narrower_counterparts"] and width["low"] > 0:
            found.append(_flag(
                "narrower_counterparts",
                f"The negative counterparts are {width['mean']:.0%} of the image width "
                f"narrower than the reconstructions {where} (95% interval {width['low']:.0%} "
                f"to {width['high']:.0%}): the walk changes the size of the chest, as an age "
                "or habitus shortcut would.", width["mean"],
                FLAG_THRESHOLDS["narrower_counterparts"]))
        intensity = change["mean_intensity"]
        limit = FLAG_THRESHOLDS["intensity_change"]
        if abs(intensity["mean"]) > limit and (intensity["low"] > 0 or intensity["high"] < 0):
            direction = "brighter" if intensity["mean"] > 0 else "darker"
            found.append(_flag(
                direction, f"The walk makes the whole film {direction} {where} (mean "
                f"intensity {intensity['mean']:+.3f}): exposure, not a finding.",
                intensity["mean"], limit))
    return found
