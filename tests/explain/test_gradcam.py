import keras
import numpy as np
import pytest
import tensorflow as tf

from covgan.errors import CovganError
from covgan.explain.class_score import score_model
from covgan.explain.gradcam import last_convolution, make_gradcam_fn, make_saliency_fn
from covgan.models.classifier import adapt_classifier, build_classifier

IMAGES = np.random.default_rng(0).random((3, 128, 128, 1)).astype("float32")


def sequential_classifier():
    return keras.Sequential([
        keras.Input((128, 128, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="first"),
        keras.layers.MaxPooling2D(4),
        keras.layers.Conv2D(6, 3, activation="relu", name="second"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def keras_io_gradcam(classifier_model, conv_model_inner, images):
    """The keras-io recipe, one image at a time, for a plain (non-nested) model."""
    maps = []
    grad_model = keras.Model(classifier_model.inputs,
                             [classifier_model.get_layer(conv_model_inner).output,
                              classifier_model.output])
    for image in images:
        with tf.GradientTape() as tape:
            activations, p = grad_model(image[None])
            score = tf.math.log(p[:, 1]) - tf.math.log(p[:, 0])
        grads = tape.gradient(score, activations)
        weights = tf.reduce_mean(grads, axis=(0, 1, 2))
        cam = tf.nn.relu(tf.reduce_sum(activations[0] * weights, axis=-1))
        cam = tf.image.resize(cam[..., None], (128, 128))[..., 0]
        maps.append((cam / tf.reduce_max(cam)).numpy())
    return np.stack(maps)


@pytest.mark.parametrize("kind", ["nested", "sequential", "adapted"])
def test_retraced_model_matches_and_maps_are_normalised(kind):
    classifier = {
        "nested": lambda: build_classifier("tiny", seed=0),
        "sequential": sequential_classifier,
        "adapted": lambda: adapt_classifier(sequential_classifier()),
    }[kind]()
    classifier = adapt_classifier(classifier)
    heatmaps, probabilities = make_gradcam_fn(classifier)(IMAGES)
    assert heatmaps.shape == (3, 128, 128)
    np.testing.assert_allclose(probabilities.numpy(), classifier(IMAGES).numpy(), atol=1e-5)
    peaks = heatmaps.numpy().reshape(3, -1).max(1)
    assert np.all((np.abs(peaks - 1) < 1e-5) | (peaks == 0)) and heatmaps.numpy().min() >= 0


def test_last_convolution_is_found_inside_nested_models():
    assert last_convolution(build_classifier("tiny")) == "block5_conv3"
    assert last_convolution(adapt_classifier(sequential_classifier())) == "second"


def test_matches_the_keras_io_recipe_on_a_plain_model():
    # Seeded: some random inits give an all-zero map, where the recipe divides 0 by 0.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    plain = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    ours = make_gradcam_fn(plain, layer="conv")(IMAGES)[0].numpy()
    assert np.all(ours.reshape(len(IMAGES), -1).max(1) == pytest.approx(1.0))  # maps, not zeros
    np.testing.assert_allclose(ours, keras_io_gradcam(plain, "conv", IMAGES), atol=1e-4)


def test_unknown_layer_and_no_convolution():
    with pytest.raises(CovganError, match="No layer named"):
        score_model(build_classifier("tiny"), "nope")
    inputs = keras.Input((128, 128, 1))
    dense = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(inputs)))
    with pytest.raises(CovganError, match="no Conv2D"):
        make_gradcam_fn(dense)


def test_saliency_points_at_the_pixels_that_matter():
    inputs = keras.Input((128, 128, 1))
    corner = keras.layers.Cropping2D(((0, 96), (0, 96)))(inputs)  # only the top-left 32x32 counts
    x = keras.layers.GlobalAveragePooling2D()(corner)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    saliency = make_saliency_fn(model)(IMAGES).numpy()
    assert saliency[:, :32, :32].min() > 0 and saliency[:, 40:, 40:].max() == 0
