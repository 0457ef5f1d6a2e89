import concurrent.futures

import numpy as np
import pytest

from covgan.explain.invert import InversionSettings, invert, make_inversion_fn, stateless_starts
from covgan.models.classifier import build_classifier
from covgan.models.generator import build_generator


@pytest.fixture(scope="module")
def models():
    return build_generator("tiny", z1_dim=8, z2_dim=2, seed=0), build_classifier("tiny", seed=0)


def targets(generator, count=3, seed=1):
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal((count, 8)).astype("float32")
    z2 = rng.standard_normal((count, 2)).astype("float32")
    return generator([z1, z2], training=False).numpy()


def test_inversion_reduces_the_loss_and_reports_everything(models):
    generator, classifier = models
    images = targets(generator)
    # An untrained C sits at its BCE floor (p ~ 0.5): test the optimiser on the pixel term.
    settings = InversionSettings(steps=60, learning_rate=0.05, restarts=2, patience=60,
                                 bce_weight=0.0, keep_best_after=0)
    solver = make_inversion_fn(generator, classifier, settings)
    rng = np.random.default_rng(0)
    z1, z2 = (
        rng.standard_normal((3, 8)).astype("float32"),
        rng.standard_normal((3, 2)).astype("float32"),
    )
    # The objective from the same starts: one step (about the start's loss) against sixty.
    one = make_inversion_fn(
        generator, classifier, InversionSettings(steps=1, patience=2, bce_weight=0.0)
    )
    start_loss = one(images, z1, z2)[2].numpy()
    solved_loss = solver(images, z1, z2)[2].numpy()
    assert np.all(solved_loss <= start_loss) and solved_loss.mean() < 0.8 * start_loss.mean()
    result = invert(generator, classifier, images, settings=settings, solver=solver)
    for key, shape in {
        "z1": (3, 8),
        "z2": (3, 2),
        "reconstructions": (3, 128, 128, 1),
        "counterparts": (3, 128, 128, 1),
        "probabilities": (3, 3),
        "ssim": (3,),
        "trusted": (3,),
        "steps": (3,),
    }.items():
        assert result[key].shape == shape, key
    counterpart = generator([result["z1"], np.zeros_like(result["z2"])], training=False).numpy()
    np.testing.assert_allclose(result["counterparts"], counterpart, atol=1e-6)
    p_image, p_reconstruction, p_counterpart = result["probabilities"].T
    np.testing.assert_allclose(p_counterpart, classifier(counterpart).numpy()[:, 1], atol=1e-6)
    add_backs = np.clip(images + counterpart - result["reconstructions"], 0, 1)
    p_add_back = classifier(add_backs).numpy()[:, 1]
    np.testing.assert_allclose(result["add_back_probabilities"], p_add_back, atol=1e-6)
    # The whole rule: an untrained C reads the add-backs near 0.5, so leaving its part out
    # made this check depend on the last digits of a sum.
    np.testing.assert_array_equal(
        result["trusted"],
        (np.abs(p_reconstruction - p_image) <= 0.1) & (result["ssim"] >= 0.5)
        & (result["add_back_probabilities"] < 0.5),
    )


def test_restarts_keep_the_best_start(models):
    generator, classifier = models
    images = targets(generator, count=2)
    settings = InversionSettings(steps=20, restarts=3, patience=20)
    solver = make_inversion_fn(generator, classifier, settings)
    repeated = np.repeat(images, 3, axis=0)
    z1, z2 = stateless_starts(images, 3, 8, 2, settings, 7)  # invert's starts for seed 7
    *_, loss, _ = solver(repeated, z1, z2)
    best = invert(generator, classifier, images, settings=settings, solver=solver, seed=7)["loss"]
    np.testing.assert_allclose(best, loss.numpy().reshape(2, 3).min(1), rtol=1e-5)


