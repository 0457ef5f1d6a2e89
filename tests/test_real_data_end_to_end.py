"""The real chest X-ray set in ../shared, end to end: prepare, classifier, GAN, explain."""

import json

from click.testing import CliRunner

from covgan.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_explain_a_real_radiograph_after_a_tiny_run(shared_dataset, tmp_path):
    data = tmp_path / "covid19"
    assert run("data", "prepare", shared_dataset, data).exit_code == 0
    result = run("classifier", "train", "--data", data, "--out", tmp_path / "clf", "--epochs", 1)
    assert result.exit_code == 0, result.output
    result = run("train", "--data", data, "--classifier", tmp_path / "clf" / "classifier.keras",
                 "--out", tmp_path / "gan", "--epochs", 1, "--augment", "--z1-dim", 16,
                 "--z2-dim", 4)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "gan" / "config.json").read_text())["augment"] is True
    image = next((shared_dataset / "val" / "Covid").iterdir())  # a 640x640 original
    result = run("explain", image, "--run", tmp_path / "gan", "--out", tmp_path / "explain",
                 "--invert-steps", 10, "--restarts", 1)
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["images"][0]
    assert entry["source"] == str(image) and len(entry["probabilities"]) == 11
    report = (tmp_path / "explain" / "report.html").read_text()
    assert str(image.name) in report
    assert ("NOT trusted" in report) != entry["trusted"]
    assert any("resized from" in w for w in entry["warnings"])
