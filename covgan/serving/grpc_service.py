"""TF Serving's gRPC API: PredictionService (Predict, GetModelMetadata) and ModelService
(GetModelStatus).

The servicers use tensorflow-serving-api's generated base classes, so any TF
Serving client (including `covgan query`) talks to them unchanged. Classify,
Regress and MultiInference answer UNIMPLEMENTED (our signatures are Predict ones).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, NamedTuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    status_pb2,
)

from covgan.serving.predictor import INVALID
from covgan.serving.status import ServingError

if TYPE_CHECKING:
    from covgan.serving.predictor import Predictor

log = logging.getLogger("covgan.serve")


def _version(spec):
    return spec.version.value if spec.HasField("version") else None


class Declared(NamedTuple):
    """What a TensorProto says it holds, read from its fields without decoding it."""

    dtype: object  # numpy dtype
    shape: tuple


def declared_inputs(request, limit):
    """{name: Declared} for a PredictRequest's inputs; refuses a request too large to decode.

    tf.make_ndarray expands a proto with one value to its declared shape, so an 80-byte
    request can ask for gigabytes: the decoded size is computed from the declared dtype and
    shape and held to the same byte budget as the request itself.
    """
    if request.ByteSize() > limit:
        raise ServingError(INVALID, f"The request is {request.ByteSize()} bytes; this server "
                                    f"accepts at most {limit}.")
    declared, total = {}, 0
    for key, proto in request.inputs.items():
        try:
            dtype = np.dtype(tf.dtypes.as_dtype(proto.dtype).as_numpy_dtype)
        except (TypeError, ValueError):
            raise ServingError(INVALID, f"Input {key} has no valid dtype.") from None
        if proto.tensor_shape.unknown_rank:
            raise ServingError(INVALID, f"Input {key} must declare its shape.")
        shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
        if any(size < 0 for size in shape):
            raise ServingError(INVALID, f"Input {key} declares a negative size: {list(shape)}.")
        # At least a byte per element: strings and handles report size 0.
        total += math.prod(shape) * max(tf.dtypes.as_dtype(proto.dtype).size, 1)
        if total > limit:
            raise ServingError(INVALID, f"Input {key} declares shape {list(shape)}: the inputs "
                                        f"would take {total} bytes decoded; this server "
                                        f"accepts at most {limit}.")
        declared[key] = Declared(dtype, shape)
    return declared


def _decode(request):
    """{name: numpy array}; call after declared_inputs has passed the request."""
    inputs = {}
    for key, proto in request.inputs.items():
        try:
            inputs[key] = tf.make_ndarray(proto)
        except Exception:
            raise ServingError(INVALID, f"Input {key} is not a valid TensorProto.") from None
    return inputs


class GrpcRequest:
    """Whether a gRPC request is still wanted (`Predictor.run`'s still_wanted): a deadline that
    has passed gives DEADLINE_EXCEEDED, a client that has gone CANCELLED."""

    def __init__(self, context):
        self.context = context

    def seconds_left(self):
        return self.context.time_remaining()  # None where the client set no deadline

    def __call__(self):
        if not self.context.is_active():
            raise ServingError(grpc.StatusCode.CANCELLED, "The client cancelled the request.")
        left = self.context.time_remaining()
        if left is not None and left <= 0:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded.")


def _answer(context, method, target, started, call):
    """Runs `call`, turns a ServingError into the RPC status, logs one line (two with
    --log-level debug: the start too, so an operator sees what is in flight)."""
    log.debug("grpc %s %s started", method, target)
    code = grpc.StatusCode.OK
    try:
        return call()
    except ServingError as error:
        code = error.code
        context.abort(error.code, error.message)
    except Exception as error:  # a bug of ours: say so, keep serving
        code = grpc.StatusCode.INTERNAL
        log.exception("grpc %s %s failed", method, target)
        context.abort(code, f"{type(error).__name__}: {error}")
    finally:
        log.info("grpc %s %s %s %.1f ms", method, target, code.name,
                 (time.perf_counter() - started) * 1000)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, predictor, max_request_bytes):
        self.predictor = predictor
        self.max_request_bytes = max_request_bytes

    def Predict(self, request, context):  # noqa: N802 (gRPC method name)
        started = time.perf_counter()
        spec = request.model_spec
        target = (
            f"{spec.name}/{_version(spec) or 'latest'}:{spec.signature_name or 'serving_default'}"
        )

        def call():
            # Every check on the declared inputs, before anything is decoded; the decoded
            # arrays have exactly the declared dtypes and shapes (tf.make_ndarray).
            servable, signature = self.predictor.validate(
                spec.name, _version(spec), spec.signature_name,
                declared_inputs(request, self.max_request_bytes))
            outputs = self.predictor.run(servable, signature, _decode(request),
                                         GrpcRequest(context))
            filter_ = set(request.output_filter)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature
            for key, value in outputs.items():
                if not filter_ or key in filter_:
                    response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        return _answer(context, "Predict", target, started, call)

    def GetModelMetadata(self, request, context):  # noqa: N802
        started = time.perf_counter()
        spec = request.model_spec

        def call():
            servable = self.predictor.resolve(spec.name, _version(spec))
            if list(request.metadata_field) != ["signature_def"]:
                raise ServingError(
                    INVALID,
                    "Metadata field signature_def is the only one "
                    "supported; name it in metadata_field.",
                )
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
            definitions = get_model_metadata_pb2.SignatureDefMap()
            for key, value in servable.signature_defs.items():
                definitions.signature_def[key].CopyFrom(value)
            response.metadata["signature_def"].Pack(definitions)
            return response

        return _answer(context, "GetModelMetadata", spec.name, started, call)

    def _unimplemented(self, context, method):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served; use Predict.")

    def Classify(self, request, context):  # noqa: N802
        self._unimplemented(context, "Classify")

    def Regress(self, request, context):  # noqa: N802
        self._unimplemented(context, "Regress")

    def MultiInference(self, request, context):  # noqa: N802
        self._unimplemented(context, "MultiInference")


def version_status(servable):
    """A ModelVersionStatus saying `servable` is AVAILABLE."""
    status = get_model_status_pb2.ModelVersionStatus(
        version=servable.version, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
    )
    status.status.CopyFrom(status_pb2.StatusProto(error_code=0, error_message=""))
    return status


def model_status(predictor: Predictor, name: str, version: int | None) -> list:
    """The GetModelStatusResponse for a model (all loaded versions) or one version."""
    if version is None:
        predictor.resolve(name)
        servables = [predictor.models[name][v] for v in sorted(predictor.models[name])]
    else:
        servables = [predictor.resolve(name, version)]
    return get_model_status_pb2.GetModelStatusResponse(
        model_version_status=[version_status(s) for s in servables]
    )


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, predictor):
        self.predictor = predictor

    def GetModelStatus(self, request, context):  # noqa: N802
        started = time.perf_counter()
        spec = request.model_spec
        return _answer(
            context,
            "GetModelStatus",
            spec.name,
            started,
            lambda: model_status(self.predictor, spec.name, _version(spec)),
        )

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Restart the server to change its config.")
