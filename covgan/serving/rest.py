"""TF Serving's REST API on the standard library's threaded HTTP server.

    GET  /v1/models/<name>[/versions/<n>]             model status
    GET  /v1/models/<name>[/versions/<n>]/metadata    signature defs
    POST /v1/models/<name>[/versions/<n>]:predict     {"instances": [...]} or {"inputs": ...}

Row format ("instances" -> "predictions") and columnar format ("inputs" ->
"outputs") follow TF Serving's REST API; errors are {"error": message} with the
HTTP status TF Serving gives the same canonical code.
"""

import http.server
import json
import logging
import re
import socket
import sys
import threading
import time

import grpc
import numpy as np
import orjson
from google.protobuf import json_format

from covgan.serving.grpc_service import model_status
from covgan.serving.predictor import INVALID, as_float_input
from covgan.serving.status import ServingError

log = logging.getLogger("covgan.serve")

PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                  r"(?:(?P<metadata>/metadata)|:(?P<verb>[a-z]+))?/?$")


def _rows_to_inputs(instances, specs):
    """Row format: a list of instances (a value, or {input: value} for several inputs)."""
    if not isinstance(instances, list) or not instances:
        raise ServingError(INVALID, "\"instances\" must be a non-empty list.")
    if all(isinstance(row, dict) for row in instances):
        names = set(instances[0])
        if any(set(row) != names for row in instances):
            raise ServingError(INVALID, "Every instance must name the same inputs.")
        return {key: [row[key] for row in instances] for key in names}
    if len(specs) != 1:
        raise ServingError(INVALID, f"This signature has inputs {sorted(specs)}: each instance "
                                    "must be an object naming them.")
    return {next(iter(specs)): instances}


def _columns_to_inputs(inputs, specs):
    """Columnar format: {input: batched value}, or a bare value for a one-input signature."""
    if isinstance(inputs, dict):
        return inputs
    if len(specs) != 1:
        raise ServingError(INVALID, f"This signature has inputs {sorted(specs)}: \"inputs\" "
                                    "must be an object naming them.")
    return {next(iter(specs)): inputs}


def decode_predict(body, predictor, name, version):
    """A :predict body as (signature name, {input: numpy array}, row format?)."""
    try:
        request = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise ServingError(INVALID, "The body is not JSON.") from None
    if not isinstance(request, dict):
        raise ServingError(INVALID, "The body must be a JSON object.")
    unknown = set(request) - {"signature_name", "instances", "inputs"}
    if unknown:
        raise ServingError(INVALID, f"Unknown keys in the request: {sorted(unknown)}.")
    if ("instances" in request) == ("inputs" in request):
        raise ServingError(INVALID, "Give exactly one of \"instances\" and \"inputs\".")
    signature = request.get("signature_name") or "serving_default"
    servable = predictor.resolve(name, version)
    if signature not in servable.signatures:
        # Let predict() give the FAILED_PRECONDITION answer.
        return signature, {}, "instances" in request
    specs = servable.input_specs(signature)
    rows = "instances" in request
    raw = (_rows_to_inputs(request["instances"], specs) if rows
           else _columns_to_inputs(request["inputs"], specs))
    inputs = {key: as_float_input(value, specs[key]) if key in specs else np.asarray(value)
              for key, value in raw.items()}
    return signature, inputs, rows


