"""Opening a RUN folder: its config, generator and classifier, loaded in safe mode."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import keras

from covgan.errors import CovganError
from covgan.models import generator as _registers_generator_layers  # noqa: F401
from covgan.models.classifier import load_classifier
from covgan.models.encoder import ENCODER_FILE, load_encoder
from covgan.models.generator import code_sizes
from covgan.models.precision import in_global_policy
from covgan.shapes import IMAGE_SHAPE


@dataclasses.dataclass
class Run:
    """A trained run: config dict, generator G, the (adapted, frozen) classifier C, and the
    encoder E where `covgan encoder train` has made one (RUN/encoder.keras), else None."""

    path: pathlib.Path
    config: dict
    generator: keras.Model
    classifier: keras.Model
    encoder: keras.Model | None = None


def load_run(path: str | os.PathLike) -> Run:
    """Loads RUN/config.json, RUN/generator.keras and RUN/classifier.keras.

    Raises:
        CovganError: not a finished covgan run, or files that are not ours.
    """
    path = pathlib.Path(path)
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CovganError(f"{path} is not a covgan run folder (no config.json).")
    generator_file = path / "generator.keras"
    if not generator_file.is_file():
        raise CovganError(f"{path} has no generator.keras yet: finish `covgan train` first.")
    try:
        config = json.loads(config_file.read_text())
        generator = keras.saving.load_model(generator_file, compile=False, safe_mode=True)
    except Exception as error:
        raise CovganError(
            f"{generator_file} is not a covgan generator ({type(error).__name__})."
        ) from None
    generator = in_global_policy(generator)  # under a mixed policy, computes in it
    names = [t.name for t in generator.inputs]
    if len(generator.inputs) != 2 or tuple(generator.outputs[0].shape[1:]) != IMAGE_SHAPE:
        raise CovganError(f"{generator_file} is not a covgan generator (inputs {names}).")
    classifier = load_classifier(path / "classifier.keras")
    classifier.trainable = False
    encoder = None
    if (path / ENCODER_FILE).is_file():
        encoder = load_encoder(path / ENCODER_FILE, *code_sizes(generator))
    return Run(path, config, generator, classifier, encoder)


def encoder_for(run: Run, settings) -> keras.Model | None:
    """The run's encoder where the inversion starts there (`settings.z1_start` "encoder"),
    else None.

    Raises:
        CovganError: `--start encoder` on a run that has none.
    """
    if settings.z1_start != "encoder":
        return None
    if run.encoder is None:
        raise CovganError(f"{run.path} has no encoder.keras for --start encoder: run `covgan "
                          f"encoder train --run {run.path}` first.")
    return run.encoder
