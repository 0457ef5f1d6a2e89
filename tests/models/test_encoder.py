"""E: its contract (named codes the generator's sizes) and what load_encoder refuses."""

import numpy as np
import pytest
from helpers import assert_keras_round_trip

from covgan.errors import CovganError
from covgan.models.encoder import build_encoder, load_encoder
from covgan.shapes import IMAGE_SHAPE


def test_encoder_gives_both_codes_and_round_trips_in_safe_mode(tmp_path):
    encoder = build_encoder("tiny", z1_dim=8, z2_dim=2, seed=0)
    images = np.random.default_rng(0).random((3, *IMAGE_SHAPE)).astype("float32")
    z1, z2 = encoder(images)
    assert z1.shape == (3, 8) and z2.shape == (3, 2) and z1.dtype.name == "float32"
    assert_keras_round_trip(encoder, tmp_path / "encoder.keras", images)
    loaded = load_encoder(tmp_path / "encoder.keras", 8, 2)
    np.testing.assert_allclose(loaded(images)[1], z2, atol=1e-6)


def test_load_encoder_refuses_other_sizes_a_missing_file_and_a_non_model(tmp_path):
    build_encoder("tiny", z1_dim=8, z2_dim=2).save(tmp_path / "encoder.keras")
    with pytest.raises(CovganError, match=r"codes of sizes \(16, 4\)"):
        load_encoder(tmp_path / "encoder.keras", 16, 4)
    with pytest.raises(CovganError, match="not found"):
        load_encoder(tmp_path / "missing.keras", 8, 2)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(CovganError, match="not a covgan encoder"):
        load_encoder(tmp_path / "junk.keras", 8, 2)
