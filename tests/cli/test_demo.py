"""covgan demo: the stages after training on every default run (the trained tiny run is put
where the demo looks for it, which also checks that a second demo skips training), and the
whole demo from an empty folder behind --run-slow."""

import json
import pathlib
import shutil

import pytest
from click.testing import CliRunner
from helpers import rendered_images

from covgan.cli import main

SHORT = ["--classifier-epochs", "1", "--gan-epochs", "1", "--explain-count", "2",
         "--invert-steps", "10", "--repeats", "20", "--pairs", "20"]


def check_summary(result, out, tmp_path, stages):
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    for stage in stages:
        assert stage in result.output  # progress names every stage that ran
    assert "covgan demo: summary" in result.output
    assert 0 <= summary["classifier_accuracy"] <= 1
    assert set(summary["localisation"]) >= {summary["default_map"], "traversal", "gradcam",
                                            "integrated_gradients"}
    assert f"{summary['default_map'].replace('_', ' ')} (the default map)" in result.output
    assert summary["explained"] == 2 and summary["server_exit_code"] == 0
    assert summary["serving_traverse_p50_ms"] > 0
    assert (out / "savedmodels" / "covgan_generator" / "1" / "saved_model.pb").is_file()
    # Per image Figure 2's six panels, the plot, the animation and the steps of the GAN's
    # walk and of the walk on the film, and six maps, explained locally (two images) or by
    # the server (one: its explain signature returns every map and the walk on the film
    # too). Last, so that a machine without a browser still checks everything above before
    # skipping.
    for report, pictures in ((summary["report"], 2 * 17), (summary["served_report"], 1 * 17)):
        drawn, total, _ = rendered_images(pathlib.Path(report), tmp_path)
        assert total == pictures and drawn == total


def in_process(args):
    """demo.run_command without a new process per stage (the quick form: no TensorFlow start
    per stage; the slow test below runs them as the demo does)."""
    result = CliRunner().invoke(main, list(args))
    if result.exit_code != 0:
        print(result.output, result.exception)
    return result.exit_code, result.stdout


def test_demo_skips_finished_training_and_runs_every_later_stage(tiny_run, tmp_path,
                                                                 monkeypatch):
    import importlib

    from covgan.training.classifier import evaluate_classifier
    from covgan.training.runs import load_run

    # The module, not the click command that covgan.cli exports under the same name.
    monkeypatch.setattr(importlib.import_module("covgan.cli.demo"), "run_command", in_process)
    out = tmp_path / "demo"
    shutil.copytree(tiny_run, out / "gan")
    (out / "classifier").mkdir()
    shutil.copy(tiny_run / "classifier.keras", out / "classifier" / "classifier.keras")
    run = load_run(out / "gan")
    scores = evaluate_classifier(run.classifier, run.config["data"])
    (out / "classifier" / "evaluation.json").write_text(json.dumps(scores))
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--data", run.config["data"],
                                       *SHORT])
    assert "classifier: already done" in result.output
    assert "2/7" not in result.output  # the GAN is not trained again
    check_summary(result, out, tmp_path, ("3/7", "4/7", "5/7", "6/7", "7/7"))


@pytest.mark.slow
def test_demo_from_scratch_runs_every_stage_and_its_reports_open(phantom_dir, tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--data", str(phantom_dir),
                                       *SHORT])
    check_summary(result, out, tmp_path, ("1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7"))
