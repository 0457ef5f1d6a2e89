"""covgan serve end to end: exported models served on 127.0.0.1 over gRPC and REST.

Outputs must equal the in-process signature call; every bad request gets TF
Serving's status code and the server keeps serving (a good request succeeds
right after each). Servers that start and stop on their own: test_server_lifecycle.py.
"""

import json
import pathlib
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, load_tool
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    prediction_service_pb2_grpc,
)

from covgan.serving.client import Client, predict_request

# One worker runs this module: its server and in-process models are started once per worker
# that needs them, and two workers would start them twice (tools/test.sh: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("server")

# The fixtures below are session-scoped, not module-scoped: a worker may run other modules'
# tests between this module's, and a module fixture would be torn down and built again.


@pytest.fixture(scope="session")
def local(exported):
    """The same SavedModels loaded in this process: the reference outputs."""
    return tf.saved_model.load(str(exported / "covgan_generator" / "1")).signatures


@pytest.fixture(scope="session")
def client(server):
    client = Client(server.grpc, timeout=120)
    client.wait_until_available("covgan_generator")
    yield client
    client.close()


def _codes(count, seed=0):
    rng = np.random.default_rng(seed)
    return {"z1": rng.standard_normal((count, 8)).astype("f4"),
            "z2": rng.standard_normal((count, 2)).astype("f4")}


def _images(count, seed=0):
    return np.random.default_rng(seed).random((count, 128, 128, 1)).astype("f4")


def _rest(server, path, body=None):
    """(HTTP status, decoded JSON) of a REST call."""
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(
        f"http://{server.rest}{path}", data=data, method="GET" if body is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _assert_outputs_equal(served, local):
    assert set(served) == set(local)
    for key, value in local.items():
        np.testing.assert_allclose(
            np.asarray(served[key], dtype=value.dtype.as_numpy_dtype),
            value.numpy(),
            atol=1e-5,
            err_msg=key,
        )


def test_grpc_traverse_and_explain_equal_the_in_process_call(client, local):
    codes = _codes(2)
    _assert_outputs_equal(
        client.predict("covgan_generator", "traverse", codes),
        local["traverse"](**{k: tf.constant(v) for k, v in codes.items()}),
    )
    images = _images(2)
    _assert_outputs_equal(
        client.predict("covgan_generator", "explain", {"images": images}),
        local["explain"](images=tf.constant(images)),
    )


def test_rest_traverse_and_explain_equal_the_in_process_call(server, local):
    codes = _codes(2, seed=1)
    expected = local["traverse"](**{k: tf.constant(v) for k, v in codes.items()})
    status, body = _rest(
        server,
        "/v1/models/covgan_generator:predict",
        {"signature_name": "traverse", "inputs": {k: v.tolist() for k, v in codes.items()}},
    )
    assert status == 200, body
    _assert_outputs_equal(body["outputs"], expected)
    # Row format: one object per instance, one per prediction.
    rows = [{k: v[i].tolist() for k, v in codes.items()} for i in range(2)]
    status, body = _rest(
        server,
        "/v1/models/covgan_generator/versions/1:predict",
        {"signature_name": "traverse", "instances": rows},
    )
    assert status == 200, body
    columns = {k: [p[k] for p in body["predictions"]] for k in body["predictions"][0]}
    _assert_outputs_equal(columns, expected)
    images = _images(1, seed=2)
    status, body = _rest(
        server,
        "/v1/models/covgan_generator:predict",
        {"signature_name": "explain", "instances": images.tolist()},
    )
    assert status == 200, body
    columns = {k: [p[k] for p in body["predictions"]] for k in body["predictions"][0]}
    _assert_outputs_equal(columns, local["explain"](images=tf.constant(images)))


def test_status_and_metadata_over_grpc_and_rest(client, server):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "covgan_classifier"
    response = client.models.GetModelStatus(request)
    assert [(s.version, s.state) for s in response.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    ]
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "covgan_generator"
    definitions = get_model_metadata_pb2.SignatureDefMap()
    client.prediction.GetModelMetadata(request).metadata["signature_def"].Unpack(definitions)
    assert set(definitions.signature_def) == {"serving_default", "traverse", "invert", "explain",
                                             "explain_untuned"}
    status, body = _rest(server, "/v1/models/covgan_generator")
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, body = _rest(server, "/v1/models/covgan_generator/versions/1/metadata")
    assert status == 200
    assert set(body["metadata"]["signature_def"]["signature_def"]) >= {"traverse", "explain"}
    assert body["covgan"]["z1_dim"] == 8


def _raw_predict(client, model, signature, inputs, version=None):
    return client.prediction.Predict(predict_request(model, signature, inputs, version), timeout=60)


Z = _codes(1)
GRPC_BAD_REQUESTS = {
    "unknown model": (grpc.StatusCode.NOT_FOUND, ("no_such_model", "traverse", Z, None)),
    "unknown version": (grpc.StatusCode.NOT_FOUND, ("covgan_generator", "traverse", Z, 9)),
    "unknown signature": (
        grpc.StatusCode.FAILED_PRECONDITION,
        ("covgan_generator", "no_such_signature", Z, None),
    ),
    "missing input": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_generator", "traverse", {"z1": Z["z1"]}, None),
    ),
    "extra input": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_generator", "traverse", {**Z, "z3": Z["z2"]}, None),
    ),
    "wrong dtype": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_generator", "traverse", {"z1": Z["z1"].astype("f8"), "z2": Z["z2"]}, None),
    ),
    "wrong rank": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_classifier", "serving_default", {"images": np.zeros((1, 128, 128), "f4")}, None),
    ),
    "wrong size": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_generator", "traverse", {"z1": np.zeros((1, 9), "f4"), "z2": Z["z2"]}, None),
    ),
    "oversized batch": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_generator", "traverse", _codes(5), None),
    ),
    "NaN values": (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            "covgan_generator",
            "traverse",
            {"z1": np.full((1, 8), np.nan, "f4"), "z2": Z["z2"]},
            None,
        ),
    ),
    "NaN image": (
        grpc.StatusCode.INVALID_ARGUMENT,
        ("covgan_classifier", "gradcam", {"images": np.full((1, 128, 128, 1), np.nan, "f4")}, None),
    ),
    "empty request": (grpc.StatusCode.INVALID_ARGUMENT, ("covgan_generator", "traverse", {}, None)),
}


