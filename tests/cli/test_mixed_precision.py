"""--mixed-precision on the explanation commands: G and C compute in bfloat16 on a CPU,
the outputs stay float32 and close to float32's, and the policy is restored afterwards."""

import json
import shutil

import keras
import numpy as np
from click.testing import CliRunner
from helpers import all_layers

from covgan.cli import main

QUICK = ["--invert-steps", "15", "--restarts", "1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def conv_dtypes(model):
    return {layer.compute_dtype for layer in all_layers(model)
            if isinstance(layer, keras.layers.Conv2D)}


def test_invert_and_explain_compute_in_bfloat16_and_agree_with_float32(
        tiny_run, phantom_positives, tmp_path, monkeypatch):
    from covgan.training import runs

    loaded, original = [], runs.load_run

    def recording_load_run(path):
        loaded.append(original(path))
        return loaded[-1]

    monkeypatch.setattr(runs, "load_run", recording_load_run)
    result = run("invert", *phantom_positives, "--run", tiny_run, "--out", tmp_path / "fp32",
                 *QUICK)
    assert result.exit_code == 0, result.output
    result = run("invert", *phantom_positives, "--run", tiny_run, "--out", tmp_path / "mixed",
                 *QUICK, "--mixed-precision")
    assert result.exit_code == 0, result.output
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert conv_dtypes(loaded[0].generator) == {"float32"}
    assert conv_dtypes(loaded[1].generator) == {"bfloat16"}
    assert conv_dtypes(loaded[1].classifier) == {"bfloat16"}
    fp32, mixed = (json.loads((tmp_path / name / "invert.json").read_text())["images"]
                   for name in ("fp32", "mixed"))
    for ours, theirs in zip(mixed, fp32):
        assert isinstance(ours["ssim"], float) and abs(ours["ssim"] - theirs["ssim"]) < 0.05
    result = run("explain", phantom_positives[0], "--run", tiny_run, "--out",
                 tmp_path / "explain", *QUICK, "--mixed-precision")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["images"][0]
    assert np.all(np.isfinite(entry["probabilities"]))


def test_localise_in_mixed_precision_scores_every_map(tiny_run, phantom_dir, tmp_path):
    copy = tmp_path / "run"  # localise writes RUN/localisation.json; the shared run is read-only
    shutil.copytree(tiny_run, copy)
    result = run("localise", "--run", copy, "--data", phantom_dir, "--count", 2, "--seeds", 1,
                 "--invert-steps", 10, "--restarts", 1, "--no-curves", "--mixed-precision")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    for values in scores["methods"].values():
        for key in ("pointing_game", "relevance_mass", "auroc"):
            assert 0.0 <= values[key] <= 1.0
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_precision_warns_where_the_cpu_would_emulate_bfloat16(monkeypatch, capsys):
    from covgan import cpu
    from covgan.cli.common import warn_if_bfloat16_is_emulated

    for flags, warned in (({"avx2", "fma"}, True), ({"avx2", "avx512_bf16"}, False),
                          ({"amx_bf16"}, False), (None, False)):
        monkeypatch.setattr(cpu, "cpu_flags", lambda flags=flags: flags)
        warn_if_bfloat16_is_emulated()
        said = capsys.readouterr()
        assert said.out == ""  # stdout carries only results
        assert ("emulates bfloat16" in said.err) == warned, (flags, said.err)
