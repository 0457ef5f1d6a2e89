"""G and D: their contracts (named inputs, image range, float32 logits) and .keras round trips."""

import numpy as np
from helpers import assert_keras_round_trip

from covgan.models.discriminator import build_discriminator
from covgan.models.generator import build_generator, code_sizes
from covgan.shapes import IMAGE_SHAPE


def codes(count, d1=16, d2=4):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((count, d1)).astype("float32"),
            rng.standard_normal((count, d2)).astype("float32")]


def test_generator_and_discriminator_contracts():
    generator = build_generator("tiny", z1_dim=16, z2_dim=4)
    assert [t.name for t in generator.inputs] == ["z1", "z2"]
    assert code_sizes(generator) == (16, 4)
    images = generator([np.zeros((2, 16), "float32"), np.zeros((2, 4), "float32")]).numpy()
    assert images.shape == (2, *IMAGE_SHAPE) and 0 <= images.min() and images.max() <= 1
    logits = build_discriminator("tiny")(images)
    assert logits.shape == (2, 1) and logits.dtype.name == "float32"


def test_generator_round_trips_in_safe_mode(tmp_path):
    generator = build_generator("tiny", z1_dim=16, z2_dim=4, inject_z2=True, seed=0)
    assert_keras_round_trip(generator, tmp_path / "g.keras", codes(2))


def test_discriminator_round_trips_in_safe_mode(tmp_path):
    discriminator = build_discriminator("tiny", seed=1)
    images = np.random.default_rng(1).random((2, *IMAGE_SHAPE)).astype("float32")
    assert_keras_round_trip(discriminator, tmp_path / "d.keras", images)
