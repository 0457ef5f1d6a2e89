import csv
import json

import numpy as np
import pytest

from covgan.data import layout
from covgan.errors import CovganError
from covgan.training.balance import balance_weights, class_weights
from covgan.training.classifier import train_classifier


def test_class_weights_balance_the_classes():
    records = [layout.Record(f"{i}.png", int(i < 3), str(i), "train") for i in range(12)]
    weights = class_weights(records)
    assert weights == pytest.approx({0: 12 / 18, 1: 2.0})
    counts = np.bincount([r.label for r in records])
    assert weights[0] * counts[0] == pytest.approx(weights[1] * counts[1])
    assert class_weights(records[3:]) is None  # one class only


def test_balance_weights_give_each_class_the_same_mix_of_a_column():
    # RSNA-like: positives mostly AP, negatives mostly PA; one value only in the positives.
    mix = [(1, "AP")] * 80 + [(1, "PA")] * 20 + [(0, "AP")] * 30 + [(0, "PA")] * 170 + [
        (1, "LL")] * 5
    records = [layout.Record(f"{i}.png", label, str(i), "train", "", (("view", view),))
               for i, (label, view) in enumerate(mix)]
    weights, table = balance_weights(records, "view")
    weights = np.asarray(weights)
    labels = np.array([r.label for r in records])
    views = np.array([dict(r.extra)["view"] for r in records])
    assert weights.mean() == pytest.approx(1.0)
    share = {(y, v): weights[(labels == y) & (views == v)].sum() / weights[labels == y].sum()
             for y in (0, 1) for v in ("AP", "PA")}
    # Over the values both classes have, each class's weighted mix is the same.
    assert share[0, "AP"] / share[0, "PA"] == pytest.approx(share[1, "AP"] / share[1, "PA"])
    assert share[0, "AP"] / share[0, "PA"] == pytest.approx(110 / 190)
    # The classes weigh the same, as class_weights makes them.
    assert weights[labels == 0].sum() == pytest.approx(weights[labels == 1].sum())
    assert table["absent"] == {"0": ["LL"], "1": []}
    assert table["values"]["0"]["AP"]["n"] == 30
    with pytest.raises(CovganError, match="No film has a 'site' column"):
        balance_weights(records, "site")


def learnable_phantoms(folder, count, contrast=4.0):
    """Clearly visible lesions, so a few epochs on a few hundred images must learn."""
    from covgan.data.synth import synthesize

    synthesize(folder, count=count, seed=11, lesion_contrast=contrast)
    return folder


@pytest.mark.slow
def test_tiny_classifier_learns_phantoms(tmp_path):
    """Generalises: held-out accuracy and AUC (the quick form, below, checks AUC only)."""
    evaluation = train_classifier(
        learnable_phantoms(tmp_path / "data", 480), tmp_path / "run", preset="tiny", epochs=12,
        patience=12,
        learning_rate=3e-4, batch_size=32, seed=0, verbose=0,
    )
    assert evaluation["split"] == "test"
    assert evaluation["accuracy"] >= 0.8, evaluation
    assert evaluation["auc"] >= 0.85, evaluation
    assert json.loads((tmp_path / "run" / "evaluation.json").read_text()) == evaluation


def test_training_resumes_from_the_last_finished_epoch_and_learns_to_rank(tmp_path):
    """A run killed after epoch 2 continues at epoch 3 when started again, and has learned to
    rank held-out phantoms (the quick form of learning: with lesions this plain the ranking
    comes within four epochs, well before the threshold settles; the slow test above checks
    held-out accuracy too)."""
    import keras

    # As `covgan classifier train` does: dropout and the like draw from Keras' global seed,
    # which otherwise holds whatever the tests before this one left (AUC 0.70 in one suite run).
    keras.utils.set_random_seed(0)
    data, run_dir = learnable_phantoms(tmp_path / "data", 160, contrast=20.0), tmp_path / "run"

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt("simulated kill")

    with pytest.raises(KeyboardInterrupt):
        train_classifier(data, run_dir, epochs=4, patience=4, learning_rate=1e-3,
                         batch_size=16, verbose=0, extra_callbacks=[Kill()])
    assert (run_dir / "checkpoints").is_dir()
    assert not (run_dir / "classifier.keras").exists()
    evaluation = train_classifier(data, run_dir, epochs=4, patience=4, learning_rate=1e-3,
                                  batch_size=16, verbose=0)
    assert evaluation["auc"] >= 0.85, evaluation
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in history] == [0, 1, 2, 3]  # none repeated
    assert not (run_dir / "checkpoints").exists()  # removed once training finished


@pytest.mark.slow
def test_tiny_classifier_on_default_phantoms_lands_in_the_band(tmp_path):
    """The issue's target: 85-97% test accuracy for the tiny preset on DATA=phantom."""
    from covgan.data.catalog import resolve_data

    evaluation = train_classifier(resolve_data("phantom"), tmp_path / "run", preset="tiny",
                                  verbose=0)
    assert 0.85 <= evaluation["accuracy"] <= 0.97, evaluation
