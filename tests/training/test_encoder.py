"""Training E on a run's G: it learns G's codes, never moves G, and continues after a stop."""

import json
import shutil

import numpy as np
import pytest

from covgan.errors import CovganError
from covgan.training.encoder import train_encoder
from covgan.training.presets import EncoderConfig
from covgan.training.runs import load_run


def codes_error(run, count=32, seed=5):
    """Mean squared error of E's codes on fresh samples of G (z2 = 0 for half)."""
    rng = np.random.default_rng(seed)
    d1, d2 = 8, 2
    z1 = rng.standard_normal((count, d1)).astype("f4")
    z2 = rng.standard_normal((count, d2)).astype("f4") * (np.arange(count) % 2)[:, None]
    e1, e2 = run.encoder(run.generator([z1, z2], training=False), training=False)
    return float(np.mean(np.concatenate([np.square(e1 - z1), np.square(e2 - z2)], axis=1)))


def test_encoder_learns_g_codes_leaves_g_alone_and_continues(tiny_run, tmp_path):
    copy = tmp_path / "run"  # RUN gains encoder files; the shared run stays read-only
    shutil.copytree(tiny_run, copy)
    generator_before = [w.copy() for w in load_run(copy).generator.get_weights()]
    config = EncoderConfig(run=str(copy), steps=10, batch_size=8, steps_per_epoch=10)
    first = train_encoder(config, verbose=0)
    assert first["steps"] == 10 and first["resumed_from_step"] == 0
    early = load_run(copy)
    assert early.encoder is not None
    for before, after in zip(generator_before, early.generator.get_weights()):
        np.testing.assert_array_equal(before, after)
    summary = json.loads((copy / "encoder.json").read_text())
    assert summary["finished"] and summary["config"]["steps"] == 10

    more = train_encoder(EncoderConfig(**{**config.__dict__, "steps": 60}), verbose=0)
    assert more["resumed_from_step"] == 10 and more["steps"] == 60
    later = load_run(copy)
    # 50 more steps give back G's codes better than the first 10 did.
    assert codes_error(later) < codes_error(early)
    with pytest.raises(CovganError, match="other settings"):
        train_encoder(EncoderConfig(**{**config.__dict__, "pixel_weight": 1.0}), verbose=0)


def test_a_run_that_is_not_finished_is_refused(tmp_path):
    with pytest.raises(CovganError, match="not a covgan run"):
        train_encoder(EncoderConfig(run=str(tmp_path)), verbose=0)
