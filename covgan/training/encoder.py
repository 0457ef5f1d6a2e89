"""Training the encoder E on a finished run's generator (`covgan encoder train`).

E learns to invert G on G's own samples, where the answer is known: codes are drawn as in
training (z1 ~ N(0, I); z2 ~ N(0, I) for half the samples and 0 for the rest), G draws the
images, and E is fitted to

    |E(G(z)) - z|^2  +  pixel_weight * MSE(G(E(G(z))), G(z))

(the code error alone spends E's capacity on directions of z that G ignores; the pixel term,
through the frozen G, weights them by what they draw). G's samples are not real radiographs,
and an E fitted to them alone transfers poorly (on runs/gan, G(E(x)) of held-out phantoms
reached SSIM 0.34 against 0.28 from a random code), so with `real_weight` each step also
takes a batch of the run's real training images x and adds

    real_weight * MSE(G(E(x)), x)

where no code is known and only the reconstruction can be asked for. `real_weight` may change
when a training is continued: E learns G's samples first, then is refined on real images.
Writes RUN/encoder.keras and RUN/encoder.json (with each phase's steps and real_weight);
RUN/encoder_checkpoints/ lets an interrupted training continue.
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

from covgan.data import layout
from covgan.data.catalog import resolve_data
from covgan.data.pipeline import default_cache, make_dataset
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
        pixel_weight: weight of the image-space term on G's samples.
        real_weight: weight of the reconstruction term on real images; where it is not 0,
            fit() must be given batches of (images, labels), else any data (ignored).
        seed: seed of the model's one SeedGenerator.
    """

    def __init__(self, encoder, generator, *, batch_size=32, pixel_weight=10.0, real_weight=0.0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        # === Sub-models ===
        self.encoder = encoder
        self.generator = generator
        self.generator.trainable = False
        # === Config ===
        self.z1_dim, self.z2_dim = code_sizes(generator)
        self.batch_size = int(batch_size)
        self.pixel_weight = float(pixel_weight)
        self.real_weight = float(real_weight)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # === Trackers, named exactly as train_step reports them ===
        self.code_tracker = keras.metrics.Mean(name="code_loss")
        self.pixel_tracker = keras.metrics.Mean(name="pixel_loss")
        self.real_tracker = keras.metrics.Mean(name="real_loss")

    @property
    def metrics(self):
        trackers = [self.code_tracker, self.pixel_tracker]
        return trackers + [self.real_tracker] if self.real_weight else trackers

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
            if self.real_weight:
                real = data[0]
                real_pixel = ops.mean(ops.square(
                    self.generator(list(self.encoder(real, training=True)), training=False)
                    - real), axis=[1, 2, 3])
                loss += self.real_weight * ops.mean(real_pixel)
        variables = self.encoder.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.code_tracker.update_state(code)
        self.pixel_tracker.update_state(pixel)
        if self.real_weight:
            self.real_tracker.update_state(real_pixel)
        return {m.name: m.result() for m in self.metrics}


def train_encoder(config: EncoderConfig, *, verbose: int = 1) -> dict:
    """Trains (or continues training) RUN's encoder; returns a summary dict.

    Raises:
        CovganError: RUN is not a finished run, its data has no train split to refine on,
            or its encoder was trained with other settings (steps may grow and real_weight
            change; nothing else).
    """
    run = load_run(config.run)
    run_dir = pathlib.Path(config.run)
    phases = _check_resumable(run_dir, config)
    d1, d2 = code_sizes(run.generator)
    encoder = build_encoder(run.config.get("preset", "tiny"), z1_dim=d1, z2_dim=d2,
                            seed=config.seed)
    trainer = EncoderTrainer(encoder, run.generator, batch_size=config.batch_size,
                             pixel_weight=config.pixel_weight, real_weight=config.real_weight,
                             seed=config.seed)
    trainer.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    trainer.optimizer.build(encoder.trainable_variables)  # restorable before the first step
    checkpoint = EpochCheckpoint(run_dir / CHECKPOINTS, encoder=encoder,
                                 optimizer=trainer.optimizer,
                                 seed_generator=trainer.seed_generator.state)
    done = checkpoint.restore()
    epochs = -(-config.steps // config.steps_per_epoch)
    phases = _add_phase(phases, done * config.steps_per_epoch,
                        max(done, epochs) * config.steps_per_epoch, config.real_weight)
    write_json(run_dir / SUMMARY_FILE, {"config": dataclasses.asdict(config), "phases": phases,
                                        "finished": False})
    started = time.perf_counter()
    history = {}
    if done < epochs:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only results
            history = trainer.fit(_real_images(run, config), epochs=epochs, initial_epoch=done,
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
        "phases": phases,
        "finished": True,
    }
    write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def _real_images(run, config):
    """fit()'s data: the run's real training images where `real_weight` asks for them, else
    an endless tick (train_step draws its own codes)."""
    if not config.real_weight:
        return tf.data.Dataset.from_tensors(0).repeat()
    # As evaluate and localise open it: the phantom set is made again if its cache is gone.
    data_dir = resolve_data(run.config["data"])
    records = layout.select(layout.read_manifest(data_dir), "train")
    if not records:
        raise CovganError(f"{data_dir} has no train split to refine the encoder on.")
    cache = default_cache(records, pathlib.Path(config.run) / "cache" / "encoder")
    return make_dataset(data_dir, records, batch_size=config.batch_size, shuffle=True,
                        seed=config.seed, repeat=True, cache=cache)


def _add_phase(phases, start, end, real_weight):
    """The training's phases, cut at `start` (the checkpoint it continues from: a killed
    call's phase ran only that far), with steps start..end added, merged into the last phase
    where real_weight did not change."""
    kept = [{**p, "to_step": min(p["to_step"], start)} for p in phases if p["from_step"] < start]
    if end <= start:  # nothing to run
        return kept
    if kept and kept[-1]["real_weight"] == real_weight:
        kept[-1]["to_step"] = end
        return kept
    return [*kept, {"from_step": start, "to_step": end, "real_weight": real_weight}]


# Settings a continued training may change.
_MAY_CHANGE = ("steps", "run", "real_weight")


def _check_resumable(run_dir, config):
    """The phases an earlier training of RUN's encoder ran ([] if none).

    Raises:
        CovganError: the summary is not ours, or a setting other than _MAY_CHANGE changed.
    """
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        return []
    try:
        summary = json.loads(path.read_text())
        previous = summary["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CovganError(f"{path} is not a covgan encoder summary; remove it and "
                          f"{run_dir / CHECKPOINTS} to train afresh.") from None
    current = dataclasses.asdict(config)
    defaults = dataclasses.asdict(EncoderConfig(run=""))
    # A summary from before a setting existed ran with its default.
    changed = sorted(k for k in current
                     if k not in _MAY_CHANGE and previous.get(k, defaults[k]) != current[k])
    if changed:
        raise CovganError(f"{run_dir}'s encoder was trained with other settings "
                          f"({', '.join(changed)}); continue it with the same settings, or remove "
                          f"{path} and {run_dir / CHECKPOINTS} to train afresh.")
    if "phases" in summary:
        return summary["phases"]
    # From before phases were kept: one phase on G's samples alone, as far as it got.
    ran = summary.get("steps", 0)
    return [{"from_step": 0, "to_step": ran, "real_weight": 0.0}] if ran else []
