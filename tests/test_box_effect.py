"""tools/box_effect.py: whether a classifier reads what the boxes mark, asked of the classifier."""

import numpy as np
import pytest
from helpers import load_tool

SIDE = 48


def reader_of(rows, cols):
    """A stand-in classifier: p(positive) is the films' mean brightness over one region."""
    def probability(films):
        return np.asarray(films)[:, rows, cols].mean(axis=(1, 2))
    return probability


def films_with_box():
    images = np.full((2, SIDE, SIDE), 0.2, np.float32)
    masks = np.zeros((2, SIDE, SIDE), bool)
    masks[:, 8:20, 8:20] = True
    images[masks] = 0.9  # the opacity the box marks
    return images, masks


def test_a_classifier_that_reads_the_box_loses_more_to_its_removal_than_to_a_moved_one():
    tool = load_tool("box_effect")
    images, masks = films_with_box()
    dark = np.zeros((SIDE, SIDE), np.float32)  # a donor film without the opacity
    rows, maps = tool.box_effect(reader_of(slice(8, 20), slice(8, 20)), images, masks,
                                 lambda image: [dark], moves=4, patch=8, stride=4)
    for row in rows:
        assert row["p"] - row["p_boxes_filled"] > 0.8  # the box was all it read
        assert row["p"] - row["p_moved_filled"] < 0.1  # the moved boxes overlap it by <= 0.1
        assert row["p_mirrored_filled"] == row["p"]  # the other side, read not at all
        assert row["occlusion"]["pointing_game"] == 1.0
        assert row["occlusion"]["relevance_mass"] > 0.5  # squares over its edge count too
    assert maps.shape == masks.shape and masks[0].ravel()[maps[0].argmax()]
    picture = tool.figure(images, masks, maps, rows)  # both films read: two panels
    assert picture.ndim == 3 and picture.shape[0] > 2 * 2 * SIDE
    summary = tool.summary(rows)
    assert summary["moved"]["n"] == summary["mirrored"]["n"] == 2
    assert summary["moved"]["films_boxes_drop_more"] == 1.0
    assert summary["moved"]["boxes_minus_moved"][0] > 0.5
    assert summary["mirrored"]["boxes_minus_mirrored"][0] > 0.5


def test_a_classifier_that_reads_elsewhere_is_not_moved_by_the_box_and_its_map_misses_it():
    tool = load_tool("box_effect")
    images, masks = films_with_box()
    images[:, 30:40, 30:40] = 0.9  # evidence the radiologist did not box
    dark = np.zeros((SIDE, SIDE), np.float32)
    rows, maps = tool.box_effect(reader_of(slice(30, 40), slice(30, 40)), images, masks,
                                 lambda image: [dark], moves=4, patch=8, stride=4)
    for row in rows:
        assert row["p_boxes_filled"] == row["p"]
        assert row["occlusion"]["pointing_game"] == 0.0
        assert row["occlusion"]["relevance_mass"] == 0.0
    against = {"per_image": {"perfect": [{"pointing_game": 1.0, "relevance_mass": 1.0}] * 2}}
    paired = tool.summary(rows, against)["occlusion_minus"]["perfect"]
    assert paired["pointing_game"] == [-1.0, -1.0]


def test_a_mask_too_large_to_move_or_mirror_clear_of_itself_gets_no_control():
    tool = load_tool("box_effect")
    mask = np.zeros((SIDE, SIDE), bool)
    mask[4:44, 4:44] = True
    assert tool.moved_masks(mask, 3, np.random.default_rng(0)) == []
    assert tool.mirrored_mask(mask) == []
    small = np.zeros((SIDE, SIDE), bool)
    small[0:6, 0:6] = True
    moved = tool.moved_masks(small, 3, np.random.default_rng(0))
    assert len(moved) == 3
    assert all(m.sum() == small.sum() and (m & small).sum() <= 3 for m in moved)
    (mirrored,) = tool.mirrored_mask(small)
    assert mirrored[0:6, SIDE - 6:].all() and mirrored.sum() == small.sum()


def test_maps_are_scored_apart_where_the_classifier_reads_the_boxes_and_where_not():
    tool = load_tool("box_effect")
    rows = [{"p": 0.9, "p_boxes_filled": 0.2, "p_moved_filled": 0.9,
             "occlusion": {"pointing_game": 1.0, "relevance_mass": 0.8}},
            {"p": 0.9, "p_boxes_filled": 0.9, "p_moved_filled": 0.8,
             "occlusion": {"pointing_game": 0.0, "relevance_mass": 0.1}},
            {"p": 0.9, "p_boxes_filled": 0.5, "p_moved_filled": None,
             "occlusion": {"pointing_game": 1.0, "relevance_mass": 0.6}}]
    against = {"per_image": {"map": [{"pointing_game": s, "relevance_mass": s / 2}
                                     for s in (1.0, 0.0, 0.5)]}}
    groups = tool.maps_where_boxes_matter(rows, against, [True, True, True])
    assert groups["read"]["n"] == groups["not_read"]["n"] == groups["too_large"]["n"] == 1
    assert groups["read"]["map"]["pointing_game"] == 1.0
    assert groups["not_read"]["map"]["pointing_game"] == 0.0
    assert groups["too_large"]["occlusion"]["relevance_mass"] == 0.6
    assert tool.maps_where_boxes_matter(rows, against, [False, True, False])["read"] == {"n": 0}


def test_folds_pool_each_reading_weighted_by_its_films(tmp_path):
    tool = load_tool("box_effect")

    def output(read, not_read):
        return {"all": {"n": read[0] + not_read[0], "maps_where_boxes_matter": {
            "read": {"n": read[0], "map": {"pointing_game": read[1], "relevance_mass": 0.5}},
            "not_read": {"n": not_read[0], **({"map": {"pointing_game": not_read[1],
                                                       "relevance_mass": 0.1}}
                                              if not_read[0] else {})},
            "too_large": {"n": 0}}}}

    pooled = tool.pooled_readings([output((1, 1.0), (2, 0.0)), output((3, 0.0), (0, None))])
    assert pooled["read"] == {"n": 4, "map": {"pointing_game": 0.25, "relevance_mass": 0.5}}
    assert pooled["not_read"]["n"] == 2 and pooled["not_read"]["map"]["pointing_game"] == 0.0
    assert pooled["too_large"] == {"n": 0}
    plain = tmp_path / "plain.json"
    plain.write_text('{"all": {"n": 3}}')
    with pytest.raises(SystemExit, match="without --against"):
        tool.main(["--pool", str(plain)])
