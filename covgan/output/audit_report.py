"""audit.html: one self-contained page with a data set's audit, flags first."""

from __future__ import annotations

import html
import os
import pathlib

import cv2

from covgan.output.render import captioned, heat_overlay
from covgan.output.report import image_uri
from covgan.output.writers import figure

STYLE = """body{font-family:sans-serif;margin:2em;max-width:75em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.2em .5em;
text-align:right}th:first-child,td:first-child{text-align:left}.flag{background:#fde8e8;
border-left:4px solid #c62828;padding:.4em .8em;margin:.4em 0}.none{background:#e8f5e9;
border-left:4px solid #2e7d32;padding:.4em .8em}figure{display:inline-block;margin:0 .6em .6em 0}
figure img{width:256px;image-rendering:pixelated}figcaption{font-size:.85em}"""


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _mean_maps(picture):
    figures = []
    for method, mean_map in picture["maps"].items():
        peak = float(mean_map.max())
        scaled = mean_map / peak if peak > 0 else mean_map
        tile = heat_overlay(picture["mean_image"], scaled)
        tile = cv2.resize(tile, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        figures.append(f"<figure><img alt='mean {html.escape(method)} map' "
                       f"src='{image_uri(tile)}'><figcaption>{html.escape(method)}"
                       "</figcaption></figure>")
    return "<div>" + "".join(figures) + "</div>"


def _metrics(external):
    rows = []
    for name in ("own", "external"):
        scores = external[name]
        rows.append([f"{name}: {scores['data']} ({scores['split']})", scores["n"],
                     *(_number(scores[k]) for k in ("accuracy", "auc", "sensitivity",
                                                    "specificity"))])
    return _table(["data", "n", "accuracy", "AUC", "sensitivity", "specificity"], rows)


def _strips(picture, positions):
    """Figure 2 of the group's images at `positions`."""
    rows, images = picture["rows"], picture["images"]
    strips = []
    for position in positions:
        tiles, captions = figure(images[position], rows, position, rows["gradcam"][position])
        number = int(picture["indices"][position])
        strips.append(f"<figure><img style='width:auto' alt='Figure 2 of image {number}' "
                      f"src='{image_uri(captioned(tiles, captions))}'><figcaption>image "
                      f"{number} of the split</figcaption></figure>")
    return "".join(strips)


def _strongest(flag, picture):
    """Figure 2 of the images that carry a flag most strongly (none for a flag on the
    classifier's readings, which no group's pictures carry)."""
    strips = _strips(picture, picture["strongest"].get(flag["id"], [])) if picture else ""
    return ("<details><summary>The images that carry it most, Figure 2 of each</summary>"
            + strips + "</details>") if strips else ""


def _number(value):
    return "-" if value is None else f"{value:.3f}"


def _attribute(audit, pictures):
    """The classifier and every group's evidence by the values of a film attribute."""
    by = audit["attribute"]
    column = html.escape(by["column"])
    parts = [f"<h2>By {column}</h2>",
             f"<p>The classifier on the whole split, value by value of {column}:</p>",
             _table(["value", "n", "accuracy", "AUC", "sensitivity", "specificity"],
                    [[v, s["n"], *(_number(s[k]) for k in ("accuracy", "auc", "sensitivity",
                                                           "specificity"))]
                     for v, s in by["groups"].items()]),
             "<p>Within each class the disease is the same, so p(positive) should not depend "
             f"on {column}. Mean p(positive) per value, with its bootstrap 95% interval:</p>",
             _table(["class", "value", "n", "mean p", "95% interval"],
                    [[name, v, m["n"], f"{m['mean']:.3f}", f"{m['low']:.3f} to {m['high']:.3f}"]
                     for name, values in by["within_class"].items()
                     for v, m in values.items()])]
    if by["differences"]:
        parts.append(_table(
            ["class", "reads more positive", "than", "difference", "95% interval", "flagged"],
            [[d["class"], d["higher"], d["lower"], f"{d['difference']:+.3f}",
              f"{d['low']:+.3f} to {d['high']:+.3f}", "yes" if d["flagged"] else "no"]
             for d in by["differences"]]))
    for group, summary in audit["groups"].items():
        for value, part in summary.get("by_value", {}).items():
            picture = pictures[group]["by_value"][value]
            parts.append(f"<h3>{html.escape(group.replace('_', ' '))}, {column} "
                         f"{html.escape(str(value))}: {part['n']} images, "
                         f"{part['trusted']:.0%} trusted</h3>")
            parts.append(_mean_maps(picture))
            parts.append(_strips(pictures[group], picture["examples"]))
            change = part.get("global_change", {})
            parts.append(_table(["measure", "mean", "low", "high"],
                                [[m, f"{c['mean']:+.4f}", f"{c['low']:+.4f}",
                                  f"{c['high']:+.4f}"] for m, c in change.items()]))
    return "".join(parts)


def _section(title, audit, pictures):
    parts = [f"<h2>{html.escape(title)}</h2>"]
    flags = audit["flags"]
    if flags:
        parts += [f"<div class='flag'>{html.escape(f['text'])} <small>({f['id']}: "
                  f"{f['value']:.3f} against {f['threshold']})</small>"
                  f"{_strongest(f, pictures.get(f['group']))}</div>" for f in flags]
    else:
        parts.append("<div class='none'>No flag raised: the default map's mass lies in the "
                     "lungs and the walk changes no global property beyond the thresholds."
                     "</div>")
    for group, summary in audit["groups"].items():
        parts.append(f"<h3>{html.escape(group.replace('_', ' '))}: {summary['n']} images</h3>")
        if not summary["n"]:
            continue
        parts.append(f"<p>Inversions trusted: {summary['trusted']:.0%}. Lung fields: "
                     f"{summary['lungs']}.</p>")
        parts.append(_mean_maps(pictures[group]))
        # Names from the result itself: output sits beside evaluation, not above it.
        regions = list(next(iter(summary["methods"].values()))["regions"])
        rows = [[method] + [f"{values['regions'][r]:.3f}" for r in regions]
                for method, values in summary["methods"].items()]
        parts.append("<p>Share of each map's mass by region (lungs, thorax and outside the "
                     "body partition the film; the border and corners overlap them):</p>")
        parts.append(_table(["map", *regions], rows))
        marker = summary.get("marker")
        if marker:
            parts.append(f"<p>On the {marker['n']} images of this group whose shortcut marker "
                         "is known: the share whose map maximum lies on the marker (pointing "
                         "game) and the marker box's share of the map's mass:</p>")
            parts.append(_table(["map", "pointing game", "relevance mass"],
                                [[m, f"{v['pointing_game']:.3f}", f"{v['relevance_mass']:.3f}"]
                                 for m, v in marker["methods"].items()]))
        change = summary.get("global_change", {})
        if change:
            parts.append("<p>What the walk changes, reconstruction minus negative "
                         "counterpart (mean and 95% interval over the group):</p>")
            parts.append(_table(["measure", "mean", "low", "high"],
                                [[m, f"{c['mean']:+.4f}", f"{c['low']:+.4f}",
                                  f"{c['high']:+.4f}"] for m, c in change.items()]))
    return "".join(parts)


def write_audit_report(path: str | os.PathLike, result: dict, pictures: dict,
                       external_pictures: dict | None = None) -> None:
    """Writes the page (into the command's atomic output folder): flags, classifier metrics
    (with --external), then per group the mean maps, the region table and the global change."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>covgan audit</title>"
             f"<style>{STYLE}</style></head><body><h1>covgan audit</h1>",
             f"<p>Run {html.escape(str(result['run']))}, data {html.escape(str(result['data']))}"
             f" ({html.escape(result['split'])}); default map: {result['default_map']}. "
             "Flags and their thresholds: covgan's user guide, Auditing a data set.</p>"]
    if "external" in result:
        parts.append("<h2>The classifier on its own data and on the external set</h2>")
        parts.append(_metrics(result["external"]))
    parts.append(_section("Flags and evidence", result, pictures))
    if "attribute" in result:
        parts.append(_attribute(result, pictures))
    if "external" in result:
        parts.append(_section(f"External set: {result['external']['external']['data']}",
                              result["external"]["audit"], external_pictures))
    parts.append("</body></html>")
    pathlib.Path(path).write_text("".join(parts), encoding="utf-8")
