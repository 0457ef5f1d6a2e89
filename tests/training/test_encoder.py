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

    more = train_encoder(EncoderConfig(**{**config.__dict__, "steps": 150}), verbose=0)
    assert more["resumed_from_step"] == 10 and more["steps"] == 150
    later = load_run(copy)
    # 140 more steps give back G's codes clearly better than the first 10 did (about 0.5
    # against 0.83 over three seeds; after 60 steps the gap was within the runs' spread).
    assert codes_error(later) < 0.9 * codes_error(early)
    with pytest.raises(CovganError, match="other settings"):
        train_encoder(EncoderConfig(**{**config.__dict__, "pixel_weight": 1.0}), verbose=0)

    # Refined on real images: real_weight may change on the way, and each phase is kept.
    refined = train_encoder(EncoderConfig(**{**config.__dict__, "steps": 170,
                                             "real_weight": 10.0}), verbose=0)
    assert refined["resumed_from_step"] == 150 and set(refined["final"]) == {
        "code_loss", "pixel_loss", "real_loss"}
    assert refined["phases"] == [{"from_step": 0, "to_step": 150, "real_weight": 0.0},
                                 {"from_step": 150, "to_step": 170, "real_weight": 10.0}]
    assert json.loads((copy / "encoder.json").read_text())["phases"] == refined["phases"]


def test_the_real_term_is_the_reconstruction_error_of_real_images(tiny_run):
    # One eager step each from the same E: the reported real_loss is MSE(G(E(x)), x) before
    # the step, and the term moves E (without it, the same step moves E otherwise).
    import keras

    from covgan.models.encoder import build_encoder
    from covgan.training.encoder import EncoderTrainer

    run = load_run(tiny_run)
    real = np.random.default_rng(0).random((4, 128, 128, 1)).astype("f4")
    steps = {}
    for weight in (0.0, 10.0):
        encoder = build_encoder("tiny", z1_dim=8, z2_dim=2, seed=0)
        expected = np.mean(np.square(run.generator(encoder(real)) - real), axis=(1, 2, 3))
        trainer = EncoderTrainer(encoder, run.generator, batch_size=4, real_weight=weight,
                                 seed=0)
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
        logs = trainer.train_on_batch(real, np.zeros(4, "int32"), return_dict=True)
        if weight:
            assert logs["real_loss"] == pytest.approx(float(expected.mean()), rel=1e-4)
        else:
            assert "real_loss" not in logs
        steps[weight] = encoder.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(steps[0.0], steps[10.0]))


def test_phases_are_cut_where_a_killed_call_stopped():
    from covgan.training.encoder import _add_phase

    # A call asked for 0..1200 and was killed after its checkpoint at 500.
    asked = [{"from_step": 0, "to_step": 1200, "real_weight": 10.0}]
    assert _add_phase(asked, 500, 500, 10.0) == [
        {"from_step": 0, "to_step": 500, "real_weight": 10.0}]
    assert _add_phase(asked, 500, 800, 0.0) == [
        {"from_step": 0, "to_step": 500, "real_weight": 10.0},
        {"from_step": 500, "to_step": 800, "real_weight": 0.0}]
    assert _add_phase(asked, 500, 800, 10.0) == [
        {"from_step": 0, "to_step": 800, "real_weight": 10.0}]


def test_a_summary_from_before_phases_continues_as_one_phase(tmp_path):
    from covgan.training.encoder import _check_resumable

    (tmp_path / "encoder.json").write_text(json.dumps({
        "steps": 2000, "finished": True,
        "config": {"run": "x", "steps": 2000, "batch_size": 32, "learning_rate": 0.001,
                   "pixel_weight": 10.0, "steps_per_epoch": 100, "seed": 0}}))
    config = EncoderConfig(run=str(tmp_path), steps=2500, real_weight=10.0)
    assert _check_resumable(tmp_path, config) == [
        {"from_step": 0, "to_step": 2000, "real_weight": 0.0}]
    with pytest.raises(CovganError, match=r"other settings \(batch_size\)"):
        _check_resumable(tmp_path, EncoderConfig(run=str(tmp_path), batch_size=8))


def test_a_run_that_is_not_finished_is_refused(tmp_path):
    with pytest.raises(CovganError, match="not a covgan run"):
        train_encoder(EncoderConfig(run=str(tmp_path)), verbose=0)
