"""Shared fixtures: tiny data made in the tests, and the opt-in slow marker (builders and
checkers that tests call directly live in helpers.py)."""

import fcntl
import os
import pathlib
import shutil

import pytest

from covgan.cpu import use_onednn

use_onednn()  # before any test imports TensorFlow, as the commands do

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


def built_once(tmp_path_factory, name, build):
    """The folder `name`, built by `build(folder)` once per test run, not once per worker.

    Under pytest-xdist every worker has its own session, so a session fixture would be built
    on each; the workers share their base folder's parent, and a file lock lets the first
    build while the others wait and then reuse it. Users must treat the folder as read-only.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by this run's workers (each run gets a fresh one)
    folder, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            # Built in place (runs and models.config record absolute paths); a failed build
            # is removed so that the next worker tries afresh and fails on its own.
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                build(folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
            done.touch()
    return folder


@pytest.fixture(scope="session")
def phantom_dir(tmp_path_factory):
    """A small prepared phantom set (96 images) with markers on half the positives."""
    from covgan.data.synth import synthesize

    def build(folder):
        synthesize(folder / "data", count=96, seed=3, shortcut=0.5)

    return built_once(tmp_path_factory, "phantoms", build) / "data"


@pytest.fixture(scope="session")
def shared_dataset():
    """The real chest X-ray set in ../shared (read-only; present in CI, which runs these tests).
    A checkout without it skips them with the reason, rather than failing on a missing
    folder that is not part of the project."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real chest X-ray set is not at {SHARED_DATA} (it sits beside the "
                    "project in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(phantom_dir, tmp_path_factory):
    """A finished (if barely trained) GAN run on the small phantom set: two epochs, so that
    its TensorBoard log holds two traversal grids (tests/training/test_gan.py reads them)."""
    from covgan.models.classifier import build_classifier
    from covgan.training.gan import GANTrainingConfig, train_gan

    def build(folder):
        classifier = folder / "classifier_source.keras"
        build_classifier("tiny", seed=0).save(classifier)
        config = GANTrainingConfig(data=str(phantom_dir), classifier=str(classifier),
                                   out=str(folder / "run"), epochs=2, batch_size=16, z1_dim=8,
                                   z2_dim=2, inject_z2=True, seed=0)
        train_gan(config, verbose=0)

    return built_once(tmp_path_factory, "tiny_run", build) / "run"


@pytest.fixture(scope="session")
def phantom_positives(phantom_dir):
    from covgan.data import layout

    return [str(phantom_dir / r.path) for r in layout.read_manifest(phantom_dir) if r.label][:2]


@pytest.fixture(scope="session")
def exported(tiny_run, tmp_path_factory):
    """The tiny run exported as SavedModels (a short inversion keeps the tests quick)."""
    from covgan.explain.invert import InversionSettings
    from covgan.export.savedmodel import export_run
    from covgan.export.settings import ServingSettings
    from covgan.training.runs import load_run

    settings = ServingSettings(inversion=InversionSettings(steps=20, restarts=2))
    return built_once(tmp_path_factory, "savedmodels",
                      lambda out: export_run(load_run(tiny_run), out, settings=settings))


@pytest.fixture(scope="session")
def server(exported):
    """A server over the exported models, with a small batch limit to test it."""
    from helpers import ServerProcess

    running = ServerProcess(exported / "models.config", "--max-batch", "4")
    yield running
    assert running.stop() == 0, "".join(running.log[-30:])
