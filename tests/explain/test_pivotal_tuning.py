import dataclasses

import keras
import numpy as np
import pytest

from covgan.explain.invert import InversionSettings, invert
from covgan.explain.pipeline import explain
from covgan.explain.pivotal_tuning import PivotalTuner, tuner_for
from covgan.explain.settings import (
    BRANCH_TUNING_STEPS,
    TUNING_BCE_WEIGHTS,
    TUNING_FEATURE_WEIGHTS,
    TUNING_LEARNING_RATES,
    TUNING_RESIDUAL_FOCUS,
    TuningSettings,
    tuning_settings,
)
from covgan.models import losses
from covgan.models.classifier import build_classifier, positive_probability
from covgan.models.generator import build_generator, residual_branch_layers


@pytest.fixture(scope="module")
def generator():
    return build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)


def codes(seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((1, 8)).astype("float32"),
            rng.standard_normal((1, 2)).astype("float32"))


def lesioned(generator, z1, z2):
    """G's own image with a bright square the codes cannot reach."""
    image = generator([z1, z2], training=False).numpy()
    image[:, 40:56, 40:56] = 1.0
    return image


def mse(a, b):
    return float(np.mean(np.square(np.asarray(a) - np.asarray(b))))


def test_tuning_draws_what_the_codes_miss_and_holds_the_counterpart(generator):
    z1, z2 = codes(1)
    image = lesioned(generator, z1, z2)
    counterpart = generator([z1, np.zeros_like(z2)], training=False).numpy()
    untouched = [w.copy() for w in generator.get_weights()]
    untuned_error = mse(generator([z1, z2], training=False), image)
    drift, error, drawn = {}, {}, {}
    for anchor in (0.0, 10.0):
        tuner = PivotalTuner(generator, TuningSettings(steps=40, anchor_weight=anchor))
        tuned = tuner.tune(image, z1, z2)
        before, after = tuner.last_loss
        assert after < before
        drawn[anchor] = tuned([z1, z2], training=False).numpy()
        error[anchor] = mse(drawn[anchor], image)
        drift[anchor] = mse(tuned([z1, np.zeros_like(z2)], training=False), counterpart)
    assert error[0.0] < 0.3 * untuned_error
    assert error[10.0] < 0.8 * untuned_error
    # The anchor is what keeps the counterpart where the untuned G put it.
    assert drift[10.0] < 0.1 * drift[0.0]
    # The run's G is never changed.
    for kept, now in zip(untouched, generator.get_weights()):
        np.testing.assert_array_equal(kept, now)
    # Each call starts again from the untuned G: another image in between changes nothing.
    other = codes(2)
    tuner.tune(lesioned(generator, *other), *other)
    again = tuner.tune(image, z1, z2)([z1, z2], training=False).numpy()
    np.testing.assert_allclose(again, drawn[10.0], atol=1e-5)


def test_branch_tuning_keeps_the_counterpart_exactly_and_changes_only_the_branch():
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    z1, z2 = codes(7)
    image = lesioned(gated, z1, z2)
    untuned_error = mse(gated([z1, z2], training=False), image)
    counterpart = gated([z1, np.zeros_like(z2)], training=False).numpy()
    tuner = PivotalTuner(gated, TuningSettings(steps=60, learning_rate=3e-3, layers="branch"))
    tuned = tuner.tune(image, z1, z2)
    assert mse(tuned([z1, z2], training=False), image) < 0.5 * untuned_error
    np.testing.assert_array_equal(tuned([z1, np.zeros_like(z2)], training=False), counterpart)
    branch = {layer.name for layer in residual_branch_layers(gated)}
    assert {"gate", "residual", "residual4_conv", "residual5_conv"} <= branch
    for layer in tuned.layers:
        for copy, source in zip(layer.weights, gated.get_layer(layer.name).weights):
            changed = not np.array_equal(copy.numpy(), source.numpy())
            assert changed <= (layer.name in branch), layer.name
    assert any(not np.array_equal(w.numpy(), s.numpy())
               for w, s in zip(tuned.get_layer("gate").weights, gated.get_layer("gate").weights))
    # Reset from G on every call, whatever order the toggled copy lists its weights in.
    first = tuned([z1, z2], training=False).numpy()
    tuner.tune(lesioned(gated, *codes(8)), *codes(8))
    np.testing.assert_allclose(tuner.tune(image, z1, z2)([z1, z2], training=False), first,
                               atol=1e-5)


