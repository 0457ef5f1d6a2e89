"""report.html opened in a real browser: headless Chromium (Debian's package, .ci/run installs it)."""

import os
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from covgan.cli import main

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=15000",
]
PROBE = """
<script>
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const drawn = images.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0);
  document.body.setAttribute('data-rendered', drawn.length + '/' + images.length);
});
</script>
"""


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


def test_every_image_of_the_report_renders(tiny_run, phantom_positives, tmp_path):
    out = tmp_path / "explain"
    result = CliRunner().invoke(main, ["explain", *phantom_positives, "--run", str(tiny_run),
                                       "--out", str(out), "--invert-steps", "10",
                                       "--restarts", "1"])
    assert result.exit_code == 0, result.output
    drawn, total, dom = rendered_images(out / "report.html", tmp_path)
    assert total == 4 * len(phantom_positives)  # figure, GIF, plot and steps per image
    assert drawn == total
    assert "NOT trusted" in dom or "Trusted." in dom

    screenshot = tmp_path / "report.png"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={screenshot}", "--window-size=1200,1600",
                    (out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert screenshot.stat().st_size > 20_000  # a page with pictures, not a blank one