def test_after_keep_best_after_steps_only_each_images_best_start_goes_on(models):
    import dataclasses

    from covgan.explain.invert import best_restarts

    generator, classifier = models
    images = np.repeat(targets(generator, count=3), 2, axis=0)
    rng = np.random.default_rng(11)
    z1 = rng.standard_normal((6, 8)).astype("f4")
    z2 = rng.standard_normal((6, 2)).astype("f4")
    # Each pick (best step, best start) must stand far above float noise, or the two solvers
    # below may pick a step apart (as they did on CI's machine): the pixel term alone at a
    # small rate falls steadily, every step by at least 0.3% here, and tolerance 0 makes each
    # pick the plain lowest loss.
    settings = InversionSettings(steps=30, restarts=2, patience=30, keep_best_after=10,
                                 tolerance=0.0, learning_rate=0.01, bce_weight=0.0)
    z1_out, z2_out, loss, ran = make_inversion_fn(generator, classifier, settings)(
        images, z1, z2)
    # The same by hand: every start for 10 steps, then the best of each image alone, with a
    # fresh solver, for the other 20.
    first = make_inversion_fn(generator, classifier,
                              dataclasses.replace(settings, steps=10, keep_best_after=0))
    e1, e2, early_loss, _ = first(images, z1, z2)
    kept = best_restarts(early_loss, 2).numpy()
    later = make_inversion_fn(generator, classifier,
                              dataclasses.replace(settings, steps=20, keep_best_after=0))
    l1, l2, later_loss, later_ran = later(images[kept], e1.numpy()[kept], e2.numpy()[kept])
    np.testing.assert_allclose(loss.numpy()[kept], later_loss, rtol=1e-4)
    np.testing.assert_allclose(z1_out.numpy()[kept], l1, rtol=1e-4, atol=1e-5)
    others = np.setdiff1d(np.arange(6), kept)
    np.testing.assert_allclose(loss.numpy()[others], early_loss.numpy()[others], rtol=1e-5)
    np.testing.assert_array_equal(ran.numpy()[others], 10)
    np.testing.assert_array_equal(ran.numpy()[kept], 10 + later_ran.numpy())
    # Each image's pick is the start that went on, and no worse than where it was at 10.
    np.testing.assert_array_equal(best_restarts(loss, 2).numpy(), kept)
    assert np.all(loss.numpy()[kept] <= early_loss.numpy()[kept] + 1e-6)
    # Recorded, the kept rows go on and the others hold still.
    *_, codes, losses = make_inversion_fn(generator, classifier, settings, record=True)(
        images, z1, z2)
    assert codes.shape == (30, 6, 10) and losses.shape == (30, 6)
    codes = codes.numpy()
    np.testing.assert_array_equal(codes[10:, others], np.repeat(codes[9:10, others], 20, 0))
    assert np.all(np.abs(codes[-1, kept] - codes[9, kept]).max(axis=1) > 0)
    with pytest.raises(Exception, match="image-major rows per image"):
        make_inversion_fn(generator, classifier, settings)(images[:5], z1[:5], z2[:5])


def test_converged_images_stop_early(models):
    generator, classifier = models
    images = targets(generator, count=2)
    settings = InversionSettings(steps=400, learning_rate=1e-9, restarts=1, patience=5)
    result = invert(generator, classifier, images, settings=settings)
    assert np.all(result["steps"] <= 10)  # no progress at all: stops after `patience` steps


def test_concurrent_calls_share_no_state(models):
    generator, classifier = models
    images = targets(generator, count=2)
    solver = make_inversion_fn(generator, classifier, InversionSettings(steps=15, patience=15))
    starts = [np.random.default_rng(k).standard_normal((2, 10)).astype("float32") for k in range(4)]
    alone = [solver(images, s[:, :8], s[:, 8:])[2].numpy() for s in starts]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda s: solver(images, s[:, :8], s[:, 8:])[2].numpy(), starts))
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_the_classifier_term_targets_the_classifier_on_the_real_image(models):
    # Eq. 2's second term is BCE(C(x), C(G(z))): the target is the classifier's reading of the
    # real image, not its label nor 1. A classifier reading mean brightness gives targets and
    # reconstructions different probabilities; a zero learning rate keeps the start, so the
    # solver's loss is the objective at the start, computed here independently.
    import keras

    generator, _ = models
    inputs = keras.Input((128, 128, 1))
    logits = keras.layers.Dense(2, name="read")(keras.layers.GlobalAveragePooling2D()(inputs))
    classifier = keras.Model(inputs, keras.layers.Softmax()(logits))
    classifier.get_layer("read").set_weights([np.array([[-20.0, 20.0]], "f4"),
                                              np.array([10.0, -10.0], "f4")])
    rng = np.random.default_rng(3)
    images = np.clip(rng.random((4, 128, 128, 1)) * [[[[0.3]]], [[[0.5]]], [[[0.7]]],
                                                     [[[0.9]]]], 0, 1).astype("f4")
    z1 = rng.standard_normal((4, 8)).astype("f4")
    z2 = rng.standard_normal((4, 2)).astype("f4")
    settings = InversionSettings(steps=1, learning_rate=0.0, restarts=1, patience=2,
                                 mse_weight=0.0, bce_weight=1.0, prior_weight=0.0)
    loss = make_inversion_fn(generator, classifier, settings)(images, z1, z2)[2].numpy()

    target = classifier(images).numpy()[:, 1].astype("f8")
    p = classifier(generator([z1, z2])).numpy()[:, 1].astype("f8")
    assert target.std() > 0.05 and np.abs(target - p).min() > 0.05  # the test can tell
    expected = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    np.testing.assert_allclose(loss, expected, rtol=1e-3, atol=1e-5)
    against_one = -np.log(p)
    assert np.abs(loss - against_one).max() > 0.05


