import keras
import numpy as np
import pytest

from covgan.evaluation.gan import (
    class_consistency,
    code_overlap,
    evaluate_gan,
    feature_model,
    traversal_monotonicity,
)
from covgan.models.classifier import adapt_classifier, build_classifier


def norm_generator(z1_dim=6, z2_dim=3):
    """A stand-in G whose image brightness is |z2|: class information lives in z2 only."""
    z1 = keras.Input((z1_dim,), name="z1")
    z2 = keras.Input((z2_dim,), name="z2")
    norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(z2), axis=-1, keepdims=True))
    level = keras.ops.tanh(norm)
    images = keras.ops.ones((1, 128, 128, 1)) * keras.ops.reshape(level, (-1, 1, 1, 1))
    return keras.Model([z1, z2], images)


def side_generator(z1_dim=6, z2_dim=3):
    """A stand-in G that brightens the left half where z2's first entry is positive, the
    right half where it is negative: two random codes change the same half one time in two."""
    z1 = keras.Input((z1_dim,), name="z1")
    z2 = keras.Input((z2_dim,), name="z2")
    left = keras.ops.concatenate([keras.ops.ones((1, 128, 64, 1)),
                                  keras.ops.zeros((1, 128, 64, 1))], axis=2)
    first = keras.ops.reshape(z2[:, 0], (-1, 1, 1, 1))
    images = keras.ops.relu(first) * left + keras.ops.relu(-first) * (1 - left)
    return keras.Model([z1, z2], images)


def brightness_classifier(threshold):
    """p(positive) = sigmoid(40 * (mean brightness - threshold))."""
    images = keras.Input((128, 128, 1))
    mean = keras.ops.mean(images, axis=(1, 2, 3))
    positive = keras.ops.sigmoid(40.0 * (mean - threshold))
    return keras.Model(images, keras.ops.stack([1 - positive, positive], axis=-1))


def test_class_consistency_counts_both_classes():
    result = class_consistency(norm_generator(), brightness_classifier(0.2), repeats=200, seed=0)
    assert result["negative"] == 1.0  # z2 = 0 gives black images, p < 0.5
    # |z2| for 3-d N(0, I) is below atanh(0.2) ~ 0.2 with probability ~0.6%.
    assert 0.98 < result["positive"] <= 1.0
    assert result["accuracy"] == pytest.approx(0.25 * 1.0 + 0.75 * result["positive"])
    assert (
        class_consistency(norm_generator(), brightness_classifier(2.0), repeats=50)["positive"]
        == 0.0
    )


def test_monotone_generator_scores_as_monotone():
    result = traversal_monotonicity(norm_generator(), brightness_classifier(0.3), pairs=40)
    assert result["monotonic_fraction"] == 1.0
    assert result["spearman_mean"] > 0.9


def test_code_overlap_is_one_where_every_code_changes_the_same_places():
    assert code_overlap(norm_generator(), draws=40)["mean"] == pytest.approx(1.0, abs=1e-5)
    # Same half (overlap 1) or the other (0), each with probability 1/2.
    halves = code_overlap(side_generator(), draws=200, batch=64)
    assert 0.35 < halves["mean"] < 0.65 and halves["draws"] == 200


def test_feature_model_for_ours_and_adapted_models():
    features, description = feature_model(build_classifier("tiny", seed=0))
    assert features.output_shape == (None, 64) and "probabilities" in description
    inputs = keras.Input((128, 128, 1))
    hidden = keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(inputs))
    user = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))
    features, _ = feature_model(adapt_classifier(user))
    assert features.output_shape == (None, 7)


def test_evaluate_gan_keys():
    real = np.random.default_rng(0).random((30, 128, 128, 1)).astype("float32")
    classifier = build_classifier("tiny", seed=0)
    result = evaluate_gan(norm_generator(), classifier, real, repeats=20, seeds=2, pairs=5)
    assert set(result["class_consistency"]) >= {"mean", "std", "repeats", "seeds"}
    assert (
        result["class_consistency"]["repeats"] == 20 and result["class_consistency"]["seeds"] == 2
    )
    assert 0 <= result["monotonic_fraction"] <= 1
    assert result["code_overlap"]["mean"] == pytest.approx(1.0, abs=1e-5)
    assert result["frechet_distance"]["value"] >= 0 and result["frechet_distance"]["features"]
