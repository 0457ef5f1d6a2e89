"""The real chest X-ray set in ../shared, end to end: prepare, classifier, GAN, explain.

On 16 radiographs of each class and split (96 of its 317): real images of every size and
format the set has, at a sixth of the training time. tests/data/test_prepare.py prepares
the whole set."""

import json
import shutil

from click.testing import CliRunner

from covgan.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def subset(source, out, per_folder=16):
    for folder in sorted(p for p in source.glob("*/*") if p.is_dir()):
        target = out / folder.relative_to(source)
        target.mkdir(parents=True)
        for image in sorted(folder.iterdir())[:per_folder]:
            shutil.copyfile(image, target / image.name)
    return out


def test_explain_a_real_radiograph_after_a_tiny_run(shared_dataset, tmp_path):
    data = tmp_path / "covid19"
    source = subset(shared_dataset, tmp_path / "subset")
    result = run("data", "prepare", source, data)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sum(report["imported"].values()) + report["skipped_other_class"] == 96
    result = run("classifier", "train", "--data", data, "--out", tmp_path / "clf", "--epochs", 1)
    assert result.exit_code == 0, result.output
    result = run("train", "--data", data, "--classifier", tmp_path / "clf" / "classifier.keras",
                 "--out", tmp_path / "gan", "--epochs", 1, "--augment", "--z1-dim", 16,
                 "--z2-dim", 4, "--padding", "reflect")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "gan" / "config.json").read_text())
    assert config["augment"] is True
    # The tiny preset's levers (a gated G, bilinear, the class-aware critic), and the option.
    assert (config["gated_residual"], config["class_critic"]) == (True, True)
    assert (config["upsampling"], config["padding"]) == ("bilinear", "reflect")
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