def test_branch_tuning_needs_a_gated_generator(generator):
    with pytest.raises(ValueError, match="gated-residual"):
        PivotalTuner(generator, TuningSettings(steps=1, layers="branch"))
    with pytest.raises(ValueError, match="layers must be one of"):
        TuningSettings(layers="trunk")


def test_tuning_takes_one_image_and_at_least_one_step(generator):
    z1, z2 = codes(4)
    with pytest.raises(ValueError, match="one image at a time"):
        PivotalTuner(generator, TuningSettings(steps=1)).tune(
            np.zeros((2, 128, 128, 1), np.float32), np.repeat(z1, 2, 0), np.repeat(z2, 2, 0))
    with pytest.raises(ValueError, match="steps >= 1"):
        PivotalTuner(generator, TuningSettings(steps=0))
    with pytest.raises(ValueError, match="learning_rate > 0"):
        TuningSettings(learning_rate=0.0)


def test_a_tuner_is_kept_per_generator_and_settings(generator):
    settings = TuningSettings(steps=3)
    tuner = tuner_for(generator, settings)
    assert tuner_for(generator, TuningSettings(steps=3)) is tuner  # equal settings: the same
    assert tuner_for(generator, TuningSettings(steps=4)) is not tuner
    # Images tuned at the same time have tuners, and copies of G, of their own.
    assert tuner_for(generator, settings, None, 1).tuned is not tuner.tuned
    other = build_generator("tiny", z1_dim=8, z2_dim=2, seed=1)
    assert tuner_for(other, settings).generator is other


def test_the_pipeline_walks_each_images_tuned_generator(generator):
    classifier = build_classifier("tiny", seed=0)
    images = np.concatenate([lesioned(generator, *codes(seed)) for seed in (5, 6)])
    settings = InversionSettings(steps=5, restarts=1)
    plain = invert(generator, classifier, images, settings=settings, seed=0)
    tuned = explain(generator, classifier, images, settings=settings, image_maps=False,
                    tuning=TuningSettings(steps=20))
    # The same inversion underneath, reported beside the tuned figures.
    np.testing.assert_allclose(tuned["z1"], plain["z1"])
    np.testing.assert_allclose(tuned["ssim_untuned"], plain["ssim"])
    np.testing.assert_array_equal(tuned["trusted_untuned"], plain["trusted"])
    assert tuned["traversal"].shape == (2, 11, 128, 128, 1)
    assert np.all(tuned["mse"] < plain["mse"])
    assert np.all(tuned["tuning_loss"][:, 1] < tuned["tuning_loss"][:, 0])
    # The walk runs through the tuned copy: it ends at the tuned reconstruction, and its start,
    # the anchored counterpart, moved less than the reconstruction did (over inversion seeds
    # 0-4 with the image-seeded starts, 0.23-0.54 of it; a free counterpart moves as much).
    np.testing.assert_allclose(tuned["traversal"][:, -1], tuned["reconstructions"], atol=1e-5)
    np.testing.assert_allclose(tuned["traversal"][:, 0], tuned["counterparts"], atol=1e-5)
    assert mse(tuned["counterparts"], plain["counterparts"]) < 0.75 * mse(
        tuned["reconstructions"], plain["reconstructions"])
    # A second call reuses the tuner and starts it again from G: the same result.
    again = explain(generator, classifier, images, settings=settings, image_maps=False,
                    tuning=TuningSettings(steps=20))
    np.testing.assert_allclose(again["reconstructions"], tuned["reconstructions"], atol=1e-5)
    # The compiled scoring reads each image's own tuned weights, not the first image's.
    tuner = tuner_for(generator, TuningSettings(steps=20))
    for i in range(2):
        z1, z2 = tuned["z1"][i : i + 1], tuned["z2"][i : i + 1]
        drawn = tuner.tune(images[i : i + 1], z1, z2)([z1, z2], training=False)
        np.testing.assert_allclose(tuned["reconstructions"][i : i + 1], drawn, atol=1e-5)