def test_a_recording_solver_returns_every_iterate_and_solves_the_same(models):
    # The history the benchmark's fidelity curves come from: row t is the iterate before
    # update t + 1, its loss is the objective there, and recording changes nothing.
    generator, classifier = models
    images = targets(generator, count=2)
    settings = InversionSettings(steps=12, patience=13, prior_weight=0.0)
    rng = np.random.default_rng(5)
    z1 = rng.standard_normal((2, 8)).astype("f4")
    z2 = rng.standard_normal((2, 2)).astype("f4")
    plain = make_inversion_fn(generator, classifier, settings)(images, z1, z2)
    *solved, codes, losses = make_inversion_fn(generator, classifier, settings, record=True)(
        images, z1, z2)
    for ours, theirs in zip(solved, plain):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert codes.shape == (12, 2, 10) and losses.shape == (12, 2)
    np.testing.assert_allclose(codes[0].numpy(), np.concatenate([z1, z2], 1))
    one_step = InversionSettings(steps=1, patience=2, learning_rate=0.0, prior_weight=0.0)
    at_step_5 = make_inversion_fn(generator, classifier, one_step)(
        images, codes[5, :, :8], codes[5, :, 8:])[2]
    np.testing.assert_allclose(losses[5].numpy(), at_step_5.numpy(), rtol=1e-5)
    assert losses[-1].numpy().mean() < losses[0].numpy().mean()


def test_the_authors_preset_starts_at_z1_zero_and_runs_every_step():
    from covgan.explain.invert import start_codes
    from covgan.explain.settings import INVERSION_PRESETS, inversion_settings

    authors = INVERSION_PRESETS["authors"]
    assert (authors.steps, authors.learning_rate, authors.beta_1, authors.restarts,
            authors.prior_weight) == (5000, 0.01, 0.5, 1, 0.0)
    assert authors.patience >= authors.steps  # early stopping can never fire
    z1, z2 = start_codes(np.random.default_rng(0), 4, 8, 2, authors)
    assert not z1.any() and z2.std() > 0.5
    z1, _ = start_codes(np.random.default_rng(0), 4, 8, 2, INVERSION_PRESETS["covgan"])
    assert z1.std() > 0.5
    # A command-line value replaces the preset's; None keeps it.
    chosen = inversion_settings("authors", steps=20, learning_rate=None)
    assert (chosen.steps, chosen.learning_rate, chosen.z1_start) == (20, 0.01, "zeros")
    with pytest.raises(ValueError, match="z1_start"):
        InversionSettings(z1_start="uniform")


def test_an_encoder_start_takes_each_images_first_row():
    from covgan.explain.invert import start_codes

    settings = InversionSettings(restarts=3, z1_start="encoder")
    e1, e2 = np.full((2, 8), 7.0, "f4"), np.full((2, 2), -7.0, "f4")
    z1, z2 = start_codes(np.random.default_rng(0), 6, 8, 2, settings, (e1, e2))
    assert np.all(z1[[0, 3]] == 7.0) and np.all(z2[[0, 3]] == -7.0)
    assert np.all(np.abs(z1[[1, 2, 4, 5]]) < 6.0)  # the other starts stay random
    with pytest.raises(ValueError, match="encoded=None"):
        start_codes(np.random.default_rng(0), 6, 8, 2, settings)
    with pytest.raises(ValueError, match="one row per image"):
        start_codes(np.random.default_rng(0), 6, 8, 2, settings, (np.zeros((4, 8), "f4"),
                                                                  np.zeros((4, 2), "f4")))


def test_invert_from_an_encoder_starts_at_its_codes(models):
    from covgan.models.encoder import build_encoder

    generator, classifier = models
    encoder = build_encoder("tiny", z1_dim=8, z2_dim=2, seed=3)
    images = targets(generator, count=2)
    # One step at a negligible rate: the answer is the start.
    settings = InversionSettings(steps=1, restarts=1, learning_rate=1e-9, patience=2,
                                 z1_start="encoder")
    result = invert(generator, classifier, images, settings=settings, encoder=encoder)
    e1, e2 = encoder(images)
    np.testing.assert_allclose(result["z1"], e1, atol=1e-5)
    np.testing.assert_allclose(result["z2"], e2, atol=1e-5)
    with pytest.raises(ValueError, match="no encoder"):
        invert(generator, classifier, images, settings=settings)


