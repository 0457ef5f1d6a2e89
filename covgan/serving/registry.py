"""The models a server holds: models.config read, version policies applied, SavedModels loaded.

Loading follows TF Serving: every model in the config's model_config_list is
loaded from its base_path, the versions chosen by its version policy (latest N,
by default 1; all; or specific), and each version replays its
assets.extra/tf_serving_warmup_requests before it is reported AVAILABLE.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pathlib

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from covgan.errors import CovganError
from covgan.export.model_config import (
    METADATA_FILE,
    WARMUP_FILE,
    existing_versions,
    read_model_config,
)

log = logging.getLogger("covgan.serve")


@dataclasses.dataclass
class LoadedVersion:
    """One servable: a model version with its callable signatures."""

    name: str
    version: int
    path: pathlib.Path
    loaded: object  # keeps the restored SavedModel (and its variables) alive
    signatures: dict  # name -> ConcreteFunction
    signature_defs: dict  # name -> SignatureDef proto (for GetModelMetadata)
    metadata: dict  # assets.extra/covgan.json, where present

    def input_specs(self, signature):
        """{input name: TensorSpec} of a signature."""
        return dict(self.signatures[signature].structured_input_signature[1])


def chosen_versions(entry, available):
    """The versions an entry's model_version_policy names, of those on disk."""
    policy = entry.model_version_policy
    kind = policy.WhichOneof("policy_choice")
    if kind == "all":
        return list(available)
    if kind == "specific":
        wanted = set(policy.specific.versions)
        missing = sorted(wanted - set(available))
        if missing:
            log.warning("%s: versions %s are named in the config but not on disk", entry.name,
                        missing)
        return [v for v in available if v in wanted]
    count = policy.latest.num_versions if kind == "latest" else 1
    return list(available)[-max(1, count):]


def _signature_defs(path):
    model = saved_model_pb2.SavedModel()
    model.ParseFromString((path / "saved_model.pb").read_bytes())
    graph = next(g for g in model.meta_graphs if "serve" in g.meta_info_def.tags)
    return {k: v for k, v in graph.signature_def.items() if not k.startswith("__")}


def load_version(name, version, path):
    """Loads one SavedModel version.

    Raises:
        CovganError: not a SavedModel with a serve tag.
    """
    try:
        loaded = tf.saved_model.load(str(path))
        definitions = _signature_defs(path)
    except Exception as error:
        raise CovganError(
            f"{path} is not a loadable SavedModel ({type(error).__name__})."
        ) from None
    metadata_file = path / "assets.extra" / METADATA_FILE
    metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
    return LoadedVersion(
        name, version, path, loaded, dict(loaded.signatures), definitions, metadata
    )


def warmup_requests(path: str | os.PathLike) -> list:
    """The PredictRequests recorded in a version's assets.extra (none if absent)."""
    records = path / "assets.extra" / WARMUP_FILE
    if not records.is_file():
        return []
    requests = []
    for record in tf.data.TFRecordDataset(str(records)).as_numpy_iterator():
        entry = prediction_log_pb2.PredictionLog.FromString(record)
        if entry.HasField("predict_log"):
            requests.append(entry.predict_log.request)
    return requests


def load_models(config_file: str | os.PathLike) -> dict:
    """Reads models.config and loads what it names: {name: {version: LoadedVersion}}.

    base_path may be absolute or relative to the config file's folder.

    Raises:
        CovganError: a bad config, a model with no versions, or a version that will not load.
    """
    config_file = pathlib.Path(config_file)
    if not config_file.is_file():
        raise CovganError(f"No model config at {config_file}: run `covgan export` first.")
    config = read_model_config(config_file)
    models = {}
    for entry in config.model_config_list.config:
        if entry.model_platform and entry.model_platform != "tensorflow":
            raise CovganError(
                f"{entry.name}: model_platform {entry.model_platform!r} is not served."
            )
        base = pathlib.Path(entry.base_path)
        base = base if base.is_absolute() else config_file.parent / base
        versions = chosen_versions(entry, existing_versions(base))
        if not versions:
            raise CovganError(f"{entry.name}: no version to serve under {base}.")
        models[entry.name] = {v: load_version(entry.name, v, base / str(v)) for v in versions}
        log.info("loaded %s versions %s from %s", entry.name, versions, base)
    if not models:
        raise CovganError(f"{config_file} names no models.")
    return models
