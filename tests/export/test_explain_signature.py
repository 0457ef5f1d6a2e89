"""The exported explain signature computes `covgan explain`'s explanation in one graph."""

import numpy as np
import pytest
import tensorflow as tf

from covgan.explain.invert import InversionSettings, settings_for
from covgan.explain.maps import explanation_maps
from covgan.explain.pipeline import explain
from covgan.explain.settings import TuningSettings, tuning_settings
from covgan.export.settings import ServingSettings
from covgan.export.signatures import generator_signatures
from covgan.models.classifier import build_classifier
from covgan.models.generator import build_generator


@pytest.fixture(scope="module")
def gated_models():
    generator = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    return generator, build_classifier("tiny", seed=0)


@pytest.fixture(scope="module")
def images():
    pictures = np.random.default_rng(4).random((2, 128, 128, 1)).astype("float32") * 0.5
    pictures[:, 50:62, 40:52] = 1.0  # what the codes cannot draw: the tuning's work
    return pictures


def test_the_untuned_form_is_the_pipelines_to_rounding(gated_models, images):
    generator, classifier = gated_models
    settings = settings_for(generator, InversionSettings(steps=8, restarts=2))
    served = generator_signatures(generator, classifier, ServingSettings(
        inversion=settings, tune_steps=5))["explain_untuned"](images=tf.constant(images))
    local = explain(generator, classifier, images, settings=settings)
    assert set(served) == set(local) - {"crossing_step"}
    for key, value in served.items():
        np.testing.assert_allclose(value, local[key], atol=2e-4, err_msg=key)


def test_the_tuned_form_tunes_each_image_and_reports_every_part(gated_models, images):
    generator, classifier = gated_models
    settings = settings_for(generator, InversionSettings(steps=8, restarts=2))
    tuning = tuning_settings(True, steps=25, where="all")  # every image (the untrusted: below)
    signatures = generator_signatures(generator, classifier, ServingSettings(
        inversion=settings, tune_steps=25, tune_where="all", tuning_convolution="patches"))
    served = {k: v.numpy() for k, v in signatures["explain"](images=tf.constant(images)).items()}
    local = explain(generator, classifier, images, settings=settings, tuning=tuning)
    # The keys of `covgan explain` with tuning, the maps included; the same inversion under it.
    assert set(served) == set(local) - {"crossing_step"}
    assert {m.key for m in explanation_maps()} <= set(served)
    for key in ("z1", "z2", "ssim_untuned", "trusted_untuned", "counterparts"):
        np.testing.assert_allclose(served[key], local[key], atol=1e-5, err_msg=key)
    # Each image's own branch was tuned: its fit improved, its counterpart is G's own, its walk
    # ends at its tuned reconstruction, which is closer to the image than the untuned one.
    # (How the pixels fall depends on the path: this untrained G's square got darker, in the
    # pipeline too, while each image's error halved.)
    assert np.all(served["tuning_loss"][:, 1] < served["tuning_loss"][:, 0])
    np.testing.assert_allclose(served["traversal"][:, -1], served["reconstructions"], atol=1e-5)
    np.testing.assert_allclose(served["traversal"][:, 0], served["counterparts"], atol=1e-5)
    # The walk on the film goes from the tuned add-back to the image.
    np.testing.assert_allclose(served["film_walk"][:, 0], served["add_backs"], atol=1e-5)
    np.testing.assert_allclose(served["film_walk"][:, -1], images, atol=1e-5)
    np.testing.assert_allclose(served["film_walk_probabilities"][:, 0],
                               served["add_back_probabilities"], atol=1e-5)
    untuned = generator([served["z1"], served["z2"]], training=False).numpy()
    assert np.all(served["mse"] < 0.75 * np.square(untuned - images).mean(axis=(1, 2, 3)))
    # The patches convolution fits as well as the pipeline's grouped one (its own path).
    np.testing.assert_allclose(served["tuning_loss"][:, 1], local["tuning_loss"][:, 1],
                               rtol=0.1)


