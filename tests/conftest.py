"""Shared fixtures: tiny data made in the tests, and the opt-in slow marker."""

import os
import pathlib

import cv2
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "covid19-dataset"


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False,
        help="also run slow tests (paper-size models, full-length training)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """DATA=phantom caches under a per-session folder, never the user's home."""
    previous = os.environ.get("COVGAN_CACHE")
    os.environ["COVGAN_CACHE"] = str(tmp_path_factory.mktemp("covgan-cache"))
    yield
    if previous is None:
        os.environ.pop("COVGAN_CACHE", None)
    else:
        os.environ["COVGAN_CACHE"] = previous


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    """A small prepared phantom set (96 images) with markers on half the positives."""
    from covgan.data.synth import synthesize

    folder = tmp_path_factory.mktemp("phantoms") / "data"
    synthesize(folder, count=96, seed=3, shortcut=0.5)
    return folder


@pytest.fixture(scope="session")
def shared_dataset():
    """The real chest X-ray set in ../shared (read-only; present in CI too)."""
    assert SHARED_DATA.is_dir(), f"expected the shared data set at {SHARED_DATA}"
    return SHARED_DATA


def build_messy_tree(root):
    """16-bit PNG, RGB JPEG, a truncated file, a text file named .png, an empty folder."""
    rng = np.random.default_rng(0)
    covid, normal = root / "Covid", root / "NORMAL"
    covid.mkdir(parents=True)
    normal.mkdir(parents=True)
    (root / "Empty").mkdir()
    cv2.imwrite(str(covid / "sixteen.png"), (rng.random((300, 260)) * 65535).astype(np.uint16))
    cv2.imwrite(str(covid / "colour.jpg"), (rng.random((200, 300, 3)) * 255).astype(np.uint8))
    for i in range(6):
        cv2.imwrite(str(normal / f"n{i}.png"), (rng.random((100, 100)) * 255).astype(np.uint8))
    ok, encoded = cv2.imencode(".png", (rng.random((256, 256)) * 255).astype(np.uint8))
    (covid / "truncated.png").write_bytes(encoded.tobytes()[:500])
    (normal / "notes.png").write_text("not an image at all")


@pytest.fixture(scope="session")
def tiny_run(phantom_dir, tmp_path_factory):
    """A finished (if barely trained) GAN run on the small phantom set."""
    from covgan.gan_training import GANTrainingConfig, train_gan
    from covgan.models.classifier import build_classifier

    folder = tmp_path_factory.mktemp("tiny_run")
    classifier = folder / "classifier_source.keras"
    build_classifier("tiny", seed=0).save(classifier)
    config = GANTrainingConfig(data=str(phantom_dir), classifier=str(classifier),
                               out=str(folder / "run"), epochs=1, batch_size=16, z1_dim=8,
                               z2_dim=2, inject_z2=True, seed=0)
    train_gan(config, verbose=0)
    return folder / "run"


@pytest.fixture(scope="session")
def phantom_positives(phantom_dir):
    from covgan.data import layout

    return [str(phantom_dir / r.path) for r in layout.read_manifest(phantom_dir) if r.label][:2]


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory):
    """The tiny run exported as SavedModels (a short inversion keeps the tests quick)."""
    from covgan.export import export_run
    from covgan.invert import InversionSettings
    from covgan.run import load_run
    from covgan.serving.signatures import ServingSettings

    out = tmp_path_factory.mktemp("savedmodels")
    settings = ServingSettings(inversion=InversionSettings(steps=20, restarts=2))
    export_run(load_run(tiny_run), out, settings=settings)
    return out


class ServerProcess:
    """`covgan serve` in a subprocess on 127.0.0.1, free ports picked by the server."""

    def __init__(self, config, *extra):
        import json
        import subprocess
        import sys
        import threading

        command = [sys.executable, "-m", "covgan", "serve", "--model-config", str(config),
                   "--host", "127.0.0.1", "--port", "0", "--rest-port", "0", *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.log = []
        # Drain stderr so the server never blocks on a full pipe; keep it for assertions.
        threading.Thread(target=lambda: self.log.extend(self.process.stderr), daemon=True).start()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            raise RuntimeError("covgan serve did not start:\n" + "".join(self.log[-30:]))
        ready = json.loads(line)
        self.grpc, self.rest = ready["grpc"], ready["rest"]

    def stop(self):
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture(scope="session")
def server(exported):
    """A server over the exported models, with a small batch limit to test it."""
    running = ServerProcess(exported / "models.config", "--max-batch", "4")
    yield running
    assert running.stop() == 0, "".join(running.log[-30:])
