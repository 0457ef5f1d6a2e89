"""An audit built from parts: what each explained image leaves (its evidence), summed group by
group in any order (`AuditAccumulator`), then finished into audit.json's result and the
report's pictures (`finish_audit`).

The in-process audit folds its images into one accumulator; the Beam pipeline
(`covgan.scale.audit_pipeline`) folds them on many workers and merges the accumulators
(a combiner). Both finish with the same code, so both write the same audit.json and
audit.html. An accumulator keeps sums of arrays (mean maps, mean images) and one small record
of numbers per image (region shares, global change, marker scores: what the bootstrap
intervals, the flags and the strongest images need); the Figure 2 strips are fetched at the
end for the few images the page shows (`figure_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from covgan.evaluation.localisation import pointing_game, relevance_mass
from covgan.evaluation.regions import (
    MEASURES,
    REGIONS,
    change_intervals,
    global_measures,
    mass_by_region,
    region_masks,
)

GROUPS = ("positives", "false_positives", "false_negatives")
# What the report's Figure 2 strips need of each explained image (beside the image itself).
FIGURE_KEYS = ("reconstructions", "counterparts", "probabilities", "add_backs",
               "add_back_probabilities", "gradcam")
# Figure 2 strips shown per attribute value in audit.html.
EXAMPLES_PER_VALUE = 3


def image_evidence(image, maps: Mapping[str, np.ndarray], *, lungs=None, marker=None,
                   counterpart=None, reconstruction=None) -> dict:
    """One image's numbers: each map's share by region, the walk's change of each global
    measure (where the counterpart and reconstruction are given) and, where the image's
    shortcut marker is known, each map's pointing game and relevance mass on it.

    Returns:
        {lungs_known, shares: {METHOD: {REGION: share}}[, changes: {MEASURE: after - before}]
        [, marker: {METHOD: {pointing_game, relevance_mass}}]}.
    """
    masks = region_masks(image, lungs)
    evidence = {"lungs_known": lungs is not None,
                "shares": {m: mass_by_region(value, masks) for m, value in maps.items()}}
    if counterpart is not None and reconstruction is not None:
        before, after = global_measures(counterpart), global_measures(reconstruction)
        evidence["changes"] = {name: after[name] - before[name] for name in MEASURES}
    if marker is not None:
        evidence["marker"] = marker_evidence(maps, marker)
    return evidence


def marker_evidence(maps: Mapping[str, np.ndarray], marker) -> dict:
    """{METHOD: {pointing_game, relevance_mass}} of one image's maps on its marker's box."""
    return {m: {"pointing_game": pointing_game(value, marker),
                "relevance_mass": relevance_mass(value, marker)} for m, value in maps.items()}


def summary_of(records: list[dict], map_sums: Mapping[str, np.ndarray], seed: int = 0) -> dict:
    """A group's summary from its images' evidence (in data order) and the sums of their maps:
    `covgan.evaluation.audit.group_summary`'s dict."""
    count = len(records)
    methods = {}
    for method, total in map_sums.items():
        per_image = {name: np.array([r["shares"][method][name] for r in records])
                     for name in REGIONS}
        methods[method] = {
            "regions": {name: float(per_image[name].mean()) if count else 0.0
                        for name in REGIONS},
            "mean_map": total / count if count else np.zeros_like(total),
            "per_image": per_image,
        }
    known = all(r["lungs_known"] for r in records)
    summary = {"n": count, "lungs": "masks" if known else "approximate", "methods": methods}
    if records and all("changes" in r for r in records):
        summary["changes"] = {name: np.array([r["changes"][name] for r in records], np.float64)
                              for name in MEASURES}
        summary["global_change"] = change_intervals(summary["changes"], seed=seed)
    return summary


def marker_summary(records: list[dict]) -> dict | None:
    """{n, methods: {METHOD: {pointing_game, relevance_mass}}} over the images whose marker is
    known, each score averaged; None where none is."""
    known = [r["marker"] for r in records if r.get("marker")]
    if not known:
        return None
    return {"n": len(known),
            "methods": {method: {score: float(np.mean([k[method][score] for k in known]))
                                 for score in ("pointing_game", "relevance_mass")}
                        for method in known[0]}}


