"""The gRPC server's lame-duck stop (covgan/serving/draining.py), on a plain gRPC server with
one echo method: no models, so it runs in about a second.

After close(), a new call is refused with UNAVAILABLE while the one in flight finishes, and
wait() returns only once it has, plus the linger for its client to read the answer.
"""

import concurrent.futures
import threading
import time

import grpc
import pytest

from covgan.serving import draining

METHOD = "/test.Echo/Echo"


@pytest.fixture
def echo_server(monkeypatch):
    monkeypatch.setattr(draining, "LINGER_SECONDS", 0.4)
    release = threading.Event()

    def echo(request, context):
        release.wait(timeout=30)
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    drain = draining.Drain()
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(4),
                         handlers=[handler], interceptors=[drain])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield drain, channel.unary_unary(METHOD), release
    release.set()
    channel.close()
    server.stop(0)


def test_close_refuses_new_calls_and_wait_lets_the_one_in_flight_finish(echo_server):
    drain, echo, release = echo_server
    answers = []
    worker = threading.Thread(target=lambda: answers.append(echo(b"first", timeout=30)))
    worker.start()
    deadline = time.monotonic() + 10
    while drain._in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert drain._in_flight == 1
    drain.close()
    with pytest.raises(grpc.RpcError) as refused:
        echo(b"second", timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "stopping" in refused.value.details()
    # The call in flight holds wait() until it is answered, then the linger follows.
    threading.Timer(0.5, release.set).start()
    started = time.monotonic()
    assert drain.wait(time.monotonic() + 20)
    waited = time.monotonic() - started
    assert 0.5 + draining.LINGER_SECONDS - 0.1 <= waited < 10
    worker.join(timeout=10)
    assert answers == [b"first"]


def test_wait_keeps_to_its_deadline_when_a_call_does_not_finish(echo_server):
    drain, echo, _ = echo_server
    # Its client gives up after 3 s (DEADLINE_EXCEEDED); the server's handler stays until
    # the fixture releases it.
    worker = threading.Thread(target=lambda: _ignore_rpc_error(echo, b"x", timeout=3),
                              daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while drain._in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    drain.close()
    started = time.monotonic()
    assert not drain.wait(time.monotonic() + 0.5)
    assert time.monotonic() - started < 0.5 + 0.3


def _ignore_rpc_error(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except grpc.RpcError:
        pass