def test_the_served_form_tunes_only_the_untrusted_as_the_pipeline_does(gated_models, images,
                                                                       monkeypatch):
    from covgan.explain import invert as inversion
    from covgan.export.signatures import served_tuning

    generator, classifier = gated_models
    settings = settings_for(generator, InversionSettings(steps=8, restarts=2))
    every_row_trusted = tf.Variable(False)

    def fixed_trust(p_image, *_):  # the trust rule's verdicts, fixed: even rows trusted
        even = tf.range(tf.shape(p_image)[0]) % 2 == 0
        return tf.logical_or(even, every_row_trusted)

    monkeypatch.setattr(inversion, "is_trusted", fixed_trust)
    tuning = tuning_settings(True, steps=25, where="untrusted")
    signatures = generator_signatures(generator, classifier, ServingSettings(
        inversion=settings, tune_steps=25, tuning_convolution="patches"))
    assert served_tuning(generator, ServingSettings(tune_steps=25)) == tuning  # the default
    served = {k: v.numpy() for k, v in signatures["explain"](images=tf.constant(images)).items()}
    untuned = {k: v.numpy() for k, v in
               signatures["explain_untuned"](images=tf.constant(images)).items()}
    local = explain(generator, classifier, images, settings=settings, tuning=tuning)
    assert set(served) == set(local) - {"crossing_step"}
    np.testing.assert_array_equal(served["trusted_untuned"], [True, False])
    for key in ("reconstructions", "traversal", "latent_gradients", "film_gradients",
                "traversal_map", "ssim"):
        np.testing.assert_allclose(served[key][0], untuned[key][0], atol=1e-6, err_msg=key)
        np.testing.assert_allclose(served[key][0], local[key][0], atol=2e-4, err_msg=key)
        assert not np.allclose(served[key][1], untuned[key][1], atol=1e-3), key  # tuned
    assert np.isnan(served["tuning_loss"][0]).all() and np.isnan(local["tuning_loss"][0]).all()
    before, after = served["tuning_loss"][1]
    assert before == pytest.approx(local["tuning_loss"][1, 0], rel=1e-3)
    assert after < before and after == pytest.approx(local["tuning_loss"][1, 1], rel=0.1)
    np.testing.assert_allclose(served["traversal"][1, -1], served["reconstructions"][1],
                               atol=1e-5)
    # Every row trusted: nothing is tuned, and the answer is the untuned one.
    every_row_trusted.assign(True)
    none = {k: v.numpy() for k, v in signatures["explain"](images=tf.constant(images)).items()}
    assert np.isnan(none["tuning_loss"]).all()
    for key in ("reconstructions", "traversal", "latent_gradients", "film_gradients", "ssim"):
        np.testing.assert_allclose(none[key], untuned[key], atol=1e-6, err_msg=key)


def test_a_g_without_a_gated_branch_is_not_tuned(images):
    from covgan.export.signatures import served_tuning

    plain = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    assert served_tuning(plain, ServingSettings()) == TuningSettings()
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    assert served_tuning(gated, ServingSettings()).steps > 0
    assert served_tuning(gated, ServingSettings(tune_steps=0)).steps == 0


def test_export_refuses_tuning_a_g_it_cannot_tune(tmp_path):
    import types

    from covgan.errors import CovganError
    from covgan.export.savedmodel import export_run

    run = types.SimpleNamespace(generator=build_generator("tiny", z1_dim=8, z2_dim=2, seed=0),
                                classifier=build_classifier("tiny", seed=0), encoder=None,
                                path=tmp_path / "run", config={})
    with pytest.raises(CovganError, match="gated G's branch only"):
        export_run(run, tmp_path / "out", settings=ServingSettings(tune_steps=10))
    assert not (tmp_path / "out").exists()
