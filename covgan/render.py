"""Pictures for people: image grids stamped with the classifier's p(positive)."""

import cv2
import numpy as np


def stamp_probability(tile, probability):
    """Writes `p=0.87` on a dark band at the top of an 8-bit (H, W) tile, in place."""
    cv2.rectangle(tile, (0, 0), (46, 12), 0, -1)
    cv2.putText(tile, f"p={probability:.2f}", (2, 10), cv2.FONT_HERSHEY_SIMPLEX, 0.33, 255, 1,
                cv2.LINE_AA)
    return tile


def traversal_grid(images, probabilities):
    """A (rows * H, steps * W) uint8 grid: one traversal per row, p(positive) on each tile.

    Args:
        images: (rows, steps, H, W, 1) in [0, 1].
        probabilities: (rows, steps).
    """
    images = np.asarray(images)
    rows, steps, height, width = images.shape[:4]
    grid = np.zeros((rows * height, steps * width), np.uint8)
    for r in range(rows):
        for s in range(steps):
            tile = np.round(np.clip(images[r, s, ..., 0], 0, 1) * 255).astype(np.uint8)
            stamp_probability(tile, float(probabilities[r][s]))
            grid[r * height : (r + 1) * height, s * width : (s + 1) * width] = tile
    return grid
