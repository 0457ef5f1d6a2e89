"""Lame-duck stopping for the gRPC server: refuse new calls, let those in flight finish, and
give their clients a moment to read the answers before any connection closes.

gRPC's own `server.stop(grace)` closes every connection the moment the last call finishes,
while a client on a loaded machine may still be reading that call's answer (an explain answer
is about 25 MB for 12 films): the client's next window update then meets a closed socket and
it loses an answer the server finished (UNAVAILABLE, "Stream removed"). So the server drains
here first, with its connections open, and calls gRPC's stop only once this is done.
"""

from __future__ import annotations

import threading
import time

import grpc

# Seconds the connections stay open after the last answer, for its client to read it.
LINGER_SECONDS = 2.0


class Drain(grpc.ServerInterceptor):
    """Counts the calls in flight; after close(), new calls are refused with UNAVAILABLE."""

    def __init__(self):
        self._changed = threading.Condition()
        self._in_flight = 0
        self._last_answer = float("-inf")
        self._closed = False

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # every method covgan serves is unary-unary
        return grpc.unary_unary_rpc_method_handler(
            self._counted(handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    def _counted(self, behaviour):
        def call(request, context):
            with self._changed:
                if self._closed:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "The server is stopping.")
                self._in_flight += 1
            try:
                return behaviour(request, context)
            finally:
                with self._changed:
                    self._in_flight -= 1
                    self._last_answer = time.monotonic()
                    self._changed.notify_all()
        return call

    def close(self):
        """From now on, new calls are refused."""
        with self._changed:
            self._closed = True

    def wait(self, deadline: float) -> bool:
        """Waits, until the time.monotonic() `deadline` at most, for the calls in flight to
        finish and then LINGER_SECONDS after the last answer. True if they all finished."""
        with self._changed:
            finished = self._changed.wait_for(lambda: self._in_flight == 0,
                                              timeout=max(0.0, deadline - time.monotonic()))
            linger_until = min(deadline, self._last_answer + LINGER_SECONDS)
        time.sleep(max(0.0, linger_until - time.monotonic()))
        return finished
