"""A whole group's evidence: where each map's mass lies on average, what the walk changes about
the chest, and the plain-language flags a reviewer reads first.

The aggregation of `covgan audit` (issue 11), free of models: it takes the maps and the
inversions a pipeline has already computed for a group of images (positives, false positives,
false negatives) and returns numbers; the command and its report are built on it.

Flags and their thresholds (FLAG_THRESHOLDS; docs/guide/audit.md). Where the evidence lies
is flagged when any map (the walk's or the image's own: Grad-CAM, gradient, Integrated
Gradients) crosses the threshold, led by the map with the largest share; what the walk changes
is the walk's alone:

- outside_lungs: a map's mass outside the lung fields, as a share, above 0.5;
- corner_*: one corner square (15% of the side: 2.25% of the area) holding more than 10% of
  a map's mass (4.4x its area), where text and laterality markers sit;
- border: the outer 4-pixel band (12% of the area) holding more than 25%;
- narrower_counterparts: the negative counterparts' thorax narrower than the reconstructions'
  by more than 3% of the image width, with the 95% interval of the change above 0 (the walk
  widens the chest to make it positive: an age or habitus shortcut);
- darker / brighter: the walk changing the mean intensity by more than 0.03 with its interval
  away from 0 (exposure, not a finding).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from covgan.evaluation.attributes import scores_by_attribute
from covgan.evaluation.audit_parts import (
    FIGURE_KEYS,
    AuditAccumulator,
    finish_audit,
    image_evidence,
    marker_evidence,
    marker_summary,
    summary_of,
)
from covgan.explain.maps import map_keys, map_named
from covgan.explain.settings import TUNING_BATCH

FLAG_THRESHOLDS = {
    "outside_lungs": 0.5,
    "corner": 0.10,
    "border": 0.25,
    "narrower_counterparts": 0.03,
    "intensity_change": 0.03,
}
# Maps that raise no region flag: Grad-CAM has one value per 16x16-pixel cell of VGG's last
# convolution at 128 px, coarser than the 4-pixel border band and the lung fields' edge, so its
# mass spills over them (69% "outside the lungs" for a classifier of clean phantoms); its
# shares are still listed beside the others.
COARSE_MAPS = ("gradcam",)
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
        mean_map: (H, W) array, per_image: {REGION: (N,) shares}}}, global_change: {MEASURE:
        {mean, low, high}}, changes: {MEASURE: (N,) per-image changes}}; mean_map, per_image
        and changes are for pictures and rankings, not JSON.
    """
    images = np.asarray(images, np.float32)
    count = len(images)
    lungs = [None] * count if lungs is None else list(lungs)
    maps = {m: np.asarray(v, np.float32).reshape(count, *images.shape[1:3])
            for m, v in maps.items()}
    walked = counterparts is not None and reconstructions is not None
    records = [image_evidence(images[i], {m: v[i] for m, v in maps.items()}, lungs=lungs[i],
                              counterpart=counterparts[i] if walked else None,
                              reconstruction=reconstructions[i] if walked else None)
               for i in range(count)]
    sums = {m: v.sum(axis=0, dtype=np.float64) if count else np.zeros(images.shape[1:3])
            for m, v in maps.items()}
    return summary_of(records, sums, seed)


def marker_scores(maps, markers) -> dict | None:
    """How each map finds a known marker: {n, methods: {METHOD: {pointing_game,
    relevance_mass}}} over the images whose marker mask is known (phantoms stamped with the
    shortcut marker), each score averaged over them; None where no image has one.

    Pointing game and relevance mass are localisation's, with the marker's box as the mask:
    a map whose maximum lies on the marker for most marked images shows the classifier
    reading the marker.
    """
    maps = {m: np.asarray(v, np.float32) for m, v in maps.items()}
    return marker_summary([{"marker": marker_evidence({m: v[k].reshape(v.shape[1:3])
                                                       for m, v in maps.items()}, mask)}
                           for k, mask in enumerate(markers) if mask is not None])


