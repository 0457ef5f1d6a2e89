"""The files an explanation or a traversal leaves in its output folder.

Shared by the local commands (`covgan explain`, `covgan traverse`) and by
`covgan query`, which receives the same arrays from a server: both write the
same PNGs, GIFs, plots, JSON and report.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from covgan.explain.invert import (
    COUNTERPART,
    IMAGE,
    PROBABILITY_TRUST_GAP,
    RECONSTRUCTION,
    SSIM_TRUST_THRESHOLD,
)
from covgan.explain.maps import explanation_maps, map_named
from covgan.explain.settings import DEFAULT_MAP
from covgan.explain.traverse import crossing_step
from covgan.io import write_json
from covgan.output.render import (
    captioned,
    figure_panels,
    heat_map,
    maps_panels,
    probability_plot,
    traversal_gif,
    traversal_strip,
)
from covgan.output.report import write_report


def map_titles(maps) -> dict[str, str]:
    """{result key: title} of `maps` (registry records), as shown beside Figure 2: the default
    map first."""
    default = map_named(DEFAULT_MAP).key
    return {m.key: m.title for m in sorted(maps, key=lambda m: m.key != default)}


def write_bgr(path: str | os.PathLike, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"Could not write {path}.")


def stems(sources: Sequence[str | os.PathLike]) -> list[str]:
    """File-name stems: index and source name, so two sources never collide."""
    return [f"{i:02d}_{pathlib.Path(p).stem}" for i, p in enumerate(sources)]


def inversion_rows(sources: Sequence[str | os.PathLike], result: Mapping[str, np.ndarray],
                   warnings: Sequence[list[str]]) -> list[dict]:
    """explain.json's per-image inversion fields (`loss` and `steps` where the result has them).

    `result` has the exported invert signature's names (`covgan.explain.invert.invert`'s dict,
    or a server's answer).
    """
    rows = []
    p = result["probabilities"]
    for i, source in enumerate(sources):
        row = {
            "source": str(source),
            "p_image": float(p[i, IMAGE]),
            "p_reconstruction": float(p[i, RECONSTRUCTION]),
            "p_counterpart": float(p[i, COUNTERPART]),
            "p_add_back": float(result["add_back_probabilities"][i]),
            "mse": float(result["mse"][i]),
            "ssim": float(result["ssim"][i]),
            "trusted": bool(result["trusted"][i]),
        }
        if "loss" in result:
            row["loss"] = float(result["loss"][i])
        if "steps" in result:
            row["inversion_steps"] = int(result["steps"][i])
        if "ssim_untuned" in result:  # pivotal tuning ran; the inversion's own figures
            row["ssim_untuned"] = float(result["ssim_untuned"][i])
            row["trusted_untuned"] = bool(result["trusted_untuned"][i])
        if "tuning_loss" in result:  # NaN where --tune-where untrusted kept the untuned one
            row["tuned"] = bool(np.isfinite(result["tuning_loss"][i]).all())
        row["warnings"] = warnings[i]
        rows.append(row)
    return rows


def figure(image: np.ndarray, result: Mapping[str, np.ndarray], i: int,
           heatmap: np.ndarray) -> tuple[list[np.ndarray], list[str]]:
    """The paper's Figure 2 for row i of an inversion result: image | reconstruction |
    negative counterpart | |reconstruction - counterpart| | Grad-CAM, p(positive) under each,
    then the image with the walk's change taken out (x + G(z1, 0) - G(z1, z2)).

    The one drawing of it: `covgan explain`, `covgan gradcam --run` and `covgan query` use it.
    Returns the panels and their captions (`covgan.output.render.captioned` joins them).
    """
    reconstruction, counterpart = result["reconstructions"][i], result["counterparts"][i]
    p = result["probabilities"][i]
    return figure_panels(image, reconstruction, counterpart, abs(reconstruction - counterpart),
                        heatmap, (p[IMAGE], p[RECONSTRUCTION], p[COUNTERPART]),
                        result["add_backs"][i], result["add_back_probabilities"][i])


def write_walk(strip_path, gif_path, frames, probabilities) -> np.ndarray:
    """A walk's strip (PNG) and animation (GIF), p under each frame; returns the strip."""
    strip = traversal_strip(frames, probabilities)
    write_bgr(strip_path, strip)
    traversal_gif(strip, len(probabilities), gif_path)
    return strip


def maps_held(result: Mapping[str, np.ndarray]) -> list:
    """The registered maps a result holds (a server's answer from an export before the
    registry has none)."""
    return [m for m in explanation_maps() if m.key in result]


def explanation_rows(sources: Sequence[str | os.PathLike], result: Mapping[str, np.ndarray],
                     warnings: Sequence[list[str]]) -> list[dict]:
    """explain.json's per-image rows: `inversion_rows`, the walk's p(positive) by step and
    the step it crosses 0.5, p(positive) along the walk on the film where the result has
    it, and where each map points (its peak pixel, row and column)."""
    rows = inversion_rows(sources, result, warnings)
    walks = result["traversal_probabilities"]
    crossings = crossing_step(walks)
    maps = maps_held(result)
    for i, row in enumerate(rows):
        row["crossing_step"] = int(crossings[i])
        row["probabilities"] = np.asarray(walks[i]).tolist()
        if "film_walk_probabilities" in result:
            row["film_walk_probabilities"] = np.asarray(
                result["film_walk_probabilities"][i]).tolist()
        row["map_peaks"] = {m.name: [int(v) for v in np.unravel_index(
            np.argmax(result[m.key][i]), np.shape(result[m.key][i]))] for m in maps}
    return rows


