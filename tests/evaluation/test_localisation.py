import numpy as np
import pytest

from covgan.evaluation.localisation import (
    deletion_insertion,
    iou_top,
    localisation_scores,
    pixel_auroc,
    pointing_game,
    ranking,
    relevance_mass,
    summarise,
    surround_contrast,
)


def square_mask(size=16, top=4, left=4, side=4):
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_perfect_and_wrong_maps():
    mask = square_mask()
    perfect = mask.astype(float)
    assert localisation_scores(perfect, mask) == {
        "pointing_game": 1.0, "relevance_mass": 1.0, "iou_topk": 1.0, "auroc": 1.0}
    wrong = np.roll(perfect, 8, axis=1)
    scores = localisation_scores(wrong, mask)
    assert scores["pointing_game"] == 0.0 and scores["relevance_mass"] == 0.0
    assert scores["iou_topk"] == 0.0 and scores["auroc"] < 0.5


def test_scores_by_hand():
    mask = square_mask()  # 16 of 256 pixels
    saliency = np.zeros((16, 16))
    saliency[4, 4] = 3.0  # inside
    saliency[0, 0] = 1.0  # outside
    assert pointing_game(saliency, mask) == 1.0
    assert relevance_mass(saliency, mask) == pytest.approx(0.75)
    # Top 16 pixels: the two set ones, then 14 of the 254 tied zeros at random.
    assert 0 < iou_top(saliency, mask) <= 1
    assert iou_top(saliency, mask, fraction=1 / 256) == pytest.approx(1 / 16)
    near = np.zeros((16, 16))
    near[2, 4] = 1.0  # two pixels above the mask
    assert pointing_game(near, mask) == 0.0 and pointing_game(near, mask, tolerance=2) == 1.0
    assert pixel_auroc(np.zeros((16, 16)), mask) == pytest.approx(0.5)
    assert relevance_mass(np.zeros((16, 16)), mask) == 0.0


def test_ties_never_favour_a_corner():
    mask = square_mask()  # 16 of 256 pixels, away from every corner
    flat = np.zeros((16, 16))
    # Every pixel is a maximum: the share of them in the mask, i.e. the mask's area share.
    assert pointing_game(flat, mask) == pytest.approx(16 / 256)
    two_peaks = np.zeros((16, 16))
    two_peaks[5, 5] = two_peaks[0, 0] = 1.0  # one peak in the mask, one in a corner
    assert pointing_game(two_peaks, mask) == 0.5
    # Top-k of a flat map: random pixels, so about the chance IoU, different per seed.
    draws = [iou_top(flat, mask, seed=seed) for seed in range(40)]
    assert len(set(draws)) > 1 and np.mean(draws) < 0.1
    assert iou_top(flat, mask, seed=3) == iou_top(flat, mask, seed=3)  # seeded
    # An all-zero map with the first pixels in memory order inside the mask scored 1 before.
    corner = np.zeros((16, 16), bool)
    corner[:4, :4] = True
    assert iou_top(flat, corner) < 0.5 and pointing_game(flat, corner) == pytest.approx(1 / 16)


def test_summarise_skips_missing_values():
    summary = summarise([{"a": 1.0, "b": None}, {"a": 0.0, "b": 0.5}])
    assert summary == {"a": 0.5, "b": 0.5}


def test_deletion_falls_and_insertion_rises_for_the_right_map():
    mask = square_mask(size=32, top=8, left=8, side=8)
    image = np.where(mask, 1.0, 0.2)[..., None].astype(np.float32)

    def probability(images):  # "positive" when the square region is bright
        return images[:, 8:16, 8:16, 0].mean(axis=(1, 2))

    good = deletion_insertion(probability, image, mask.astype(float), steps=8, blur_sigma=3)
    bad = deletion_insertion(probability, image, 1.0 - mask, steps=8, blur_sigma=3)
    assert good["deletion"][0] == pytest.approx(1.0) and len(good["fractions"]) == 9
    assert good["deletion_auc"] < bad["deletion_auc"]
    assert good["insertion_auc"] > bad["insertion_auc"]


def test_deletion_order_of_a_flat_map_is_random_not_raster():
    flat = np.zeros((32, 32))
    order = ranking(flat, seed=0)
    # Deleting the first 1/8 of pixels in memory order would remove exactly the top rows.
    assert not np.array_equal(np.sort(order[:128]), np.arange(128))
    np.testing.assert_array_equal(order, ranking(flat, seed=0))  # seeded
    graded = np.arange(1024.0).reshape(32, 32)
    np.testing.assert_array_equal(ranking(graded), np.arange(1024)[::-1])  # no ties: by value


def test_surround_contrast_compares_the_mask_with_the_band_around_it():
    mask = square_mask(size=32, top=12, left=12, side=8)
    values = np.ones((32, 32))
    assert surround_contrast(values, mask, width=2) == pytest.approx(1.0)
    values[mask] = 3.0
    values[:2, :2] = 100.0  # far from the mask: not in the band, so not counted
    assert surround_contrast(values, mask, width=2) == pytest.approx(3.0)
    # The band is the width given: a ring of 2 pixels at 0.5, then 1 beyond it.
    band = np.zeros((32, 32), bool)
    band[10:22, 10:22] = True
    values[band & ~mask] = 0.5
    assert surround_contrast(values, mask, width=2) == pytest.approx(6.0)
    assert surround_contrast(values, mask, width=4) > 3.0


def test_surround_contrast_is_none_without_a_mask_or_a_band():
    values = np.random.default_rng(0).random((16, 16))
    assert surround_contrast(values, np.zeros((16, 16), bool)) is None
    assert surround_contrast(values, np.ones((16, 16), bool)) is None
    assert surround_contrast(np.zeros((16, 16)), square_mask()) is None
