import numpy as np
import pytest

from covgan.evaluation.metrics import classification_scores, roc_auc


def test_auc_by_hand():
    # Positives 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1) -> 3/4.
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.5, 0.1]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.3, 0.3]) == pytest.approx(0.5)  # a tie counts half
    assert roc_auc([1, 1], [0.3, 0.9]) is None


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None])).mean()
    assert roc_auc(labels, scores) == pytest.approx(pairwise)


def test_classification_scores_by_hand():
    labels = [1, 1, 1, 0, 0]
    probabilities = [0.9, 0.6, 0.2, 0.7, 0.1]
    scores = classification_scores(labels, probabilities)
    assert scores["confusion_matrix"] == [[1, 1], [1, 2]]
    assert scores["accuracy"] == pytest.approx(3 / 5)
    assert scores["sensitivity"] == pytest.approx(2 / 3)
    assert scores["specificity"] == pytest.approx(1 / 2)
    assert scores["n"] == 5
    assert classification_scores(labels, probabilities, threshold=0.65)["confusion_matrix"] == [
        [1, 1], [2, 1],
    ]


def test_ranks_spearman_and_monotone():
    from covgan.evaluation.metrics import average_ranks, monotone, spearman

    np.testing.assert_allclose(average_ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2, 3], [5, 5, 5]))
    assert monotone([0.1, 0.3, 0.295, 0.9], tolerance=0.01)
    assert not monotone([0.1, 0.3, 0.25, 0.9], tolerance=0.01)


def test_frechet_distance_by_hand():
    from covgan.evaluation.metrics import frechet_distance

    rng = np.random.default_rng(0)
    a = rng.standard_normal((20000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Same covariance, means apart by (2, 0, 0): distance |mu_a - mu_b|^2 = 4.
    assert frechet_distance(a, a + [2.0, 0.0, 0.0]) == pytest.approx(4.0, rel=1e-6)
    # N(0, I) against N(0, 4I) in 3-d: tr(I + 4I - 2 * 2I) = 3.
    b = rng.standard_normal((20000, 3)) * 2.0
    assert frechet_distance(a, b) == pytest.approx(3.0, rel=0.05)
