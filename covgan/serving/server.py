"""`covgan serve`: the models of a models.config over TF Serving's gRPC and REST APIs.

Start-up first checks that its ports are free (a busy port fails in a second, not after
the models load), then loads every version the config names and replays its warm-up
requests; only then are the ports opened, so a client that connects is served at once.
SIGTERM or SIGINT stops accepting requests, lets in-flight ones finish (up to
`grace` seconds), and exits 0.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from covgan.errors import CovganError
from covgan.serving.draining import Drain
from covgan.serving.grpc_service import ModelService, PredictionService
from covgan.serving.predictor import (
    DEFAULT_EXPLAIN_WORKERS,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_EXPLAIN_BATCH,
    Predictor,
)
from covgan.serving.registry import load_models, warmup_requests
from covgan.serving.rest import RestServer

log = logging.getLogger("covgan.serve")

MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8500
    rest_port: int = 8501  # 0 picks a free port; None turns REST off
    workers: int = 4
    max_batch: int = DEFAULT_MAX_BATCH
    max_explain_batch: int = DEFAULT_MAX_EXPLAIN_BATCH
    explain_workers: int = DEFAULT_EXPLAIN_WORKERS
    max_request_mb: int = 64
    grace: float = 30.0
    connection_timeout: float = 30.0  # REST: seconds for a request's headers, and for its body
    max_connections: int = 1024  # REST: connections held at once (more get 503)


class Server:
    """The running gRPC and REST servers over one Predictor."""

    def __init__(self, config_file, settings=ServerSettings()):
        self.settings = settings
        for port in (settings.port, settings.rest_port):
            _check_free(settings.host, port)
        models = load_models(config_file)
        self.predictor = Predictor(models, max_batch=settings.max_batch,
                                   workers=settings.workers,
                                   max_explain_batch=settings.max_explain_batch,
                                   explain_workers=settings.explain_workers)
        self.predictor.warm_up([(s, warmup_requests(s.path))
                                for versions in models.values() for s in versions.values()])
        limit = settings.max_request_mb * MIB
        # gRPC refuses (RESOURCE_EXHAUSTED) beyond its own limit; below it, our check answers
        # INVALID_ARGUMENT, so the headroom lets that message through.
        options = [("grpc.max_receive_message_length", limit + MIB),
                   ("grpc.max_send_message_length", 1 << 30),
                   # gRPC shares a port with another server by default on Linux; a second
                   # `covgan serve` on a busy port must fail instead of splitting the traffic.
                   ("grpc.so_reuseport", 0)]
        self.drain = Drain()
        self.grpc = grpc.server(
            concurrent.futures.ThreadPoolExecutor(
                max_workers=(settings.workers + settings.explain_workers) * 2),
            interceptors=[self.drain], options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(self.predictor, limit), self.grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            ModelService(self.predictor), self.grpc)
        try:
            self.port = self.grpc.add_insecure_port(f"{settings.host}:{settings.port}")
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise CovganError(f"Cannot listen on {settings.host}:{settings.port} (in use?).")
        self.rest = None
        self.rest_port = None
        if settings.rest_port is not None:
            try:
                self.rest = RestServer((settings.host, settings.rest_port), self.predictor, limit,
                                       connection_timeout=settings.connection_timeout,
                                       max_connections=settings.max_connections,
                                       request_threads=settings.workers * 2)
            except OSError as error:
                raise CovganError(f"Cannot listen on {settings.host}:{settings.rest_port} "
                                  f"({error.strerror}).") from None
            self.rest_port = self.rest.server_address[1]
        self._rest_thread = None

    def start(self):
        self.grpc.start()
        if self.rest:
            self._rest_thread = threading.Thread(target=self.rest.serve_forever,
                                                 name="rest", daemon=True)
            self._rest_thread.start()

    def describe(self):
        """What is served where, as a JSON-ready dict."""
        return {
            "grpc": f"{self.settings.host}:{self.port}",
            "rest": f"{self.settings.host}:{self.rest_port}" if self.rest else None,
            "models": {name: sorted(versions) for name, versions in self.predictor.models.items()},
        }

    def stop(self):
        """Stops accepting, finishes in-flight requests, closes, all within the grace."""
        deadline = time.monotonic() + self.settings.grace
        self.drain.close()
        if self.rest:
            self.rest.close(self.settings.grace)
        # gRPC's own stop closes the connections as soon as no call is left, so the calls in
        # flight finish, and their answers are read, before it is called (see draining.py).
        self.drain.wait(deadline)
        self.grpc.stop(max(0.0, deadline - time.monotonic())).wait(
            max(0.0, deadline - time.monotonic()) + 1.0)


def _check_free(host, port):
    """Fails now if `host:port` is taken (0 and None need no check). The real bind below
    still decides: this only spares a user the model loading before a busy port's error."""
    if not port:
        return
    try:
        family, kind, _, _, address = socket.getaddrinfo(host.strip("[]"), port,
                                                         type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        return  # the real bind reports the bad host
    with socket.socket(family, kind) as probe:
        # As the servers bind: a port in TIME_WAIT after a restart is free, a listener's is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise CovganError(f"Cannot listen on {host}:{port} ({error.strerror}).") from None


def serve_until_signalled(server: Server, on_ready: Callable[[], None]) -> None:
    """Starts `server`, calls on_ready(), and blocks until SIGTERM or SIGINT."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    on_ready()
    stopping.wait()
    log.info("stopping: finishing in-flight requests")
    server.stop()
    log.info("stopped")
