"""audit.html: one self-contained page with a data set's audit, flags first, rendered from
templates/audit.html.j2 (autoescaped): this module turns the audit and its pictures into what the
page shows."""

from __future__ import annotations

import os
import pathlib

import cv2

from covgan.output.render import captioned, heat_overlay
from covgan.output.report import image_uri
from covgan.output.templates import number, render
from covgan.output.writers import figure

SCORES = ("accuracy", "auc", "sensitivity", "specificity")


def _mean_maps(picture):
    maps = []
    for method, mean_map in picture["maps"].items():
        peak = float(mean_map.max())
        scaled = mean_map / peak if peak > 0 else mean_map
        tile = heat_overlay(picture["mean_image"], scaled)
        tile = cv2.resize(tile, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        maps.append({"method": method, "uri": image_uri(tile)})
    return maps


def _strips(picture, positions):
    """Figure 2 of the group's images at `positions`."""
    rows, images = picture["rows"], picture["images"]
    strips = []
    for position in positions:
        tiles, captions = figure(images[position], rows, position, rows["gradcam"][position])
        strips.append({"number": int(picture["indices"][position]),
                       "uri": image_uri(captioned(tiles, captions))})
    return strips


def _change_rows(change):
    return [[m, f"{c['mean']:+.4f}", f"{c['low']:+.4f}", f"{c['high']:+.4f}"]
            for m, c in change.items()]


def _metrics(external):
    return [[f"{name}: {external[name]['data']} ({external[name]['split']})",
             external[name]["n"], *(number(external[name][k]) for k in SCORES)]
            for name in ("own", "external")]


def _section(title, audit, pictures):
    """A part of the page: the flags (with the images that carry each most: none for a flag on
    the classifier's readings, which no group's pictures carry), then each group's evidence."""
    flags = [{**flag, "strongest": _strips(pictures[flag["group"]],
                                           pictures[flag["group"]]["strongest"].get(flag["id"], []))
              if pictures.get(flag.get("group")) else []}
             for flag in audit["flags"]]
    groups = []
    for group, summary in audit["groups"].items():
        view = {"name": group.replace("_", " "), "n": summary["n"]}
        if summary["n"]:
            # Region names from the result itself: output sits beside evaluation, not above it.
            regions = list(next(iter(summary["methods"].values()))["regions"])
            marker = summary.get("marker")
            view.update(
                trusted=summary["trusted"], lungs=summary["lungs"],
                maps=_mean_maps(pictures[group]), regions=regions,
                region_rows=[[method] + [f"{values['regions'][r]:.3f}" for r in regions]
                             for method, values in summary["methods"].items()],
                marker={"n": marker["n"], "rows": [[m, f"{v['pointing_game']:.3f}",
                                                    f"{v['relevance_mass']:.3f}"]
                                                   for m, v in marker["methods"].items()]}
                if marker else None,
                change=_change_rows(summary.get("global_change", {})))
        groups.append(view)
    return {"title": title, "flags": flags, "groups": groups}


def _attribute(audit, pictures):
    """The classifier and every group's evidence by the values of a film attribute."""
    by = audit["attribute"]
    values = [{"group": group.replace("_", " "), "value": value, "n": part["n"],
               "trusted": part["trusted"], "maps": _mean_maps(pictures[group]["by_value"][value]),
               "examples": _strips(pictures[group],
                                   pictures[group]["by_value"][value]["examples"]),
               "change": _change_rows(part.get("global_change", {}))}
              for group, summary in audit["groups"].items()
              for value, part in summary.get("by_value", {}).items()]
    return {
        "column": by["column"],
        "scores": [[v, s["n"], *(number(s[k]) for k in SCORES)] for v, s in by["groups"].items()],
        "within_class": [[name, v, m["n"], f"{m['mean']:.3f}",
                          f"{m['low']:.3f} to {m['high']:.3f}"]
                         for name, per_value in by["within_class"].items()
                         for v, m in per_value.items()],
        "differences": [[d["class"], d["higher"], d["lower"], f"{d['difference']:+.3f}",
                         f"{d['low']:+.3f} to {d['high']:+.3f}", "yes" if d["flagged"] else "no"]
                        for d in by["differences"]],
        "per_value": values,
    }


def write_audit_report(path: str | os.PathLike, result: dict, pictures: dict,
                       external_pictures: dict | None = None) -> None:
    """Writes the page (into the command's atomic output folder): flags, classifier metrics
    (with --external), then per group the mean maps, the region table and the global change."""
    external = result.get("external")
    page = render(
        "audit.html.j2", run=str(result["run"]), data=str(result["data"]), split=result["split"],
        default_map=result["default_map"],
        metrics=_metrics(external) if external else None,
        main=_section("Flags and evidence", result, pictures),
        attribute=_attribute(result, pictures) if "attribute" in result else None,
        external=_section(f"External set: {external['external']['data']}", external["audit"],
                          external_pictures or {}) if external else None)
    pathlib.Path(path).write_text(page, encoding="utf-8")
