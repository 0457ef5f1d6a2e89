"""covgan demo end to end on the small phantom set, with short stages (the full one: README)."""

import json
import pathlib

from click.testing import CliRunner
from helpers import rendered_images

from covgan.cli import main


def test_demo_runs_every_stage_and_its_reports_open(phantom_dir, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, [
        "demo", "--out", str(out), "--data", str(phantom_dir), "--classifier-epochs", "1",
        "--gan-epochs", "1", "--explain-count", "2", "--invert-steps", "10", "--repeats", "20"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for stage in ("1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7"):
        assert stage in result.output  # progress names every stage
    assert "covgan demo: summary" in result.output
    assert 0 <= summary["classifier_accuracy"] <= 1
    assert set(summary["localisation"]) == {"traversal", "gradcam"}
    assert summary["explained"] == 2 and summary["server_exit_code"] == 0
    assert summary["serving_traverse_p50_ms"] > 0
    assert (out / "savedmodels" / "covgan_generator" / "1" / "saved_model.pb").is_file()
    # Figure, GIF, plot and steps per image: two images explained locally, one by the server.
    # Last, so that a machine without a browser still checks everything above before skipping.
    for report, images in ((summary["report"], 2), (summary["served_report"], 1)):
        drawn, total, _ = rendered_images(pathlib.Path(report), tmp_path)
        assert total == 4 * images and drawn == total
