"""tools/latent_shift.py: the search stops at the first length below the target, and a walk
runs from its counterpart to the image's own code."""

import numpy as np
from helpers import load_tool


def test_the_search_stops_at_the_first_length_below_the_target_or_at_its_lowest():
    tool = load_tool("latent_shift")
    p = np.array([[0.9, 0.5, 0.05, 0.01],     # first below 0.1: index 2, not the lowest (3)
                  [0.9, 0.6, 0.3, 0.4]])      # never below: the lowest, index 2
    np.testing.assert_array_equal(tool.first_below(p, 0.1), [2, 2])


def test_a_walk_runs_from_the_counterpart_to_the_image_code_in_even_steps():
    tool = load_tool("latent_shift")
    start, end = np.zeros((2, 3), np.float32), np.array([[1, 2, 3], [-1, 0, 4]], np.float32)
    codes = tool.codes_along(start, end, 4)
    assert len(codes) == 5
    np.testing.assert_array_equal(codes[0], start)
    np.testing.assert_array_equal(codes[-1], end)
    np.testing.assert_allclose(codes[1], end / 4)
