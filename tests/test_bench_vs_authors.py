"""tools/bench_vs_authors.py: both procedures on the same images, curves against time, and a
ratio only where the authors' final SSIM is known."""

import numpy as np
import pytest
from helpers import load_tool

from covgan.models.classifier import build_classifier
from covgan.models.generator import build_generator


@pytest.fixture(scope="module")
def tool():
    return load_tool("bench_vs_authors")


def test_compare_runs_both_procedures_on_the_same_images(tool):
    generator = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    classifier = build_classifier("tiny", seed=0)
    rng = np.random.default_rng(1)
    images = generator([rng.standard_normal((2, 8)).astype("f4"),
                        rng.standard_normal((2, 2)).astype("f4")], training=False).numpy()
    from covgan.models.encoder import build_encoder

    encoder = build_encoder("tiny", z1_dim=8, z2_dim=2, seed=0)
    result = tool.compare(generator, classifier, images, authors_steps=12, covgan_steps=8,
                          encoder=encoder)
    authors, covgan = result["authors"], result["covgan"]
    # From one encoder start, against the same authors' run.
    started = result["encoder_start"]
    assert started["covgan"]["restarts"] == 1 and started["covgan"]["steps_run"] == 8
    assert started["ratio_valid"] == (started["ratio"] is not None
                                      and authors["curve_flattened"])  # shortened: flat only
    if started["ratio"] is not None:
        assert started["ratio"] == pytest.approx(
            authors["seconds_per_image_to_final"] / started["covgan_seconds_per_image_to_target"])
    assert authors["shortened"] and authors["steps_run"] == 12 and authors["full_steps"] == 5000
    assert authors["seconds_per_image_to_final"] == pytest.approx(
        authors["seconds_per_step"] * 5000)
    assert covgan["restarts"] == 2 and covgan["images_in_batch"] == 2
    for run in (authors, covgan):
        points = run["curve_per_image"]
        steps = [p["step"] for p in points]
        seconds = [p["seconds"] for p in points]
        assert steps[0] == 1 and steps == sorted(steps) and seconds == sorted(seconds)
        assert all(-1 <= p["ssim"] <= 1 for p in points)
        # Each image's SSIM beside the mean, at every point and at the end.
        assert all(len(p["ssim_per_image"]) == 2 for p in points)
        assert all(p["ssim"] == pytest.approx(np.mean(p["ssim_per_image"]), abs=1e-4)
                   for p in points)
        assert run["final_ssim"] == pytest.approx(np.mean(run["final_ssim_per_image"]), abs=1e-4)
    # Passes through C: the authors one a step; covgan's 2 starts one each a step (this G has
    # no gated branch, so no counterpart term).
    assert [p["classifier_passes"] for p in authors["curve_per_image"]] == \
        [p["step"] for p in authors["curve_per_image"]]
    assert authors["classifier_passes_per_image_to_final"] == 5000
    assert [p["classifier_passes"] for p in covgan["curve_per_image"]] == \
        [2 * p["step"] for p in covgan["curve_per_image"]]
    assert result["target_ssim"] == authors["final_ssim"]
    if result["ratio"] is None:
        assert not result["ratio_valid"] and covgan["final_ssim"] < result["target_ssim"]
        assert result["classifier_passes_ratio"] is None
    else:
        reached = result["covgan_seconds_per_image_to_target"]
        assert result["ratio"] == pytest.approx(authors["seconds_per_image_to_final"] / reached)
        first = next(p for p in covgan["curve_per_image"] if p["ssim"] >= result["target_ssim"])
        assert first["seconds"] == reached
        assert result["classifier_passes_ratio"] == pytest.approx(
            5000 / first["classifier_passes"])
        assert result["classifier_passes_ratio"] * result["seconds_per_pass_ratio"] == \
            pytest.approx(result["ratio"])
    back = result["authors_seconds_per_image_to_covgan_final"]
    if back is None:
        assert result["ratio_at_covgan_final"] is None
        assert max(p["ssim"] for p in authors["curve_per_image"]) < covgan["final_ssim"]
    else:
        assert result["ratio_at_covgan_final"] == pytest.approx(
            back / covgan["seconds_per_image"])
    assert "shortened to 12 of 5000" in result["note"]