def strongest(summary: dict, flag_id: str, map_name: str, count: int = 10) -> np.ndarray:
    """Positions (in the group) of the `count` images that carry a flag most strongly, by
    `map_name`'s shares (the flag's own map, for a region flag)."""
    shares = summary["methods"][map_name]["per_image"]
    if flag_id == "outside_lungs":
        strength = 1.0 - shares["lungs"]
    elif flag_id in shares:
        strength = shares[flag_id]
    elif flag_id == "narrower_counterparts":
        strength = summary["changes"]["thorax_width"]
    else:  # brighter or darker
        intensity = summary["changes"]["mean_intensity"]
        strength = intensity if flag_id == "brighter" else -intensity
    return np.argsort(-np.asarray(strength), kind="stable")[:count]


def _flag(id_, text, value, threshold, **more):
    return {"id": id_, "text": text, "value": round(float(value), 4), "threshold": threshold,
            **more}


def _region_shares(summary, region):
    """{map: share of its mass in `region` (1 - lungs for "outside_lungs")}."""
    def share(regions):
        return 1.0 - regions["lungs"] if region == "outside_lungs" else regions[region]

    return {method: share(values["regions"]) for method, values in summary["methods"].items()}


def _region_flag(summary, region, threshold, default_map, sentence, where, why=""):
    """A region's flag where any map but the coarse ones (COARSE_MAPS) puts more than
    `threshold` of its mass there: the map with the largest share leads (`map`, `value`),
    every map's share is kept (`maps`), and where the walk's own map stays below, the text
    says what that may mean (a change of the GAN's, or evidence the GAN does not draw)."""
    shares = _region_shares(summary, region)
    raised_by = [m for m, v in sorted(shares.items(), key=lambda i: -i[1])
                 if v > threshold and m not in COARSE_MAPS]
    if not raised_by:
        return None
    lead = raised_by[0]
    others = ", ".join(f"{m} {shares[m]:.0%}" for m in shares if m != lead)
    text = (f"{sentence(shares[lead])} {where}, by the {lead} map{why}"
            + (f" (other maps: {others})." if others else "."))
    if default_map in shares and default_map not in raised_by:
        if map_named(lead).needs_walk:
            text += (f" The classifier-weighted walk ({default_map}) stays below: the walk "
                     "changes it but the classifier barely responds there, a change of the "
                     "GAN's rather than the classifier's evidence.")
        else:
            text += (f" The walk's own map ({default_map}) puts {shares[default_map]:.0%} "
                     "there: the GAN may not draw what the classifier reads there, and then "
                     "the traversal cannot explain it.")
    return _flag(region, text, shares[lead], threshold, map=lead,
                 maps={m: round(float(v), 4) for m, v in shares.items()})


def flags(summary: dict, default_map: str, group: str = "positives") -> list[dict]:
    """The flags one group raises, each {id, text, value, threshold[, map, maps]}.

    Where the evidence lies (outside the lungs, a corner, the border) is flagged when any map
    but the coarse ones crosses the threshold, led by the map with the largest share: a
    shortcut the GAN cannot
    draw is still seen by the image's own maps (Integrated Gradients on a burned-in marker),
    and the text then says the walk misses it. What the walk changes (the chest's width, the
    film's brightness) is the walk's alone.
    """
    name, count = group.replace("_", " "), summary["n"]
    where = f"in the {name} ({count} images)"
    estimated = (" (lung fields estimated, not drawn)"
                 if summary["lungs"] == "approximate" else "")
    candidates = [_region_flag(
        summary, "outside_lungs", FLAG_THRESHOLDS["outside_lungs"], default_map,
        lambda v: f"Most of the evidence lies outside the lungs{estimated}: {v:.0%} of the "
                  "map's mass", where)]
    corners = [_region_flag(
        summary, region, FLAG_THRESHOLDS["corner"], default_map,
        lambda v, name=name: f"The {name} corner carries {v:.0%} of the evidence", where,
        ", where text and laterality markers sit")
        for region, name in CORNERS.items()]
    candidates += sorted((c for c in corners if c), key=lambda c: -c["value"])
    candidates.append(_region_flag(
        summary, "border", FLAG_THRESHOLDS["border"], default_map,
        lambda v: f"The outer border carries {v:.0%} of the evidence", where))
    found = [c for c in candidates if c]
    where = f"in the {name} ({count} images, the walk)"
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


