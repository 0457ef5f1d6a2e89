"""How far two audits of the same images lie apart: the same flags? how far apart are their
region shares and marker scores? (A Beam audit against the in-process one, or two runs of
one command.)"""

from __future__ import annotations


def compare_audits(a: dict, b: dict) -> dict:
    """Two audit.json results, compared.

    Returns:
        {same_flags, flags: [a's (group, id)], flags_b, same_counts, region_share_max_difference,
        marker_max_difference: {pointing_game, relevance_mass}, trusted_max_difference}, the
        differences the largest over every group, map and region.
    """
    def flag_ids(audit):
        return sorted((f["group"], f["id"]) for f in audit["flags"])

    shares, marker, trusted = 0.0, {"pointing_game": 0.0, "relevance_mass": 0.0}, 0.0
    counts = {}
    for group, part in a["groups"].items():
        other = b["groups"].get(group, {"n": 0})
        counts[group] = (part["n"], other["n"])
        if not part["n"] or not other["n"]:
            continue
        trusted = max(trusted, abs(part["trusted"] - other["trusted"]))
        for method, values in part["methods"].items():
            for region, share in values["regions"].items():
                shares = max(shares, abs(share - other["methods"][method]["regions"][region]))
        if "marker" in part:
            for method, scores in part["marker"]["methods"].items():
                for score in marker:
                    marker[score] = max(marker[score], abs(
                        scores[score] - other["marker"]["methods"][method][score]))
    return {"same_flags": flag_ids(a) == flag_ids(b), "flags": flag_ids(a),
            "flags_b": flag_ids(b), "same_counts": all(x == y for x, y in counts.values()),
            "counts": counts, "region_share_max_difference": shares,
            "marker_max_difference": marker, "trusted_max_difference": trusted}