def test_a_curve_is_flat_only_once_it_stops_rising(tool):
    def points(values):
        return [{"step": 10 * (i + 1), "ssim": v} for i, v in enumerate(values)]

    assert tool.flattened(points([0.2, 0.5, 0.6, 0.61, 0.612]))
    assert tool.flattened(points([0.5, 0.45, 0.42, 0.40, 0.38]))  # falling: ends lower still
    assert not tool.flattened(points([0.2, 0.3, 0.4, 0.5, 0.6]))


def test_variants_replace_fields_of_the_covgan_preset_with_their_types(tool):
    settings = tool.parse_variant("steps=1000,learning_rate=0.1,z1_start=zeros")
    assert (settings.steps, settings.learning_rate, settings.z1_start) == (1000, 0.1, "zeros")
    assert isinstance(settings.steps, int) and settings.restarts == 2  # the rest: the preset's
    assert tool.parse_variant("counterpart_weight=2").counterpart_weight == 2.0
    with pytest.raises(SystemExit, match="unknown inversion setting 'step'"):
        tool.parse_variant("step=3")
    # The tuning's too (--tuning-variant): a field left None reads as a number or as text.
    from covgan.explain.settings import TuningSettings

    tuning = tool.with_fields(TuningSettings(steps=4, layers="branch"),
                              "steps=8,bce_weight=0,feature_layer=conv_3", "tuning")
    assert (tuning.steps, tuning.bce_weight, tuning.feature_layer) == (8, 0.0, "conv_3")
    assert isinstance(tuning.steps, int) and tuning.layers == "branch"
    with pytest.raises(SystemExit, match="unknown tuning setting 'lr'"):
        tool.with_fields(tuning, "lr=0.1", "tuning")


def test_an_encoder_start_is_timed_from_before_the_encoder_and_solves_from_it(tool):
    import dataclasses

    import tensorflow as tf

    from covgan.models.encoder import build_encoder

    generator = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    classifier = build_classifier("tiny", seed=0)
    encoder = build_encoder("tiny", z1_dim=8, z2_dim=2, seed=2)
    images = np.random.default_rng(3).random((2, 128, 128, 1)).astype("f4")
    # One start, a negligible rate: every point of the curve is the encoder's reconstruction.
    settings = dataclasses.replace(tool.parse_variant("z1_start=encoder,restarts=1,steps=3"),
                                   learning_rate=1e-9, patience=3)
    result, _ = tool.run_covgan(generator, classifier, images, settings, seed=0, encoder=encoder)
    e1, e2 = encoder(images)
    expected = float(tf.reduce_mean(tf.image.ssim(generator([e1, e2]), images, max_val=1.0)))
    assert all(p["ssim"] == pytest.approx(expected, abs=1e-4) for p in result["curve_per_image"])
    assert result["curve_per_image"][0]["seconds"] > 0


