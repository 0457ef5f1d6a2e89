"""The class score is the logit: confident classifiers still get maps, 1-unit models too."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from covgan.explain.class_score import score_model
from covgan.explain.gradcam import make_gradcam_fn, make_saliency_fn
from covgan.explain.integrated_gradients import make_integrated_gradients_fn
from covgan.models.classifier import adapt_classifier

IMAGES = np.random.default_rng(0).random((2, 128, 128, 1)).astype("float32")


def confident_classifier(units=2, activation="softmax", scale=4000.0):
    """A small chain whose positive logit exceeds the negative one by hundreds."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(units, activation=activation)
    model = keras.Model(inputs, dense(x))
    kernel, bias = dense.get_weights()
    kernel = np.abs(kernel) * scale
    if units == 2:
        kernel[:, 0] = -kernel[:, 0]
    dense.set_weights([kernel, bias])
    return adapt_classifier(model)


@pytest.mark.parametrize("units, activation", [(2, "softmax"), (1, "sigmoid")])
def test_a_saturated_classifier_still_gets_nonzero_maps(units, activation):
    classifier = confident_classifier(units, activation)
    p = classifier(IMAGES).numpy()[:, 1]
    assert np.all(p.astype(np.float64) > 1 - 1e-9)  # float32 says 1: d p / d x is zero
    heatmaps, _ = make_gradcam_fn(classifier)(IMAGES)
    for maps in (heatmaps, make_saliency_fn(classifier)(IMAGES),
                 make_integrated_gradients_fn(classifier, steps=4)(IMAGES)):
        maps = maps.numpy()
        assert np.all(maps.reshape(len(IMAGES), -1).max(axis=1) == pytest.approx(1.0))


def test_the_score_is_the_logit_difference_or_the_logit():
    for units, activation in ((2, "softmax"), (1, "sigmoid"), (2, None)):
        classifier = confident_classifier(units, activation, scale=1.0)
        scorer = score_model(classifier)
        assert scorer.from_logits
        _, score, probabilities = scorer(IMAGES)
        p = probabilities.numpy()
        # Unsaturated here, so log p1 - log p0 is the same number, computed another way.
        np.testing.assert_allclose(score.numpy(), np.log(p[:, 1]) - np.log(p[:, 0]),
                                   rtol=1e-3, atol=1e-4)


def test_anything_after_the_last_dense_falls_back_to_probabilities():
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, activation="softmax")(x)
    outputs = keras.layers.Rescaling(1.0)(x)  # not an output convention we know
    scorer = score_model(adapt_classifier(keras.Model(inputs, outputs)))
    assert not scorer.from_logits
    _, score, _ = scorer(IMAGES)
    assert np.all(np.isfinite(score.numpy()))


def test_integrated_gradients_only_credit_pixels_the_classifier_reads():
    inputs = keras.Input((128, 128, 1))
    corner = keras.layers.Cropping2D(((0, 96), (0, 96)))(inputs)  # only the top-left 32x32
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(corner)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    maps = make_integrated_gradients_fn(model, steps=8)(IMAGES).numpy()
    assert maps.shape == (2, 128, 128)
    assert maps[:, :32, :32].max() == pytest.approx(1.0) and maps[:, 40:, 40:].max() == 0.0


def test_integrated_gradients_are_complete_for_a_linear_score():
    """Sum of signed attributions = score(x) - score(baseline), exactly for a linear model."""
    from covgan.explain.integrated_gradients import gaussian_blur

    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Flatten(name="pixels")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    scorer = score_model(model, layer="pixels")
    images = tf.constant(IMAGES)
    baseline = gaussian_blur(images, 5.0)
    with tf.GradientTape() as tape:
        tape.watch(images)
        _, score, _ = scorer(images)
    gradient = tape.gradient(score, images)  # constant: the score is linear in x
    attributions = tf.reduce_sum((images - baseline) * gradient, axis=(1, 2, 3))
    _, baseline_score, _ = scorer(baseline)
    np.testing.assert_allclose(attributions.numpy(), (score - baseline_score).numpy(),
                               rtol=1e-3, atol=1e-3)
