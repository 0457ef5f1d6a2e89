"""Load generator: N concurrent clients x M requests against a TF Serving API (gRPC or REST).

Prints JSON: latency p50/p90/p99 (ms), requests per second, and errors by
status code. With --in-process SAVEDMODEL, it also measures, in the same run,
one client's latency through the server against calling the same signature in
this process (alternating blocks, so drift on a noisy machine hits both alike),
and reports their ratio: the serving overhead.

    python tools/loadgen.py --server 127.0.0.1:8500 --clients 8 --requests 200
    python tools/loadgen.py --server 127.0.0.1:8500 --clients 8 --requests 200 \\
        --in-process savedmodels/covgan_generator/1
    python tools/loadgen.py --rest 127.0.0.1:8501 --clients 8 --requests 200
"""

import argparse
import collections
import concurrent.futures
import json
import os
import time
import urllib.error
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# isort: off
from covgan.cpu import use_onednn  # noqa: E402

use_onednn()  # before TensorFlow is imported, as the commands do
# isort: on
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from covgan.errors import CovganError  # noqa: E402
from covgan.serving.client import Client  # noqa: E402


def percentiles(milliseconds):
    values = np.asarray(milliseconds, dtype=float)
    if not len(values):
        return None
    return {"p50": round(float(np.percentile(values, 50)), 2),
            "p90": round(float(np.percentile(values, 90)), 2),
            "p99": round(float(np.percentile(values, 99)), 2),
            "mean": round(float(values.mean()), 2), "max": round(float(values.max()), 2)}


class GrpcCaller:
    def __init__(self, address, model, signature):
        self.client = Client(address, timeout=300)
        self.model, self.signature = model, signature

    def __call__(self, inputs):
        try:
            self.client.predict(self.model, self.signature, inputs)
            return "OK"
        except CovganError as error:  # "HOST:PORT: CODE: details"
            return str(error).split(": ")[1]

    def close(self):
        self.client.close()


class RestCaller:
    def __init__(self, address, model, signature):
        self.url = f"http://{address}/v1/models/{model}:predict"
        self.signature = signature

    def __call__(self, inputs):
        body = json.dumps({"signature_name": self.signature,
                           "inputs": {k: v.tolist() for k, v in inputs.items()}}).encode()
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, data=body),
                                        timeout=300) as response:
                # Read, not parsed: a traversal is 180k floats in nested lists, and parsing
                # it in 8 client threads of one process would measure this client's GIL.
                response.read()
                return str(response.status)
        except urllib.error.HTTPError as error:
            return str(error.code)
        except OSError as error:
            return type(error).__name__

    def close(self):
        pass


def request_inputs(signature_inputs, batch, seed):
    rng = np.random.default_rng(seed)
    return {name: rng.random((batch, *shape[1:])).astype("f4") if len(shape) > 2
            else rng.standard_normal((batch, *shape[1:])).astype("f4")
            for name, shape in signature_inputs.items()}


def signature_shapes(args):
    """{input: shape} of the signature, asked of the server (gRPC or REST metadata)."""
    if args.server:
        client = Client(args.server, timeout=60)
        try:
            return client.signature_inputs(args.model, args.signature)
        finally:
            client.close()
    url = f"http://{args.rest}/v1/models/{args.model}/metadata"
    with urllib.request.urlopen(url, timeout=60) as response:
        definitions = json.loads(response.read())["metadata"]["signature_def"]["signature_def"]
    return {name: [int(d["size"]) for d in info["tensorShape"]["dim"]]
            for name, info in definitions[args.signature]["inputs"].items()}


def load(make_caller, clients, requests, inputs):
    """Runs `clients` threads of `requests` calls each; returns latencies, codes, seconds."""
    latencies, codes = [], collections.Counter()

    def one_client(index):
        caller = make_caller()
        mine = []
        try:
            for _ in range(requests):
                started = time.perf_counter()
                code = caller(inputs)
                mine.append(((time.perf_counter() - started) * 1000, code))
        finally:
            caller.close()
        return mine

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for result in pool.map(one_client, range(clients)):
            for milliseconds, code in result:
                codes[code] += 1
                if code in ("OK", "200"):
                    latencies.append(milliseconds)
    return latencies, codes, time.perf_counter() - started


def overhead(make_caller, saved_model, signature, inputs, calls, block=10):
    """One client through the server vs the same signature in this process, alternating."""
    function = tf.saved_model.load(saved_model).signatures[signature]
    tensors = {k: tf.constant(v) for k, v in inputs.items()}
    caller = make_caller()
    for _ in range(3):  # warm both paths
        function(**tensors)
        caller(inputs)
    local, served = [], []
    for _ in range(max(1, calls // block)):
        for _ in range(block):
            started = time.perf_counter()
            {k: v.numpy() for k, v in function(**tensors).items()}
            local.append((time.perf_counter() - started) * 1000)
        for _ in range(block):
            started = time.perf_counter()
            caller(inputs)
            served.append((time.perf_counter() - started) * 1000)
    caller.close()
    local_stats, served_stats = percentiles(local), percentiles(served)
    return {"calls_each": len(local), "in_process_ms": local_stats, "served_ms": served_stats,
            "p50_ratio": round(served_stats["p50"] / local_stats["p50"], 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--server", help="gRPC HOST:PORT")
    target.add_argument("--rest", help="REST HOST:PORT")
    parser.add_argument("--model", default="covgan_generator")
    parser.add_argument("--signature", default="traverse")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200, help="per client")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--in-process", help="the served SavedModel version folder, to measure "
                                             "the serving overhead against")
    parser.add_argument("--overhead-calls", type=int, default=100)
    parser.add_argument("--name", default=None, help="a label for this run in the JSON")
    args = parser.parse_args(argv)

    shapes = signature_shapes(args)
    inputs = request_inputs(shapes, args.batch, seed=0)
    if args.server:
        make_caller = lambda: GrpcCaller(args.server, args.model, args.signature)  # noqa: E731
    else:
        make_caller = lambda: RestCaller(args.rest, args.model, args.signature)  # noqa: E731

    latencies, codes, seconds = load(make_caller, args.clients, args.requests, inputs)
    total = args.clients * args.requests
    report = {
        "name": args.name, "protocol": "grpc" if args.server else "rest",
        "target": args.server or args.rest, "model": args.model, "signature": args.signature,
        "batch": args.batch, "clients": args.clients, "requests_per_client": args.requests,
        "requests": total, "seconds": round(seconds, 2),
        "requests_per_second": round(total / seconds, 2),
        "latency_ms": percentiles(latencies),
        "errors": {code: n for code, n in codes.items() if code not in ("OK", "200")},
        "cpus": os.cpu_count(),
    }
    if args.in_process:
        report["overhead_one_client"] = overhead(make_caller, args.in_process, args.signature,
                                                 inputs, args.overhead_calls)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