def test_the_commands_tune_a_gated_branch_by_default_and_other_generators_only_when_asked():
    assert tuning_settings(True) == TuningSettings(
        steps=BRANCH_TUNING_STEPS, learning_rate=TUNING_LEARNING_RATES["branch"],
        layers="branch", feature_weight=TUNING_FEATURE_WEIGHTS["branch"],
        bce_weight=TUNING_BCE_WEIGHTS["branch"], residual_focus=TUNING_RESIDUAL_FOCUS["branch"],
        where="untrusted")
    branch = tuning_settings(True)
    # The branch holds what C sees and how it reads the image, and fits hardest where the
    # inversion missed.
    assert branch.feature_weight > 0 and branch.bce_weight > 0 and branch.residual_focus > 0
    assert tuning_settings(True, feature_weight=0.0).feature_weight == 0.0
    assert tuning_settings(True, bce_weight=0.0, residual_focus=0.0) == TuningSettings(
        steps=BRANCH_TUNING_STEPS, learning_rate=TUNING_LEARNING_RATES["branch"],
        layers="branch", feature_weight=TUNING_FEATURE_WEIGHTS["branch"], where="untrusted")
    assert tuning_settings(False).steps == 0
    assert tuning_settings(True, steps=0).steps == 0
    asked = tuning_settings(False, steps=50)
    assert (asked.layers, asked.learning_rate) == ("all", TUNING_LEARNING_RATES["all"])
    whole = tuning_settings(True, layers="all", steps=10, anchor_weight=5.0)
    assert whole == TuningSettings(steps=10, learning_rate=TUNING_LEARNING_RATES["all"],
                                   anchor_weight=5.0, layers="all", where="untrusted")
    assert tuning_settings(True, where="all").where == "all"
    assert tuning_settings(True, learning_rate=1e-3).learning_rate == 1e-3
    # Naming the layers asks for tuning: `--tune-layers all` alone once tuned nothing.
    for gated in (True, False):
        named = tuning_settings(gated, layers="all")
        assert (named.steps, named.learning_rate) == (BRANCH_TUNING_STEPS,
                                                      TUNING_LEARNING_RATES["all"])
    assert tuning_settings(True, layers="all", branch_steps=150).steps == 150


def test_the_classifier_term_holds_the_tuned_reading_to_the_images():
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    classifier = build_classifier("tiny", seed=0)
    z1, z2 = codes(9)
    image = lesioned(gated, z1, z2)
    with pytest.raises(ValueError, match="needs the classifier"):
        PivotalTuner(gated, TuningSettings(steps=1, bce_weight=1.0))
    tuner = PivotalTuner(gated, TuningSettings(steps=1, layers="branch", bce_weight=2.0),
                         classifier)
    tuner.tune(image, z1, z2)
    drawn = gated([z1, z2], training=False)
    target = positive_probability(classifier, image)
    expected = mse(drawn, image) + 2.0 * float(
        losses.binary_cross_entropy(target, positive_probability(classifier, drawn))[0])
    assert tuner.last_loss[0] == pytest.approx(expected, rel=1e-4)


def test_the_feature_term_holds_the_classifiers_activations_to_the_images():
    from covgan.explain.class_score import feature_convolution, score_model

    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    classifier = build_classifier("tiny", seed=0)
    # The deepest convolution at a quarter of the side (32 of 128 pixels) or finer.
    assert feature_convolution(classifier) == "block3_conv3"
    z1, z2 = codes(9)
    image = lesioned(gated, z1, z2)
    with pytest.raises(ValueError, match="needs the classifier"):
        PivotalTuner(gated, TuningSettings(steps=1, feature_weight=1.0))
    for layer in (None, "block2_conv2"):
        settings = TuningSettings(steps=20, layers="branch", learning_rate=3e-3,
                                  feature_weight=3.0, feature_layer=layer)
        tuner = PivotalTuner(gated, settings, classifier)
        tuner.tune(image, z1, z2)
        features = score_model(classifier, layer or "block3_conv3").model
        seen = features(image, training=False)[0]
        drawn = gated([z1, z2], training=False)
        relative = float(np.mean(np.square(features(drawn, training=False)[0] - seen))
                         / np.mean(np.square(seen)))
        assert tuner.last_loss[0] == pytest.approx(mse(drawn, image) + 3.0 * relative, rel=1e-4)
        assert tuner.last_loss[1] < tuner.last_loss[0]
    # The pipeline hands the tuner its classifier for the term (the commands' default).
    explained = explain(gated, classifier, image, settings=InversionSettings(steps=2, restarts=1),
                        image_maps=False, tuning=settings)
    assert explained["tuning_loss"][0, 1] < explained["tuning_loss"][0, 0]


