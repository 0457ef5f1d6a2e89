"""A TF Serving client on tensorflow-serving-api's stubs, for TF Serving or `covgan serve`."""

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from covgan.errors import CovganError

# A traversal of 64 images is ~46 MB: gRPC's 4 MB default would refuse it.
MESSAGE_LIMIT = 1 << 30
CHANNEL_OPTIONS = [("grpc.max_send_message_length", MESSAGE_LIMIT),
                   ("grpc.max_receive_message_length", MESSAGE_LIMIT)]


def predict_request(model, signature, inputs, version=None):
    """A PredictRequest for `inputs` {name: array} (version None: the server's latest)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
    return request


class Client:
    """PredictionService and ModelService stubs on one channel to HOST:PORT."""

    def __init__(self, server, timeout=600.0):
        self.server = server
        self.timeout = timeout
        self.channel = grpc.insecure_channel(server, options=CHANNEL_OPTIONS)
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self):
        self.channel.close()

    def _fail(self, error):
        return CovganError(f"{self.server}: {error.code().name}: {error.details()}")

    def predict(self, model, signature, inputs, version=None):
        """Calls Predict; returns {output name: numpy array}.

        Raises:
            CovganError: the server answered with an error status, or is unreachable.
        """
        try:
            response = self.prediction.Predict(predict_request(model, signature, inputs, version),
                                               timeout=self.timeout)
        except grpc.RpcError as error:
            raise self._fail(error) from None
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    def signature_inputs(self, model, signature, version=None):
        """{input name: shape as a list, -1 for any} of a served signature (GetModelMetadata)."""
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        request.model_spec.name = model
        if version is not None:
            request.model_spec.version.value = version
        try:
            response = self.prediction.GetModelMetadata(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise self._fail(error) from None
        definitions = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(definitions)
        if signature not in definitions.signature_def:
            raise CovganError(f"{self.server}: {model} has no signature {signature!r}.")
        return {name: [d.size for d in info.tensor_shape.dim]
                for name, info in definitions.signature_def[signature].inputs.items()}

    def wait_until_available(self, model, timeout=60.0):
        """Blocks until GetModelStatus reports a version AVAILABLE."""
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
            response = self.models.GetModelStatus(request, timeout=timeout)
        except grpc.FutureTimeoutError:
            raise CovganError(
                f"{self.server}: no server answered within {timeout:.0f} s."
            ) from None
        except grpc.RpcError as error:
            raise self._fail(error) from None
        available = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        if not any(s.state == available for s in response.model_version_status):
            raise CovganError(f"{self.server}: {model} has no AVAILABLE version.")
