"""Each loss against numbers computed by hand."""

import math

import numpy as np
import pytest

from covgan.models import losses


def test_discriminator_loss_by_hand():
    # softplus(-0) + softplus(0) = 2 log 2; softplus(-2) + softplus(-1) = log(1+e^-2) + log(1+e^-1)
    value = losses.nonsaturating_discriminator_loss(
        np.array([[0.0], [2.0]]), np.array([[0.0], [-1.0]])
    )
    expected = [2 * math.log(2), math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))]
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-6)
    # Weights scale only the real images' terms (--balance-by).
    weighted = losses.nonsaturating_discriminator_loss(
        np.array([[0.0], [2.0]]), np.array([[0.0], [-1.0]]), np.array([3.0, 0.0])
    )
    expected = [4 * math.log(2), math.log(1 + math.exp(-1))]
    np.testing.assert_allclose(np.asarray(weighted), expected, rtol=1e-6)


def test_generator_loss_by_hand():
    value = losses.nonsaturating_generator_loss(np.array([[0.0], [3.0], [-2.0]]))
    expected = [math.log(2), math.log(1 + math.exp(-3)), math.log(1 + math.exp(2))]
    np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-6)


def test_classifier_cross_entropy_by_hand():
    probabilities = np.array([[0.8, 0.2], [0.25, 0.75], [1.0, 0.0]], np.float32)
    value = np.asarray(losses.classifier_cross_entropy(np.array([0, 1, 1]), probabilities))
    np.testing.assert_allclose(value[:2], [-math.log(0.8), -math.log(0.75)], rtol=1e-6)
    assert value[2] == pytest.approx(-math.log(1e-7), rel=1e-4)  # clipped, finite


def test_scale_to_global_batch():
    assert float(losses.scale_to_global_batch(np.array([1.0, 2.0, 3.0]), 6)) == pytest.approx(1.0)


def test_inversion_terms_by_hand():
    a = np.zeros((2, 2, 2, 1), np.float32)
    b = np.ones((2, 2, 2, 1), np.float32) * np.array([1.0, 0.5]).reshape(2, 1, 1, 1)
    np.testing.assert_allclose(np.asarray(losses.mean_squared_error(a, b)), [1.0, 0.25])
    value = losses.binary_cross_entropy(np.array([1.0, 0.0]), np.array([0.9, 0.2]))
    np.testing.assert_allclose(np.asarray(value), [-math.log(0.9), -math.log(0.8)], rtol=1e-5)


def test_locality_penalty_by_hand():
    change = np.zeros((2, 4, 4, 1), np.float32)
    change[1, 1, 1, 0] = 0.8  # one bright pixel in a 4x4 image
    # L1 mean: 0.8 / 16; TV: |0.8| twice down (2 of 12 pairs), twice across (2 of 12).
    expected = 0.8 / 16 + 2 * (2 * 0.8 / 12)
    np.testing.assert_allclose(np.asarray(losses.locality_penalty(change)), [0.0, expected],
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(losses.locality_penalty(change, tv_weight=0.0)),
                               [0.0, 0.8 / 16], rtol=1e-6)


def test_change_overlap_is_where_not_how_much():
    left, right = np.zeros((1, 4, 4, 1), np.float32), np.zeros((1, 4, 4, 1), np.float32)
    left[0, :, :2], right[0, :, 2:] = 0.5, -0.5
    both = left + right  # the left half and the right half: half of it overlaps each
    pairs = [(left, right), (left, -3.0 * left), (left, both)]
    np.testing.assert_allclose(
        [float(losses.change_overlap(a, b)[0]) for a, b in pairs],
        [0.0, 1.0, 8 * 0.25 / math.sqrt(8 * 0.25 * 16 * 0.25)], rtol=1e-5)
