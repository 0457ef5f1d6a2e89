"""The command line through click's CliRunner: help, results as JSON, bad input."""

import json
import shutil

import keras
import pytest
from click.testing import CliRunner
from helpers import build_messy_tree, leaf_commands

from covgan.cli import main
from covgan.data import layout


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def command_paths(group):
    return [path for path, _ in leaf_commands(group)]


def test_the_cli_summary_names_every_option():
    # Each command's row in the CLI reference's summary (docs/reference/cli.md) names each of
    # its options; the shared inversion options count as named where the row says
    # "[inversion options]" (or is invert's, which lists them), --overwrite is described once
    # under the table, and a boolean pair (--balance/--no-balance) is named by either half.
    # The generated full reference below it is checked in tests/test_docs.py.
    import pathlib

    import click

    page = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md")
    text = page.read_text()
    summary = text[text.index("## Summary"):text.index("## Full reference")]
    assert "unless `--overwrite`" in summary
    rows = [line for line in summary.splitlines() if line.startswith("| `covgan ")]
    invert = main.commands["invert"]
    shared = {o for p in invert.params if isinstance(p, click.Option) for o in p.opts}
    for path in command_paths(main):
        command = main
        for name in path:
            command = command.commands[name]
        name = "covgan " + " ".join(path)
        row = next((r for r in rows if r.startswith((f"| `{name} ", f"| `{name}`"))), None)
        assert row is not None, f"no summary row for {name}"
        for option in (p for p in command.params if isinstance(p, click.Option)):
            names = [o for o in option.opts + option.secondary_opts if o.startswith("--")]
            if set(option.opts) <= shared and "[inversion options]" in row:
                continue
            if names == ["--overwrite"] or names == ["--help"]:
                continue
            assert any(n in row for n in names), f"{name}: {names[0]} is not in the summary"


def assert_one_line_error(result):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error:")
    if result.exit_code == 1:  # our errors (usage errors also print the usage line)
        assert len(lines) == 1


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for name in ("data", "classifier"):
        assert name in result.output


@pytest.mark.parametrize("command", command_paths(main), ids=" ".join)
def test_every_command_has_help_with_an_example(command):
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"covgan {' '.join(command)}" in result.output


def test_synth_prints_json_and_writes_the_layout(tmp_path):
    out = tmp_path / "data"
    result = run("data", "synth", out, "--count", 6, "--preview", tmp_path / "sheet.png")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] == {"positive": 3, "negative": 3}
    assert (out / "manifest.csv").is_file() and (tmp_path / "sheet.png").is_file()


def test_synth_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = run("data", "synth", tmp_path, "--count", 4)
    assert_one_line_error(result)
    assert "--overwrite" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_prepare_reports_skips(tmp_path):
    build_messy_tree(tmp_path / "src")
    result = run("data", "prepare", tmp_path / "src", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] == {"positive": 2, "negative": 6} and report["unreadable"] == 2


def test_prepare_missing_source(tmp_path):
    result = run("data", "prepare", tmp_path / "absent", tmp_path / "out")
    assert_one_line_error(result)
    assert "does not exist" in result.stderr
    assert not (tmp_path / "out").exists()


def test_train_rejects_bad_data_and_presets_without_writing(tmp_path):
    run_dir = tmp_path / "run"
    result = run("classifier", "train", "--data", tmp_path / "absent", "--out", run_dir)
    assert_one_line_error(result)
    assert "Data folder not found" in result.stderr
    (tmp_path / "plain").mkdir()
    result = run("classifier", "train", "--data", tmp_path / "plain", "--out", run_dir)
    assert_one_line_error(result)
    assert "manifest.csv not found" in result.stderr
    result = run("classifier", "train", "--data", "phantom", "--preset", "resnet", "--out", run_dir)
    assert_one_line_error(result)
    assert "resnet" in result.stderr
    assert not run_dir.exists()


