"""Regions of a chest film and what a walk changes about the whole chest (the audit's parts)."""

import cv2
import numpy as np
import pytest

from covgan.data.phantom import phantom_rng, render_phantom
from covgan.evaluation.regions import (
    MEASURES,
    REGIONS,
    approximate_lung_mask,
    body_mask,
    global_change,
    global_measures,
    mass_by_region,
    region_masks,
)


@pytest.fixture(scope="module")
def phantoms():
    return [render_phantom(phantom_rng(5, i), label=i % 2) for i in range(10)]


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_the_approximate_lungs_overlap_the_phantoms_own(phantoms):
    scores = [iou(approximate_lung_mask(p.image), p.lung_mask) for p in phantoms]
    assert np.mean(scores) >= 0.75 and min(scores) >= 0.5, np.round(scores, 2)
    # Not just any dark region: the same estimate on another phantom's image overlaps less.
    crossed = [iou(approximate_lung_mask(a.image), b.lung_mask)
               for a, b in zip(phantoms, phantoms[1:])]
    assert np.mean(crossed) < np.mean(scores) - 0.05


def test_the_body_holds_the_lungs_and_not_the_air_beside_it(phantoms):
    for phantom in phantoms:
        body = body_mask(phantom.image)
        assert body[phantom.lung_mask].mean() > 0.98
        # Phantoms have black air at both sides (well-aerated lungs can be as dark, so only
        # the outer columns count as air).
        air = np.zeros_like(body)
        air[:, :4] = air[:, -4:] = True
        air &= phantom.image < 0.05
        assert air.sum() > 100 and body[air].mean() < 0.1  # the edge is smoothed 1-2 px


def test_regions_partition_the_film_and_place_the_corners(phantoms):
    masks = region_masks(phantoms[0].image, phantoms[0].lung_mask)
    assert tuple(masks) == REGIONS
    total = sum(masks[name].astype(int) for name in ("lungs", "thorax", "outside_body"))
    assert np.all(total == 1)
    assert masks["corner_upper_left"][0, 0] and not masks["corner_upper_left"][0, -1]
    assert masks["corner_lower_right"][-1, -1] and not masks["corner_lower_right"][0, -1]
    assert masks["border"][0].all() and not masks["border"][64, 64]


def test_mass_by_region_puts_a_corner_spot_in_its_corner(phantoms):
    masks = region_masks(phantoms[0].image, phantoms[0].lung_mask)
    spot = np.zeros((128, 128), np.float32)
    spot[3:9, 3:9] = 1.0
    shares = mass_by_region(spot, masks)
    assert shares["corner_upper_left"] == pytest.approx(1.0)
    assert shares["corner_lower_right"] == 0.0 and shares["lungs"] == 0.0
    lungs_only = phantoms[0].lung_mask.astype(np.float32) - 0.5  # negatives are clipped
    assert mass_by_region(lungs_only, masks)["lungs"] == pytest.approx(1.0)
    assert set(mass_by_region(np.zeros((128, 128)), masks).values()) == {0.0}


def narrowed(image, factor):
    """The chest squeezed horizontally about the centre, the air around it kept."""
    width = round(128 * factor)
    squeezed = cv2.resize(image, (width, 128), interpolation=cv2.INTER_AREA)
    out = np.zeros_like(image)
    left = (128 - width) // 2
    out[:, left:left + width] = squeezed
    return out


def test_a_walk_that_widens_the_chest_is_measured_as_such(phantoms):
    images = [p.image for p in phantoms]
    counterparts = [narrowed(image, 0.8) for image in images]
    change = global_change(counterparts, images)
    assert set(change) == set(MEASURES)
    width = change["thorax_width"]
    assert 0.05 < width["low"] <= width["mean"] <= width["high"], width
    same = global_change(images, images)
    assert all(v == {"mean": 0.0, "low": 0.0, "high": 0.0} for v in same.values())
    measures = global_measures(images[0], phantoms[0].lung_mask)
    assert measures["lung_area"] == pytest.approx(phantoms[0].lung_mask.mean())
    assert 0.5 < measures["thorax_width"] <= 1.0