@pytest.mark.parametrize("case", sorted(GRPC_BAD_REQUESTS))
def test_grpc_bad_request_gets_its_code_and_the_server_keeps_serving(client, case):
    code, (model, signature, inputs, version) = GRPC_BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as raised:
        _raw_predict(client, model, signature, inputs, version)
    assert raised.value.code() == code, raised.value.details()
    assert raised.value.details()  # a message that says what was wrong
    good = client.predict("covgan_generator", "serving_default", Z)
    assert good["images"].shape == (1, 128, 128, 1)


REST_BAD_REQUESTS = {
    "unknown model": (404, "/v1/models/nope:predict", {"inputs": Z}),
    "unknown version": (404, "/v1/models/covgan_generator/versions/9:predict", {"inputs": Z}),
    "unknown signature": (
        400,
        "/v1/models/covgan_generator:predict",
        {"signature_name": "nope", "inputs": Z},
    ),
    "missing input": (
        400,
        "/v1/models/covgan_generator:predict",
        {"signature_name": "traverse", "inputs": {"z1": Z["z1"]}},
    ),
    "extra input": (
        400,
        "/v1/models/covgan_generator:predict",
        {"signature_name": "traverse", "inputs": {**Z, "z3": Z["z2"]}},
    ),
    "wrong dtype": (
        400,
        "/v1/models/covgan_generator:predict",
        {"inputs": {"z1": [["a"] * 8], "z2": Z["z2"]}},
    ),
    "wrong rank": (400, "/v1/models/covgan_classifier:predict", {"instances": [[0.5] * 4]}),
    "oversized batch": (400, "/v1/models/covgan_generator:predict", {"inputs": _codes(5)}),
    "NaN values": (
        400,
        "/v1/models/covgan_generator:predict",
        {"inputs": {"z1": [[float("nan")] * 8], "z2": Z["z2"]}},
    ),
    "empty request": (400, "/v1/models/covgan_generator:predict", {}),
    "not JSON": (400, "/v1/models/covgan_generator:predict", b"\x00\xffgarbage"),
    "unknown path": (404, "/v2/everything", {"inputs": Z}),
}


def _jsonable(body):
    if isinstance(body, bytes):
        return body
    return json.loads(json.dumps(body, default=lambda a: a.tolist()))


@pytest.mark.parametrize("case", sorted(REST_BAD_REQUESTS))
def test_rest_bad_request_gets_its_code_and_the_server_keeps_serving(server, case):
    expected, path, body = REST_BAD_REQUESTS[case]
    status, answer = _rest(server, path, _jsonable(body))
    assert status == expected, answer
    assert answer["error"]
    status, answer = _rest(server, "/v1/models/covgan_generator:predict", _jsonable({"inputs": Z}))
    assert status == 200 and len(answer["outputs"]["images"]) == 1


def test_garbage_bytes_on_the_rest_port_get_400_and_serving_goes_on(server, client):
    host, port = server.rest.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")
        reply = connection.recv(4096)
    assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n")[0]
    assert client.predict("covgan_generator", "serving_default", Z)["images"].shape[0] == 1
    status, _ = _rest(server, "/v1/models/covgan_generator")
    assert status == 200


