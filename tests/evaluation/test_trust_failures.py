import numpy as np
import pytest

from covgan.evaluation.localise import trust_failures
from covgan.explain.invert import is_trusted


def test_trust_failures_count_each_condition_the_trust_rule_checks():
    # Columns: p(image), p(reconstruction), p(counterpart). Image 0 passes everything; 1 is
    # unlike its reconstruction; 2 is read unlike it; 3 has its evidence in the residual and
    # also fails SSIM.
    result = {
        "probabilities": np.array([[0.9, 0.95, 0.1], [0.9, 0.9, 0.1], [0.9, 0.5, 0.1],
                                   [0.9, 0.9, 0.1]], np.float32),
        "ssim": np.array([0.8, 0.3, 0.8, 0.4], np.float32),
        "add_back_probabilities": np.array([0.1, 0.2, 0.3, 0.7], np.float32),
    }
    failures = trust_failures(result)
    assert failures == pytest.approx({"ssim": 0.5, "probability_gap": 0.25,
                                      "add_back_positive": 0.25})
    # The same thresholds as the rule itself: only image 0 is trusted.
    p = result["probabilities"]
    trusted = is_trusted(p[:, 0], p[:, 1], result["ssim"], result["add_back_probabilities"])
    np.testing.assert_array_equal(trusted, [True, False, False, False])


def test_each_images_inversion_is_listed_with_what_it_fails():
    from covgan.evaluation.localise import inversion_per_image

    result = {
        "probabilities": np.array([[0.9, 0.95, 0.1], [0.9, 0.5, 0.6]], np.float32),
        "ssim": np.array([0.8, 0.4], np.float32),
        "add_back_probabilities": np.array([0.1, 0.7], np.float32),
        "trusted": np.array([True, False]),
    }
    first, second = inversion_per_image(result)
    assert first["untrusted_because"] == [] and first["trusted"] is True
    assert second["untrusted_because"] == ["ssim", "probability_gap", "add_back_positive"]
    assert (second["p_image"], second["p_reconstruction"], second["p_counterpart"],
            second["p_add_back"], second["ssim"]) == pytest.approx((0.9, 0.5, 0.6, 0.7, 0.4))
