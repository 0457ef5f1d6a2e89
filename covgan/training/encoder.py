"""Training the encoder E on a finished run's generator (`covgan encoder train`).

E learns to invert G on G's own samples, where the answer is known: codes are drawn as in
training (z1 ~ N(0, I); z2 ~ N(0, I) for half the samples and 0 for the rest), G draws the
images, and E is fitted to

    |E(G(z)) - z|^2  +  pixel_weight * MSE(G(E(G(z))), G(z))

(the code error alone spends E's capacity on directions of z that G ignores; the pixel term,
through the frozen G, weights them by what they draw). Writes RUN/encoder.keras and
RUN/encoder.json; RUN/encoder_checkpoints/ lets an interrupted training continue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import sys
import time

import keras
import tensorflow as tf
from keras import ops

from covgan.errors import CovganError
from covgan.io import atomic_path, write_json
from covgan.models.encoder import ENCODER_FILE, build_encoder
from covgan.models.generator import code_sizes
from covgan.training.callbacks import EpochCheckpoint
from covgan.training.conditional_gan import sample_codes
from covgan.training.presets import EncoderConfig
from covgan.training.runs import load_run

__all__ = ["EncoderConfig", "EncoderTrainer", "train_encoder"]

SUMMARY_FILE = "encoder.json"
CHECKPOINTS = "encoder_checkpoints"


@keras.saving.register_keras_serializable(package="covgan")
class EncoderTrainer(keras.Model):
    """E and the frozen G; each train_step draws its own batch of codes (the data is ignored).

    Args:
        encoder: E, images -> [z1, z2].
        generator: G, frozen, called with training=False.
        batch_size: codes drawn per step.
        pixel_weight: weight of the image-space term.
        seed: seed of the model's one SeedGenerator.
    """

    def __init__(self, encoder, generator, *, batch_size=32, pixel_weight=10.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        # === Sub-models ===
        self.encoder = encoder
        self.generator = generator
        self.generator.trainable = False
        # === Config ===
        self.z1_dim, self.z2_dim = code_sizes(generator)
        self.batch_size = int(batch_size)
        self.pixel_weight = float(pixel_weight)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # === Trackers, named exactly as train_step reports them ===
        self.code_tracker = keras.metrics.Mean(name="code_loss")
        self.pixel_tracker = keras.metrics.Mean(name="pixel_loss")

    @property
    def metrics(self):
        return [self.code_tracker, self.pixel_tracker]

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def train_step(self, data):
        # As G was trained on them, z2 = 0 for about half the rows.
        z1, z2, _ = sample_codes(self.seed_generator, self.batch_size, self.z1_dim, self.z2_dim)
        images = self.generator([z1, z2], training=False)
        with tf.GradientTape() as tape:
            e1, e2 = self.encoder(images, training=True)
            code = (ops.sum(ops.square(e1 - z1), -1) + ops.sum(ops.square(e2 - z2), -1)) / (
                self.z1_dim + self.z2_dim)
            redrawn = self.generator([e1, e2], training=False)
            pixel = ops.mean(ops.square(redrawn - images), axis=[1, 2, 3])
            loss = ops.mean(code + self.pixel_weight * pixel)
        variables = self.encoder.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.code_tracker.update_state(code)
        self.pixel_tracker.update_state(pixel)
        return {m.name: m.result() for m in self.metrics}


def train_encoder(config: EncoderConfig, *, verbose: int = 1) -> dict:
    """Trains (or continues training) RUN's encoder; returns a summary dict.

    Raises:
        CovganError: RUN is not a finished run, or its encoder was trained with other
            settings (the steps may grow; nothing else may change).
    """
    run = load_run(config.run)
    run_dir = pathlib.Path(config.run)
    _check_resumable(run_dir, config)
    d1, d2 = code_sizes(run.generator)
    encoder = build_encoder(run.config.get("preset", "tiny"), z1_dim=d1, z2_dim=d2,
                            seed=config.seed)
    trainer = EncoderTrainer(encoder, run.generator, batch_size=config.batch_size,
                             pixel_weight=config.pixel_weight, seed=config.seed)
    trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    trainer.optimizer.build(encoder.trainable_variables)  # restorable before the first step
    checkpoint = EpochCheckpoint(run_dir / CHECKPOINTS, encoder=encoder,
                                 optimizer=trainer.optimizer,
                                 seed_generator=trainer.seed_generator.state)
    done = checkpoint.restore()
    epochs = -(-config.steps // config.steps_per_epoch)
    write_json(run_dir / SUMMARY_FILE, {"config": dataclasses.asdict(config), "finished": False})
    ticks = tf.data.Dataset.from_tensors(0).repeat()  # train_step draws its own codes
    started = time.perf_counter()
    history = {}
    if done < epochs:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only results
            history = trainer.fit(ticks, epochs=epochs, initial_epoch=done,
                                  steps_per_epoch=config.steps_per_epoch,
                                  callbacks=[checkpoint], verbose=verbose).history
    with atomic_path(run_dir / ENCODER_FILE) as tmp:
        encoder.save(tmp)
    summary = {
        "run": str(run_dir),
        "encoder": str(run_dir / ENCODER_FILE),
        "steps": epochs * config.steps_per_epoch,
        "resumed_from_step": done * config.steps_per_epoch,
        "seconds": round(time.perf_counter() - started, 1),
        "final": {k: round(float(v[-1]), 5) for k, v in history.items()},
        "config": dataclasses.asdict(config),
        "finished": True,
    }
    write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def _check_resumable(run_dir, config):
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text())["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CovganError(f"{path} is not a covgan encoder summary; remove it and "
                          f"{run_dir / CHECKPOINTS} to train afresh.") from None
    current = dataclasses.asdict(config)
    changed = sorted(k for k in current
                     if k not in ("steps", "run") and previous.get(k) != current[k])
    if changed:
        raise CovganError(f"{run_dir}'s encoder was trained with other settings "
                          f"({', '.join(changed)}); continue it with the same settings, or remove "
                          f"{path} and {run_dir / CHECKPOINTS} to train afresh.")
