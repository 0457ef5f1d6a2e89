"""Predict as TF Serving does it: resolve model, version and signature, check inputs, run.

The gRPC and REST front ends both decode a request into {name: numpy array}
and call `Predictor.predict`; every refusal is a ServingError with TF Serving's
status code. A semaphore bounds how many signatures run at once (the worker
pool), and the batch size is bounded, so a request cannot exhaust memory.

The explanations (SLOW_SIGNATURES: a tuned one costs seconds per image) have their own, smaller
pool and batch bound, so `classify` and status requests keep their workers while they run. They
run one image at a time (the inversion's starts follow each image, so the answer is the
whole batch's), and between images the request is asked whether it is still wanted: a gRPC
deadline that has passed ends it with DEADLINE_EXCEEDED, a client that has gone with
CANCELLED, and its worker is free for the next.
"""

from __future__ import annotations

import logging
import threading

import grpc
import numpy as np
import tensorflow as tf

from covgan.serving.status import ServingError, from_tensorflow

log = logging.getLogger("covgan.serve")

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_MAX_BATCH = 64
INVALID = grpc.StatusCode.INVALID_ARGUMENT
# Signatures that take seconds per image, run one image at a time in their own pool.
SLOW_SIGNATURES = ("explain", "explain_untuned", "invert")
DEFAULT_MAX_EXPLAIN_BATCH = 8
DEFAULT_EXPLAIN_WORKERS = 1


def _join(names):
    return ", ".join(sorted(names))


