"""The paper preset, mixed precision and tf.distribute: the paths users take as they grow."""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import all_layers

from covgan.models.classifier import build_classifier
from covgan.models.discriminator import build_discriminator
from covgan.models.generator import build_generator
from covgan.training.conditional_gan import ConditionalGAN
from covgan.training.presets import PAPER_LEVERS, GANTrainingConfig, preset_config


def test_the_paper_preset_is_eq_1_and_options_override_the_tiny_presets_levers():
    def levers(config):
        return {name: getattr(config, name) for name in PAPER_LEVERS}

    assert levers(preset_config("paper", data="", classifier="", out="")) == PAPER_LEVERS
    tiny = preset_config("tiny", data="", classifier="", out="")
    assert all(levers(tiny)[name] != off for name, off in PAPER_LEVERS.items())
    assert levers(preset_config("tiny", data="", classifier="", out="", **PAPER_LEVERS)) == \
        PAPER_LEVERS
    # A run from before a lever existed reads as trained without it.
    assert levers(GANTrainingConfig(data="", classifier="", out="")) == PAPER_LEVERS


def test_the_films_preset_is_tiny_augmented_reflected_and_longer():
    from covgan.training.presets import PRESET_TRAINING

    films = preset_config("films", data="", classifier="", out="")
    tiny = preset_config("tiny", data="", classifier="", out="")
    changed = {k for k in PRESET_TRAINING["films"] if getattr(films, k) != getattr(tiny, k)}
    assert changed == {"epochs", "augment", "padding"}
    assert (films.augment, films.padding) == (True, "reflect") and films.epochs > tiny.epochs
    # Options still override it.
    assert not preset_config("films", data="", classifier="", out="", augment=False).augment
    # Its models are tiny's (the wider ones measured worse on real films).
    assert [w.shape for w in build_generator("films", gated_residual=True).weights] == \
        [w.shape for w in build_generator("tiny", gated_residual=True).weights]
    assert build_discriminator("films").count_params() == build_discriminator("tiny").count_params()


def test_paper_preset_builds_and_one_train_step_runs():
    generator = build_generator("paper")
    assert [t.shape[-1] for t in generator.inputs] == [100, 10]
    gan = ConditionalGAN(generator, build_discriminator("paper"), build_classifier("vgg16"), seed=0)
    # Eagerly: the step's arithmetic at paper size, without tracing it; the traced paper-size
    # step is timed by tools/bench.py (tests/test_bench.py, --run-slow).
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), run_eagerly=True)
    real = np.random.default_rng(0).random((2, 128, 128, 1)).astype("float32")
    logs = gan.train_on_batch(real, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "cls_loss", "cls_acc", "locality", "spread"}
    assert all(np.isfinite(v) for v in logs.values())
    assert 14.6e6 < gan.classifier.count_params() < 14.8e6


def test_mixed_precision_step_keeps_float32_outputs():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        generator = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
        discriminator = build_discriminator("tiny", seed=1)
        gan = ConditionalGAN(generator, discriminator, build_classifier("tiny", seed=2), seed=0)
        gan.compile(
            d_optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(2e-4)),
            g_optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(2e-4)),
            run_eagerly=True,  # the traced mixed step: tools/bench.py (--run-slow)
        )
        real = np.random.default_rng(0).random((4, 128, 128, 1)).astype("float32")
        logs = gan.train_on_batch(real, return_dict=True)
        assert all(np.isfinite(v) for v in logs.values())
        images = generator([np.zeros((1, 8), "float32"), np.zeros((1, 2), "float32")])
        assert images.dtype.name == "float32"
        assert discriminator(images).dtype.name == "float32"
        assert generator.get_layer("up1_conv").compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STRATEGY_RUN = pathlib.Path(__file__).with_name("strategy_run.py")
GLOBAL_BATCH = 16  # strategy_run.py's


def weights(path):
    return keras.saving.load_model(path, safe_mode=True, compile=False).get_weights()


def one_batch_of(data_dir, out):
    """`data_dir` with its train split cut to one global batch, so an epoch is one step."""
    import dataclasses
    import shutil

    from covgan.data import layout

    shutil.copytree(data_dir, out)
    records, kept = [], 0
    for record in layout.read_manifest(out):
        if record.split == "train":
            kept += 1
            if kept > GLOBAL_BATCH:
                record = dataclasses.replace(record, split="val")
        records.append(record)
    layout.write_manifest(out / layout.MANIFEST, records)
    return out