def write_explanation(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    sources: Sequence[str | os.PathLike],
    pixels: np.ndarray,
    result: Mapping[str, np.ndarray],
    warnings: Sequence[list[str]],
    *,
    steps: int,
    settings: dict,
) -> dict:
    """Figure 2 strips, traversal strips and GIFs, plots, explain.json and report.html.

    Args:
        folder: where to write now (a temporary folder renamed to `out` later).
        out: the folder's final path (named in explain.json).
        sources: image names, one per row.
        pixels: (N, 128, 128, 1) the images as the models saw them.
        result: `covgan.explain.pipeline.explain`'s dict, or the explain signature's outputs
            from a server: the same names.
        warnings: per-image lists of input warnings.
        steps: the step at which the traversal reaches the image.
        settings: dict shown in the report and recorded in the JSON.

    Returns:
        explain.json's payload.
    """
    folder = pathlib.Path(folder)
    maps = maps_held(result)
    rows = explanation_rows(sources, result, warnings)
    walks = result["traversal_probabilities"]
    titles = map_titles(maps)
    entries = []
    for i, (stem, row) in enumerate(zip(stems(sources), rows)):
        files = {
            "figure": folder / f"{stem}_figure.png",
            "strip": folder / f"{stem}_traversal.png",
            "gif": folder / f"{stem}_traversal.gif",
            "plot": folder / f"{stem}_probability.png",
        }
        pictures = {"figure_panels": figure(pixels[i], result, i, result["gradcam"][i])}
        write_bgr(files["figure"], captioned(*pictures["figure_panels"]))
        if titles:
            files["maps"] = folder / f"{stem}_maps.png"
            pictures["map_panels"] = maps_panels(
                pixels[i], {title: result[key][i] for key, title in titles.items()})
            write_bgr(files["maps"], captioned(*pictures["map_panels"]))
        pictures["strip_image"] = write_walk(files["strip"], files["gif"],
                                             result["traversal"][i], walks[i])
        if "film_walk" in result:  # a server's export from before it has none
            files["film_strip"] = folder / f"{stem}_film_walk.png"
            files["film_gif"] = folder / f"{stem}_film_walk.gif"
            pictures["film_strip_image"] = write_walk(
                files["film_strip"], files["film_gif"], result["film_walk"][i],
                result["film_walk_probabilities"][i])
        trust = "" if row["trusted"] else " (NOT trusted)"
        probability_plot(
            walks[i],
            files["plot"],
            crossing=row["crossing_step"],
            image_step=steps,
            title=f"{pathlib.Path(sources[i]).name}{trust}",
        )
        entries.append({**row, **pictures, "plot": str(files["plot"])})
        row["files"] = {k: v.name for k, v in files.items()}
    report_settings = {
        "traversal steps": steps,
        "SSIM trust threshold": SSIM_TRUST_THRESHOLD,
        "p trust gap": PROBABILITY_TRUST_GAP,
        **settings,
    }
    write_report(
        folder / "report.html",
        entries,
        title="covgan explanation report",
        settings=report_settings,
        ssim_threshold=SSIM_TRUST_THRESHOLD,
        probability_gap=PROBABILITY_TRUST_GAP,
    )
    payload = {
        "images": rows,
        "report": str(pathlib.Path(out) / "report.html"),
        "settings": report_settings,
        "maps": [{"name": m.name, "key": m.key, "title": " ".join(m.title.split())}
                 for m in maps],
    }
    write_json(folder / "explain.json", payload)
    return payload


def write_traversals(
    folder: str | os.PathLike,
    sources: Sequence[str | os.PathLike],
    frames: np.ndarray,
    probabilities: np.ndarray,
    crossings: np.ndarray,
    absolute: np.ndarray,
    *,
    steps: int,
) -> list[dict]:
    """Per source: traversal strip, GIF, p-by-step plot and |difference| map; returns JSON rows."""
    folder = pathlib.Path(folder)
    rows = []
    for i, stem in enumerate(stems(sources)):
        write_walk(folder / f"{stem}_traversal.png", folder / f"{stem}_traversal.gif", frames[i],
                   probabilities[i])
        probability_plot(
            probabilities[i],
            folder / f"{stem}_probability.png",
            crossing=int(crossings[i]),
            image_step=steps,
        )
        peak = float(absolute[i].max()) or 1.0
        write_bgr(folder / f"{stem}_difference.png", heat_map(absolute[i][..., 0] / peak))
        rows.append(
            {
                "source": str(sources[i]),
                "probabilities": probabilities[i].tolist(),
                "crossing_step": int(crossings[i]),
            }
        )
    return rows
