import numpy as np
import pytest

from covgan.data.phantom import (
    phantom_label,
    phantom_rng,
    render_phantom,
    stable_fraction,
)
from covgan.shapes import IMAGE_SIZE


def render(index, seed=0, **kwargs):
    return render_phantom(phantom_rng(seed, index), label=phantom_label(index), **kwargs)


def test_same_seed_and_index_give_identical_images():
    a, b = render(5), render(5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.lesion_mask, b.lesion_mask)


def test_different_seeds_or_indices_differ():
    assert np.abs(render(5).image - render(5, seed=1).image).mean() > 0.01
    assert np.abs(render(4).image - render(6).image).mean() > 0.01


def test_image_convention():
    phantom = render(1)
    assert phantom.image.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert phantom.image.dtype == np.float32
    assert 0.0 <= phantom.image.min() and phantom.image.max() <= 1.0


def test_negatives_have_no_lesions_and_positives_do():
    for index in range(40):
        phantom = render(index)
        if phantom.label == 0:
            assert not phantom.lesion_mask.any()
        else:
            assert phantom.lesion_mask.sum() >= 10


def test_lesion_masks_lie_inside_the_lungs():
    for index in range(1, 60, 2):
        phantom = render(index)
        assert not (phantom.lesion_mask & ~phantom.lung_mask).any()


def test_lesions_are_bilateral_and_lower_zone_predominant():
    both_sides, lower = 0, 0
    positives = range(1, 81, 2)
    for index in positives:
        mask = render(index).lesion_mask
        half = IMAGE_SIZE // 2
        both_sides += mask[:, :half].any() and mask[:, half:].any()
        rows = np.nonzero(mask)[0]
        lungs = np.nonzero(render(index).lung_mask)[0]
        lower += rows.mean() > lungs.mean()
    assert both_sides >= 0.9 * len(positives)
    assert lower >= 0.7 * len(positives)


def test_lesions_make_the_lungs_denser():
    """The finding is in the pixels: the lesion area is brighter than the rest of the lung."""
    for index in range(1, 21, 2):
        phantom = render(index)
        lesion = phantom.image[phantom.lesion_mask].mean()
        lung = phantom.image[phantom.lung_mask & ~phantom.lesion_mask].mean()
        assert lesion > lung


def test_positives_vary_in_lesion_burden():
    areas = [render(i).lesion_mask.sum() for i in range(1, 81, 2)]
    assert np.std(areas) > 0.3 * np.mean(areas)


def test_shortcut_marker_is_a_bright_corner_letter():
    clean = render(1).image
    marked = render(1, shortcut=True).image
    corner = (slice(0, 26), slice(0, 20))
    assert marked[corner].max() > 0.95
    assert np.abs(marked - clean)[corner].sum() > 5
    outside = np.ones_like(clean, bool)
    outside[corner] = False
    np.testing.assert_array_equal(marked[outside], clean[outside])


def test_labels_are_balanced_and_reject_others():
    assert [phantom_label(i) for i in range(4)] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="label"):
        render_phantom(phantom_rng(0, 0), label=2)


def test_stable_fraction_is_uniform_and_repeatable():
    values = [stable_fraction(i) for i in range(2000)]
    assert values == [stable_fraction(i) for i in range(2000)]
    assert 0.45 < np.mean(values) < 0.55
