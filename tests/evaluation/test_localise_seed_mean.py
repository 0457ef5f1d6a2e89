"""A walk map averaged over several inversions is scored as a map of its own."""

import numpy as np

import covgan.evaluation.localise as localise
from covgan.explain.maps import map_keys


def test_the_seed_mean_map_is_the_mean_of_the_seeds_maps(monkeypatch):
    masks = np.zeros((2, 128, 128), bool)
    masks[:, 10:20, 10:20] = True
    # Seed 0 peaks in the mask on image 0 only, seed 1 on image 1 only; each also has a
    # weaker spot outside it, so the mean peaks in the mask on both.
    maps = np.zeros((2, 2, 128, 128), "f4")
    maps[0, 0, 15, 15], maps[0, 1, 100, 100] = 1.0, 1.0
    maps[1, 1, 15, 15], maps[1, 0, 100, 100] = 1.0, 1.0
    maps[:, :, 12, 12] += 0.9

    def explained(generator, classifier, images, *, seed, image_maps, **kwargs):
        result = {key: np.full((2, 128, 128), 0.1, "f4") for key in map_keys().values()}
        result["latent_gradients"] = maps[seed]
        result.update(trusted=np.ones(2, bool), probabilities=np.full((2, 3), 0.9, "f4"))
        return result

    monkeypatch.setattr(localise, "explain", explained)
    monkeypatch.setattr(localise, "_inversion_summary", lambda *a: {})
    scores = localise.score_localisation(None, None, np.zeros((2, 128, 128, 1), "f4"), masks,
                                         seeds=(0, 1), curves=False)
    assert scores["methods"]["latent_gradients"]["pointing_game"] == 0.5
    assert scores["methods"]["latent_gradients_seed_mean"]["pointing_game"] == 1.0
    assert set(scores["seed_mean_vs_single"]["latent_gradients"]) == {"pointing_game",
                                                                      "relevance_mass"}
