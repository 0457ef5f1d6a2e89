"""Pictures for people: the traversal grid leaves every image whole."""

import numpy as np

from covgan.output.render import GRID_LABEL_HEIGHT, traversal_grid


def test_the_grid_labels_each_tile_below_it_and_covers_no_pixel():
    rng = np.random.default_rng(0)
    images = rng.random((2, 3, 32, 32, 1)).astype(np.float32)
    grid = traversal_grid(images, [[0.1, 0.5, 0.9], [0.0, 0.25, 1.0]])
    pitch = 32 + GRID_LABEL_HEIGHT
    assert grid.shape == (2 * pitch, 3 * 32) and grid.dtype == np.uint8
    for r in range(2):
        for s in range(3):
            tile = grid[r * pitch:r * pitch + 32, s * 32:(s + 1) * 32]
            # Every pixel of the image is there, the upper-left corner included.
            np.testing.assert_array_equal(tile, np.round(images[r, s, ..., 0] * 255))
            label = grid[r * pitch + 32:(r + 1) * pitch, s * 32:(s + 1) * 32]
            assert label.max() > 128  # the written p(positive)