def brightness_classifier():
    """C reading mean brightness: p(positive) rises steeply with it, so every image gets a
    probability strictly between 0 and 1 and a gradient."""
    import keras

    inputs = keras.Input((128, 128, 1))
    logits = keras.layers.Dense(2, name="read")(keras.layers.GlobalAveragePooling2D()(inputs))
    classifier = keras.Model(inputs, keras.layers.Softmax()(logits))
    classifier.get_layer("read").set_weights([np.array([[-20.0, 20.0]], "f4"),
                                              np.array([10.0, -10.0], "f4")])
    return classifier


@pytest.mark.parametrize("gated", [False, True])
def test_the_counterpart_term_is_bce_of_the_counterpart_against_negative(gated):
    # w * -log(1 - C(G(z1, 0))), computed here independently; the other terms off and a zero
    # learning rate, so the solver's loss is the objective at the start. Both renderings:
    # a gated G's one pass and any G's second set of rows.
    generator = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=gated, seed=0)
    classifier = brightness_classifier()
    rng = np.random.default_rng(4)
    images = rng.random((3, 128, 128, 1)).astype("f4")
    z1 = rng.standard_normal((3, 8)).astype("f4")
    z2 = rng.standard_normal((3, 2)).astype("f4")
    settings = InversionSettings(steps=1, learning_rate=0.0, restarts=1, patience=2,
                                 mse_weight=0.0, bce_weight=0.0, prior_weight=0.0,
                                 counterpart_weight=2.5)
    loss = make_inversion_fn(generator, classifier, settings)(images, z1, z2)[2].numpy()
    counterparts = generator([z1, np.zeros_like(z2)], training=False)
    p = classifier(counterparts).numpy()[:, 1].astype("f8")
    assert p.min() > 0.01  # the term is not near 0 at the start: the test can tell
    np.testing.assert_allclose(loss, -2.5 * np.log(1 - p), rtol=1e-3, atol=1e-5)


def test_the_counterpart_term_moves_the_counterpart_to_the_negative_side():
    generator = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    classifier = brightness_classifier()
    rng = np.random.default_rng(6)
    z1 = rng.standard_normal((4, 8)).astype("f4")
    z2 = rng.standard_normal((4, 2)).astype("f4")
    images = generator([z1, z2], training=False).numpy()

    def counterpart_p(weight):
        settings = InversionSettings(steps=40, patience=41, restarts=1, prior_weight=0.0,
                                     mse_weight=0.0, bce_weight=0.0, counterpart_weight=weight)
        found = make_inversion_fn(generator, classifier, settings)(images, z1, z2)
        counterparts = generator([found[0].numpy(), np.zeros_like(z2)], training=False)
        return classifier(counterparts).numpy()[:, 1]

    start = counterpart_p(0.0)  # no term: nothing moves the codes
    at_start = classifier(generator([z1, np.zeros_like(z2)])).numpy()[:, 1]
    np.testing.assert_allclose(start, at_start, rtol=1e-5)
    moved = counterpart_p(1.0)
    assert np.all(moved < start) and moved.mean() < start.mean() - 0.2


def test_the_counterpart_weight_is_chosen_per_generator():
    from covgan.explain.invert import settings_for
    from covgan.explain.settings import COUNTERPART_WEIGHT, INVERSION_PRESETS

    plain = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    default = InversionSettings()
    assert default.counterpart_weight is None  # left to the inversion
    assert settings_for(gated, default).counterpart_weight == COUNTERPART_WEIGHT > 0
    assert settings_for(plain, default).counterpart_weight == 0.0
    asked = InversionSettings(counterpart_weight=0.5)
    assert settings_for(plain, asked).counterpart_weight == 0.5
    assert settings_for(gated, INVERSION_PRESETS["authors"]).counterpart_weight == 0.0
    with pytest.raises(ValueError, match="counterpart_weight"):
        InversionSettings(counterpart_weight=-1.0)


def test_an_images_starts_follow_the_image_not_its_batch(models):
    # The served explanation runs a request one image at a time; the CLI inverts 64 at a time:
    # both must start each image in the same place, and two images never share starts.
    generator, _ = models
    images = targets(generator, count=3)
    settings = InversionSettings(restarts=2)
    z1, z2 = (t.numpy() for t in stateless_starts(images, 2, 8, 2, settings, 5))
    for i in range(3):
        one1, one2 = (t.numpy() for t in stateless_starts(images[i : i + 1], 2, 8, 2, settings, 5))
        np.testing.assert_array_equal(one1, z1[2 * i : 2 * i + 2])
        np.testing.assert_array_equal(one2, z2[2 * i : 2 * i + 2])
    assert len({tuple(row) for row in z1.round(6)}) == 6
    other, _ = stateless_starts(images, 2, 8, 2, settings, 6)
    assert np.abs(other.numpy() - z1).min() > 0
