"""`covgan classifier train` and `covgan classifier evaluate`."""

import pathlib
import sys

import click

from covgan.cli.common import SEED_HELP, emit, seed_everything
from covgan.training.presets import ClassifierTraining

TRAINING = ClassifierTraining()


@click.group()
def classifier():
    """Train or score the classifier that the GAN explains."""


@classifier.command()
@click.option("--data", "data_spec", required=True, metavar="DATA",
              help="A prepared data folder, or `phantom` for the built-in set.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--preset", type=click.Choice(["tiny", "vgg16"]), default=TRAINING.preset,
              show_default=True,
              help="tiny: 1/8-width VGG16 for tests and demos; vgg16: the paper's.")
@click.option("--epochs", type=click.IntRange(min=1), default=TRAINING.epochs, show_default=True,
              help="Maximum epochs (stops early when validation loss stalls).")
@click.option("--batch-size", type=click.IntRange(min=1), default=TRAINING.batch_size,
              show_default=True, help="Images per training step.")
@click.option("--lr", type=click.FloatRange(min=0.0, min_open=True),
              default=TRAINING.learning_rate, show_default=True, help="Adam learning rate.")
@click.option("--patience", type=click.IntRange(min=1), default=TRAINING.patience,
              show_default=True, help="Epochs without validation improvement before stopping.")
@click.option("--balance/--no-balance", default=TRAINING.balance_classes, show_default=True,
              help="Weight the loss by inverse class frequency.")
@click.option("--balance-by", metavar="COLUMN", default=None,
              help="Weight the loss so that each class has the same mix of a manifest "
                   "column's values (view, sex, ...), so the column cannot stand in for the "
                   "disease; with --balance the classes stay balanced too.")
@click.option("--imagenet-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local VGG16 notop weights file (vgg16 preset; nothing is downloaded).")
@click.option("--augment/--no-augment", default=TRAINING.augment, show_default=True,
              help="Shift, zoom, rotate and re-expose each training film a little, so that "
                   "no fixed position or exposure stands in for the label (real films).")
@click.option("--seed", type=int, default=0, show_default=True, help=SEED_HELP)
def train(data_spec, out, preset, epochs, batch_size, lr, patience, balance, balance_by,
          imagenet_weights, augment, seed):
    """Train a VGG16-style classifier; writes RUN/classifier.keras and scores.

    Selects on the val split and reports on the held-out test split (val when
    the data has no test split). Killed runs resume when re-run.

    \b
    Example:
      covgan classifier train --data phantom --preset tiny --out runs/clf
      covgan classifier train --data data/rsna --balance-by view --out runs/clf_view
    """
    from covgan import __version__
    from covgan.data.catalog import resolve_data
    from covgan.io import write_json
    from covgan.training.classifier import train_classifier

    data_dir = resolve_data(data_spec)
    seed_everything(seed)
    config = {
        "command": "classifier train", "data": str(data_dir), "preset": preset,
        "epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "patience": patience,
        "balance_classes": balance, "balance_by": balance_by,
        "imagenet_weights": imagenet_weights, "augment": augment, "seed": seed,
        "covgan_version": __version__,
    }
    evaluation = train_classifier(
        data_dir, out, preset=preset, epochs=epochs, batch_size=batch_size, learning_rate=lr,
        patience=patience, balance_classes=balance, balance_by=balance_by,
        imagenet_weights=imagenet_weights, augment=augment, seed=seed,
        verbose=_keras_verbosity(),
    )
    write_json(pathlib.Path(out) / "config.json", config)
    emit({"classifier": str(pathlib.Path(out) / "classifier.keras"), **evaluation})


@classifier.command()
@click.option("--classifier", "classifier_file", required=True,
              type=click.Path(dir_okay=False), help="A .keras classifier (loaded in safe mode).")
@click.option("--data", "data_spec", required=True, metavar="DATA",
              help="A prepared data folder, or `phantom`.")
@click.option("--split", type=click.Choice(["train", "val", "test", "heldout", "all"]),
              default=None,
              help="Split to score (default: test, else val); heldout: val and test together; "
                   "all: every image of the folder, for an external set that was not split "
                   "for this classifier.")
@click.option("--by", "by_columns", multiple=True, metavar="COLUMN",
              help="Also score by a manifest column (view, sex, age, ...; repeatable): the "
                   "scores per value and, within each class, p(positive) per value with "
                   "bootstrap intervals, flagged where the classifier reads the column.")
@click.option("--threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="p(positive) at which a film is called positive.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON file to write (default: classifier_evaluation.json beside the classifier).",
)
def evaluate(classifier_file, data_spec, split, by_columns, threshold, out):
    """Score a classifier: accuracy, AUC, sensitivity, specificity, confusion matrix.

    Any Keras classifier with a (128, 128, 1) input and a 1-unit sigmoid or
    2-unit softmax output is accepted. With --by COLUMN, a film attribute
    imported with `covgan data prepare --metadata`, it also says whether,
    within one class, the classifier reads some values as more positive.

    \b
    Example:
      covgan classifier evaluate --classifier runs/clf/classifier.keras --data phantom
      covgan classifier evaluate --classifier runs/clf/classifier.keras \\
        --data prepared/other-hospital --split all --out other-hospital.json
      covgan classifier evaluate --classifier runs/clf/classifier.keras \
        --data data/rsna --split heldout --by view --by age
    """
    from covgan.data.catalog import resolve_data
    from covgan.io import write_json
    from covgan.models.classifier import load_classifier
    from covgan.training.classifier import evaluate_classifier

    data_dir = resolve_data(data_spec)
    model = load_classifier(classifier_file)
    result = evaluate_classifier(model, data_dir, split, threshold=threshold, by=by_columns)
    out = out or pathlib.Path(classifier_file).with_name("classifier_evaluation.json")
    result = {"classifier": str(classifier_file), **result}
    write_json(out, result)
    for column in result.get("by", {}).values():
        for flag in column["flags"]:
            click.echo(f"flag: {flag['text']}", err=True)
    emit(result)


def _keras_verbosity():
    return 1 if sys.stderr.isatty() else 2