# Images explained together, as `covgan.explain.pipeline` does (a tuning batch): the Beam
# pipeline batches the chosen images the same way, so both explain each image alike.
EXPLAIN_CHUNK = TUNING_BATCH


def choose_groups(labels, probabilities, count: int,
                  threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Indices of up to `count` images per group, in data order: the positives, and the
    classifier's false positives and false negatives at `threshold`."""
    labels = np.asarray(labels)
    predicted = np.asarray(probabilities) >= threshold
    return {"positives": np.flatnonzero(labels == 1)[:count],
            "false_positives": np.flatnonzero((labels == 0) & predicted)[:count],
            "false_negatives": np.flatnonzero((labels == 1) & ~predicted)[:count]}


def chosen_images(groups: Mapping[str, np.ndarray]) -> dict[int, list[str]]:
    """{position: the groups it is in}, by position: each chosen image is explained once (a
    false negative is a positive too)."""
    chosen = {}
    for group, index in groups.items():
        for position in index:
            chosen.setdefault(int(position), []).append(group)
    return dict(sorted(chosen.items()))


def probabilities_of(classifier, images, batch=64) -> np.ndarray:
    """p(positive) of every image, `batch` at a time."""
    from covgan.models.classifier import positive_probability

    if not len(images):
        return np.zeros(0, np.float32)
    return np.concatenate([positive_probability(classifier, images[i:i + batch]).numpy()
                           for i in range(0, len(images), batch)])


def explain_rows(generator, classifier, images, *, lungs=None, markers=None, settings=None,
                 seed=0, encoder=None, tuning=None, progress=None) -> list[dict]:
    """Each image explained (`covgan.explain.pipeline.explain`, EXPLAIN_CHUNK at a time) and
    reduced to what an audit keeps of it: {trusted, evidence (`image_evidence` of every
    registered map), image (H, W), maps {METHOD: (H, W)}, figure {image, FIGURE_KEYS...}}.

    Args: as `audit_images`'s, for these images only (lungs, markers: one per image or None).
    """
    from covgan.explain.pipeline import explain
    from covgan.explain.settings import InversionSettings, TuningSettings

    images = np.asarray(images, np.float32)
    lungs = [None] * len(images) if lungs is None else list(lungs)
    markers = [None] * len(images) if markers is None else list(markers)
    maps = map_keys()
    rows = []
    for start in range(0, len(images), EXPLAIN_CHUNK):
        chunk = images[start:start + EXPLAIN_CHUNK]
        done = explain(generator, classifier, chunk, settings=settings or InversionSettings(),
                       seed=seed, encoder=encoder, tuning=tuning or TuningSettings(),
                       progress=progress)
        for k, image in enumerate(chunk):
            i = start + k
            image_maps = {method: np.asarray(done[key][k], np.float32).reshape(image.shape[:2])
                          for method, key in maps.items()}
            rows.append({
                "trusted": bool(done["trusted"][k]),
                "evidence": image_evidence(image, image_maps, lungs=lungs[i], marker=markers[i],
                                           counterpart=done["counterparts"][k],
                                           reconstruction=done["reconstructions"][k]),
                "image": image[..., 0],
                "maps": image_maps,
                "figure": {"image": image, **{key: done[key][k] for key in FIGURE_KEYS}},
            })
    return rows


def audit_header(labels, probabilities, *, threshold=0.5, attribute=None,
                 attribute_name="attribute", class_names=None, seed=0) -> dict:
    """The result before any image is explained: {default_map, threshold, groups: {},
    flags} and, given a film attribute, the classifier's scores by its values
    (`attributes.scores_by_attribute`), whose flags lead (group "classifier")."""
    from covgan.explain.settings import DEFAULT_MAP

    result = {"default_map": DEFAULT_MAP, "threshold": threshold, "groups": {}, "flags": []}
    if attribute is not None:
        by = scores_by_attribute(labels, probabilities, attribute, column=attribute_name,
                                 threshold=threshold, seed=seed,
                                 class_names=class_names or ("negative", "positive"))
        result["attribute"] = by
        result["flags"] = [{**flag, "value": flag["difference"],
                            "threshold": by["flag_difference"], "group": "classifier"}
                           for flag in by["flags"]]
    return result


def audit_images(generator, classifier, images, labels, probabilities, *, lungs=None,
                 markers=None, count=200, settings=None, seed=0, threshold=0.5, encoder=None,
                 tuning=None, attribute=None, attribute_name="attribute", class_names=None,
                 progress=None):
    """Explains each group's images and aggregates them.

    Args:
        generator: the run's G.
        classifier: the run's C.
        images: (N, 128, 128, 1).
        labels: (N,) 0/1.
        probabilities: (N,) C's p(positive) of the images (`probabilities_of`; the command
            also scores the classifier with them).
        lungs: per image a lung mask or None (see `group_summary`), or None for all.
        markers: per image the mask of a known shortcut marker or None (`marker_scores`),
            or None for all.
        count: images per group at most.
        settings: inversion settings (default: InversionSettings()).
        seed: seed of the inversion's random starts.
        threshold: the p(positive) that calls an image positive (the groups' errors).
        encoder: the run's E, for `settings.z1_start` "encoder".
        tuning: pivotal tuning after each inversion (default: none).
        progress: called with the number of images just explained.
        attribute: per image its value of a film attribute (`attributes.attribute_values`),
            or None. Given, the result gains `attribute`, the classifier's scores and
            within-class readings by value (`attributes.scores_by_attribute`), whose flags lead
            the flags (group "classifier"), and each group is summarised value by value
            (`by_value`).
        attribute_name: the attribute's column, for the flags' text.
        class_names: the names of class 0 and 1, for the flags' text (default: negative,
            positive).

    Returns:
        A pair (result, pictures): result is JSON-ready: {default_map, threshold, groups: {GROUP:
        {n, lungs, trusted, methods: {METHOD: {regions}}, global_change[, marker]
        [, by_value]}}, flags: [{id, text, value, threshold, group[, map, maps]}]}; pictures:
        {GROUP: {mean_image, maps: {METHOD: mean map}, indices (into `images`), images and
        rows (FIGURE_KEYS) of the images the page shows, by position in the group,
        strongest: {FLAG: positions of the images that carry it most}[, by_value]}}.
        Each chosen image is explained once, EXPLAIN_CHUNK at a time in data order.
    """
    from covgan.explain.settings import DEFAULT_MAP

    images = np.asarray(images, np.float32)
    result = audit_header(labels, probabilities, threshold=threshold, attribute=attribute,
                          attribute_name=attribute_name, class_names=class_names, seed=seed)
    chosen = chosen_images(choose_groups(labels, probabilities, count, threshold))
    positions = list(chosen)
    rows = explain_rows(
        generator, classifier, images[positions],
        lungs=None if lungs is None else [lungs[i] for i in positions],
        markers=None if markers is None else [markers[i] for i in positions],
        settings=settings, seed=seed, encoder=encoder, tuning=tuning, progress=progress)
    accumulator = AuditAccumulator()
    for position, row in zip(positions, rows):
        accumulator.add({**row, "position": position, "groups": chosen[position],
                         "value": None if attribute is None else attribute[position]})
    figures = dict(zip(positions, (row["figure"] for row in rows)))
    return finish_audit(result, accumulator, figures.__getitem__, default_map=DEFAULT_MAP,
                        seed=seed)
