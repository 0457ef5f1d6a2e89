"""tools/explanation_stability.py: how two explanations of the same films compare."""

import numpy as np
from helpers import load_tool


def explanation(rng, peak):
    maps = rng.random((3, 128, 128)).astype("f4") * 0.5
    maps[:, peak[0], peak[1]] = 1.0
    return {"z1": rng.standard_normal((3, 8)), "ssim": np.full(3, 0.8),
            "trusted": np.array([True, False, True]),
            "film_gradients": maps.copy(), "latent_gradients": maps, "traversal_map": maps.copy()}


def test_the_same_explanation_agrees_and_a_moved_one_does_not():
    compare = load_tool("explanation_stability").compare
    rng = np.random.default_rng(0)
    reference = explanation(rng, (10, 10))
    same = compare(reference, reference)["summary"]
    assert same["trust_verdicts_equal"] == 3
    assert same["latent_gradients"]["median_correlation"] == 1.0
    assert same["latent_gradients"]["peaks_within_8px"] == 3
    moved = explanation(rng, (10, 40))
    moved["trusted"] = ~moved["trusted"]
    other = compare(reference, moved)
    assert other["summary"]["trust_verdicts_equal"] == 0
    assert other["summary"]["latent_gradients"]["peaks_within_8px"] == 0
    assert other["per_image"][0]["latent_gradients"]["peak_distance_px"] == 30.0
    assert other["summary"]["latent_gradients"]["median_correlation"] < 0.5
