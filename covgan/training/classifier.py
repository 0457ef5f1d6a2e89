"""Training and evaluating the classifier C (`covgan classifier train|evaluate`).

A run folder holds config.json, classifier.keras, history.csv, evaluation.json
and, while training, checkpoints/ (Keras BackupAndRestore), so a killed run
resumes from its last finished epoch when the same command is run again.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys
import time
from collections.abc import Sequence

import keras
import numpy as np

from covgan.data import layout
from covgan.data.layout import class_names, column_values
from covgan.data.pipeline import default_cache, make_dataset
from covgan.errors import CovganError
from covgan.evaluation.attributes import attribute_values, scores_by_attribute
from covgan.evaluation.metrics import classification_scores
from covgan.io import atomic_path, write_json
from covgan.models.classifier import build_classifier, positive_probability
from covgan.training.balance import balance_weights, class_weights
from covgan.training.classifier_augment import augmented
from covgan.training.presets import ClassifierTraining

CLASSIFIER_FILE = "classifier.keras"


def train_classifier(
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    preset: str = ClassifierTraining.preset,
    epochs: int = ClassifierTraining.epochs,
    batch_size: int = ClassifierTraining.batch_size,
    learning_rate: float = ClassifierTraining.learning_rate,
    patience: int = ClassifierTraining.patience,
    balance_classes: bool = ClassifierTraining.balance_classes,
    balance_by: str | None = None,
    imagenet_weights: str | os.PathLike | None = None,
    augment: bool = ClassifierTraining.augment,
    seed: int = 0,
    verbose: int = 1,
    extra_callbacks: Sequence = (),
) -> dict:
    """Trains a classifier on the train split, selects on val, scores the held-out split.

    Args:
        data_dir: a prepared data folder.
        run_dir: where config.json, classifier.keras and the scores go.
        preset: "tiny" or "vgg16".
        epochs: maximum epochs (early stopping on validation loss).
        batch_size: images per step.
        learning_rate: Adam learning rate.
        patience: epochs without validation improvement before stopping.
        balance_classes: weight the loss by inverse class frequency.
        balance_by: a manifest column (view, ...): weight the loss so that each class has
            the same mix of its values (`balance_weights`).
        imagenet_weights: optional local VGG16 weights file.
        augment: shift, zoom, rotate and re-expose each training film a little
            (`classifier_augment`).
        seed: initialisation and shuffling seed (Keras' global seed is set by the caller).
        verbose: Keras verbosity; progress goes to stderr.
        extra_callbacks: Keras callbacks run after covgan's own (backup first).

    Returns:
        The evaluation dict (also written to run_dir/evaluation.json).
    """
    data_dir, run_dir = pathlib.Path(data_dir), pathlib.Path(run_dir)
    records = layout.read_manifest(data_dir)
    train = layout.select(records, "train")
    val = layout.select(records, "val") or layout.select(records, "test")
    if not train or not val:
        raise CovganError(
            f"{data_dir} needs a train split and a val (or test) split. "
            f"Received: train={len(train)}, val={len(layout.select(records, 'val'))}."
        )
    held_out = layout.evaluation_split(records)
    # Before creating the run folder: a bad preset, weights file or column leaves nothing.
    weights, balance = balance_weights(train, balance_by, balance_classes) if balance_by else (
        None, None)
    model = build_classifier(preset, imagenet_weights=imagenet_weights, seed=seed)
    run_dir.mkdir(parents=True, exist_ok=True)

    cache = default_cache(records, run_dir / "cache" / "train")
    train_ds = make_dataset(data_dir, train, batch_size=batch_size, shuffle=True, seed=seed,
                            cache=cache, weights=weights)
    if augment:
        train_ds = augmented(train_ds, seed)
    val_ds = make_dataset(data_dir, val, batch_size=batch_size, cache="memory" if cache else None)

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "checkpoints")),
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        ),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        *extra_callbacks,
    ]
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only results
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            # With balance_by the per-film weights carry the class balance too.
            class_weight=class_weights(train) if balance_classes and not balance_by else None,
            callbacks=callbacks,
            shuffle=False,  # the dataset reshuffles itself each epoch
            verbose=verbose,
        )
    seconds = time.perf_counter() - started

    with atomic_path(run_dir / CLASSIFIER_FILE) as tmp:
        model.save(tmp)
    evaluation = evaluate_classifier(model, data_dir, held_out, records=records)
    evaluation["training"] = {
        "epochs_run": len(history.history.get("loss", [])),
        "seconds": round(seconds, 1),
        "parameters": int(model.count_params()),
        "selection_split": "val" if layout.select(records, "val") else "test",
    }
    if balance:
        evaluation["training"]["balance_by"] = balance
    write_json(run_dir / "evaluation.json", evaluation)
    return evaluation


def evaluate_classifier(
    classifier: keras.Model, data_dir: str | os.PathLike, split: str | None = None, *,
    records: Sequence | None = None, batch_size: int = 64, threshold: float = 0.5,
    by: Sequence[str] = (),
) -> dict:
    """Scores an adapted classifier on one split of a prepared folder.

    Args:
        classifier: an adapted classifier (`load_classifier`).
        data_dir: a prepared data folder.
        split: train, val, test, heldout (val and test) or all; None: test, else val.
        records: the folder's manifest, where the caller has read it.
        batch_size: images per batch.
        threshold: the decision threshold on p(positive).
        by: manifest columns (view, sex, age, ...) to score the classifier by
            (`covgan.evaluation.attributes`).

    Returns:
        `classification_scores` plus the split and data folder, and with `by` a key "by":
        {COLUMN: `scores_by_attribute`}.

    Raises:
        CovganError: an empty split, or a column no film of it has.
    """
    records = records or layout.read_manifest(data_dir)
    split = split or layout.evaluation_split(records)
    chosen = layout.select(records, split)
    if not chosen:
        raise CovganError(f"{data_dir} has no {split!r} split.")
    # A column no film has fails here, before the classifier reads every film.
    groups = {column: attribute_values(column_values(chosen, column))[0] for column in by}
    dataset = make_dataset(data_dir, chosen, batch_size=batch_size, cache=None)
    labels, probabilities = [], []
    for images, batch_labels in dataset:
        probabilities.append(positive_probability(classifier, images).numpy())
        labels.append(batch_labels.numpy())
    labels, probabilities = np.concatenate(labels), np.concatenate(probabilities)
    result = {**classification_scores(labels, probabilities, threshold), "split": split,
              "data": str(data_dir)}
    if by:
        result["by"] = {column: scores_by_attribute(
            labels, probabilities, values, column=column, threshold=threshold,
            class_names=class_names(chosen)) for column, values in groups.items()}
    return result
