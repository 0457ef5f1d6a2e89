"""tools/marker_effect.py: the ground truth of whether a classifier reads the shortcut marker."""

import json

import cv2
import keras
import numpy as np
from helpers import load_tool

from covgan.data import layout


def tool():
    return load_tool("marker_effect")


def corner_reader():
    """A classifier that calls an image positive when its upper-left corner is bright."""
    inputs = keras.Input((128, 128, 1))
    corner = keras.layers.Cropping2D(((2, 104), (2, 104)))(inputs)  # rows and columns 2-23
    brightest = keras.layers.GlobalMaxPooling2D()(corner)
    # Unmarked corners peak at 0.85 at most in these phantoms (shoulders), the marker at 1.
    logit = keras.layers.Lambda(lambda v: 100.0 * (v - 0.92))(brightest)
    scores = keras.layers.Concatenate()([-logit, logit])
    return keras.Model(inputs, keras.layers.Activation("softmax")(scores))


def test_rerendered_phantoms_are_the_stored_ones(phantom_dir):
    module = tool()
    contrast = json.loads((phantom_dir / "report.json").read_text())["lesion_contrast"]
    for record in layout.read_manifest(phantom_dir)[:6]:
        index = int(record.path.split("_")[-1].split(".")[0])
        marked = dict(record.extra)["shortcut"] == "1"
        image = module.render(3, index, record.label, contrast, marked)
        stored = cv2.imread(str(phantom_dir / record.path), cv2.IMREAD_GRAYSCALE) / 255.0
        assert np.abs(image - stored).max() <= 0.5 / 255 + 1e-6, record.path


def test_a_corner_reader_is_caught_and_a_blind_one_is_not(phantom_dir):
    module = tool()
    caught = module.marker_effect(corner_reader(), phantom_dir, split="all")
    negatives = caught["negatives"]
    assert negatives["called_positive_without"] == 0.0
    assert negatives["called_positive_with"] == 1.0
    assert caught["marked_positives"]["p_with_marker"] > 0.99
    assert caught["marked_positives"]["p_without_marker"] < 0.01

    inputs = keras.Input((128, 128, 1))
    blind = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(keras.layers.Cropping2D(((64, 0), (64, 0)))(
            inputs))))
    untouched = module.marker_effect(blind, phantom_dir, split="all")
    for group in ("negatives", "marked_positives", "plain_positives"):
        values = untouched[group]
        assert abs(values["p_with_marker"] - values["p_without_marker"]) < 1e-4, group