def _raw_post(server, content_length):
    """(status, error message) for a :predict POST declaring `content_length`, body unsent."""
    host, port = server.rest.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(f"POST /v1/models/covgan_generator:predict HTTP/1.1\r\n"
                           f"Host: {host}\r\nContent-Length: {content_length}\r\n\r\n"
                           .encode())
        reply = b""
        while chunk := connection.recv(4096):  # the server closes: the body is never read
            reply += chunk
    head, body = reply.split(b"\r\n\r\n", 1)
    return int(head.split(b"\r\n")[0].split()[1]), json.loads(body)["error"]


@pytest.mark.parametrize("declared, expected", [("-5", 400), ("abc", 400), ("1.5", 400),
                                                 (str(64 * (1 << 20) + 1), 413)])
def test_a_bad_content_length_is_refused_before_the_body_is_read(server, declared, expected):
    # Before the fix: "abc" and "1.5" gave 500, "-5" read until the client gave up, and
    # a body over --max-request-mb (64) gave 400.
    status, error = _raw_post(server, declared)
    assert status == expected, error
    assert ("whole number of bytes" if expected == 400 else "accepts at most") in error
    status, answer = _rest(server, "/v1/models/covgan_generator:predict", _jsonable({"inputs": Z}))
    assert status == 200 and len(answer["outputs"]["images"]) == 1


def test_one_log_line_per_request_with_its_latency(server, client):
    # The server is shared by this module, so earlier tests' lines (refused requests among
    # them) are in the log already: count the successful classifier lines before and after.
    def ok_lines():
        return [line for line in list(server.log)
                if "grpc Predict covgan_classifier/latest:serving_default OK " in line]

    before = len(ok_lines())
    client.predict("covgan_classifier", "serving_default", {"images": _images(1)})
    deadline = time.time() + 10
    while time.time() < deadline and len(ok_lines()) == before:
        time.sleep(0.1)
    time.sleep(0.3)  # a second line for the same request would show by now
    lines = ok_lines()
    assert len(lines) == before + 1, lines[before:]
    assert re.search(r" OK \d+\.\d ms$", lines[-1].rstrip()), lines[-1]


