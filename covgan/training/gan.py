"""Training the conditional GAN against a frozen classifier (`covgan train`).

A RUN folder is self-contained: config.json, classifier.keras (a copy),
generator.keras, discriminator.keras, checkpoints/ and logs/ (TensorBoard). The
same command run again on the same RUN continues from the last finished epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shutil
import sys
import time
from collections.abc import Sequence

import keras

from covgan.data import layout
from covgan.data.pipeline import default_cache, make_dataset
from covgan.errors import CovganError
from covgan.io import atomic_path, write_json
from covgan.models.classifier import load_classifier
from covgan.models.discriminator import build_discriminator
from covgan.models.generator import build_generator
from covgan.models.precision import mixed_policy_name
from covgan.training.balance import balance_weights
from covgan.training.callbacks import EpochCheckpoint, TraversalSummary
from covgan.training.conditional_gan import ConditionalGAN
from covgan.training.distribute import fit_distributed, is_chief, make_strategy, writable_dir
from covgan.training.presets import GANTrainingConfig, preset_config

__all__ = ["GANTrainingConfig", "preset_config", "train_gan", "CONFIG_FILE"]

CONFIG_FILE = "config.json"
# Settings that may change when a run is continued; all others must match.
_RESUMABLE = {"epochs", "summary_every", "strategy", "out", "data"}


def train_gan(config: GANTrainingConfig, *, verbose: int = 1,
              extra_callbacks: Sequence = ()) -> dict:
    """Trains (or continues training) the GAN described by `config`.

    Returns:
        A summary dict: epochs run, seconds, final tracker values, file paths.
    """
    run_dir, data_dir = pathlib.Path(config.out), pathlib.Path(config.data)
    train_records = layout.select(layout.read_manifest(data_dir), "train")
    if not train_records:
        raise CovganError(f"{data_dir} has no train split to train the GAN on.")
    _check_resumable(run_dir, config)
    # Before the run folder exists: a column the manifest lacks leaves nothing behind.
    # The classes are balanced too when y is sampled balanced, as the generated half is.
    weights, balance = balance_weights(
        train_records, config.balance_by, config.positive_rate == "balanced"
    ) if config.balance_by else (None, None)
    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision:
        # Every model built or loaded below computes in it, the classifier included
        # (covgan.models.precision.in_global_policy); restored when training ends.
        keras.mixed_precision.set_global_policy(mixed_policy_name())
    try:
        return _train(config, run_dir, data_dir, train_records, weights, balance, verbose,
                      extra_callbacks)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(config, run_dir, data_dir, train_records, weights, balance, verbose,
           extra_callbacks):
    strategy = make_strategy(config.strategy)
    with strategy.scope():
        classifier = load_classifier(config.classifier)
        gan = _build_gan(config, classifier, train_records)

    chief = is_chief()
    # Under multiworker every worker saves (saving is collective); only the chief's files count.
    save_dir = pathlib.Path(writable_dir(run_dir))
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not (run_dir / "classifier.keras").exists():
            with atomic_path(run_dir / "classifier.keras") as tmp:
                shutil.copyfile(config.classifier, tmp)
        write_json(run_dir / CONFIG_FILE, dataclasses.asdict(config))

    checkpoint = EpochCheckpoint(save_dir / "checkpoints", gan)
    done = checkpoint.restore()
    if not done and config.init_from:
        done = checkpoint.restore_from(pathlib.Path(config.init_from) / "checkpoints")
        if done >= config.epochs:
            raise CovganError(f"{config.init_from} has already trained {done} epochs; ask for "
                              f"more (--epochs) to fine-tune it.")
    global_batch = config.batch_size
    dataset = make_dataset(
        data_dir, train_records, batch_size=global_batch, shuffle=True, seed=config.seed,
        cache=default_cache(train_records, run_dir / "cache" / "train"), drop_remainder=True,
        weights=weights,
    )
    callbacks = [
        checkpoint,
        keras.callbacks.TensorBoard(str(save_dir / "logs"), write_graph=False),
        TraversalSummary(save_dir / "logs" / "traversals", gan.generator, gan.classifier,
                         every=config.summary_every, total_epochs=config.epochs,
                         seed=config.seed),
        *extra_callbacks,
    ]
    started = time.perf_counter()
    history = {}
    if done < config.epochs:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only results
            if config.strategy == "multiworker":
                history = fit_distributed(gan, strategy, dataset, epochs=config.epochs,
                                          initial_epoch=done, callbacks=callbacks,
                                          verbose=verbose)
            else:
                history = gan.fit(dataset, epochs=config.epochs, initial_epoch=done,
                                  callbacks=callbacks, verbose=verbose, shuffle=False).history
    seconds = time.perf_counter() - started
    if config.g_ema:
        # The saved generator carries the averaged weights; checkpoints keep the raw ones.
        inner = getattr(gan.g_optimizer, "inner_optimizer", gan.g_optimizer)
        inner.finalize_variable_values(gan.generator.trainable_variables)
    for name, model in (("generator", gan.generator), ("discriminator", gan.discriminator)):
        with atomic_path(save_dir / f"{name}.keras") as tmp:
            model.save(tmp)
    summary = {
        "run": str(run_dir),
        "epochs": config.epochs,
        "epochs_this_call": len(history.get("d_loss", [])),
        "resumed_from_epoch": done,
        "seconds": round(seconds, 1),
        "final": {k: round(float(v[-1]), 4) for k, v in history.items()},
        "generator": str(run_dir / "generator.keras"),
        "discriminator": str(run_dir / "discriminator.keras"),
    }
    if balance:
        summary["balance_by"] = balance  # each class's weights by value, as the classifier's
    if chief:
        write_json(run_dir / "training.json", summary)
    return summary


# The share of G's samples the classifier must read as their intended class at the end of a
# run (`cls_acc`; 0.5 is chance) for the class code to steer it. The published runs checked
# end above 0.96; runs that never took the class sat at 0.44-0.54 throughout.
CLASS_CODE_TAKEN = 0.8


def class_code_warning(summary: dict) -> str | None:
    """One line for the user where the run ended with the classifier reading G's samples near
    chance (the class code does not steer it, so no traversal will cross p = 0.5), else None."""
    accuracy = summary.get("final", {}).get("cls_acc")
    if accuracy is None or accuracy >= CLASS_CODE_TAKEN:
        return None
    return (f"Warning: the classifier reads this GAN's samples as their intended class only "
            f"{accuracy:.0%} of the time in the last epoch (cls_acc {accuracy:.2f}; 0.5 is "
            f"chance): the class code does not steer the classifier yet, so its traversals "
            f"will not take p(positive) across. Train more epochs (rerun with a larger "
            f"--epochs and the same --out resumes), or another --seed.")


def _build_gan(config, classifier, train_records):
    generator = build_generator(config.preset, z1_dim=config.z1_dim, z2_dim=config.z2_dim,
                                inject_z2=config.inject_z2,
                                gated_residual=config.gated_residual,
                                upsampling=config.upsampling, padding=config.padding,
                                seed=config.seed)
    discriminator = build_discriminator(config.preset, class_aware=config.class_critic,
                                        seed=config.seed + 1)
    if config.positive_rate == "balanced":
        rate = 0.5
    elif config.positive_rate == "prior":
        rate = sum(r.label for r in train_records) / len(train_records)
    else:
        raise CovganError(f"positive_rate must be 'balanced' or 'prior'. "
                          f"Received: {config.positive_rate!r}.")
    gan = ConditionalGAN(generator, discriminator, classifier, positive_rate=rate,
                         augment=config.augment, seed=config.seed)

    def adam(rate, ema=0.0):
        optimizer = keras.optimizers.Adam(rate, beta_1=config.beta_1, use_ema=ema > 0,
                                          ema_momentum=ema or 0.99)
        if config.mixed_precision:
            return keras.optimizers.LossScaleOptimizer(optimizer)
        return optimizer

    gan.compile(
        d_optimizer=adam(config.d_learning_rate),
        g_optimizer=adam(config.g_learning_rate, config.g_ema),
        lambda_cls=config.lambda_cls,
        lambda_locality=config.lambda_locality,
        lambda_spread=config.lambda_spread,
    )
    gan.build_optimizers()
    # Build the subclassed model on a real call inside the strategy scope (docs/design.md).
    gan(gan.sample_latents(2)[:2])
    return gan


def _check_resumable(run_dir, config):
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        if run_dir.exists() and any(run_dir.iterdir()):
            raise CovganError(f"{run_dir} exists and is not a covgan run; choose a new --out.")
        return
    try:
        previous = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise CovganError(f"{path} is not valid JSON; choose a new --out.") from None
    current = dataclasses.asdict(config)
    # A setting added after the run was made counts as its default there.
    defaults = {f.name: f.default for f in dataclasses.fields(GANTrainingConfig)}
    changed = sorted(k for k in current if k not in _RESUMABLE
                     and previous.get(k, defaults.get(k)) != current[k])
    if changed:
        raise CovganError(
            f"{run_dir} holds a run with other settings ({', '.join(changed)}); "
            "continue it with the same settings or choose a new --out."
        )
