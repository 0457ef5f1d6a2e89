"""tools/map_smoothing.py: a blur that merges speckle into the box raises its scores."""

import numpy as np
from helpers import load_tool


def test_a_blur_brings_a_speckled_map_onto_its_box_and_leaves_width_zero_alone():
    tool = load_tool("map_smoothing")
    masks = np.zeros((2, 32, 32), bool)
    masks[:, 8:20, 8:20] = True
    rng = np.random.default_rng(0)
    speckled = rng.uniform(0, 0.2, (2, 32, 32)).astype("f4")
    speckled[masks] += 0.5  # the box is brighter on average ...
    speckled[:, 28, 28] = 1.0  # ... but the single brightest pixel lies outside it
    found = tool.scores({"speckled": speckled}, masks, [0, 3])["speckled"]
    assert found["0"]["pointing_game"] == 0.0 and found["3"]["pointing_game"] == 1.0
    assert found["0"]["relevance_mass"] > masks.mean()
    np.testing.assert_array_equal(tool.blurred(speckled, 0), speckled)
