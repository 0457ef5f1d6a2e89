"""Explanations are bounded: their own batch limit and pool, one image at a time, stopped once
their deadline passes or their client goes (the Predictor, with stand-in signatures)."""

import threading
import types

import grpc
import numpy as np
import pytest
import tensorflow as tf

from covgan.serving.grpc_service import GrpcRequest
from covgan.serving.predictor import Predictor
from covgan.serving.status import ServingError

SPEC = tf.TensorSpec([None, 2], tf.float32, name="images")


class Signature:
    """A signature that records each call and can wait for a go-ahead."""

    def __init__(self, gate=None):
        self.calls, self.gate = [], gate
        self.structured_input_signature = ((), {"images": SPEC})

    def __call__(self, images):
        self.calls.append(len(images))
        if self.gate:
            self.gate.wait(10)
        return {"doubled": images * 2}


def predictor(signatures, **limits):
    servable = types.SimpleNamespace(name="m", version=1, signatures=signatures,
                                     input_specs=lambda name: {"images": SPEC})
    return Predictor({"m": {1: servable}}, **limits)


class Wanted:
    """still_wanted that answers yes `times` times, then no."""

    def __init__(self, times, code=grpc.StatusCode.DEADLINE_EXCEEDED):
        self.left, self.code = times, code

    def seconds_left(self):
        return None

    def __call__(self):
        if self.left == 0:
            raise ServingError(self.code, "no longer wanted")
        self.left -= 1


def test_an_explanation_runs_image_by_image_and_stops_when_no_longer_wanted():
    explain = Signature()
    serving = predictor({"explain": explain}, max_explain_batch=8)
    inputs = {"images": np.arange(10, dtype="float32").reshape(5, 2)}
    _, outputs = serving.predict("m", None, "explain", inputs)
    assert explain.calls == [1] * 5
    np.testing.assert_array_equal(outputs["doubled"], inputs["images"] * 2)
    explain.calls.clear()
    with pytest.raises(ServingError) as stopped:
        serving.predict("m", None, "explain", inputs, Wanted(3))
    assert stopped.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert explain.calls == [1, 1, 1]  # asked before the request and images 2, 3; not 4, 5
    # The worker is free again: a next request runs.
    serving.predict("m", None, "explain", inputs)


def test_the_explain_batch_limit_names_itself():
    serving = predictor({"explain": Signature(), "serving_default": Signature()},
                        max_batch=64, max_explain_batch=2)
    three = {"images": np.zeros((3, 2), "float32")}
    with pytest.raises(ServingError, match="limit of 2 for explain") as refused:
        serving.predict("m", None, "explain", three)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    serving.predict("m", None, "serving_default", three)  # the others keep the general limit


def test_classify_answers_while_every_explain_worker_is_busy():
    gate = threading.Event()
    explain = Signature(gate)
    serving = predictor({"explain": explain, "serving_default": Signature()},
                        workers=1, explain_workers=1)
    running = threading.Thread(target=serving.predict, args=(
        "m", None, "explain", {"images": np.zeros((1, 2), "float32")}))
    running.start()
    try:
        _, outputs = serving.predict("m", None, "serving_default",
                                     {"images": np.ones((1, 2), "float32")})
        assert outputs["doubled"].tolist() == [[2.0, 2.0]] and running.is_alive()
    finally:
        gate.set()
        running.join(10)


class Context:
    def __init__(self, active=True, remaining=None):
        self.active, self.remaining = active, remaining

    def is_active(self):
        return self.active

    def time_remaining(self):
        return self.remaining


def test_a_grpc_request_is_wanted_until_its_deadline_or_its_client_goes():
    GrpcRequest(Context(remaining=5.0))()
    GrpcRequest(Context())()
    for context, code in ((Context(remaining=0.0), grpc.StatusCode.DEADLINE_EXCEEDED),
                          (Context(active=False), grpc.StatusCode.CANCELLED)):
        with pytest.raises(ServingError) as stopped:
            GrpcRequest(context)()
        assert stopped.value.code == code
