"""The map registry: a map registered once reaches every door (the pipeline, explain.json, the
report, localise's table and the explain signature)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from covgan.explain.maps import READS_IMAGE, ExplanationMap, explanation_maps, register, unregister
from covgan.models.classifier import build_classifier
from covgan.models.generator import build_generator


def make_brightness_map(classifier, layer=None):
    """A toy map: the image's own brightness, peak 1 (no classifier at all)."""

    def brightness(images):
        values = tf.reduce_sum(tf.convert_to_tensor(images, tf.float32), axis=-1)
        return values / tf.reduce_max(values, axis=(1, 2), keepdims=True)

    return brightness


@pytest.fixture
def toy_map():
    record = register(ExplanationMap("brightness", "brightness_map", "toy\nbrightness", READS_IMAGE,
                                     make_brightness_map))
    yield record
    unregister(record.name)


def test_names_and_keys_are_unique_and_the_default_reads_the_walk():
    from covgan.explain.maps import map_named
    from covgan.explain.settings import DEFAULT_MAP

    assert map_named(DEFAULT_MAP).needs_walk
    with pytest.raises(ValueError, match="already registered"):
        register(ExplanationMap("gradcam", "another_key", "x", READS_IMAGE, make_brightness_map))
    with pytest.raises(ValueError, match="reads"):
        ExplanationMap("x", "y", "z", "pixels", make_brightness_map)


def test_a_map_is_given_the_walk_the_walk_on_the_image_or_the_image():
    from covgan.explain.maps import READS_WALK, READS_WALK_ON_IMAGE, map_named

    rng = np.random.default_rng(0)
    walk = rng.random((2, 4, 8, 8, 1)).astype("float32")
    images = rng.random((2, 8, 8, 1)).astype("float32")
    kinds = {reads: ExplanationMap("x", "y", "z", reads, make_brightness_map)
             for reads in (READS_WALK, READS_WALK_ON_IMAGE, READS_IMAGE)}
    assert kinds[READS_WALK].inputs(walk, images) is walk
    assert kinds[READS_IMAGE].inputs(walk, images) is images
    assert not kinds[READS_IMAGE].needs_walk and kinds[READS_WALK_ON_IMAGE].needs_walk
    on_image = kinds[READS_WALK_ON_IMAGE].inputs(walk, images)
    # The image under every frame: it starts at the add-back (image + counterpart -
    # reconstruction), ends at the image, and changes as the walk does.
    np.testing.assert_allclose(on_image[:, 0], images + walk[:, 0] - walk[:, -1], atol=1e-6)
    np.testing.assert_allclose(on_image[:, -1], images, atol=1e-6)
    np.testing.assert_allclose(on_image[:, 2] - on_image[:, 1], walk[:, 2] - walk[:, 1],
                               atol=1e-6)
    as_tensors = kinds[READS_WALK_ON_IMAGE].inputs(tf.constant(walk), tf.constant(images))
    np.testing.assert_allclose(as_tensors.numpy(), on_image, atol=1e-6)
    assert map_named("film_gradients").reads == READS_WALK_ON_IMAGE


def test_a_registered_map_reaches_every_door(toy_map, tmp_path):
    from covgan.evaluation.localise import score_localisation, table
    from covgan.explain.invert import InversionSettings
    from covgan.explain.pipeline import explain
    from covgan.export.settings import ServingSettings
    from covgan.export.signatures import generator_signatures
    from covgan.output.writers import write_explanation

    generator = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    classifier = build_classifier("tiny", seed=0)
    images = np.random.default_rng(0).random((2, 128, 128, 1)).astype("float32")
    images[:, 40:50, 60:70] = 1.0
    settings = InversionSettings(steps=3, restarts=1)
    result = explain(generator, classifier, images, settings=settings)
    expected = images[..., 0] / images[..., 0].max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(result["brightness_map"], expected, rtol=1e-6)

    payload = write_explanation(tmp_path, tmp_path, ["a.png", "b.png"], images, result,
                                [[], []], steps=10, settings={})
    written = json.loads((tmp_path / "explain.json").read_text())
    assert {"name": "brightness", "key": "brightness_map", "title": "toy brightness"} in \
        written["maps"]
    assert written == json.loads(json.dumps(payload))
    peak = written["images"][0]["map_peaks"]["brightness"]
    assert images[0, peak[0], peak[1], 0] == 1.0
    assert "toy\nbrightness" in (tmp_path / "report.html").read_text()

    masks = np.zeros((2, 128, 128), bool)
    masks[:, 40:50, 60:70] = True
    scores = score_localisation(generator, classifier, images, masks, settings=settings,
                                seeds=(0,))
    assert scores["methods"]["brightness"]["pointing_game"] == 1.0
    assert "brightness" in scores["paired_vs_baselines"]["latent_gradients"]
    assert "brightness" in table(scores)

    outputs = generator_signatures(generator, classifier, ServingSettings(
        inversion=settings))["explain"](images=tf.constant(images))
    np.testing.assert_allclose(outputs["brightness_map"], expected, rtol=1e-6)
    assert [m.name for m in explanation_maps()][-1] == "brightness"
