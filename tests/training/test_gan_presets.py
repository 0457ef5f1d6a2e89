"""The paper preset, mixed precision and tf.distribute: the paths users take as they grow."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np

from covgan.models.classifier import build_classifier
from covgan.models.discriminator import build_discriminator
from covgan.models.generator import build_generator
from covgan.training.conditional_gan import ConditionalGAN


def test_paper_preset_builds_and_one_train_step_runs():
    generator = build_generator("paper")
    assert [t.shape[-1] for t in generator.inputs] == [100, 10]
    gan = ConditionalGAN(generator, build_discriminator("paper"), build_classifier("vgg16"), seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    real = np.random.default_rng(0).random((2, 128, 128, 1)).astype("float32")
    logs = gan.train_on_batch(real, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "cls_loss", "cls_acc", "locality"}
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


MIRRORED = textwrap.dedent("""
    import json, sys
    from covgan.training.distribute import split_cpu
    split_cpu(2)
    import keras
    from covgan.training.gan import GANTrainingConfig, train_gan
    results = {}
    for strategy in ("default", "mirrored"):
        keras.utils.set_random_seed(0)
        config = GANTrainingConfig(data=sys.argv[1], classifier=sys.argv[2],
                                   out=sys.argv[3] + "/" + strategy, epochs=1, batch_size=16,
                                   z1_dim=16, z2_dim=4, strategy=strategy, seed=0)
        results[strategy] = train_gan(config, verbose=0)["final"]
    import tensorflow as tf
    results["replicas"] = len(tf.config.list_logical_devices("CPU"))
    print(json.dumps(results))
""")


def test_mirrored_on_two_logical_cpus_matches_a_single_device_run(phantom_dir, tmp_path):
    classifier = tmp_path / "classifier.keras"
    build_classifier("tiny", seed=0).save(classifier)
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(phantom_dir), str(classifier),
                             str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(result.stdout.strip().splitlines()[-1])
    assert results["replicas"] == 2
    single, mirrored = results["default"], results["mirrored"]
    # Same data, same number of images per step, another random stream: equal within noise.
    for key in ("d_loss", "g_loss", "cls_loss"):
        assert np.isfinite(mirrored[key])
        assert abs(mirrored[key] - single[key]) <= 0.35 * max(abs(single[key]), 0.5), (key, results)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multiworker_with_two_local_workers_matches_a_single_device_run(phantom_dir, tmp_path):
    import os

    classifier = tmp_path / "classifier.keras"
    build_classifier("tiny", seed=0).save(classifier)

    def command(out, strategy):
        return [sys.executable, "-m", "covgan", "train", "--data", str(phantom_dir),
                "--classifier", str(classifier), "--out", str(out), "--epochs", "1",
                "--batch-size", "16", "--z1-dim", "16", "--z2-dim", "4", "--strategy", strategy]

    single = subprocess.run(command(tmp_path / "single", "default"), capture_output=True,
                            text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    cluster = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(command(tmp_path / "multi", "multiworker"), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    chief = json.loads(outputs[0][0])
    assert chief["epochs_this_call"] == 1
    assert (tmp_path / "multi" / "generator.keras").is_file()
    assert sorted(p.name for p in (tmp_path / "multi").iterdir()) == sorted(
        p.name for p in (tmp_path / "single").iterdir())
    reference = json.loads(single.stdout)["final"]
    for key in ("d_loss", "g_loss", "cls_loss"):
        value = chief["final"][key]
        assert np.isfinite(value)
        assert abs(value - reference[key]) <= 0.35 * max(abs(reference[key]), 0.5), (
            key, chief["final"], reference)