def test_the_tuned_curve_goes_on_from_the_inversion_into_the_explanations_tuning(tool):
    import dataclasses

    import tensorflow as tf

    from covgan.explain.batched_tuning import BatchedBranchTuner
    from covgan.explain.settings import tuning_settings

    generator = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    classifier = build_classifier("tiny", seed=0)
    images = np.random.default_rng(4).random((2, 128, 128, 1)).astype("f4")
    tuning = tuning_settings(True, steps=16)
    result = tool.compare(generator, classifier, images, authors_steps=6, covgan_steps=4,
                          tuning=tuning)
    inverted, tuned = result["covgan"], result["tuned"]["covgan"]
    points = tuned["curve_per_image"]
    # It starts where the inversion ended, then one whole tuning per sampled length.
    assert points[0] == inverted["curve_per_image"][-1]
    assert [p["tuning_steps"] for p in points[1:]] == [1, 2, 4, 8, 16]
    assert all(p["seconds"] > inverted["seconds_per_image"] for p in points[1:])
    assert tuned["final_ssim"] == points[-1]["ssim"] and tuned["tuning"]["steps"] == 16
    # A tuning step passes through C once (the classifier and feature terms share the pass).
    assert [p["classifier_passes"] - inverted["classifier_passes_per_image"]
            for p in points] == [0, 1, 2, 4, 8, 16]
    # The last point is the explanation's own tuning of the images from the inversion's codes,
    # as the command runs it here: both images in one batched loop.
    assert tuned["tuned_in"] == "one batch of 2"
    _, codes = tool.run_covgan(generator, classifier, images,
                               dataclasses.replace(tool.INVERSION_PRESETS["covgan"], steps=4),
                               seed=0)
    tuner = BatchedBranchTuner(generator, tuning, classifier)
    tuner.tune(images, codes[:, :8], codes[:, 8:])
    ssim = []
    for i in range(2):
        z1, z2 = codes[i:i + 1, :8], codes[i:i + 1, 8:]
        drawn = tuner.with_branch_of(i)([z1, z2], training=False)
        ssim.append(float(tf.image.ssim(drawn, images[i:i + 1], max_val=1.0)[0]))
    assert tuned["final_ssim"] == pytest.approx(np.mean(ssim), abs=1e-4)
    assert tuned["final_ssim"] != pytest.approx(inverted["final_ssim"], abs=1e-4)
    if result["tuned"]["ratio"] is not None:
        assert result["tuned"]["ratio"] == pytest.approx(
            result["authors"]["seconds_per_image_to_final"]
            / result["tuned"]["covgan_seconds_per_image_to_target"])


def test_more_images_than_a_tuning_batch_are_tuned_in_batches_each_on_its_own(tool, monkeypatch):
    import dataclasses

    from covgan.explain.settings import tuning_settings

    generator = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    classifier = build_classifier("tiny", seed=0)
    images = np.random.default_rng(5).random((3, 128, 128, 1)).astype("f4")
    inverted, codes = tool.run_covgan(
        generator, classifier, images,
        dataclasses.replace(tool.INVERSION_PRESETS["covgan"], steps=4), seed=0)
    tuning = tuning_settings(True, steps=4)
    together = tool.run_tuned(generator, classifier, images, inverted, codes, tuning)
    monkeypatch.setattr(tool, "TUNING_BATCH", 2)
    in_batches = tool.run_tuned(generator, classifier, images, inverted, codes, tuning)
    assert together["tuned_in"] == "one batch of 3"
    assert in_batches["tuned_in"] == "2 batches (2, 1)"
    # Each copy is tuned on its own image alone, so the batch it fell in does not matter.
    assert in_batches["final_ssim_per_image"] == pytest.approx(
        together["final_ssim_per_image"], abs=2e-3)
    assert tool._batches_said([16, 16]) == "2 batches of 16"


def test_classifier_passes_count_starts_pruning_and_the_counterpart_term(tool):
    import dataclasses

    plain = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    covgan = tool.INVERSION_PRESETS["covgan"]  # 2 starts, the better one alone after 25 steps
    assert tool.classifier_passes(covgan, plain, 10) == 2 * 10
    assert tool.classifier_passes(covgan, plain, 200) == 2 * 25 + 175
    # A gated G's counterpart term reads G(z1, 0) too: two passes a row.
    assert tool.classifier_passes(covgan, gated, 200) == 2 * (2 * 25 + 175)
    assert tool.classifier_passes(dataclasses.replace(covgan, keep_best_after=0), plain,
                                  200) == 2 * 200
    assert tool.classifier_passes(tool.INVERSION_PRESETS["authors"], gated, 5000) == 5000
