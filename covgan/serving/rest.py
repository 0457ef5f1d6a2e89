"""TF Serving's REST API on the standard library's HTTP request handler.

    GET  /v1/models/<name>[/versions/<n>]             model status
    GET  /v1/models/<name>[/versions/<n>]/metadata    signature defs
    POST /v1/models/<name>[/versions/<n>]:predict     {"instances": [...]} or {"inputs": ...}

Row format ("instances" -> "predictions") and columnar format ("inputs" ->
"outputs") follow TF Serving's REST API; errors are {"error": message} with the
HTTP status TF Serving gives the same canonical code.
"""

import collections
import dataclasses
import http.server
import json
import logging
import queue
import re
import selectors
import socket
import socketserver
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

BODY_LATE_MESSAGE = "The request body did not arrive in time."
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
        # The gatekeeper has read the request's headers; the body is read from the socket
        # with one deadline for all of it, so a body sent a byte at a time still ends.
        self.connection, prefix = self.request
        self.rfile = PrefixedReader(prefix, self.connection, self.server.connection_timeout)
        self.wfile = SocketWriter(self.connection, self.server.connection_timeout)

    def handle(self):
        # One request per hand-over: a kept-alive connection goes back to the gatekeeper,
        # where waiting for its next request costs no thread.
        self.close_connection = True
        self.handle_one_request()

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
        log.debug("rest %s %s started", self.command, self.path)
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
        log.debug("rest %s %s started", self.command, self.path)
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
            self._respond(408, {"error": BODY_LATE_MESSAGE}, started)
        except Exception as error:  # a bug of ours: say so, keep serving
            log.exception("rest %s failed", self.path)
            self._respond(500, {"error": f"{type(error).__name__}: {error}"}, started)


def canned(status, message):
    """A whole JSON error response that closes the connection, as bytes."""
    body = json.dumps({"error": message}).encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


BUSY = canned("503 Service Unavailable", "Too many connections; try again.")
HEADERS_TOO_LARGE = canned("431 Request Header Fields Too Large",
                           "The request headers are too large.")
BODY_LATE = canned("408 Request Timeout", BODY_LATE_MESSAGE)
MAX_HEADER_BYTES = 16 * 1024
# Bodies up to this size are received by the gatekeeper too, within a budget for all of
# them, so a client that trickles its body holds no request thread; larger ones are read
# by the request thread.
BODY_BYTES_HELD = 1 << 20
BODY_BUDGET_BYTES = 64 << 20
END_OF_HEADERS = b"\r\n\r\n"


def declared_length(head):
    """The Content-Length a request's header block declares, or None (absent or invalid:
    the handler answers those)."""
    for line in bytes(head).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


@dataclasses.dataclass
class Waiting:
    """A connection the gatekeeper holds: its bytes so far and its deadline; `need` is the
    whole request's size once its headers are in and its body is awaited here."""

    held: bytearray
    deadline: float
    address: tuple
    need: int | None = None
    reserved: int = 0


class PrefixedReader:
    """The request's bytes: first those the gatekeeper already holds, then the socket's,
    every socket read sharing one deadline. What is left after a request (a pipelined next
    one) goes back to the gatekeeper."""

    def __init__(self, prefix, connection, seconds):
        self._buffer = bytearray(prefix)
        self._connection = connection
        self._deadline = time.monotonic() + seconds

    def _fill(self):
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self._connection.settimeout(remaining)
        data = self._connection.recv(1 << 16)
        self._buffer += data
        return bool(data)

    def readline(self, limit=-1):
        while self._buffer.find(b"\n") < 0 and (limit < 0 or len(self._buffer) < limit):
            if not self._fill():
                break
        end = self._buffer.find(b"\n") + 1 or len(self._buffer)
        return self._take(end if limit < 0 else min(end, limit))

    def read(self, size=-1):
        while size < 0 or len(self._buffer) < size:
            if not self._fill():
                break
        return self._take(len(self._buffer) if size < 0 else size)

    def _take(self, size):
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def leftover(self):
        return bytes(self._buffer)

    def close(self):
        pass  # the socket outlives one request


