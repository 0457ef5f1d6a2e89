"""Pictures for people: image grids and strips labelled with the classifier's p(positive)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

GRID_LABEL_HEIGHT = 12


def traversal_grid(images, probabilities):
    """A (rows * (H + 12), steps * W) uint8 grid: one traversal per row, each tile above a dark
    band reading its p(positive). The label sits below the image, never on it: a corner marker
    the walk draws (the shortcut a classifier may read) stays in sight.

    Args:
        images: (rows, steps, H, W, 1) in [0, 1].
        probabilities: (rows, steps).
    """
    images = np.asarray(images)
    rows, steps, height, width = images.shape[:4]
    pitch = height + GRID_LABEL_HEIGHT
    grid = np.zeros((rows * pitch, steps * width), np.uint8)
    for r in range(rows):
        for s in range(steps):
            top, left = r * pitch, s * width
            grid[top:top + height, left:left + width] = to_uint8(images[r, s])
            cv2.putText(grid, f"p={float(probabilities[r][s]):.2f}",
                        (left + 2, top + height + GRID_LABEL_HEIGHT - 2),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.33, 255, 1, cv2.LINE_AA)
    return grid


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1) floats in [0, 1] -> (H, W) uint8."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., 0]
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def heat_overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A colour (BGR) overlay of a [0, 1] heatmap on a grayscale image (jet colour map)."""
    gray = cv2.cvtColor(to_uint8(image), cv2.COLOR_GRAY2BGR)
    colour = cv2.applyColorMap(to_uint8(heatmap), cv2.COLORMAP_JET)
    return cv2.addWeighted(colour, alpha, gray, 1.0 - alpha, 0.0)


def heat_map(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] map in the 'inferno'-like magma colour map (BGR), for difference maps."""
    return cv2.applyColorMap(to_uint8(heatmap), cv2.COLORMAP_MAGMA)


def captioned(tiles: Sequence[np.ndarray], captions: Sequence[str],
              scale: int = 2) -> np.ndarray:
    """Tiles (BGR or gray, same size) side by side, enlarged, each with a caption below."""
    height, width = tiles[0].shape[:2]
    panels = []
    for tile, caption in zip(tiles, captions):
        if tile.ndim == 2:
            tile = cv2.cvtColor(tile, cv2.COLOR_GRAY2BGR)
        tile = cv2.resize(tile, (width * scale, height * scale), interpolation=cv2.INTER_NEAREST)
        band = np.full((22 * len(caption.split("\n")), tile.shape[1], 3), 255, np.uint8)
        for row, line in enumerate(caption.split("\n")):
            cv2.putText(band, line, (4, 16 + 22 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 0, 0), 1, cv2.LINE_AA)
        panels.append(np.concatenate([tile, band], axis=0))
    tallest = max(p.shape[0] for p in panels)
    panels = [np.pad(p, ((0, tallest - p.shape[0]), (2, 2), (0, 0)), constant_values=255)
              for p in panels]
    return np.concatenate(panels, axis=1)


def figure_panels(image, reconstruction, counterpart, abs_difference, gradcam, probabilities,
                  add_back=None, p_add_back=None):
    """The paper's Figure 2 for one image as (tiles, captions), p(positive) under each panel.

    Tiles are at the images' native size: 8-bit gray, or BGR for the two maps.
    probabilities: p of the image, the reconstruction and the counterpart. With `add_back`
    (x + G(z1, 0) - G(z1, z2)), a last panel shows the image with the walk's change taken out.
    """
    p_image, p_reconstruction, p_counterpart = probabilities
    peak = float(np.max(abs_difference)) or 1.0
    tiles = [to_uint8(image), to_uint8(reconstruction), to_uint8(counterpart),
             heat_map(np.asarray(abs_difference)[..., 0] / peak), heat_overlay(image, gradcam)]
    captions = [f"image\np={p_image:.2f}", f"reconstruction\np={p_reconstruction:.2f}",
                f"negative counterpart\np={p_counterpart:.2f}", f"|difference|\nmax {peak:.2f}",
                "Grad-CAM\n(positive class)"]
    if add_back is not None:
        tiles.append(to_uint8(add_back))
        captions.append(f"image - change\np={p_add_back:.2f}")
    return tiles, captions


def maps_panels(image, maps):
    """Every explanation map of one image over the image, as (BGR tiles, captions).

    maps: {title: (H, W) map in [0, 1]}, in the order to show.
    """
    return [heat_overlay(image, m) for m in maps.values()], list(maps)


FILM_LABEL_HEIGHT = 16
FILM_GAP = 2


def traversal_strip(traversal, probabilities):
    """One 8-bit gray row of the walk's frames at their native size, each above a dark band
    reading `n=3 p=0.42` and followed by a white gap.

    Every frame takes the same width (W + FILM_GAP), so the report can animate the strip by
    moving it, and no label covers the image (a corner marker stays in sight).
    """
    tiles = []
    for n, (frame, p) in enumerate(zip(traversal, probabilities)):
        tile = to_uint8(frame)
        band = np.zeros((FILM_LABEL_HEIGHT, tile.shape[1]), np.uint8)
        cv2.putText(band, f"n={n} p={p:.2f}", (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, 255, 1,
                    cv2.LINE_AA)
        framed = np.concatenate([tile, band], axis=0)
        tiles.append(np.pad(framed, ((0, 0), (0, FILM_GAP)), constant_values=255))
    return np.concatenate(tiles, axis=1)


def traversal_gif(strip, steps, path, *, milliseconds=250):
    """An animated GIF of the traversal, there and back: the frames of `traversal_strip`'s
    picture `strip` (of `steps` frames), at native size."""
    from PIL import Image

    pitch = strip.shape[1] // steps
    frames = [Image.fromarray(strip[:, i * pitch:(i + 1) * pitch - FILM_GAP])
              for i in range(steps)]
    frames = frames + frames[-2:0:-1]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=milliseconds, loop=0, optimize=True)


def probability_plot(probabilities, path, *, crossing=None, image_step=None, title=None):
    """p(positive) against the traversal step, with the 0.5 decision line (PNG via matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from PIL import Image

    figure, axes = pyplot.subplots(figsize=(4.2, 2.8), dpi=110)
    steps = np.arange(len(probabilities))
    axes.plot(steps, probabilities, marker="o", color="#b2182b")
    axes.axhline(0.5, color="gray", linestyle="--", linewidth=1, label="decision (0.5)")
    if crossing is not None and crossing >= 0:
        axes.axvline(crossing, color="#2166ac", linewidth=1, label=f"crosses at n={crossing}")
    if image_step is not None and image_step < len(probabilities) - 1:
        axes.axvspan(image_step, len(probabilities) - 1, color="#eeeeee", label="extrapolated")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("traversal step n (0 = negative counterpart)")
    axes.set_ylabel("p(positive)")
    if title:
        axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    pyplot.close(figure)
    # A plot has few colours: a 256-colour palette PNG is half the size and looks the same.
    Image.fromarray(rgba[..., :3]).quantize(colors=256).save(path, format="PNG", optimize=True)