class _Sums:
    """Per-pixel sums of a set of images and of their maps."""

    def __init__(self):
        self.count, self.image, self.maps = 0, None, {}

    def add(self, image, maps):
        self.count += 1
        self.image = _plus(self.image, image)
        for method, value in maps.items():
            self.maps[method] = _plus(self.maps.get(method), value)

    def merge(self, other: _Sums):
        self.count += other.count
        self.image = _plus(self.image, other.image)
        for method, value in other.maps.items():
            self.maps[method] = _plus(self.maps.get(method), value)


def _plus(total, value):
    if value is None:
        return total
    value = np.asarray(value, np.float64).reshape(np.shape(value)[:2])
    return value.copy() if total is None else total + value


class AuditAccumulator:
    """Images' evidence summed by group (and by attribute value within a group), in any order;
    two accumulators merge. What `finish_audit` needs, no more: per group the sums of images
    and maps, and per image its position, attribute value, trust and evidence."""

    def __init__(self):
        self.records = {group: [] for group in GROUPS}
        self.sums = {group: _Sums() for group in GROUPS}
        self.value_sums = {group: {} for group in GROUPS}

    def add(self, row: Mapping) -> None:
        """Adds one explained image: a mapping with position (in the audited split), groups,
        value (its attribute value or None), trusted, evidence (`image_evidence`), image
        (H, W) and maps {METHOD: (H, W)}."""
        record = {"position": int(row["position"]), "value": row["value"],
                  "trusted": bool(row["trusted"]), **row["evidence"]}
        for group in row["groups"]:
            self.records[group].append(record)
            self.sums[group].add(row["image"], row["maps"])
            if row["value"] is not None:
                self.value_sums[group].setdefault(row["value"], _Sums()).add(row["image"],
                                                                             row["maps"])

    def merge(self, other: AuditAccumulator) -> AuditAccumulator:
        for group in GROUPS:
            self.records[group] += other.records[group]
            self.sums[group].merge(other.sums[group])
            for value, sums in other.value_sums[group].items():
                self.value_sums[group].setdefault(value, _Sums()).merge(sums)
        return self

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The accumulator as JSON-ready numbers and named arrays (`from_state` reads them):
        a Beam run hands its merged accumulator to the command this way."""
        numbers, arrays = {"records": self.records, "sums": {}}, {}
        for group in GROUPS:
            named = {"": self.sums[group], **{f"value:{v}": s
                                              for v, s in self.value_sums[group].items()}}
            numbers["sums"][group] = []
            for k, (name, sums) in enumerate(named.items()):
                numbers["sums"][group].append({"name": name, "count": sums.count,
                                               "maps": list(sums.maps)})
                if sums.image is not None:
                    arrays[f"{group}/{k}/image"] = sums.image
                for m, (method, total) in enumerate(sums.maps.items()):
                    arrays[f"{group}/{k}/map{m}"] = total
        return numbers, arrays

    @classmethod
    def from_state(cls, numbers: dict, arrays: Mapping[str, np.ndarray]) -> AuditAccumulator:
        accumulator = cls()
        accumulator.records = {g: list(numbers["records"].get(g, [])) for g in GROUPS}
        for group in GROUPS:
            for k, entry in enumerate(numbers["sums"].get(group, [])):
                sums = _Sums()
                sums.count = entry["count"]
                sums.image = arrays.get(f"{group}/{k}/image")
                sums.maps = {method: arrays[f"{group}/{k}/map{m}"]
                             for m, method in enumerate(entry["maps"])}
                if entry["name"]:
                    accumulator.value_sums[group][entry["name"][len("value:"):]] = sums
                else:
                    accumulator.sums[group] = sums
        return accumulator

    def positions(self) -> list[int]:
        """Every image added, by position, once."""
        return sorted({r["position"] for records in self.records.values() for r in records})


def finish_audit(result: dict, accumulator: AuditAccumulator,
                 figure_of: Callable[[int], Mapping], *, default_map: str,
                 seed: int = 0) -> tuple[dict, dict]:
    """audit.json's groups and flags, and the report's pictures, from an accumulator.

    Args:
        result: the result so far ({default_map, threshold, groups: {}, flags: [...]}, the
            classifier's own flags first); its groups and flags are filled in.
        accumulator: every explained image's evidence.
        figure_of: position -> {image, FIGURE_KEYS...} of one explained image, for the few
            strips the page shows.
        default_map: the map that leads (`covgan.explain.settings.DEFAULT_MAP`).
        seed: of the bootstrap intervals.

    Returns:
        (result, pictures), as `covgan.evaluation.audit.audit_images` returns them.
    """
    from covgan.evaluation.audit import flags, strongest

    pictures = {}
    for group in GROUPS:
        records = sorted(accumulator.records[group], key=lambda r: r["position"])
        if not records:
            result["groups"][group] = {"n": 0}
            continue
        sums = accumulator.sums[group]
        summary = summary_of(records, sums.maps, seed)
        raised = flags(summary, default_map, group)
        marker = marker_summary(records)
        if marker:
            summary["marker"] = marker
        shown = {flag["id"]: strongest(summary, flag["id"], flag.get("map", default_map))
                 for flag in raised}
        picture = {
            "mean_image": sums.image / sums.count,
            "maps": {m: values.pop("mean_map") for m, values in summary["methods"].items()},
            "indices": np.array([r["position"] for r in records]),
            "strongest": shown,
        }
        for values in summary["methods"].values():
            values.pop("per_image")
        summary.pop("changes", None)
        examples = []
        if any(r["value"] is not None for r in records):
            summary["by_value"], picture["by_value"] = _by_value(
                records, accumulator.value_sums[group], seed)
            examples = [k for part in picture["by_value"].values() for k in part["examples"]]
        _attach_figures(picture, [k for ks in shown.values() for k in ks] + examples,
                        figure_of)
        result["groups"][group] = {**summary,
                                   "trusted": float(np.mean([r["trusted"] for r in records]))}
        result["flags"] += [{**flag, "group": group} for flag in raised]
        pictures[group] = picture
    return result, pictures


def _by_value(records, value_sums, seed):
    """A group's summary value by value: (JSON part {VALUE: {n, methods, global_change,
    trusted}}, pictures {VALUE: {mean_image, maps, examples: positions in the group}}), the
    values in order of their film count."""
    values = np.asarray([r["value"] for r in records], object)
    summaries, pictures = {}, {}
    for value in sorted(set(values), key=lambda v: (-int(np.sum(values == v)), str(v))):
        chosen = np.flatnonzero(values == value)
        sums = value_sums[value]
        summary = summary_of([records[k] for k in chosen], sums.maps, seed)
        pictures[value] = {
            "mean_image": sums.image / sums.count,
            "maps": {m: v.pop("mean_map") for m, v in summary["methods"].items()},
            "examples": chosen[:EXAMPLES_PER_VALUE].tolist(),
        }
        for method in summary["methods"].values():
            method.pop("per_image")
        summary.pop("changes", None)
        summaries[value] = {**summary,
                            "trusted": float(np.mean([records[k]["trusted"] for k in chosen]))}
    return summaries, pictures


def _attach_figures(picture, shown, figure_of):
    """The group's images at positions `shown` (in the group) and their Figure 2 rows, as
    {position: value} where audit_report indexes them."""
    picture["images"], picture["rows"] = {}, {key: {} for key in FIGURE_KEYS}
    for k in sorted(set(int(k) for k in shown)):
        figure = figure_of(int(picture["indices"][k]))
        picture["images"][k] = figure["image"]
        for key in FIGURE_KEYS:
            picture["rows"][key][k] = figure[key]