def encode_predict(outputs, rows):
    """The response for outputs {name: array}: row or columnar, like TF Serving (arrays kept)."""
    if rows:
        count = len(next(iter(outputs.values())))
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values()))}
        return {"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(count)]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values()))}
    return {"outputs": outputs}


def metadata(servable):
    """The /metadata body: model_spec and signature_def, as TF Serving writes them."""
    definitions = {k: json_format.MessageToDict(v) for k, v in servable.signature_defs.items()}
    return {
        "model_spec": {"name": servable.name, "signature_name": "",
                       "version": str(servable.version)},
        "metadata": {"signature_def": {"signature_def": definitions}},
        "covgan": servable.metadata,
    }


class Handler(http.server.BaseHTTPRequestHandler):
    """One REST request; `server.predictor` and `server.max_request_bytes` are set by serve()."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        # Every read on the connection (the next request line of a keep-alive client, a body
        # sent slowly) times out, so an idle or stalled client cannot hold a thread forever.
        self.timeout = self.server.connection_timeout
        super().setup()

    def handle_one_request(self):
        self.server.mark_idle(True)  # waiting for a request line: nothing in flight
        super().handle_one_request()

    def parse_request(self):
        self.server.mark_idle(False)  # a request has begun; shutdown gives it the grace
        return super().parse_request()

    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        pass  # one line per request is written by _respond instead

    def send_error(self, code, message=None, explain=None):
        # Requests that do not even parse as HTTP: answer in JSON like every other error,
        # with a status line (the base class writes a bare HTML body for them).
        self.request_version = self.protocol_version
        self.close_connection = True
        body = json.dumps({"error": message or "Malformed request"}).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        log.info("rest malformed request %d", code)

    def _respond(self, status, payload, started):
        # orjson writes numpy arrays directly, ~7x faster than json + tolist() for a traversal.
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        log.info("rest %s %s %d %.1f ms", self.command, self.path, status,
                 (time.perf_counter() - started) * 1000)

    def _route(self):
        match = PATH.match(self.path.split("?")[0])
        if not match:
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {self.command} "
                                                          f"{self.path}")
        version = int(match["version"]) if match["version"] else None
        return match["name"], version, match["metadata"], match["verb"]

    def _content_length(self):
        """The body's declared size, checked before a byte of it is read."""
        declared = (self.headers.get("Content-Length") or "0").strip()
        limit = self.server.max_request_bytes
        if not declared.isdigit():  # negative, fractional or not a number at all
            self.close_connection = True  # the body's end is unknown: never read it
            raise ServingError(INVALID, f"Content-Length must be a whole number of bytes, "
                                        f"got {declared[:40]!r}.")
        length = int(declared)
        if length > limit:
            self.close_connection = True  # the unread body cannot be skipped safely
            raise ServingError(INVALID, f"The request is {length} bytes; this server accepts "
                                        f"at most {limit}.", http_status=413)
        return length

    def do_GET(self):  # noqa: N802 (http.server's naming)
        started = time.perf_counter()
        try:
            name, version, wants_metadata, verb = self._route()
            if verb:
                raise ServingError(INVALID, f"Use POST for :{verb}.")
            predictor = self.server.predictor
            if wants_metadata:
                payload = metadata(predictor.resolve(name, version))
            else:
                payload = json_format.MessageToDict(model_status(predictor, name, version),
                                                    preserving_proto_field_name=True,
                                                    always_print_fields_with_no_presence=True)
            self._respond(200, payload, started)
        except ServingError as error:
            self._respond(error.http_status, {"error": error.message}, started)

    def do_POST(self):  # noqa: N802
        started = time.perf_counter()
        try:
            name, version, _, verb = self._route()
            if verb in ("classify", "regress"):
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED, f":{verb} is not served; use "
                                                                  ":predict.")
            if verb != "predict":
                raise ServingError(grpc.StatusCode.NOT_FOUND,
                                   f"Malformed request: POST {self.path}")
            length = self._content_length()
            predictor = self.server.predictor
            signature, inputs, rows = decode_predict(
                self.rfile.read(length), predictor, name, version
            )
            _, outputs = predictor.predict(name, version, signature, inputs)
            self._respond(200, encode_predict(outputs, rows), started)
        except ServingError as error:
            self._respond(error.http_status, {"error": error.message}, started)
        except TimeoutError:
            # The body stopped arriving: say so and hang up (the rest of it is never read).
            self.close_connection = True
            self._respond(408, {"error": "The request body did not arrive in time."}, started)
        except Exception as error:  # a bug of ours: say so, keep serving
            log.exception("rest %s failed", self.path)
            self._respond(500, {"error": f"{type(error).__name__}: {error}"}, started)


BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"Content-Length: 45\r\nConnection: close\r\n\r\n"
        b'{"error": "Too many connections; try again."}')


class RestServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them; `close(grace)` lets
    requests finish for up to `grace` seconds and then drops the connections still open.

    Args:
        address: (host, port); port 0 picks a free one.
        predictor: the `Predictor` requests run on.
        max_request_bytes: the largest body accepted (413 beyond it).
        connection_timeout: seconds any read on a connection may wait (idle keep-alive
            clients and stalled bodies are dropped after it).
        max_connections: connections served at once; more are answered 503 and closed.
    """

    daemon_threads = True  # close() decides how long to wait, not the interpreter's exit
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, predictor, max_request_bytes, *, connection_timeout=30.0,
                 max_connections=64):
        super().__init__(address, Handler)
        self.predictor = predictor
        self.max_request_bytes = max_request_bytes
        self.connection_timeout = connection_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open = {}  # connection thread -> its socket
        self._idle = set()  # connection threads waiting for their next request
        self._lock = threading.Lock()

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            log.warning("rest refused %s:%d: too many connections", *client_address[:2])
            try:
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        thread = threading.Thread(target=self._serve_connection, name="rest-connection",
                                  args=(request, client_address), daemon=True)
        with self._lock:
            self._open[thread] = request
        thread.start()

    def _serve_connection(self, request, client_address):
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.pop(threading.current_thread(), None)
                self._idle.discard(threading.current_thread())
            self._slots.release()

    def mark_idle(self, idle):
        """Called by a connection's thread: waiting for a request (True) or in one (False)."""
        with self._lock:
            (self._idle.add if idle else self._idle.discard)(threading.current_thread())

    def close(self, grace):
        """Stops accepting and hangs up on idle keep-alive clients at once; requests in flight
        (a half-sent body among them) get up to `grace` seconds, then are cut off."""
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + grace
        self._hang_up(idle_only=True)
        for thread in self._connections():
            thread.join(max(0.0, deadline - time.monotonic()))
        self._hang_up(idle_only=False)

    def _connections(self):
        with self._lock:
            return list(self._open)

    def _hang_up(self, idle_only):
        with self._lock:
            chosen = [(t, c) for t, c in self._open.items() if not idle_only or t in self._idle]
        for thread, connection in chosen:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # unblocks the thread's read
            except OSError:
                pass
        for thread, _ in chosen:
            thread.join(1.0)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request is routine; anything else keeps its traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.warning(
                "rest client %s:%d went away (%s)", *client_address[:2], type(error).__name__
            )
        else:
            super().handle_error(request, client_address)
