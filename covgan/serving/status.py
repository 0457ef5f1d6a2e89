"""TF Serving's error model: a gRPC status code and a message, and its HTTP twin for REST."""

from __future__ import annotations

import grpc
import tensorflow as tf

# TF Serving's REST server maps canonical codes to HTTP statuses this way.
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

# Errors TensorFlow raises while running a signature, as the status TF Serving returns.
_TF_ERRORS = {
    tf.errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    tf.errors.OutOfRangeError: grpc.StatusCode.OUT_OF_RANGE,
    tf.errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    tf.errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
}


class ServingError(Exception):
    """A request that fails with a TF Serving status code."""

    def __init__(self, code, message, http_status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self._http_status = http_status  # where HTTP has a closer status (413) than the code's

    @property
    def http_status(self):
        return self._http_status or HTTP_STATUS.get(self.code, 500)


def from_tensorflow(error: Exception) -> ServingError:
    """A ServingError for an exception raised while running a signature."""
    for kind, code in _TF_ERRORS.items():
        if isinstance(error, kind):
            # TF's messages carry a graph trace after the first line; clients need the first.
            return ServingError(code, str(error.message).strip().splitlines()[0])
    return ServingError(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")
