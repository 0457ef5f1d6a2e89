import keras
import numpy as np
import pytest
from helpers import all_layers, assert_keras_round_trip

from covgan.errors import CovganError
from covgan.models.classifier import (
    adapt_classifier,
    build_classifier,
    freeze,
    load_classifier,
    positive_probability,
)

IMAGES = np.random.default_rng(0).random((3, 128, 128, 1)).astype("float32")


def test_tiny_preset_contract():
    model = build_classifier("tiny", seed=0)
    assert model.input_shape == (None, 128, 128, 1)
    assert model.inputs[0].name == "images"
    probabilities = model(IMAGES).numpy()
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    backbone = model.get_layer("vgg16_tiny")
    widths = [layer.filters for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    assert widths == [8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64]


def test_vgg16_preset_is_the_papers_topology():
    model = build_classifier("vgg16", seed=0)
    backbone = model.get_layer("vgg16")
    assert backbone.count_params() == 14_714_688 - 2 * 64 * 9  # VGG16 conv base, 1 input channel
    assert 14.6e6 < model.count_params() < 14.8e6
    assert [layer.name for layer in backbone.layers][-1] == "block5_pool"


def test_unknown_preset():
    with pytest.raises(CovganError, match="Unknown classifier preset"):
        build_classifier("resnet")


def test_imagenet_weights_file_is_adapted_to_one_channel(tmp_path):
    rgb = keras.applications.VGG16(include_top=False, weights=None, input_shape=(128, 128, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    rgb.save_weights(path)
    model = build_classifier("vgg16", imagenet_weights=path)
    first = model.get_layer("vgg16").get_layer("block1_conv1")
    expected = rgb.get_layer("block1_conv1").get_weights()[0].sum(axis=2, keepdims=True)
    np.testing.assert_allclose(first.get_weights()[0], expected, rtol=1e-6)
    last = model.get_layer("vgg16").get_layer("block5_conv3").get_weights()[0]
    np.testing.assert_array_equal(last, rgb.get_layer("block5_conv3").get_weights()[0])
    with pytest.raises(CovganError, match="not found"):
        build_classifier("vgg16", imagenet_weights=tmp_path / "absent.h5")


def small_model(units, activation):
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(x))


@pytest.mark.parametrize(
    "units, activation", [(1, "sigmoid"), (1, None), (2, None), (2, "softmax")]
)
def test_adapter_yields_two_class_probabilities(units, activation):
    model = small_model(units, activation)
    adapted = adapt_classifier(model)
    probabilities = adapted(IMAGES).numpy()
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    raw = model(IMAGES).numpy()
    if units == 1:
        expected = raw[:, 0] if activation else 1 / (1 + np.exp(-raw[:, 0]))
    else:
        expected = raw[:, 1] if activation else np.exp(raw[:, 1]) / np.exp(raw).sum(1)
    np.testing.assert_allclose(positive_probability(adapted, IMAGES).numpy(), expected, rtol=1e-5)


def test_adapter_rejects_wrong_shapes():
    inputs = keras.Input((64, 64, 3))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(inputs))
    with pytest.raises(CovganError, match=r"\(None, 128, 128, 1\) input"):
        adapt_classifier(keras.Model(inputs, outputs))
    with pytest.raises(CovganError, match="1 unit"):
        adapt_classifier(small_model(3, "softmax"))


def test_load_round_trip_and_freeze(tmp_path):
    model = build_classifier("tiny", seed=1)
    path = tmp_path / "c.keras"
    assert_keras_round_trip(model, path, IMAGES)
    loaded = freeze(load_classifier(path))
    np.testing.assert_allclose(loaded(IMAGES).numpy(), model(IMAGES).numpy(), rtol=1e-5)
    assert loaded.trainable_weights == []


def test_load_rejects_foreign_files(tmp_path):
    with pytest.raises(CovganError, match="not found"):
        load_classifier(tmp_path / "absent.keras")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CovganError, match="not a Keras model"):
        load_classifier(garbage)


def test_load_refuses_unsafe_lambda_layers(tmp_path):
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    with pytest.raises(CovganError, match="safely"):
        load_classifier(path)


def test_adapted_sigmoid_classifier_round_trips_in_safe_mode(tmp_path):
    adapted = adapt_classifier(small_model(1, "sigmoid"))
    path = tmp_path / "adapted.keras"
    adapted.save(path)
    reloaded = load_classifier(path)
    np.testing.assert_allclose(reloaded(IMAGES).numpy(), adapted(IMAGES).numpy(), rtol=1e-5)


def test_a_float32_classifier_file_computes_in_the_global_mixed_policy(tmp_path):
    # Loading restores each layer's saved float32 policy; under --mixed-precision C must
    # compute in bfloat16 like G and D, with the weights it was saved with.
    model = build_classifier("tiny", seed=0)
    model.save(tmp_path / "c.keras")
    images = np.random.default_rng(0).random((4, 128, 128, 1)).astype("float32")
    expected = np.asarray(model(images, training=False))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        loaded = load_classifier(tmp_path / "c.keras")
        convolutions = [layer for layer in all_layers(loaded)
                        if isinstance(layer, keras.layers.Conv2D)]
        assert len(convolutions) == 13
        assert {layer.compute_dtype for layer in convolutions} == {"bfloat16"}
        assert {layer.variable_dtype for layer in convolutions} == {"float32"}
        got = np.asarray(loaded(images, training=False), dtype="float32")
        np.testing.assert_allclose(got, expected, atol=0.05)
    finally:
        keras.mixed_precision.set_global_policy("float32")
