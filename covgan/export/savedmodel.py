"""SavedModels for TF Serving: covgan_generator and covgan_classifier, models.config, warm-up.

Layout written under OUT (TF Serving's): OUT/<model>/<version>/saved_model.pb, with
assets.extra/tf_serving_warmup_requests (one request per signature, replayed by
the server before it reports the version AVAILABLE) and assets.extra/covgan.json
(z sizes, steps, lambda, inversion settings, preset). Each version folder is
written under a dot-name and renamed into place, because TF Serving loads any
numeric folder it sees, complete or not. OUT/models.config is a
ModelServerConfig text proto naming both models.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from covgan import __version__
from covgan.errors import CovganError
from covgan.explain.invert import settings_for
from covgan.explain.maps import map_keys
from covgan.export.model_config import (
    CLASSIFIER_MODEL,
    GENERATOR_MODEL,
    METADATA_FILE,
    WARMUP_FILE,
    next_version,
    update_model_config,
)
from covgan.export.settings import ServingSettings
from covgan.export.signatures import (
    classifier_signatures,
    generator_signatures,
    served_convolution,
    served_tuning,
)
from covgan.io import atomic_directory
from covgan.models.generator import code_sizes


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


def _write_model(path, model, signatures, metadata):
    # Each signature is traced once, here, and saved as that concrete function. (Keras'
    # ExportArchive traces every endpoint twice: once to list its variables, and again inside
    # tf.saved_model.save, whose save context is part of tf.function's cache key; that
    # second trace was half of the tiny run's export time.)
    concrete = {name: function.get_concrete_function() for name, function in signatures.items()}
    # Only the variables the signatures read are kept: tracking the Keras models as well
    # only adds their layer tree to the object graph (measured once on a tiny run, busy
    # machine: export 65 s against 55 s, load 11.5 s against 7.9 s, 12 MB against 7.6 MB).
    root = tf.Module()
    root.variables_read = list({id(v): v for function in concrete.values()
                                for v in function.variables}.values())
    with atomic_directory(path) as tmp:
        # Nobody differentiates a served signature (their gradients are inside the graphs), so
        # the gradient functions are not saved: a third off the tiny run's export time (22.2 s
        # against 15.6 s, one run each on 2 cores).
        tf.saved_model.save(root, str(tmp), signatures=concrete,
                            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
        extra = tmp / "assets.extra"
        extra.mkdir()
        with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
            for record in _warmup_requests(model, signatures):
                writer.write(record.SerializeToString())
        (extra / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")


def export_run(run, out: str | os.PathLike, *, version: int | None = None,
               settings: ServingSettings = ServingSettings()) -> dict:
    """Exports the run's generator (with C inside) and classifier as version `version`.

    Args:
        run: a `covgan.training.runs.Run` (path, config, generator, classifier, encoder); the
            type is not imported, since export sits below training.
        out: the model base folder (models.config is written there).
        version: the version number (default: one more than the highest there).
        settings: what the SavedModels fix (`ServingSettings`).

    Returns:
        {"version", "models": {name: path}, "model_config": path, "metadata": {...}}.

    Raises:
        CovganError: the version exists already, or the settings make no sense.
    """
    if settings.traverse_steps < 2:
        raise CovganError("--traverse-steps must be at least 2 (the counterpart and the image).")
    if settings.inversion.z1_start == "encoder" and run.encoder is None:
        raise CovganError(f"{run.path} has no encoder to start the inversion at: run `covgan "
                          f"encoder train --run {run.path}` first, or export with another --start.")
    if settings.tune_steps and not served_tuning(run.generator, settings).steps:
        raise CovganError("--tune-steps: the served explanation tunes a gated G's branch only "
                          "(`covgan train --gated-residual`); this run's G has none.")
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
        "inversion": dataclasses.asdict(settings_for(run.generator, settings.inversion)),
        "seed": settings.seed,
        "gradcam_layer": settings.gradcam_layer,
        # What the explain signature tunes (steps 0: nothing; explain_untuned never does).
        "tuning": dataclasses.asdict(served_tuning(run.generator, settings)),
        "tuning_convolution": served_convolution(settings),
        "maps": map_keys(),
    }
    _write_model(paths[GENERATOR_MODEL], GENERATOR_MODEL,
                 generator_signatures(run.generator, run.classifier, settings, run.encoder),
                 {**metadata, "model": GENERATOR_MODEL})
    _write_model(paths[CLASSIFIER_MODEL], CLASSIFIER_MODEL,
                 classifier_signatures(run.classifier, settings),
                 {**metadata, "model": CLASSIFIER_MODEL})
    config = update_model_config(out)
    return {"version": version, "models": {k: str(v) for k, v in paths.items()},
            "model_config": str(config), "metadata": metadata}
