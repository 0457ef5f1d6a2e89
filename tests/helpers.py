"""Builders and checks shared by tests in several packages (fixtures live in conftest.py)."""

import os
import pathlib
import re
import shutil
import subprocess

import cv2
import keras
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def assert_keras_round_trip(model, path, inputs=None):
    """Saves `model` as .keras, reloads it in safe mode and checks weights (and outputs) agree.

    Returns the reloaded model for further checks.
    """
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is type(model)
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if inputs is not None:  # every output, for models with several
        for ours, theirs in zip(keras.tree.flatten(loaded(inputs, training=False)),
                                keras.tree.flatten(model(inputs, training=False)), strict=True):
            np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-5, atol=1e-6)
    return loaded


def all_layers(model):
    """Every layer of a Keras model, those of nested models included."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)


def leaf_commands(group, prefix=()):
    """(path, command) of every command under a click group, e.g. (("data", "prepare"), ...)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from leaf_commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def load_tool(name):
    """A script of tools/ as a module, to call its functions in this process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_dicom(path, pixels, photometric="MONOCHROME2"):
    """A DICOM file holding `pixels`: (rows, cols) 12-bit grey, or (frames, rows, cols, 3) RGB.

    The `test` extra installs pydicom: an import error here fails the test, never skips it.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.PhotometricInterpretation = photometric
    ds.PixelRepresentation = 0
    if pixels.ndim == 4:
        ds.NumberOfFrames, ds.Rows, ds.Columns = pixels.shape[:3]
        ds.SamplesPerPixel, ds.PlanarConfiguration = pixels.shape[3], 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = pixels.astype(np.uint8).tobytes()
    else:
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


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

    def stop(self, timeout=60):
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=15000",
]
PROBE = """
<script>
// Counts the pictures the page drew: <img> elements, and elements that show a picture as
// their CSS background (role=img), whose data: URI is decoded once more to check it.
window.addEventListener('load', async () => {
  const images = Array.from(document.images);
  const drawn = images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  const boxes = Array.from(document.querySelectorAll('[role=img]'));
  const decoded = await Promise.all(boxes.map(box => new Promise(done => {
    const picture = new Image();
    picture.onload = () => done(picture.naturalWidth > 0 && box.offsetWidth > 0);
    picture.onerror = () => done(false);
    picture.src = getComputedStyle(box).backgroundImage.slice(5, -2);
  })));
  const shown = decoded.filter(ok => ok).length;
  document.body.setAttribute('data-rendered',
    (drawn.length + shown) + '/' + (images.length + boxes.length));
});
</script>
"""


def external_references(page):
    """URLs a page would fetch: src, href and CSS url() values that are not inline data.
    (A plain search for "http" also hits base64 image data, which may spell it by chance.)"""
    links = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)|url\(\s*["']?([^"')]+)""", page)
    return [url for pair in links for url in pair if url and not url.startswith(("data:", "#"))]


def chromium():
    """Chromium's path; a skip only where tools/test.sh could not install it and said why."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path and os.environ.get("COVGAN_SKIP_BROWSER"):
        pytest.skip(os.environ["COVGAN_SKIP_BROWSER"])
    assert path, "headless Chromium is needed: bash tools/test.sh installs Debian's chromium"
    return path


def rendered_images(report, tmp_path):
    """(images drawn, images on the page) and the DOM, once Chromium has loaded `report`."""
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         probe.as_uri()], capture_output=True, text=True, timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = re.search(r'data-rendered="(\d+)/(\d+)"', dom.stdout)
    assert rendered, "the page's load handler never ran"
    drawn, total = map(int, rendered.groups())
    return drawn, total, dom.stdout
