"""covgan export: SavedModel layout, documented signatures, TF tools run them, equal outputs."""

import functools
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from covgan.errors import CovganError
from covgan.export.model_config import read_model_config
from covgan.export.savedmodel import export_run
from covgan.training.runs import load_run

SAVED_MODEL_CLI = str(pathlib.Path(sys.executable).with_name("saved_model_cli"))

# The signature table of docs/guide/serving.md, with the tiny run's z sizes (8, 2) and S = 11.
GENERATOR_KEYS = {
    "serving_default": ({"z1": [-1, 8], "z2": [-1, 2]},
                        {"images": [-1, 128, 128, 1], "probabilities": [-1]}),
    "traverse": ({"z1": [-1, 8], "z2": [-1, 2]},
                 {"images": [-1, 11, 128, 128, 1], "probabilities": [-1, 11],
                  "difference": [-1, 128, 128, 1]}),
    "invert": ({"images": [-1, 128, 128, 1]},
               {"z1": [-1, 8], "z2": [-1, 2], "reconstructions": [-1, 128, 128, 1],
                "counterparts": [-1, 128, 128, 1], "probabilities": [-1, 3], "mse": [-1],
                "ssim": [-1], "trusted": [-1]}),
}
CLASSIFIER_KEYS = {
    "serving_default": ({"images": [-1, 128, 128, 1]}, {"probabilities": [-1, 2]}),
    "gradcam": ({"images": [-1, 128, 128, 1]},
                {"heatmaps": [-1, 128, 128], "probabilities": [-1, 2]}),
}


@functools.cache
def _show(path):
    """`saved_model_cli show --all` of one SavedModel (a TensorFlow start each: read once)."""
    result = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", str(path), "--all"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _signature_block(text, name):
    start = text.index(f"signature_def['{name}']")
    end = text.find("signature_def[", start + 1)
    return text[start:end if end > 0 else None]


def _shape_text(shape):
    return "(" + ", ".join(str(d) for d in shape) + ")"


@pytest.mark.parametrize("model, keys", [("covgan_generator", GENERATOR_KEYS),
                                         ("covgan_classifier", CLASSIFIER_KEYS)])
def test_saved_model_cli_lists_the_documented_keys_dtypes_and_shapes(exported, model, keys):
    text = _show(exported / model / "1")
    for signature, (inputs, outputs) in keys.items():
        block = _signature_block(text, signature)
        assert "tensorflow/serving/predict" in block
        for kind, names in (("inputs", inputs), ("outputs", outputs)):
            for name, shape in names.items():
                entry = block[block.index(f"{kind}['{name}']"):]
                entry = entry[: entry.index("name:")]
                dtype = "DT_BOOL" if name == "trusted" else "DT_FLOAT"
                assert f"dtype: {dtype}" in entry, (signature, name, entry)
                assert f"shape: {_shape_text(shape)}" in entry, (signature, name, entry)
        # Nothing undocumented is required as input.
        assert block.count("inputs['") == len(inputs)


def test_explain_signature_combines_invert_traverse_and_gradcam(exported):
    block = _signature_block(_show(exported / "covgan_generator" / "1"), "explain")
    for key in ("z1", "z2", "reconstructions", "counterparts", "probabilities", "mse", "traversal",
                "traversal_probabilities", "difference", "film_walk", "film_walk_probabilities",
                "gradcam", "trusted"):
        assert f"outputs['{key}']" in block


def test_saved_model_cli_runs_traverse_and_classify(exported, tiny_run, tmp_path):
    run = load_run(tiny_run)
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((2, 8)).astype("f4"), rng.standard_normal((2, 2)).astype("f4")
    np.save(tmp_path / "z1.npy", z1)
    np.save(tmp_path / "z2.npy", z2)
    images = run.generator([z1, z2]).numpy()
    np.save(tmp_path / "images.npy", images)
    for model, signature, inputs in (
            ("covgan_generator", "traverse", f"z1={tmp_path}/z1.npy;z2={tmp_path}/z2.npy"),
            ("covgan_classifier", "serving_default", f"images={tmp_path}/images.npy")):
        out = tmp_path / signature
        result = subprocess.run(
            [SAVED_MODEL_CLI, "run", "--dir", str(exported / model / "1"), "--tag_set", "serve",
             "--signature_def", signature, "--inputs", inputs, "--outdir", str(out)],
            capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    from covgan.explain.traverse import traverse

    frames, probabilities = traverse(run.generator, run.classifier, z1, z2)
    np.testing.assert_allclose(np.load(tmp_path / "traverse" / "images.npy"), frames, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "traverse" / "probabilities.npy"),
                               probabilities, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "serving_default" / "probabilities.npy"),
                               run.classifier(images).numpy(), atol=1e-5)