class Predictor:
    """Runs signatures of the loaded models.

    Args:
        models: {name: {version: LoadedVersion}} from `registry.load_models`.
        max_batch: largest batch a request may carry.
        workers: signatures running at once, the explanations not counted.
        max_explain_batch: largest batch an explanation request (SLOW_SIGNATURES) may carry.
        explain_workers: explanations running at once.
    """

    def __init__(self, models, *, max_batch=DEFAULT_MAX_BATCH, workers=4,
                 max_explain_batch=DEFAULT_MAX_EXPLAIN_BATCH,
                 explain_workers=DEFAULT_EXPLAIN_WORKERS):
        self.models = models
        self.max_batch = max_batch
        self.max_explain_batch = max_explain_batch
        self._slots = threading.BoundedSemaphore(workers)
        self._slow_slots = threading.BoundedSemaphore(explain_workers)

    def resolve(self, name, version=None):
        """The LoadedVersion for a model name and optional version (latest if None)."""
        versions = self.models.get(name)
        if not versions:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Latest({name})")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: Specific({name}, {version})")
        return versions[version]

    def check_inputs(self, servable, signature, inputs):
        """Raises INVALID_ARGUMENT unless `inputs` match the signature's names, dtypes, shapes."""
        specs = servable.input_specs(signature)
        if not inputs:
            raise ServingError(INVALID, f"The request has no inputs; {signature} expects "
                                        f"{_join(specs)}.")
        missing, extra = set(specs) - set(inputs), set(inputs) - set(specs)
        if missing or extra:
            raise ServingError(INVALID, f"Signature {signature} expects inputs {_join(specs)}; "
                                        f"missing: {_join(missing) or '-'}, "
                                        f"unexpected: {_join(extra) or '-'}.")
        batch = None
        for key, spec in specs.items():
            value = inputs[key]
            if value.dtype != spec.dtype.as_numpy_dtype:
                raise ServingError(INVALID, f"Input {key} must be {spec.dtype.name}, "
                                            f"got {value.dtype.name}.")
            if not spec.shape.is_compatible_with(value.shape):
                raise ServingError(INVALID, f"Input {key} must have shape "
                                            f"{spec.shape.as_list()} (-1 or None: any), got "
                                            f"{list(value.shape)}.")
            batch = value.shape[0] if batch is None else batch
            if value.shape[0] != batch:
                raise ServingError(INVALID, "All inputs must have the same batch size.")
        if batch == 0:
            raise ServingError(INVALID, "The batch is empty.")
        if batch > self.max_batch:
            raise ServingError(INVALID, f"Batch size {batch} exceeds this server's limit of "
                                        f"{self.max_batch}.")
        if signature in SLOW_SIGNATURES and batch > self.max_explain_batch:
            raise ServingError(INVALID, f"Batch size {batch} exceeds this server's limit of "
                                        f"{self.max_explain_batch} for {signature} (each image "
                                        "takes seconds; --max-explain-batch); send fewer "
                                        "images per request.")

    def validate(self, name, version, signature, inputs):
        """The servable and signature name for a request, after every check on its inputs.

        `inputs` needs only each value's .dtype and .shape, so a request can be refused
        before anything in it is decoded (see grpc_service.declared_inputs).

        Raises:
            ServingError: NOT_FOUND, FAILED_PRECONDITION or INVALID_ARGUMENT, as TF Serving.
        """
        servable = self.resolve(name, version)
        signature = signature or DEFAULT_SIGNATURE
        if signature not in servable.signatures:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Serving signature name: \"{signature}\" not found in signature "
                               f"def; {name} has {_join(servable.signatures)}.")
        self.check_inputs(servable, signature, inputs)
        return servable, signature

    def predict(self, name, version, signature, inputs, still_wanted=None):
        """Runs one request.

        Args:
            name, version: the model (version None: the latest loaded).
            signature: signature name ('' means serving_default).
            inputs: {input name: numpy array}.
            still_wanted: see `run`.

        Returns:
            (servable, {output name: numpy array}).
        """
        servable, signature = self.validate(name, version, signature, inputs)
        return servable, self.run(servable, signature, inputs, still_wanted)

    def run(self, servable, signature, inputs, still_wanted=None):
        """{output name: numpy array} of a request `validate` has passed.

        `still_wanted`, where given, is called and raises a ServingError once the request is
        no longer wanted (its deadline passed, its client gone): before the request runs, and
        an explanation's before each image; its `seconds_left()` bounds the wait for a worker
        (None: no bound). grpc_service.GrpcRequest is one.
        """
        function = servable.signatures[signature]
        slow = signature in SLOW_SIGNATURES
        slots = self._slow_slots if slow else self._slots
        if not slots.acquire(timeout=still_wanted.seconds_left() if still_wanted else None):
            still_wanted()  # the deadline passed while waiting for a worker
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded while "
                                                                  "waiting for a worker.")
        try:
            if still_wanted:
                still_wanted()
            if not slow:
                return _numpy(_call(function, inputs))
            parts = []
            for i in range(len(next(iter(inputs.values())))):
                if i and still_wanted:
                    still_wanted()
                parts.append(_numpy(_call(function, {k: v[i : i + 1] for k, v in inputs.items()})))
            return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
        finally:
            slots.release()

    def warm_up(self, requests_by_version):
        """Replays warm-up requests; a failing one stops start-up (TF Serving does the same)."""
        for servable, requests in requests_by_version:
            for request in requests:
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
                self.predict(servable.name, servable.version,
                             request.model_spec.signature_name, inputs)
            log.info("warmed up %s/%d with %d requests", servable.name, servable.version,
                     len(requests))


def _call(function, inputs):
    try:
        return function(**{k: tf.constant(v) for k, v in inputs.items()})
    except tf.errors.OpError as error:
        raise from_tensorflow(error) from None


def _numpy(outputs):
    return {k: v.numpy() for k, v in outputs.items()}


def as_float_input(value: object, spec: tf.TensorSpec) -> np.ndarray:
    """A JSON value (nested lists) as an array of the spec's dtype (REST: numbers are untyped)."""
    try:
        array = np.asarray(value, dtype=spec.dtype.as_numpy_dtype)
    except (TypeError, ValueError):
        raise ServingError(INVALID, f"Input {spec.name} is not a rectangular array of "
                                    f"{spec.dtype.name} numbers.") from None
    return array
