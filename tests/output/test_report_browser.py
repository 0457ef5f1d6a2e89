"""report.html opened in a real browser: headless Chromium (Debian's; tools/test.sh installs it)."""

import json
import subprocess

from click.testing import CliRunner
from helpers import CHROMIUM_FLAGS, chromium, rendered_images

from covgan.cli import main


def test_every_image_of_the_report_renders(tiny_run, phantom_positives, tmp_path):
    browser = chromium()  # first: skips at once where tools/test.sh could not install it
    out = tmp_path / "explain"
    result = CliRunner().invoke(main, ["explain", *phantom_positives, "--run", str(tiny_run),
                                       "--out", str(out), "--invert-steps", "10",
                                       "--restarts", "1"])
    assert result.exit_code == 0, result.output
    drawn, total, dom = rendered_images(out / "report.html", tmp_path)
    # Per image: Figure 2's six panels, six maps, the plot, and the animation and the steps
    # of the GAN's walk and of the walk on the film.
    assert total == 17 * len(phantom_positives)
    assert drawn == total
    # Each image's verdict, as the browser shows it, is the one explain's JSON gives.
    trusted = [row["trusted"] for row in json.loads(result.stdout)["images"]]
    assert dom.count('<p class="trusted">') == sum(trusted)
    assert dom.count('<p class="untrusted">') == len(trusted) - sum(trusted)

    screenshot = tmp_path / "report.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={screenshot}", "--window-size=1200,1600",
                    (out / "report.html").as_uri()], capture_output=True, timeout=120)
    assert screenshot.stat().st_size > 20_000  # a page with pictures, not a blank one