def _loadgen(*args):
    """tools/loadgen.py as the script it is, in its own process."""
    import subprocess
    import sys

    tool = ROOT / "tools" / "loadgen.py"
    result = subprocess.run(
        [sys.executable, str(tool), *args], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _loadgen_here(capsys, *args):
    """tools/loadgen.py's main in this process (no TensorFlow start per call)."""
    module = load_tool("loadgen")
    capsys.readouterr()
    module.main(list(args))
    return json.loads(capsys.readouterr().out)


def test_loadgen_reports_latency_throughput_and_errors(server, exported, capsys):
    report = _loadgen(
        "--server",
        server.grpc,
        "--clients",
        "3",
        "--requests",
        "5",
        "--in-process",
        str(exported / "covgan_generator" / "1"),
        "--overhead-calls",
        "10",
    )
    assert report["requests"] == 15 and report["errors"] == {}
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert report["requests_per_second"] > 0
    assert report["overhead_one_client"]["p50_ratio"] > 0
    rest = _loadgen_here(capsys, "--rest", server.rest, "--clients", "2", "--requests", "3")
    assert rest["requests"] == 6 and rest["errors"] == {}
    # Errors are counted by status code, not hidden.
    broken = _loadgen_here(capsys, "--server", server.grpc, "--clients", "2", "--requests", "2",
                           "--batch", "5")
    assert broken["errors"] == {"INVALID_ARGUMENT": 4} and broken["latency_ms"] is None


def test_query_writes_what_the_local_commands_write(
    server, exported, phantom_positives, tmp_path, local, tiny_run
):
    from click.testing import CliRunner

    from covgan.cli import main
    from covgan.data.images import load_inputs

    out = tmp_path / "served"
    result = CliRunner().invoke(
        main, ["query", "--server", server.grpc, "--image", phantom_positives[0], "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    explained = json.loads((out / "explain.json").read_text())
    assert (out / "report.html").is_file()
    for key in ("figure", "maps", "strip", "gif", "plot", "film_strip", "film_gif"):
        assert (out / explained["images"][0]["files"][key]).is_file()
    # The same explain.json as `covgan explain` with the export's settings (this run's G has
    # no gated branch: neither tunes it), to rounding.
    mine = tmp_path / "local"
    result = CliRunner().invoke(main, ["explain", phantom_positives[0], "--run", str(tiny_run),
                                       "--out", str(mine), "--invert-steps", "20",
                                       "--restarts", "2"])
    assert result.exit_code == 0, result.output
    here = json.loads((mine / "explain.json").read_text())
    assert here["maps"] == explained["maps"]
    served_row, local_row = explained["images"][0], here["images"][0]
    assert served_row["files"].keys() == local_row["files"].keys()
    for key in ("p_image", "p_reconstruction", "p_counterpart", "p_add_back", "mse", "ssim"):
        assert abs(served_row[key] - local_row[key]) < 1e-3, key
    assert served_row["trusted"] == local_row["trusted"]
    for name, peak in served_row["map_peaks"].items():
        assert np.hypot(*np.subtract(peak, local_row["map_peaks"][name])) <= 2, name
    pixels, _ = load_inputs(phantom_positives[:1])
    expected = local["explain"](images=tf.constant(pixels))
    np.testing.assert_allclose(
        explained["images"][0]["probabilities"], expected["traversal_probabilities"][0], atol=1e-5
    )
    np.testing.assert_allclose(explained["images"][0]["film_walk_probabilities"],
                               expected["film_walk_probabilities"][0], atol=1e-5)
    walks = tmp_path / "walks"
    result = CliRunner().invoke(
        main, ["query", "--server", server.grpc, "--seed", "4", "--count", "2", "--out", str(walks)]
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads((walks / "traverse.json").read_text())["images"]) == 2
    assert (walks / "01_seed4_1_traversal.gif").is_file()
    result = CliRunner().invoke(
        main,
        ["query", "--server", "127.0.0.1:1", "--seed", "1", "--out", str(tmp_path / "nowhere")],
    )
    assert result.exit_code == 1 and "UNAVAILABLE" in result.output


def test_a_second_server_on_a_busy_port_fails_in_one_line(server, exported):
    import subprocess
    import sys

    port = server.grpc.rsplit(":", 1)[1]
    # A subprocess with a timeout: a server that wrongly starts would otherwise serve forever.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "covgan",
            "serve",
            "--model-config",
            str(exported / "models.config"),
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--no-rest",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Error: Cannot listen on" in result.stderr
    assert result.stdout == ""  # never announced itself as ready
    status, _ = _rest(server, "/v1/models/covgan_generator")  # the first one is unharmed
    assert status == 200


def _peak_resident_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


@pytest.mark.parametrize("declared", [[64, 2048, 2048, 1], [1, 128, 128, 1 << 20]])
def test_a_tiny_request_declaring_a_huge_tensor_is_refused_before_decoding(server, declared):
    # One float that tf.make_ndarray would expand to the declared shape (1 GiB, and 64 GiB):
    # before the fix the first took seconds and GBs before INVALID_ARGUMENT, the second
    # killed the server.
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "covgan_classifier"
    request.model_spec.signature_name = "serving_default"
    request.inputs["images"].CopyFrom(tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[0.5],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in declared])))
    assert request.ByteSize() < 100
    pid = server.process.pid
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart the peak count
    before = _peak_resident_mb(pid)
    channel = grpc.insecure_channel(server.grpc)
    try:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Predict(request, timeout=60)
    finally:
        channel.close()
    assert server.process.poll() is None
    assert _peak_resident_mb(pid) - before < 50
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "would take" in refused.value.details()


def test_two_hundred_half_open_connections_do_not_stop_real_clients(server):
    # Slowloris: 100 connections that sent part of their headers and 100 that sent nothing,
    # held open while 8 clients make real predictions. Before the gatekeeper each connection
    # took a thread from at most 64, so the real clients got 503.
    pid = server.process.pid
    body = {"instances": _images(2).tolist()}
    answers = []

    def real_client(seed, half_open):
        for _ in range(3):
            answers.append(_rest(server, "/v1/models/covgan_classifier:predict", body)[0])
            for connection in half_open[seed::8]:  # keep trickling header bytes
                connection.sendall(b"x")

    def eight_real_clients(half_open):
        clients = [threading.Thread(target=real_client, args=(seed, half_open))
                   for seed in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(timeout=120)

    # The bound is on what the flood costs, so first let 8 clients alone raise the peak to
    # what serving 8 at once takes (thread stacks, allocator arenas), then restart the count.
    eight_real_clients([])
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _peak_resident_mb(pid)
    address = tuple(server.rest.rsplit(":", 1))
    half_open = []
    for i in range(200):
        connection = socket.create_connection((address[0], int(address[1])), timeout=30)
        if i % 2:
            connection.sendall(b"POST /v1/models/covgan_classifier:predict HTTP/1.1\r\n"
                               b"Host: x\r\nContent-Type: appl")
        half_open.append(connection)
    answers.clear()
    eight_real_clients(half_open)
    assert answers == [200] * 24
    grown = _peak_resident_mb(pid) - before
    print(f"peak resident memory grew by {grown:.1f} MB under the flood")
    assert grown < 50  # docs/reliability.md's bound for this flood
    for connection in half_open:
        connection.close()
    assert _rest(server, "/v1/models/covgan_classifier")[0] == 200