def test_both_classifier_terms_together_read_one_pass_as_c_reads_the_drawing():
    # The tuner reads the activations and p from one pass through C; each must be what C and
    # its feature layer give on their own.
    from covgan.explain.class_score import score_model

    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    classifier = build_classifier("tiny", seed=0)
    z1, z2 = codes(9)
    image = lesioned(gated, z1, z2)
    tuner = PivotalTuner(gated, TuningSettings(steps=1, layers="branch", feature_weight=3.0,
                                               bce_weight=2.0), classifier)
    tuner.tune(image, z1, z2)
    features = score_model(classifier, "block3_conv3").model
    seen = features(image, training=False)[0]
    drawn = gated([z1, z2], training=False)
    relative = float(np.mean(np.square(features(drawn, training=False)[0] - seen))
                     / np.mean(np.square(seen)))
    read = float(losses.binary_cross_entropy(positive_probability(classifier, image),
                                             positive_probability(classifier, drawn))[0])
    expected = mse(drawn, image) + 3.0 * relative + 2.0 * read
    assert 2.0 * read > 1e-3 and tuner.last_loss[0] == pytest.approx(expected, rel=1e-4)


def test_residual_focus_weights_the_fit_by_where_the_inversion_missed():
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    z1, z2 = codes(9)
    image = lesioned(gated, z1, z2)
    drawn = gated([z1, z2], training=False).numpy()
    missed = np.abs(image - drawn)
    weights = 1.0 + 4.0 * missed / missed.mean()
    expected = float(np.mean(weights / weights.mean() * np.square(drawn - image)))
    focused = PivotalTuner(gated, TuningSettings(steps=30, layers="branch", learning_rate=3e-3,
                                                 residual_focus=4.0))
    focused.tune(image, z1, z2)
    assert focused.last_loss[0] == pytest.approx(expected, rel=1e-4)
    # The weight lies where the lesion is: the untuned residual is largest there, so a focused
    # fit leaves less of it in the lesion than a plain one, relative to the rest of the image.
    plain = PivotalTuner(gated, TuningSettings(steps=30, layers="branch", learning_rate=3e-3))
    lesion = missed > np.quantile(missed, 0.98)

    def residual_in_lesion(tuner):
        tuned = tuner.tune(image, z1, z2)([z1, z2], training=False).numpy()
        left = np.abs(image - tuned)
        return left[lesion].sum() / left.sum()

    assert residual_in_lesion(focused) < residual_in_lesion(plain)
    with pytest.raises(ValueError, match="residual_focus and counterpart_fit >= 0"):
        TuningSettings(residual_focus=-1.0)


def lesion_reader(generator, z1, z2):
    """A C that reads the lesion square and nothing else: p(positive) rises with the square's
    mean brightness, 0.5 halfway between G's own drawing there and the lesion's 1.0, and never
    saturates. An untrained VGG reads whatever it reads: seed 0's read this test's anatomy at
    0.75, so holding its counterpart negative fought fitting the anatomy, and who won turned
    on rounding (the band ratio 0.30 with TF's own kernels, 0.64 with oneDNN's AVX-512 ones)."""
    reader = keras.Sequential([keras.Input((128, 128, 1)),
                               keras.layers.Cropping2D(((40, 72), (40, 72))),
                               keras.layers.GlobalAveragePooling2D(),
                               keras.layers.Dense(2, activation="softmax")])
    drawn = float(np.mean(generator([z1, z2], training=False).numpy()[:, 40:56, 40:56]))
    steepness = 8.0
    reader.layers[-1].set_weights([np.array([[0.0, steepness]], "float32"),
                                   np.array([0.0, -steepness * (drawn + 1.0) / 2], "float32")])
    return reader


