"""covgan encoder train, then --start encoder on the inversion commands and on export."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from covgan.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_an_encoder_then_invert_from_it(tiny_run, phantom_positives, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    result = run("encoder", "train", "--run", copy, "--steps", 100, "--batch-size", 2)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 100 and (copy / "encoder.keras").is_file()
    assert set(summary["final"]) == {"code_loss", "pixel_loss"}
    result = run("invert", *phantom_positives, "--run", copy, "--out", tmp_path / "inv",
                 "--start", "encoder", "--invert-steps", 5, "--restarts", 1)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["z1_start"] == "encoder"


@pytest.mark.parametrize("command", ["invert", "explain"])
def test_start_encoder_without_one_is_refused_in_one_line(command, tiny_run, phantom_positives,
                                                         tmp_path):
    result = run(command, phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "out",
                 "--start", "encoder")
    assert result.exit_code == 1
    assert "covgan encoder train" in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_exported_invert_starts_at_the_encoder(tiny_run, tmp_path):
    import tensorflow as tf

    from covgan.errors import CovganError
    from covgan.explain.settings import InversionSettings
    from covgan.export.savedmodel import export_run
    from covgan.export.settings import ServingSettings
    from covgan.export.signatures import generator_signatures
    from covgan.models.encoder import build_encoder
    from covgan.training.runs import load_run

    loaded = load_run(tiny_run)
    # One step at a negligible rate, one start: the exported answer is the encoder's codes.
    settings = ServingSettings(inversion=InversionSettings(
        steps=1, restarts=1, learning_rate=1e-9, patience=2, z1_start="encoder"))
    with pytest.raises(CovganError, match="covgan encoder train"):
        export_run(loaded, tmp_path / "models", settings=settings)
    with pytest.raises(ValueError, match="no encoder"):
        generator_signatures(loaded.generator, loaded.classifier, settings)
    encoder = build_encoder("tiny", z1_dim=8, z2_dim=2, seed=1)
    invert = generator_signatures(loaded.generator, loaded.classifier, settings, encoder)["invert"]
    images = np.random.default_rng(0).random((2, 128, 128, 1)).astype("f4")
    answer = invert(images=tf.constant(images))
    e1, e2 = encoder(images)
    np.testing.assert_allclose(answer["z1"], e1, atol=1e-5)
    np.testing.assert_allclose(answer["z2"], e2, atol=1e-5)
