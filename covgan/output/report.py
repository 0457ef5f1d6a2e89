"""A self-contained HTML report (pictures embedded) that a clinician can read without code.

Pictures are embedded at their native size, each in the smallest of PNG, JPEG and (for
gray ones) WebP, and the browser enlarges them; the traversal's animation moves
the embedded strip of steps rather than repeating its frames in a GIF. 32 RSNA films made a
report of 5.0 MB (with the walk on the film; the test's noisy phantoms about twice that per
image) that can be mailed and opened on a laptop.
"""

import base64

import cv2
import numpy as np

from covgan.output.templates import render

JPEG_QUALITY = 90
WEBP_QUALITY = 88
STEP_MILLISECONDS = 250

def data_uri(path, mime):
    """The file's bytes as a data: URI, so the report is one file."""
    with open(path, "rb") as f:
        return f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")


def image_uri(image: np.ndarray) -> str:
    """An 8-bit gray or BGR picture as a data: URI in the smallest of its candidate encodings.

    PNG (lossless) always; JPEG at JPEG_QUALITY with full colour resolution (4:4:4, so the
    maps' colours keep their edges); for gray pictures also WebP at WEBP_QUALITY, which is
    about 40% smaller than JPEG there (lossy WebP halves colour resolution, so only gray).
    """
    candidates = [
        ("image/png", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        ("image/jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]),
    ]
    if image.ndim == 2:
        candidates.append(("image/webp", ".webp", [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY]))
    encoded = []
    for mime, suffix, params in candidates:
        ok, data = cv2.imencode(suffix, image, params)
        if not ok:
            raise ValueError(f"cannot encode a picture of shape {image.shape} as {suffix}")
        encoded.append((data.size, mime, data))
    size, mime, data = min(encoded, key=lambda e: e[0])
    return f"data:{mime};base64," + base64.b64encode(data.tobytes()).decode("ascii")


def write_report(path, entries, *, title, settings, ssim_threshold, probability_gap):
    """Writes report.html from its template (templates/report.html.j2, autoescaped).

    Args:
        path: output file.
        entries: one dict per image: source, p_image, p_reconstruction, p_counterpart, mse,
            ssim, trusted, p_add_back, crossing_step, probabilities, warnings (and, tuned,
            ssim_untuned, trusted_untuned); the pictures figure_panels and, for explanations
            with maps, map_panels ((tiles, captions) from `covgan.output.render`), strip_image
            (`render.traversal_strip`), and where the result has it, film_strip_image and
            film_walk_probabilities (the walk carried onto the image); the plot's path.
        title: page title.
        settings: dict shown at the end (run, inversion and traversal settings; its "tuning",
            where present, says what became of the counterpart).
        ssim_threshold, probability_gap: the trust rule's, named where it fails.
    """
    views = []
    for entry in entries:
        view = {key: value for key, value in entry.items()
                if key not in ("figure_panels", "map_panels", "strip_image", "film_strip_image",
                               "plot")}
        view["figure_panels"] = _tiles(*entry["figure_panels"])
        view["map_panels"] = _tiles(*entry["map_panels"]) if entry.get("map_panels") else []
        view["walk"] = _walk(entry["strip_image"], len(entry["probabilities"]))
        if "film_strip_image" in entry:
            view["film_walk"] = _walk(entry["film_strip_image"],
                                      len(entry["film_walk_probabilities"]))
        view["plot_uri"] = data_uri(entry["plot"], "image/png")
        views.append(view)
    page = render("report.html.j2", title=title, entries=views, settings=settings,
                  tuning=settings.get("tuning") or {}, ssim_threshold=ssim_threshold,
                  probability_gap=probability_gap)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


def _tiles(tiles, captions):
    """Pictures with their captions, as the template shows them (native size, enlarged by
    the browser)."""
    return [{"uri": image_uri(tile), "caption": caption} for tile, caption in zip(tiles, captions)]


def _walk(strip, steps):
    """The traversal strip, for the page to show whole and, beside the plot, animated there and
    back: one frame at a time (2x, pixelated, with the white gap that follows it), the strip
    moved in `steps` jumps. Its data appears once, in a CSS class both elements use."""
    height, width = strip.shape
    return {"uri": image_uri(strip), "height": height, "width": width, "pitch": width // steps,
            "steps": steps, "milliseconds": steps * STEP_MILLISECONDS}
