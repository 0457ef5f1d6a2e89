"""Reading and writing TF Serving's model config, and the names of what an export leaves.

OUT/models.config is a ModelServerConfig text proto naming both models; each model's numeric
version folders sit under OUT/<model>/, each with assets.extra/<WARMUP_FILE> and
assets.extra/<METADATA_FILE>. The exporter writes these; the server only reads them, through
this module alone (no Keras model code).
"""

from __future__ import annotations

import os
import pathlib

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from covgan.errors import CovganError
from covgan.io import atomic_path

GENERATOR_MODEL = "covgan_generator"
CLASSIFIER_MODEL = "covgan_classifier"
CONFIG_NAME = "models.config"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "covgan.json"


def existing_versions(model_dir: str | os.PathLike) -> list[int]:
    """The numeric version folders under a model's base path."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(out: str | os.PathLike) -> int:
    """One more than the highest version of either model (both share version numbers)."""
    versions = [v for name in (GENERATOR_MODEL, CLASSIFIER_MODEL)
                for v in existing_versions(pathlib.Path(out) / name)]
    return max(versions, default=0) + 1


def read_model_config(path: str | os.PathLike) -> model_server_config_pb2.ModelServerConfig:
    """Parses a models.config (ModelServerConfig text proto).

    Raises:
        CovganError: a file that is not a model_config_list.
    """
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(pathlib.Path(path).read_text(), config)
    except (OSError, UnicodeDecodeError, text_format.ParseError) as error:
        raise CovganError(f"{path} is not a TF Serving model config: {error}") from None
    if not config.HasField("model_config_list"):
        raise CovganError(f"{path} has no model_config_list.")
    return config


def update_model_config(out: str | os.PathLike) -> pathlib.Path:
    """Adds both models to OUT/models.config (kept entries keep their version policy)."""
    out = pathlib.Path(out).resolve()
    path = out / CONFIG_NAME
    config = (
        read_model_config(path) if path.exists() else model_server_config_pb2.ModelServerConfig()
    )
    entries = config.model_config_list.config
    known = {entry.name for entry in entries}
    for name in (GENERATOR_MODEL, CLASSIFIER_MODEL):
        if name not in known:
            entry = entries.add(name=name, base_path=str(out / name), model_platform="tensorflow")
            entry.model_version_policy.latest.num_versions = 1
    with atomic_path(path) as tmp:
        pathlib.Path(tmp).write_text(text_format.MessageToString(config))
    return path
