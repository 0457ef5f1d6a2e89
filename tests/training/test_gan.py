"""GAN training end to end on tiny data: TensorBoard summaries, crash-safe resume, run folders."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from covgan.errors import CovganError
from covgan.models.classifier import build_classifier
from covgan.output.render import GRID_LABEL_HEIGHT
from covgan.training.gan import (
    CLASS_CODE_TAKEN,
    GANTrainingConfig,
    class_code_warning,
    train_gan,
)


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("classifier") / "classifier.keras"
    build_classifier("tiny", seed=0).save(path)
    return path


def config_for(data, classifier, out, **overrides):
    settings = dict(data=str(data), classifier=str(classifier), out=str(out), epochs=2,
                    batch_size=16, z1_dim=16, z2_dim=4, seed=0)
    settings.update(overrides)
    return GANTrainingConfig(**settings)


def read_images(log_dir, tag):
    """(step, HxW array) of every image summary under `tag` in the event files."""
    found = []
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    encoded = tf.make_ndarray(value.tensor)[2]  # [width, height, png bytes]
                    found.append((event.step, tf.io.decode_png(encoded).numpy()[..., 0]))
    return found


def copy_of(run_dir, tmp_path):
    """A copy of a finished run (the shared tiny run), to train on or to be refused."""
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    return copy


def config_of(run_dir, **overrides):
    """The config `run_dir` was trained with, `out` pointing at it unless overridden."""
    settings = json.loads((run_dir / "config.json").read_text())
    return GANTrainingConfig(**{**settings, "out": str(run_dir), **overrides})


def test_run_folder_and_tensorboard_traversals(tiny_run):
    # The shared tiny run is made by train_gan, two epochs (tests/conftest.py).
    run_dir = tiny_run
    summary = json.loads((run_dir / "training.json").read_text())
    assert summary["epochs_this_call"] == 2 and summary["resumed_from_epoch"] == 0
    for name in ("config.json", "classifier.keras", "generator.keras", "discriminator.keras",
                 "training.json"):
        assert (run_dir / name).is_file(), name
    source = pathlib.Path(json.loads((run_dir / "config.json").read_text())["classifier"])
    assert (run_dir / "classifier.keras").read_bytes() == source.read_bytes()
    images = read_images(run_dir / "logs", "traversal")
    assert [step for step, _ in images] == [1, 2]
    assert all(image.shape == (4 * (128 + GRID_LABEL_HEIGHT), 11 * 128) for _, image in images)
    assert np.abs(images[0][1].astype(int) - images[1][1].astype(int)).mean() > 0.5
    scalars = {v.tag for p in (run_dir / "logs").rglob("events.out.tfevents.*")
               for e in tf.compat.v1.train.summary_iterator(str(p)) for v in e.summary.value}
    assert {"epoch_d_loss", "epoch_g_loss", "epoch_cls_loss", "epoch_cls_acc"} <= scalars


def test_the_grid_tool_draws_the_saved_generators_walks_from_the_trainings_codes(
        tiny_run, tmp_path, capsys):
    import cv2
    from helpers import load_tool

    from covgan.output.render import to_uint8
    from covgan.training.runs import load_run

    load_tool("traversal_grid").main(["--run", str(tiny_run), "--out", str(tmp_path / "g.png")])
    written = json.loads(capsys.readouterr().out)
    grid = cv2.imread(written["grid"], cv2.IMREAD_GRAYSCALE)
    assert grid.shape == read_images(tiny_run / "logs", "traversal")[-1][1].shape
    # Row r walks the r-th of the training's row codes (N(0, I) from the run's seed) through
    # the saved generator (the averaged weights, which TensorBoard's grids do not show): its
    # first tile is G(z1, 0), its last G(z1, z2).
    generator = load_run(tiny_run).generator
    rng = np.random.default_rng(json.loads((tiny_run / "config.json").read_text())["seed"])
    z1 = rng.standard_normal((4, generator.inputs[0].shape[-1])).astype("float32")
    z2 = rng.standard_normal((4, generator.inputs[1].shape[-1])).astype("float32")
    pitch = 128 + GRID_LABEL_HEIGHT
    for row in (0, 3):
        codes = z1[row:row + 1], z2[row:row + 1]
        first = to_uint8(generator([codes[0], 0 * codes[1]]).numpy()[0])
        last = to_uint8(generator(list(codes)).numpy()[0])
        tiles = grid[row * pitch:row * pitch + 128]
        assert np.abs(tiles[:, :128].astype(int) - first).max() <= 1
        assert np.abs(tiles[:, -128:].astype(int) - last).max() <= 1


def test_a_different_config_is_refused(tiny_run, phantom_dir, classifier_file, tmp_path):
    run_dir = copy_of(tiny_run, tmp_path)
    with pytest.raises(CovganError, match=r"other settings \(lambda_cls\)"):
        train_gan(config_of(run_dir, epochs=3, lambda_cls=5.0), verbose=0)
    with pytest.raises(CovganError, match="site"):  # before any folder is made
        train_gan(config_for(phantom_dir, classifier_file, tmp_path / "new", balance_by="site"),
                  verbose=0)
    assert not (tmp_path / "new").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(CovganError, match="not a covgan run"):
        train_gan(config_for(phantom_dir, classifier_file, tmp_path / "other"), verbose=0)


def test_init_from_fine_tunes_another_run_with_new_settings(tiny_run, tmp_path):
    source = tiny_run  # two epochs (tests/conftest.py); only read
    tuned = config_of(source, out=str(tmp_path / "tuned"), epochs=3, lambda_locality=5.0,
                      init_from=str(source), balance_by="shortcut")
    summary = train_gan(tuned, verbose=0)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_this_call"] == 1
    assert summary["final"]["locality"] > 0  # trained on with the new setting
    # The critic's real images weighted by a manifest column; negatives never carry the marker.
    assert summary["balance_by"]["column"] == "shortcut"
    assert summary["balance_by"]["absent"] == {"0": ["1"], "1": []}
    recorded = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert recorded["init_from"] == str(source) and recorded["lambda_locality"] == 5.0
    assert recorded["balance_by"] == "shortcut"
    with pytest.raises(CovganError, match="already trained 2 epochs"):
        train_gan(config_of(source, out=str(tmp_path / "short"), epochs=2,
                            init_from=str(source)), verbose=0)
    with pytest.raises(CovganError, match="does not fit"):
        train_gan(config_of(source, out=str(tmp_path / "wider"), epochs=3, z1_dim=32,
                            init_from=str(source)), verbose=0)


def test_sigkill_mid_run_then_rerun_continues_at_the_right_epoch(phantom_dir, classifier_file,
                                                                  tmp_path):
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "covgan", "train", "--data", str(phantom_dir),
               "--classifier", str(classifier_file), "--out", str(run_dir), "--epochs", "40",
               "--batch-size", "16", "--z1-dim", "16", "--z2-dim", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    state = run_dir / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (state.exists() and "ckpt-1" in state.read_text()):
        assert process.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = int(tf.train.latest_checkpoint(str(run_dir / "checkpoints")).rsplit("-", 1)[1])
    assert 1 <= finished < 40

    # The same command, one more epoch, in this process (a second TensorFlow start buys
    # nothing: the kill above is what needs a process of its own).
    from click.testing import CliRunner

    from covgan.cli import main

    command[command.index("40")] = str(finished + 1)
    result = CliRunner().invoke(main, command[3:])
    assert result.exit_code == 0, result.output[-2000:]
    summary = json.loads(result.stdout)
    assert summary["resumed_from_epoch"] == finished
    assert summary["epochs_this_call"] == 1
    # A GAN whose samples the classifier still reads near chance says so.
    assert (("the class code does not steer" in result.stderr)
            == (summary["final"]["cls_acc"] < CLASS_CODE_TAKEN))
    # The command's defaults are the tiny preset's, training levers and all.
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "tiny"
    assert (config["lambda_locality"], config["class_critic"], config["gated_residual"],
            config["upsampling"]) == (10.0, True, True, "bilinear")


def test_a_gated_run_opens_in_a_fresh_process(tmp_path):
    # The gated, reflection-padded generator has layers of ours; load_run must register them
    # itself, not rely on the caller having imported covgan.models.generator first.
    from covgan.models.generator import build_generator

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, padding="reflect",
                    seed=0).save(run_dir / "generator.keras")
    build_classifier("tiny", seed=0).save(run_dir / "classifier.keras")
    (run_dir / "config.json").write_text("{}")
    code = ("import sys; from covgan.training.runs import load_run; "
            "print(load_run(sys.argv[1]).generator.name)")
    result = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "generator_tiny_gated"


def test_a_run_that_never_took_the_class_is_warned_of():
    assert class_code_warning({"final": {"cls_acc": 0.995}}) is None
    assert class_code_warning({"final": {}}) is None  # resumed with nothing left to train
    warning = class_code_warning({"final": {"cls_acc": 0.51}})
    assert "51% of the time" in warning and "--epochs" in warning
