"""covgan serve starting and stopping: each test starts (or fails to start) its own server, so
this module needs no shared one and runs beside test_server.py on the other pytest worker.

SIGTERM lets an in-flight request finish; stop() keeps to its grace whatever the clients do;
a missing or foreign config and a busy port fail in one line, before any model loads.
"""

import socket
import threading
import time

import numpy as np
import pytest
from helpers import ServerProcess

from covgan.errors import CovganError
from covgan.serving.client import Client

CODES = {"z1": np.zeros((1, 8), "f4"), "z2": np.zeros((1, 2), "f4")}


def test_sigterm_finishes_the_request_in_flight(exported):
    # A grace long enough for the request on a loaded machine: this tests that it finishes.
    # --log-level debug logs each request as it starts: SIGTERM is sent only once the server
    # has the request (a fixed sleep raced the connection on a loaded machine, and the
    # request then arrived after SIGTERM and was refused).
    running = ServerProcess(exported / "models.config", "--grace", "300", "--log-level", "debug",
                            "--max-explain-batch", "12")
    client = Client(running.grpc, timeout=300)
    answers = []
    # An explain batch that takes a few seconds on 2 cores.
    images = np.random.default_rng(0).random((12, 128, 128, 1)).astype("f4")
    worker = threading.Thread(
        target=lambda: answers.append(
            client.predict("covgan_generator", "explain", {"images": images})
        )
    )
    worker.start()
    started = "grpc Predict covgan_generator/latest:explain started"
    deadline = time.monotonic() + 120
    while not any(started in line for line in running.log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(started in line for line in running.log), "".join(running.log[-20:])
    assert worker.is_alive(), "the request finished before SIGTERM; make it heavier"
    assert running.stop(timeout=330) == 0, "".join(running.log[-20:])
    worker.join(timeout=60)
    assert answers and answers[0]["traversal"].shape[0] == 12
    with pytest.raises(CovganError):
        client.predict("covgan_generator", "serving_default", CODES)
    client.close()


def test_serve_refuses_a_missing_or_foreign_config_in_one_line(tmp_path):
    from click.testing import CliRunner

    from covgan.cli import main

    result = CliRunner().invoke(main, ["serve", "--model-config", str(tmp_path / "none.config")])
    assert result.exit_code == 1 and "No model config" in result.output
    foreign = tmp_path / "models.config"
    foreign.write_text("this is { not a model config")
    result = CliRunner().invoke(main, ["serve", "--model-config", str(foreign)])
    assert result.exit_code == 1 and "not a TF Serving model config" in result.output
    assert len(result.output.strip().splitlines()) == 1
    empty_base = tmp_path / "empty.config"
    empty_base.write_text(
        'model_config_list { config { name: "m" base_path: "%s" '
        'model_platform: "tensorflow" } }' % (tmp_path / "m")
    )
    result = CliRunner().invoke(main, ["serve", "--model-config", str(empty_base)])
    assert result.exit_code == 1 and "no version to serve" in result.output


@pytest.mark.parametrize("busy", ["grpc", "rest"])
def test_a_busy_port_fails_before_any_model_loads(tmp_path, busy):
    from covgan.serving.server import Server, ServerSettings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"port": port, "rest_port": 0} if busy == "grpc" else {"port": 0,
                                                                        "rest_port": port}
        # The config does not exist: reaching the model loading would fail otherwise.
        with pytest.raises(CovganError, match=f"Cannot listen on 127.0.0.1:{port}"):
            Server(tmp_path / "missing.config", ServerSettings(**ports))


def test_stop_keeps_to_the_grace_with_an_idle_and_a_stalled_rest_client(exported, tmp_path):
    # Before the fix, `covgan serve --grace 3` with these two clients was still running 20 s
    # after SIGTERM (the REST server joined every connection's thread, and reads never timed
    # out). The SIGTERM handler itself is tested above; this is what it calls.
    from covgan.serving.server import Server, ServerSettings

    # The classifier alone: a server that loads in seconds.
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "covgan_classifier" '
                      f'base_path: "{exported / "covgan_classifier"}" '
                      'model_platform: "tensorflow" } }\n')
    running = Server(config, ServerSettings(port=0, rest_port=0, grace=3.0, workers=1))
    running.start()
    address = ("127.0.0.1", running.rest_port)
    idle = socket.create_connection(address, timeout=30)
    idle.sendall(b"GET /v1/models/covgan_classifier HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")  # answered, and kept alive
    stalled = socket.create_connection(address, timeout=30)
    stalled.sendall(b"POST /v1/models/covgan_classifier:predict HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 100000\r\n\r\n{\"inputs\": ")
    time.sleep(0.3)
    stopping = threading.Thread(target=running.stop, daemon=True)
    started = time.monotonic()
    stopping.start()
    stopping.join(timeout=20)
    assert not stopping.is_alive(), "stop() was still waiting 20 s later"
    assert time.monotonic() - started < 3.0 + 2.0
    idle.close()
    stalled.close()
