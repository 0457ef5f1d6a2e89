"""SavedModels for TF Serving: covgan_generator and covgan_classifier, models.config, warm-up.

Layout written under OUT (TF Serving's): OUT/<model>/<version>/saved_model.pb, with
assets.extra/tf_serving_warmup_requests (one request per signature, replayed by
the server before it reports the version AVAILABLE) and assets.extra/covgan.json
(z sizes, steps, lambda, inversion settings, preset). Each version folder is
written under a dot-name and renamed into place, because TF Serving loads any
numeric folder it sees, complete or not. OUT/models.config is a
ModelServerConfig text proto naming both models.
"""

import dataclasses
import json
import pathlib

import keras
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2

from covgan import __version__
from covgan.errors import CovganError
from covgan.io import atomic_path, atomic_directory
from covgan.models.generator import code_sizes
from covgan.serving.signatures import ServingSettings, classifier_signatures
from covgan.serving.signatures import generator_signatures

GENERATOR_MODEL = "covgan_generator"
CLASSIFIER_MODEL = "covgan_classifier"
CONFIG_NAME = "models.config"
WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "covgan.json"


def existing_versions(model_dir):
    """The numeric version folders under a model's base path."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(out):
    """One more than the highest version of either model (both share version numbers)."""
    versions = [v for name in (GENERATOR_MODEL, CLASSIFIER_MODEL)
                for v in existing_versions(pathlib.Path(out) / name)]
    return max(versions, default=0) + 1


def _warmup_requests(model, signatures):
    """One batch-1 PredictRequest per signature, as PredictionLog records."""
    for name, function in signatures.items():
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model, signature_name=name))
        for spec in function.input_signature:
            example = np.full([1, *spec.shape[1:]], 0.5, spec.dtype.as_numpy_dtype)
            request.inputs[spec.name].CopyFrom(tf.make_tensor_proto(example))
        yield prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request))


def _write_model(path, model, trackables, signatures, metadata):
    archive = keras.export.ExportArchive()
    for trackable in trackables:
        archive.track(trackable)
    # serving_default first: ExportArchive would otherwise alias the first endpoint.
    for name, function in signatures.items():
        archive.add_endpoint(name, function)
    with atomic_directory(path) as tmp:
        archive.write_out(str(tmp), verbose=False)
        extra = tmp / "assets.extra"
        extra.mkdir()
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for record in _warmup_requests(model, signatures):
                writer.write(record.SerializeToString())
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")


def read_model_config(path):
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


def update_model_config(out):
    """Adds both models to OUT/models.config (kept entries keep their version policy)."""
    out = pathlib.Path(out).resolve()
    path = out / CONFIG_NAME
    config = read_model_config(path) if path.exists() else model_server_config_pb2.ModelServerConfig()
    entries = config.model_config_list.config
    known = {entry.name for entry in entries}
    for name in (GENERATOR_MODEL, CLASSIFIER_MODEL):
        if name not in known:
            entry = entries.add(name=name, base_path=str(out / name), model_platform="tensorflow")
            entry.model_version_policy.latest.num_versions = 1
    with atomic_path(path) as tmp:
        pathlib.Path(tmp).write_text(text_format.MessageToString(config))
    return path


def export_run(run, out, *, version=None, settings=ServingSettings()):
    """Exports the run's generator (with C inside) and classifier as version `version`.

    Returns:
        {"version", "models": {name: path}, "model_config": path, "metadata": {...}}.

    Raises:
        CovganError: the version exists already, or the settings make no sense.
    """
    if settings.traverse_steps < 2:
        raise CovganError("--traverse-steps must be at least 2 (the counterpart and the image).")
    out = pathlib.Path(out)
    version = version or next_version(out)
    paths = {name: out / name / str(version) for name in (GENERATOR_MODEL, CLASSIFIER_MODEL)}
    for path in paths.values():
        if path.exists():
            raise CovganError(f"{path} exists: versions are immutable; pick another --version.")
    d1, d2 = code_sizes(run.generator)
    metadata = {
        "covgan_version": __version__, "version": version, "run": str(run.path),
        "preset": run.config.get("preset"), "z1_dim": d1, "z2_dim": d2,
        "traverse_steps": settings.traverse_steps, "lambda": settings.step_size,
        "inversion": dataclasses.asdict(settings.inversion), "seed": settings.seed,
        "gradcam_layer": settings.gradcam_layer,
    }
    _write_model(paths[GENERATOR_MODEL], GENERATOR_MODEL, [run.generator, run.classifier],
                 generator_signatures(run.generator, run.classifier, settings),
                 {**metadata, "model": GENERATOR_MODEL})
    _write_model(paths[CLASSIFIER_MODEL], CLASSIFIER_MODEL, [run.classifier],
                 classifier_signatures(run.classifier, settings),
                 {**metadata, "model": CLASSIFIER_MODEL})
    config = update_model_config(out)
    return {"version": version, "models": {k: str(v) for k, v in paths.items()},
            "model_config": str(config), "metadata": metadata}
