"""tools/box_prior.py on masks made here: the training masks' mean, one map for every film,
scored like the maps and paired with them film by film."""

import numpy as np
import pytest
from helpers import load_tool


def test_the_training_masks_mean_scores_where_lesions_usually_are():
    module = load_tool("box_prior")
    low, high = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    low[6:, 2:6], high[:2, 2:6] = True, True
    # Three of four training lesions low: the prior peaks low, whatever the film.
    rows = module.prior_rows(np.stack([low, low, low, high]), np.stack([low, high]))
    assert [r["pointing_game"] for r in rows] == [1.0, 0.0]
    assert rows[0]["relevance_mass"] == pytest.approx(0.75)
    assert rows[1]["relevance_mass"] == pytest.approx(0.25)
    assert rows[0]["area_share"] == pytest.approx(8 / 64)

    # A map that found each film's lesion: level on the first film, ahead on the second.
    found = [{"pointing_game": 1.0, "relevance_mass": 0.9}] * 2
    result = module.against_prior(rows, {"walk": found}, ["walk"])
    assert result["n"] == 2 and result["prior"] == {"pointing_game": 0.5, "relevance_mass": 0.5}
    low_end, high_end = result["minus_prior"]["walk"]["pointing_game"]
    assert 0 <= low_end <= 0.5 <= high_end <= 1
    # Off the prior (the second film alone): only a map that reads the film scores there.
    missed = [{"pointing_game": 1.0, "relevance_mass": 0.2}, {"pointing_game": 0.0,
                                                               "relevance_mass": 0.1}]
    off = module.against_prior(rows, {"walk": found, "blind": missed},
                               ["walk", "blind"])["off_prior"]
    assert off["area_share"] == pytest.approx(8 / 64)
    assert off["n"] == 1 and off["means"]["walk"] == {"pointing_game": 1.0,
                                                      "relevance_mass": 0.9}
    assert off["means"]["blind"]["pointing_game"] == 0.0
    assert off["walk_minus"]["blind"]["pointing_game"] == [1.0, 1.0]
    with pytest.raises(SystemExit, match="no map 'gradcam'"):
        module.against_prior(rows, {"walk": found}, ["gradcam"])
    with pytest.raises(SystemExit, match="2"):  # argparse: DATA without its localisation.json
        module.main(["data_only"])
