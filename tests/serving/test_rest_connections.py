"""The REST server's connections: read timeouts, a bound on how many, and a shutdown that
waits at most its grace. In process, over a predictor that knows no model (no TensorFlow
model is needed to hold a connection open)."""

import socket
import threading
import time

import grpc
import pytest

from covgan.serving.rest import RestServer
from covgan.serving.status import ServingError


class NoModels:
    def resolve(self, name, version=None):
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found: {name}")


@pytest.fixture
def rest():
    servers = []

    def start(**options):
        server = RestServer(("127.0.0.1", 0), NoModels(), 1 << 20, **options)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close(0)


def connect(server):
    client = socket.create_connection(server.server_address[:2], timeout=10)
    return client


def status_request(client):
    """A keep-alive GET; returns the status line of its answer."""
    client.sendall(b"GET /v1/models/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += client.recv(4096)
    head, body = answer.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += client.recv(4096)
    return head.split(b"\r\n")[0].decode()


def half_a_body(client):
    client.sendall(b"POST /v1/models/nothing:predict HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 1000\r\n\r\n{\"inputs\": ")


def test_an_idle_keep_alive_client_is_dropped_after_the_timeout(rest):
    server = rest(connection_timeout=1.0)
    client = connect(server)
    assert status_request(client).endswith("404 Not Found")  # kept alive, then idle
    started = time.monotonic()
    assert client.recv(100) == b""  # the server hung up
    assert time.monotonic() - started < 5


def test_a_body_that_stops_arriving_gets_408(rest):
    server = rest(connection_timeout=1.0)
    client = connect(server)
    half_a_body(client)
    answer = b""
    while chunk := client.recv(4096):  # the server answers, then hangs up
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive in time" in answer


def test_a_body_sent_a_byte_at_a_time_holds_no_request_thread(rest):
    # One request thread: a client that sent its headers and trickles its body must not
    # keep another client's request waiting (it held the thread for the whole timeout).
    server = rest(connection_timeout=60.0, request_threads=1)
    trickler = connect(server)
    half_a_body(trickler)
    time.sleep(0.3)
    for _ in range(3):
        trickler.sendall(b" ")
        assert status_request(connect(server)).endswith("404 Not Found")
    trickler.close()


def test_connections_beyond_the_limit_get_503(rest):
    server = rest(connection_timeout=60.0, max_connections=2)
    held = [connect(server), connect(server)]
    for client in held:
        assert status_request(client).endswith("404 Not Found")
    extra = connect(server)
    assert extra.recv(4096).startswith(b"HTTP/1.1 503")
    held[0].close()
    time.sleep(0.5)  # its thread ends and gives its slot back
    assert status_request(connect(server)).endswith("404 Not Found")


def test_close_hangs_up_on_idle_clients_at_once_and_gives_requests_the_grace(rest):
    server = rest(connection_timeout=60.0)
    idle = connect(server)
    assert status_request(idle).endswith("404 Not Found")
    started = time.monotonic()
    server.close(30.0)  # nothing in flight: no reason to wait
    assert time.monotonic() - started < 2.0
    assert idle.recv(100) == b""

    server = rest(connection_timeout=60.0)
    idle, stalled = connect(server), connect(server)
    assert status_request(idle).endswith("404 Not Found")
    half_a_body(stalled)  # a request in flight that never completes
    time.sleep(0.2)
    started = time.monotonic()
    server.close(1.0)
    assert 0.9 < time.monotonic() - started < 2.5
    assert idle.recv(100) == b"" and stalled.recv(100) == b""