def test_the_counterpart_fit_draws_the_anatomy_into_both_ends_and_holds_the_counterpart_negative():
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    z1, z2 = codes(9)
    classifier = lesion_reader(gated, z1, z2)
    image = lesioned(gated, z1, z2)
    # Anatomy the codes cannot reach, away from the lesion, and less bright than it.
    image[:, 80:120, 20:100] *= 0.5
    settings = tuning_settings(True, counterpart_fit=1.0, steps=30)
    # Asked alone it brings the branch's terms and steps, on all of G at all of G's rate.
    assert settings == TuningSettings(
        steps=30, learning_rate=TUNING_LEARNING_RATES["all"], layers="all",
        bce_weight=TUNING_BCE_WEIGHTS["branch"], feature_weight=TUNING_FEATURE_WEIGHTS["branch"],
        residual_focus=TUNING_RESIDUAL_FOCUS["branch"], counterpart_fit=1.0, where="untrusted")
    assert tuning_settings(True, counterpart_fit=1.0).steps == BRANCH_TUNING_STEPS
    plain = dataclasses.replace(settings, feature_weight=0.0, learning_rate=1e-3, steps=100)
    tuner = PivotalTuner(gated, plain, classifier)
    tuner.tune(image, z1, z2)
    # The objective before the first step, term by term.
    drawn = gated([z1, z2], training=False).numpy()
    counterpart = gated([z1, np.zeros_like(z2)], training=False).numpy()
    missed = np.abs(image - drawn)
    weights = 1.0 + plain.residual_focus * missed / missed.mean()
    weights /= weights.mean()
    kept = 1.0 / weights
    kept /= kept.mean()
    bce = losses.binary_cross_entropy
    expected = (np.mean(weights * np.square(drawn - image))
                + plain.bce_weight * float(bce(positive_probability(classifier, image),
                                               positive_probability(classifier, drawn))[0])
                + np.mean(kept * np.square(counterpart - image))
                + plain.bce_weight * float(bce(np.zeros(1, "float32"),
                                               positive_probability(classifier, counterpart))[0]))
    assert tuner.last_loss[0] == pytest.approx(expected, rel=1e-4)
    assert tuner.last_loss[1] < tuner.last_loss[0]
    # Against the anchored tuning, the counterpart takes on the image's anatomy (the band the
    # codes missed) while the lesion, weighted least and read positive by C, stays out of it:
    # far less fitted there than in the reconstruction, and less than under the anchor.
    anchored = PivotalTuner(gated, dataclasses.replace(plain, counterpart_fit=0.0), classifier)
    band, lesion = np.s_[:, 80:120, 20:100], np.s_[:, 40:56, 40:56]

    def errors(tuner):
        tuned = tuner.tune(image, z1, z2)
        ends = [tuned([z1, z], training=False).numpy() for z in (np.zeros_like(z2), z2)]
        scores = {(end, name): mse(drawn[where], image[where])
                  for end, drawn in zip(("counterpart", "reconstruction"), ends)
                  for name, where in (("band", band), ("lesion", lesion))}
        return scores, float(positive_probability(classifier, ends[0])[0])

    (fitted, read_fitted), (held, _) = errors(tuner), errors(anchored)
    # With C reading the lesion alone, over G's of seeds 0-4 and with oneDNN's kernels on and
    # off, the fitted band error was 0.02-0.07 of the anchored one, the counterpart's lesion
    # error over 1,600 times the reconstruction's, and C read the counterpart at 0.01-0.03.
    assert fitted["counterpart", "band"] < 0.3 * held["counterpart", "band"]
    assert fitted["counterpart", "lesion"] > 10 * fitted["reconstruction", "lesion"]
    assert fitted["counterpart", "lesion"] > held["counterpart", "lesion"]
    assert read_fitted < 0.1 < float(positive_probability(classifier, image)[0])
    # What it needs, said in one line.
    for wrong in ({"layers": "branch"}, {"bce_weight": 0.0}, {"residual_focus": 0.0},
                  {"counterpart_fit": -1.0}):
        with pytest.raises(ValueError, match="counterpart"):
            dataclasses.replace(settings, **wrong)
