"""A map that never looks at the film: the training lesions' mean, scored as a baseline."""

import numpy as np
import pytest

import covgan.evaluation.localise as localise
from covgan.data import layout
from covgan.errors import CovganError
from covgan.evaluation.lesion_prior import (
    LESION_PRIOR,
    mask_prior,
    off_prior,
    prior_scores,
    training_masks,
)
from covgan.explain.maps import map_keys


def _box(top, left, size=16, shape=(128, 128)):
    mask = np.zeros(shape, bool)
    mask[top:top + size, left:left + size] = True
    return mask


def test_the_prior_peaks_where_most_lesions_are_and_misses_the_others():
    lower, upper = _box(90, 20), _box(10, 90)
    prior = mask_prior(np.stack([lower, lower, upper]))
    assert prior[95, 25] == pytest.approx(2 / 3) and prior[15, 95] == pytest.approx(1 / 3)
    assert off_prior(prior, np.stack([lower, upper])).tolist() == [False, True]
    scores = prior_scores(prior, np.stack([lower, upper]))
    assert [s["pointing_game"] for s in scores] == [1.0, 0.0]
    assert scores[0]["relevance_mass"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="Received: shape=\\(128, 128\\)"):
        mask_prior(lower)


def test_training_masks_are_read_from_the_train_split_only(tmp_path):
    records = []
    for i, (split, label, box) in enumerate([("train", 1, _box(90, 20)), ("train", 0, None),
                                             ("train", 1, _box(90, 30)),
                                             ("test", 1, _box(10, 90))]):
        mask_path = ""
        if box is not None:
            mask_path = f"masks/{i}.png"
            layout.write_png(tmp_path / mask_path, box)
        records.append(layout.Record(f"images/{i}.png", label, f"p{i}", split, mask_path))
    layout.write_manifest(tmp_path / layout.MANIFEST, records)
    masks = training_masks(tmp_path, "test")
    assert masks.shape == (2, 128, 128)
    assert masks.sum(axis=(1, 2)).tolist() == [256, 256] and masks[:, 95, 35].all()
    # A prior drawn from the films scored would have seen their own masks.
    assert training_masks(tmp_path, "train") is None and training_masks(tmp_path, "all") is None
    (tmp_path / "masks/2.png").write_bytes(b"not a png")
    with pytest.raises(CovganError, match="Cannot read the lesion mask"):
        training_masks(tmp_path, "heldout")


def test_localise_scores_the_prior_as_a_baseline_and_the_films_it_misses(monkeypatch):
    masks = np.stack([_box(90, 20), _box(10, 90)])
    # The walk's map finds both lesions; Grad-CAM and the other baselines point nowhere.
    found = np.zeros((2, 128, 128), "f4")
    found[0, 95, 25], found[1, 15, 95] = 1.0, 1.0

    def explained(generator, classifier, images, *, seed, image_maps, **kwargs):
        result = {key: np.zeros((2, 128, 128), "f4") for key in map_keys().values()}
        for key in result:
            result[key][:, 60, 60] = 1.0
        result["film_gradients"] = found
        result.update(trusted=np.ones(2, bool), probabilities=np.full((2, 3), 0.9, "f4"))
        return result

    monkeypatch.setattr(localise, "explain", explained)
    monkeypatch.setattr(localise, "_inversion_summary", lambda *a: {})
    prior = mask_prior(np.stack([_box(90, 20)] * 3 + [_box(10, 90)]))
    scores = localise.score_localisation(None, None, np.zeros((2, 128, 128, 1), "f4"), masks,
                                         curves=False, prior=prior)
    assert scores["methods"][LESION_PRIOR]["pointing_game"] == 0.5
    assert [r["pointing_game"] for r in scores["per_image"][LESION_PRIOR]] == [1.0, 0.0]
    assert set(scores["paired_vs_baselines"]["film_gradients"]) >= {LESION_PRIOR, "gradcam"}
    # Off the prior: the second film alone, where only a map that reads the film scores.
    off = scores["off_prior"]
    assert off["n"] == 1
    assert off["methods"]["film_gradients"]["pointing_game"] == 1.0
    assert off["methods"][LESION_PRIOR]["pointing_game"] == 0.0
    assert "on the 1 images whose lesion lesion_prior's peak misses" in localise.table(
        {**scores, "inversion": {"median_ssim": 0.5, "trusted_fraction": 1.0,
                                 "residual": {"mass_over_area_share": 1.0,
                                              "surround_width": 8}}})
    # Without a prior, neither the map nor the subset.
    plain = localise.score_localisation(None, None, np.zeros((2, 128, 128, 1), "f4"), masks,
                                        curves=False)
    assert LESION_PRIOR not in plain["methods"] and "off_prior" not in plain