def test_reloaded_signatures_equal_the_live_models(exported, tiny_run):
    from covgan.explain.gradcam import make_gradcam_fn

    run = load_run(tiny_run)
    generator = tf.saved_model.load(str(exported / "covgan_generator" / "1")).signatures
    classifier = tf.saved_model.load(str(exported / "covgan_classifier" / "1")).signatures
    rng = np.random.default_rng(1)
    z1, z2 = rng.standard_normal((3, 8)).astype("f4"), rng.standard_normal((3, 2)).astype("f4")
    live = run.generator([z1, z2]).numpy()
    generated = generator["serving_default"](z1=tf.constant(z1), z2=tf.constant(z2))
    np.testing.assert_allclose(generated["images"], live, atol=1e-5)
    np.testing.assert_allclose(generated["probabilities"], run.classifier(live).numpy()[:, 1],
                               atol=1e-5)
    walked = generator["traverse"](z1=tf.constant(z1), z2=tf.constant(z2))
    np.testing.assert_allclose(walked["images"][:, -1], live, atol=1e-5)
    np.testing.assert_allclose(walked["difference"],
                               walked["images"][:, -1] - walked["images"][:, 0], atol=1e-6)
    classified = classifier["serving_default"](images=tf.constant(live))["probabilities"]
    np.testing.assert_allclose(classified, run.classifier(live).numpy(), atol=1e-5)
    heatmaps, _ = make_gradcam_fn(run.classifier)(live)
    np.testing.assert_allclose(classifier["gradcam"](images=tf.constant(live))["heatmaps"],
                               heatmaps, atol=1e-4)

    inverted = generator["invert"](images=tf.constant(live))
    np.testing.assert_allclose(inverted["reconstructions"],
                               run.generator([inverted["z1"], inverted["z2"]]).numpy(), atol=1e-5)
    np.testing.assert_allclose(inverted["counterparts"],
                               run.generator([inverted["z1"], 0 * inverted["z2"]]).numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(inverted["probabilities"][:, 0], run.classifier(live)[:, 1],
                               atol=1e-5)
    # Stateless starts: the same request gets the same answer.
    again = generator["invert"](images=tf.constant(live))
    np.testing.assert_array_equal(again["z1"], inverted["z1"])
    explained = generator["explain"](images=tf.constant(live))
    np.testing.assert_allclose(explained["z1"], inverted["z1"], atol=1e-5)
    np.testing.assert_allclose(explained["traversal"][:, -1], inverted["reconstructions"],
                               atol=1e-5)


def test_layout_config_warmup_and_metadata(exported):
    config = read_model_config(exported / "models.config")
    entries = {c.name: c for c in config.model_config_list.config}
    assert set(entries) == {"covgan_generator", "covgan_classifier"}
    assert entries["covgan_generator"].base_path == str((exported / "covgan_generator").resolve())
    for model, count in (("covgan_generator", 5), ("covgan_classifier", 2)):
        extra = exported / model / "1" / "assets.extra"
        records = list(tf.data.TFRecordDataset(str(extra / "tf_serving_warmup_requests")))
        assert len(records) == count
        log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
        request = log.predict_log.request
        assert request.model_spec.name == model
        metadata = json.loads((extra / "covgan.json").read_text())
        assert (metadata["z1_dim"], metadata["z2_dim"], metadata["traverse_steps"]) == (8, 2, 11)
        assert metadata["lambda"] == pytest.approx(0.1)
        assert metadata["inversion"]["steps"] == 20
    # Nothing half-written is left beside the versions.
    assert sorted(p.name for p in (exported / "covgan_generator").iterdir()) == ["1"]


def test_versions_count_up_and_are_never_overwritten(tiny_run, exported, tmp_path):
    import shutil

    from covgan.explain.invert import InversionSettings
    from covgan.export.settings import ServingSettings

    run = load_run(tiny_run)
    quick = ServingSettings(traverse_steps=3, inversion=InversionSettings(steps=2, restarts=1))
    shutil.copytree(exported, tmp_path, dirs_exist_ok=True)  # a first export, version 1
    assert export_run(run, tmp_path, settings=quick)["version"] == 2
    with pytest.raises(CovganError, match="exists"):
        export_run(run, tmp_path, version=2, settings=quick)
    config = read_model_config(tmp_path / "models.config")
    assert len(config.model_config_list.config) == 2  # updated, not duplicated
    assert sorted(p.name for p in (tmp_path / "covgan_classifier").iterdir()) == ["1", "2"]


def test_a_mixed_precision_export_keeps_float32_signatures_and_close_outputs(tiny_run, exported,
                                                                            tmp_path):
    import keras
    from click.testing import CliRunner

    from covgan.cli import main

    result = CliRunner().invoke(main, ["export", "--run", str(tiny_run), "--out", str(tmp_path),
                                       "--invert-steps", "2", "--restarts", "1",
                                       "--mixed-precision"])
    assert result.exit_code == 0, result.output
    assert keras.mixed_precision.global_policy().name == "float32"
    rng = np.random.default_rng(3)
    codes = {"z1": tf.constant(rng.standard_normal((2, 8)).astype("f4")),
             "z2": tf.constant(rng.standard_normal((2, 2)).astype("f4"))}
    drawn = {}
    for name, folder in (("float32", exported), ("mixed", tmp_path)):
        generator = tf.saved_model.load(str(folder / "covgan_generator" / "1"))
        classifier = tf.saved_model.load(str(folder / "covgan_classifier" / "1"))
        images = generator.signatures["serving_default"](**codes)["images"]
        heatmaps = classifier.signatures["gradcam"](images=images)["heatmaps"]
        assert images.dtype == tf.float32 and heatmaps.dtype == tf.float32, name
        drawn[name] = images.numpy(), heatmaps.numpy()
    # bfloat16 keeps about three digits: the images agree to a few hundredths, and the
    # results differ at all (the export did compute in bfloat16).
    difference = np.abs(drawn["mixed"][0] - drawn["float32"][0])
    assert 0 < difference.max() < 0.05
    assert np.abs(drawn["mixed"][1] - drawn["float32"][1]).mean() < 0.05


def test_a_gated_generator_exports_its_counterpart_term(tmp_path):
    # A gated G's inversion holds the counterpart negative (settings_for): the exported invert
    # signature traces the one-pass (image, counterpart) model, and the metadata records the
    # weight it chose, not "left to the inversion".
    import types

    from covgan.explain.invert import InversionSettings
    from covgan.explain.settings import COUNTERPART_WEIGHT
    from covgan.export.settings import ServingSettings
    from covgan.models.classifier import build_classifier
    from covgan.models.generator import build_generator

    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    run = types.SimpleNamespace(generator=gated, classifier=build_classifier("tiny", seed=0),
                                encoder=None, path=tmp_path / "run", config={"preset": "tiny"})
    export_run(run, tmp_path / "out",
               settings=ServingSettings(inversion=InversionSettings(steps=3, restarts=2),
                                        tune_steps=3))
    version = tmp_path / "out" / "covgan_generator" / "1"
    metadata = json.loads((version / "assets.extra" / "covgan.json").read_text())
    assert metadata["inversion"]["counterpart_weight"] == COUNTERPART_WEIGHT > 0
    images = np.random.default_rng(2).random((2, 128, 128, 1)).astype("f4")
    signatures = tf.saved_model.load(str(version)).signatures
    inverted = signatures["invert"](images=tf.constant(images))
    np.testing.assert_allclose(inverted["counterparts"],
                               gated([inverted["z1"], 0 * inverted["z2"]]).numpy(), atol=1e-5)
    # The saved explain tunes the images its trust rule does not trust untuned (the default),
    # and only those: the loaded graph keeps the choice.
    assert metadata["tuning"]["where"] == "untrusted"
    explained = signatures["explain"](images=tf.constant(images))
    tuned = np.isfinite(explained["tuning_loss"].numpy()).all(axis=1)
    np.testing.assert_array_equal(tuned, ~explained["trusted_untuned"].numpy())