def test_evaluate_rejects_foreign_and_misshapen_classifiers(tmp_path, phantom_dir):
    text = tmp_path / "model.keras"
    text.write_text("hello")
    result = run("classifier", "evaluate", "--classifier", text, "--data", phantom_dir)
    assert_one_line_error(result)
    assert "not a Keras model" in result.stderr

    inputs = keras.Input((64, 64, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))
    wrong = tmp_path / "wrong.keras"
    keras.Model(inputs, outputs).save(wrong)
    result = run("classifier", "evaluate", "--classifier", wrong, "--data", phantom_dir)
    assert_one_line_error(result)
    assert "(None, 128, 128, 1)" in result.stderr
    assert not (tmp_path / "classifier_evaluation.json").exists()


def test_train_then_evaluate(tmp_path, phantom_dir):
    run_dir = tmp_path / "run"
    result = run("classifier", "train", "--data", phantom_dir, "--out", run_dir, "--epochs", 1,
                 "--batch-size", 16, "--augment")
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    for name in ("classifier.keras", "config.json", "evaluation.json", "history.csv"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preset"] == "tiny" and config["augment"] is True
    assert trained["split"] == "test" and trained["n"] > 0

    result = run("classifier", "evaluate", "--classifier", run_dir / "classifier.keras",
                 "--data", phantom_dir)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    for key in ("accuracy", "auc", "sensitivity", "specificity", "n", "confusion_matrix"):
        assert key in scores
    assert scores["accuracy"] == pytest.approx(trained["accuracy"])
    assert json.loads((run_dir / "classifier_evaluation.json").read_text()) == scores
    result = run("classifier", "evaluate", "--classifier", run_dir / "classifier.keras",
                 "--data", phantom_dir, "--split", "all", "--out", tmp_path / "all.json")
    assert result.exit_code == 0, result.output
    every = json.loads(result.stdout)
    assert every["split"] == "all" and every["n"] == len(layout.read_manifest(phantom_dir))
    assert every["n"] > scores["n"]


def test_phantom_data_is_generated_once_and_cached(monkeypatch):
    from covgan.data import catalog

    monkeypatch.setattr(catalog, "PHANTOM_COUNT", 8)
    first = catalog.resolve_data("phantom")
    stamp = (first / "manifest.csv").stat().st_mtime_ns
    assert catalog.resolve_data("phantom") == first
    assert (first / "manifest.csv").stat().st_mtime_ns == stamp


def test_evaluate_a_trained_run(tmp_path, tiny_run):
    # `covgan train` itself runs in tests/test_real_data_end_to_end.py (in process) and in
    # tests/training/test_gan.py (killed and resumed); the shared tiny run is train_gan's.
    run_dir = tmp_path / "gan"
    shutil.copytree(tiny_run, run_dir)
    result = run("evaluate", "--run", run_dir, "--repeats", 10, "--seeds", 2, "--pairs", 4)
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    for key in ("class_consistency", "monotonic_fraction", "spearman_mean", "code_overlap",
                "frechet_distance"):
        assert key in evaluation
    assert 0 <= evaluation["code_overlap"]["mean"] <= 1
    assert set(evaluation["class_consistency"]) >= {"mean", "std", "repeats", "seeds"}
    assert evaluation["frechet_distance"]["features"]
    assert json.loads((run_dir / "evaluation.json").read_text()) == evaluation


def test_gan_commands_reject_bad_input(tmp_path, phantom_dir):
    text = tmp_path / "model.keras"
    text.write_text("not a model")
    result = run("train", "--data", phantom_dir, "--classifier", text, "--out", tmp_path / "gan")
    assert_one_line_error(result)
    assert "not a Keras model" in result.stderr
    assert not (tmp_path / "gan").exists()
    result = run("evaluate", "--run", tmp_path)
    assert_one_line_error(result)
    assert "not a covgan run" in result.stderr