class SocketWriter:
    """Writes whole responses to the connection (never closes it: the server decides)."""

    closed = False

    def __init__(self, connection, seconds):
        self._connection = connection
        self._seconds = seconds

    def write(self, data):
        self._connection.settimeout(self._seconds)  # a client that stops reading is dropped
        self._connection.sendall(data)
        return len(data)

    def flush(self):
        pass

    def close(self):
        pass


class RestServer(socketserver.TCPServer):
    """TF Serving's REST API with connections that cannot exhaust the server.

    A gatekeeper thread holds every connection that is waiting for a request (a new client,
    a kept-alive one between requests, a slow or stalled one still sending its headers) in
    one selector, at the cost of a socket and at most MAX_HEADER_BYTES each, and receives
    bodies up to BODY_BYTES_HELD there too (within BODY_BUDGET_BYTES for all). Only a
    complete request (or one whose large body is still arriving) is handed to one of
    `request_threads` threads. So half-open
    connections do not take threads from real clients, and every connection has a deadline
    for its headers and one for its body, however slowly it sends them.

    Args:
        address: (host, port); port 0 picks a free one.
        predictor: the `Predictor` requests run on.
        max_request_bytes: the largest body accepted (413 beyond it).
        connection_timeout: seconds a connection may take to send a request's headers (or
            stay idle between requests), and again its body; 408 or a hang-up after it.
        max_connections: connections held at once, waiting or in a request; more are
            answered 503 and closed.
        request_threads: requests read and answered at once.
    """

    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: bursts of new clients wait in the kernel

    def __init__(self, address, predictor, max_request_bytes, *, connection_timeout=30.0,
                 max_connections=1024, request_threads=8):
        super().__init__(address, Handler)
        self.predictor = predictor
        self.max_request_bytes = max_request_bytes
        self.connection_timeout = connection_timeout
        self.max_connections = max_connections
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ)
        self._arriving = collections.deque()  # (socket, bytes held, address) to watch
        self._waiting = {}  # socket -> Waiting
        self._body_bytes = 0  # reserved by bodies the gatekeeper awaits
        self._in_request = {}  # socket -> the thread reading and answering it
        self._ready = queue.Queue()  # complete headers, for the request threads
        self._closing = False
        self._gatekeeper = threading.Thread(target=self._watch, name="rest-gatekeeper",
                                            daemon=True)
        self._gatekeeper.start()
        self._threads = [threading.Thread(target=self._answer, name="rest-request", daemon=True)
                         for _ in range(request_threads)]
        for thread in self._threads:
            thread.start()

    def held(self):
        """Connections held now: waiting for a request, queued, or in one."""
        with self._lock:
            return len(self._waiting) + len(self._arriving) + self._ready.qsize() + len(
                self._in_request)

    def process_request(self, request, client_address):
        if self.held() >= self.max_connections:
            log.warning("rest refused %s:%d: too many connections", *client_address[:2])
            try:
                request.sendall(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        self._watch_for_request(request, b"", client_address)

    def _watch_for_request(self, connection, held, address):
        with self._lock:
            self._arriving.append((connection, held, address))
        self._wake_writer.send(b"x")

    def _watch(self):
        """The gatekeeper: reads headers (and small bodies) as they arrive, hands complete
        requests on, and drops connections past their deadline."""
        while not self._closing:
            for key, _ in self._selector.select(timeout=0.25):
                if key.fileobj is self._wake_reader:
                    self._drain_wake()
                else:
                    self._receive(key.fileobj)
            self._admit()
            self._drop_late()
        for connection, waiting in list(self._waiting.items()):
            if waiting.need is None:
                self._drop(connection)  # idle, or headers unfinished: nothing begun
            else:
                self._hand_on(connection)  # a body in transit: in flight, it gets the grace
        for connection, _, _ in self._arriving:
            self._hang_up(connection)

    def _drain_wake(self):
        try:
            while self._wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _admit(self):
        while True:
            with self._lock:
                if not self._arriving:
                    return
                connection, held, address = self._arriving.popleft()
                self._waiting[connection] = Waiting(
                    bytearray(held), time.monotonic() + self.connection_timeout, address)
            connection.setblocking(False)
            self._selector.register(connection, selectors.EVENT_READ)
            if held:  # a pipelined request: part or all of it is here already
                self._progress(connection)

    def _receive(self, connection):
        try:
            data = connection.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client hung up
            self._drop(connection)
            return
        self._waiting[connection].held += data
        self._progress(connection)

    def _progress(self, connection):
        """Hands a request on once its headers (and a small body) are all here."""
        waiting = self._waiting[connection]
        held = waiting.held
        if waiting.need is not None:
            if len(held) >= waiting.need:
                self._hand_on(connection)
            return
        end = held.find(END_OF_HEADERS)
        if end < 0:
            if len(held) > MAX_HEADER_BYTES:
                log.warning("rest dropped %s:%d: headers over %d bytes",
                            *waiting.address[:2], MAX_HEADER_BYTES)
                self._drop(connection, answer=HEADERS_TOO_LARGE)
            return
        end += len(END_OF_HEADERS)
        length = declared_length(held[:end]) or 0
        if (len(held) - end < length <= min(BODY_BYTES_HELD, self.max_request_bytes)
                and self._body_bytes + length <= BODY_BUDGET_BYTES):
            waiting.need, waiting.reserved = end + length, length
            waiting.deadline = time.monotonic() + self.connection_timeout  # the body's own
            self._body_bytes += length
        else:  # complete, or too large to hold here: the request thread reads the rest
            self._hand_on(connection)

    def _release(self, connection):
        with self._lock:
            waiting = self._waiting.pop(connection, None)
        if waiting is not None:
            self._body_bytes -= waiting.reserved
        return waiting

    def _hand_on(self, connection):
        self._selector.unregister(connection)
        waiting = self._release(connection)
        self._ready.put((connection, bytes(waiting.held), waiting.address))

    def _drop_late(self):
        now = time.monotonic()
        with self._lock:
            late = [(c, w.need is not None) for c, w in self._waiting.items()
                    if w.deadline < now]
        for connection, in_body in late:
            # An idle keep-alive client or headers sent too slowly: hang up; a body: 408.
            self._drop(connection, answer=BODY_LATE if in_body else b"")

    def _drop(self, connection, answer=b""):
        self._selector.unregister(connection)
        self._release(connection)
        if answer:
            try:
                connection.setblocking(True)
                connection.settimeout(1.0)
                connection.sendall(answer)
            except OSError:
                pass
        self._hang_up(connection)

    @staticmethod
    def _hang_up(connection):
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        connection.close()

    def _answer(self):
        """A request thread: answers one complete request at a time."""
        while True:
            item = self._ready.get()
            if item is None:
                return
            connection, held, address = item
            with self._lock:
                self._in_request[connection] = threading.current_thread()
            keep = False
            try:
                connection.setblocking(True)
                handler = Handler((connection, held), address, self)
                keep = not handler.close_connection and not self._closing
                held = handler.rfile.leftover()
            except Exception:
                self.handle_error(connection, address)
            finally:
                with self._lock:
                    self._in_request.pop(connection, None)
            if keep:
                self._watch_for_request(connection, held, address)
            else:
                self._hang_up(connection)

    def close(self, grace):
        """Stops accepting and hangs up on every connection waiting for a request at once;
        requests in flight (a half-sent body among them) get up to `grace` seconds, then are
        cut off. A second call does nothing."""
        if self._closing:
            return
        self.shutdown()
        self.server_close()
        self._closing = True
        self._wake_writer.send(b"x")
        self._gatekeeper.join(5.0)
        for _ in self._threads:  # after the queued requests: they are in flight too
            self._ready.put(None)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            cut = list(self._in_request)
        for connection in cut:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # unblocks the thread's read
            except OSError:
                pass
        for thread in self._threads:
            thread.join(1.0)
        while True:  # requests still queued when the grace ran out
            try:
                item = self._ready.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._hang_up(item[0])
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request is routine; anything else keeps its traceback.
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.warning(
                "rest client %s:%d went away (%s)", *client_address[:2], type(error).__name__
            )
        else:
            super().handle_error(request, client_address)