def same_step_as_one_device(results, tmp_path, strategy):
    """One step under `strategy` with the latents fixed (strategy_run.py) must compute what
    one device computes: the same losses (per-replica BatchNorm statistics, a mis-sharded
    batch or a wrong global-batch scaling of the reported losses all change them) and the
    same updated weights. D's agree to float32 rounding. Adam's first step is
    lr * sign(gradient) wherever the gradient is not tiny, so the few G weights whose gradient
    is near zero may step either way: G's must agree within 1e-5 for 98% of the weights and
    within two steps (2 lr) for all."""
    single, summary = results["default"], results[strategy]
    reference, folder = tmp_path / "default", tmp_path / strategy
    assert summary["epochs_this_call"] == 1
    for key in ("d_loss", "g_loss", "cls_loss", "cls_acc"):
        assert summary["final"][key] == pytest.approx(single["final"][key], abs=2e-4), (
            strategy, key, summary["final"], single["final"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in reference.iterdir())
    for ours, theirs in zip(weights(folder / "discriminator.keras"),
                            weights(reference / "discriminator.keras")):
        np.testing.assert_allclose(ours, theirs, atol=1e-5, err_msg=strategy)
    generator = list(zip(weights(folder / "generator.keras"),
                         weights(reference / "generator.keras")))
    gaps = np.concatenate([np.abs(a - b).ravel() for a, b in generator])
    assert np.mean(gaps <= 1e-5) >= 0.98, (strategy, np.mean(gaps <= 1e-5))
    assert gaps.max() <= 2.05 * GANTrainingConfig.g_learning_rate, (strategy, gaps.max())


def strategy_command(phantom_dir, tmp_path):
    data = one_batch_of(phantom_dir, tmp_path / "data")
    classifier = tmp_path / "classifier.keras"
    build_classifier("tiny", seed=0).save(classifier)
    return [sys.executable, str(STRATEGY_RUN), str(data), str(classifier), str(tmp_path)]


def finished(process):
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_mirrored_computes_the_same_step_as_one_device(phantom_dir, tmp_path):
    command = strategy_command(phantom_dir, tmp_path)
    results = finished(subprocess.Popen([*command, "default", "mirrored"], text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    assert results["cpu_devices"] == 2
    same_step_as_one_device(results, tmp_path, "mirrored")


@pytest.mark.slow  # three TensorFlow processes at once; the mirrored test above runs by default
def test_multiworker_computes_the_same_step_as_one_device(phantom_dir, tmp_path):
    import os

    command = strategy_command(phantom_dir, tmp_path)
    local = subprocess.Popen([*command, "default"], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cluster = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen([*command, "multiworker"], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = finished(local)
    outputs = [finished(worker) for worker in workers]
    results["multiworker"] = outputs[0]["multiworker"]
    same_step_as_one_device(results, tmp_path, "multiworker")


class ClassifierDtypes(keras.callbacks.Callback):
    """Records the compute dtypes of the classifier's convolutions during training."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def on_train_batch_end(self, batch, logs=None):
        self.seen |= {layer.compute_dtype for layer in all_layers(self.model.classifier)
                      if isinstance(layer, keras.layers.Conv2D)}


def test_mixed_precision_run_computes_the_loaded_classifier_in_bfloat16(phantom_dir, tmp_path):
    # C comes from a float32 .keras file, whose layers Keras restores as float32; the run
    # must still compute it in bfloat16 (half of a GAN step's work is C).
    from covgan.training.gan import train_gan

    classifier = tmp_path / "classifier.keras"
    build_classifier("tiny", seed=0).save(classifier)
    data = one_batch_of(phantom_dir, tmp_path / "data")
    dtypes = ClassifierDtypes()
    config = GANTrainingConfig(data=str(data), classifier=str(classifier),
                               out=str(tmp_path / "run"), epochs=1, batch_size=GLOBAL_BATCH,
                               z1_dim=8, z2_dim=2, mixed_precision=True, seed=0)
    summary = train_gan(config, verbose=0, extra_callbacks=[dtypes])
    assert summary["epochs_this_call"] == 1
    assert dtypes.seen == {"bfloat16"}
    assert keras.mixed_precision.global_policy().name == "float32"  # restored afterwards
