import numpy as np
import pytest
import tensorflow as tf

from covgan.explain import batched_tuning, per_row_weights, pipeline
from covgan.explain.batched_tuning import (
    BatchedBranchTuner,
    batched_tuner_for,
    batched_tuning_works,
)
from covgan.explain.invert import InversionSettings
from covgan.explain.per_row_weights import check_supported, per_row_call, stacked
from covgan.explain.pivotal_tuning import PivotalTuner, residual_weights
from covgan.explain.settings import TuningSettings, tuning_settings
from covgan.models.classifier import build_classifier
from covgan.models.generator import build_generator, split_at_branch

# The commands' branch tuning: the feature term, the classifier term and the residual focus.
BRANCH = tuning_settings(True, steps=3)


@pytest.fixture(scope="module")
def gated():
    return build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)


@pytest.fixture(scope="module")
def classifier():
    return build_classifier("tiny", seed=0)


def lesioned(generator, count, seed=0):
    """G's own images from random codes, each with a bright square the codes cannot reach."""
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal((count, 8)).astype("float32")
    z2 = rng.standard_normal((count, 2)).astype("float32")
    images = generator([z1, z2], training=False).numpy()
    for k in range(count):
        top = 20 + 12 * k
        images[k, top:top + 16, 40:56] = 1.0
    return images, z1, z2


def test_per_row_call_computes_each_row_with_its_own_weights(gated):
    _, head = split_at_branch(gated)
    check_supported(head)
    _, z1, z2 = lesioned(gated, 3)
    trunk = split_at_branch(gated)[0]
    inputs = trunk([z1, z2], training=False)
    weights = stacked(head, 3)
    np.testing.assert_allclose(per_row_call(head, weights, inputs), head(inputs, training=False),
                               atol=1e-5)
    # Row 1's copy moved: rows 0 and 2 stay, row 1 is what the model draws with those weights.
    rng = np.random.default_rng(1)
    moved = [w.numpy() for w in weights]
    for w in moved:
        w[1] += 0.1 * rng.standard_normal(w.shape[1:]).astype("float32")
    drawn = per_row_call(head, [tf.constant(w) for w in moved], inputs).numpy()
    untouched = head(inputs, training=False).numpy()
    np.testing.assert_allclose(drawn[[0, 2]], untouched[[0, 2]], atol=1e-5)
    assert np.abs(drawn[1] - untouched[1]).max() > 1e-2
    saved = [v.numpy() for v in head.trainable_variables]
    try:
        for variable, w in zip(head.trainable_variables, moved):
            variable.assign(w[1])
        np.testing.assert_allclose(drawn[1], head(inputs, training=False)[1], atol=1e-5)
    finally:
        for variable, w in zip(head.trainable_variables, saved):
            variable.assign(w)


def test_each_copy_gets_its_own_images_gradient(gated, classifier):
    """The batched objective's gradient, row k, is the one-image tuner's for image k: the
    stacked copies are independent and the objective is the same."""
    images, z1, z2 = lesioned(gated, 3)
    batched = BatchedBranchTuner(gated, BRANCH, classifier)
    target, seen = batched.terms.read(images)
    focus = residual_weights(gated, BRANCH, images, z1, z2)
    inputs = split_at_branch(gated)[0]([z1, z2], training=False)
    weights = stacked(split_at_branch(gated)[1], 3)
    with tf.GradientTape() as tape:
        tape.watch(weights)
        drawn = per_row_call(split_at_branch(gated)[1], weights, inputs)
        loss = tf.reduce_sum(batched.terms.per_image(drawn, images, target, seen, focus))
    together = tape.gradient(loss, weights)
    alone = PivotalTuner(gated, BRANCH, classifier)
    for k in range(3):
        one = slice(k, k + 1)
        target_k, seen_k = alone.terms.read(images[one])
        with tf.GradientTape() as tape:
            loss_k = alone._objective(
                images[one], alone._trunk([z1[one], z2[one]], training=False), None, target_k,
                seen_k, residual_weights(gated, BRANCH, images[one], z1[one], z2[one]))
        for mine, own in zip(together, tape.gradient(loss_k, alone._drawing.trainable_variables)):
            # Up to rounding: the grouped convolution sums in another order, which can flip a
            # ReLU sitting at 0 in this untrained G (up to 7e-4 of the largest component seen;
            # another row's weights or image would differ by its whole size).
            scale = float(tf.reduce_max(tf.abs(own))) + 1e-12
            np.testing.assert_allclose(mine[k].numpy() / scale, own.numpy() / scale, atol=3e-3)


def test_batched_tuning_fits_each_image_and_keeps_its_counterpart(gated):
    images, z1, z2 = lesioned(gated, 3)
    settings = TuningSettings(steps=60, learning_rate=3e-3, layers="branch")  # the pixels alone
    tuner = BatchedBranchTuner(gated, settings)
    losses = tuner.tune(images, z1, z2)
    assert losses.shape == (3, 2) and np.all(losses[:, 1] < 0.5 * losses[:, 0])
    untuned = gated([z1, z2], training=False).numpy()
    for k in range(3):
        one = slice(k, k + 1)
        tuned = tuner.with_branch_of(k)
        drawn = tuned([z1[one], z2[one]], training=False).numpy()
        # Closer to its own image than untuned, and than any other copy draws it.
        error = np.mean((drawn - images[one]) ** 2)
        assert error < 0.5 * np.mean((untuned[one] - images[one]) ** 2)
        other = tuner.with_branch_of((k + 1) % 3)([z1[one], z2[one]], training=False).numpy()
        assert error < np.mean((other - images[one]) ** 2)
        # The branch is multiplied by 0 at z2 = 0: the counterpart is G's exactly.
        np.testing.assert_array_equal(
            tuner.with_branch_of(k)([z1[one], np.zeros_like(z2[one])], training=False),
            gated([z1[one], np.zeros_like(z2[one])], training=False))
    # G itself is never changed.
    np.testing.assert_array_equal(gated([z1, z2], training=False), untuned)


def test_batched_tuning_goes_where_one_image_at_a_time_goes(gated, classifier):
    """Started alike, the two tuners reach objectives of the same size (Adam's normalised
    steps turn rounding differences into different paths, so not the same weights)."""
    images, z1, z2 = lesioned(gated, 2)
    settings = tuning_settings(True, steps=40)
    together = BatchedBranchTuner(gated, settings, classifier).tune(images, z1, z2)
    alone = PivotalTuner(gated, settings, classifier)
    for k in range(2):
        alone.tune(images[k:k + 1], z1[k:k + 1], z2[k:k + 1])
        before, after = alone.last_loss
        assert together[k, 0] == pytest.approx(before, rel=1e-4)
        assert together[k, 1] == pytest.approx(after, rel=0.3)


def test_batched_tuning_applies_only_to_a_gated_branch_with_grouped_gradients(gated,
                                                                             monkeypatch):
    plain = build_generator("tiny", z1_dim=8, z2_dim=2, seed=0)
    assert batched_tuning_works(gated, BRANCH)
    assert not batched_tuning_works(plain, BRANCH)
    assert not batched_tuning_works(gated, TuningSettings(steps=3, layers="all"))
    assert not batched_tuning_works(gated, tuning_settings(True, steps=0))
    with pytest.raises(ValueError, match="branch"):
        BatchedBranchTuner(gated, TuningSettings(steps=3, layers="all"))
    with pytest.raises(ValueError, match="needs the classifier"):
        BatchedBranchTuner(gated, BRANCH)
    monkeypatch.setattr(batched_tuning, "grouped_convolution_gradients_work", lambda: False)
    assert not batched_tuning_works(gated, BRANCH)


def test_grouped_convolution_gradients_are_found_where_they_run():
    # covgan turns oneDNN on (tests/conftest.py imports covgan first), whose CPU kernels have
    # them; tests/test_runtime.py checks TF's own kernels, which refuse them.
    assert per_row_weights.grouped_convolution_gradients_work()


def test_the_pipeline_tunes_a_gated_branch_in_batches(gated, classifier, monkeypatch):
    images, _, _ = lesioned(gated, 3)
    settings = InversionSettings(steps=5, restarts=1)
    tuning = tuning_settings(True, steps=20)
    monkeypatch.setattr(pipeline, "TUNING_BATCH", 2)  # a full batch and a part-filled one
    tuned = pipeline.explain(gated, classifier, images, settings=settings, image_maps=False,
                             tuning=tuning)
    tuner = batched_tuner_for(gated, tuning, classifier)
    # The last batch held the third image alone; its losses are the result's.
    np.testing.assert_allclose(tuned["tuning_loss"][2:], tuner.last_loss)
    assert np.all(tuned["tuning_loss"][:, 1] < tuned["tuning_loss"][:, 0])
    z1, z2 = tuned["z1"][2:], tuned["z2"][2:]
    np.testing.assert_allclose(tuned["reconstructions"][2:],
                               tuner.with_branch_of(0)([z1, z2], training=False), atol=1e-5)
    # Each walk runs through its image's own branch: it ends at that image's tuned
    # reconstruction and starts at G's own counterpart.
    np.testing.assert_allclose(tuned["traversal"][:, -1], tuned["reconstructions"], atol=1e-5)
    np.testing.assert_allclose(
        tuned["traversal"][:, 0],
        gated([tuned["z1"], np.zeros_like(tuned["z2"])], training=False), atol=1e-5)


def test_the_patches_convolution_draws_and_differentiates_as_the_grouped_one(gated):
    # The exported explain signature tunes by patches (a gradient on every TF build); it must
    # compute the grouped convolution's values and gradients, to rounding.
    images, z1, z2 = lesioned(gated, 3)
    trunk, head = split_at_branch(gated)
    inputs = trunk([z1, z2], training=False)
    rng = np.random.default_rng(1)
    weights = [w + tf.constant(0.05 * rng.standard_normal(w.shape).astype("float32"))
               for w in stacked(head, 3)]
    drawn, gradients = {}, {}
    for convolution in ("grouped", "patches"):
        with tf.GradientTape() as tape:
            tape.watch(weights)
            drawn[convolution] = per_row_call(head, weights, inputs, convolution)
            loss = tf.reduce_sum(tf.square(drawn[convolution] - images))
        gradients[convolution] = tape.gradient(loss, weights)
    np.testing.assert_allclose(drawn["patches"], drawn["grouped"], atol=1e-5)
    for mine, theirs in zip(gradients["patches"], gradients["grouped"]):
        scale = float(tf.reduce_max(tf.abs(theirs))) + 1e-12
        np.testing.assert_allclose(mine / scale, theirs / scale, atol=1e-4)


def test_tuning_where_untrusted_tunes_only_the_untrusted_and_keeps_the_rest(gated, classifier,
                                                                          monkeypatch):
    images, _, _ = lesioned(gated, 3)
    settings = InversionSettings(steps=5, restarts=1)
    real_invert = pipeline.invert

    def mixed_trust(*args, **kwargs):  # the trust rule's verdicts, fixed: rows 0 and 2 trusted
        result = real_invert(*args, **kwargs)
        return {**result, "trusted": np.array([True, False, True])}

    monkeypatch.setattr(pipeline, "invert", mixed_trust)
    run = lambda tuning: pipeline.explain(gated, classifier, images, settings=settings,  # noqa: E731
                                          image_maps=False, tuning=tuning)
    untuned, tuned = run(tuning_settings(True, steps=0)), run(tuning_settings(True, steps=20))
    mixed = run(tuning_settings(True, steps=20, where="untrusted"))
    for key in ("reconstructions", "traversal", "latent_gradients", "ssim"):
        np.testing.assert_allclose(mixed[key][[0, 2]], untuned[key][[0, 2]], atol=1e-5)
        assert not np.allclose(mixed[key][1], untuned[key][1], atol=1e-3)  # row 1 is tuned
    np.testing.assert_array_equal(mixed["ssim_untuned"], untuned["ssim"])
    np.testing.assert_array_equal(mixed["trusted_untuned"], [True, False, True])
    assert np.isnan(mixed["tuning_loss"][[0, 2]]).all()
    # Row 1 tuned alone here and beside two others there: the same start, and objectives of
    # the same size (Adam turns rounding into different paths; see the test above).
    before, after = mixed["tuning_loss"][1]
    assert before == pytest.approx(tuned["tuning_loss"][1, 0], rel=1e-4)
    assert after < before and after == pytest.approx(tuned["tuning_loss"][1, 1], rel=0.3)
    # A chunk with every row trusted tunes none and still has a tuned result's keys, so it
    # joins a chunk that tuned (localise failed on that once): chunks of 2 and 1 images here.
    monkeypatch.setattr(pipeline, "PROGRESS_CHUNK", 2)
    monkeypatch.setattr(pipeline, "invert", lambda *a, **k: {
        **real_invert(*a, **k), "trusted": np.array([len(a[2]) == 2] * len(a[2]))})
    chunked = run(tuning_settings(True, steps=2, where="untrusted"))
    assert np.isnan(chunked["tuning_loss"][:2]).all()
    assert np.isfinite(chunked["tuning_loss"][2]).all() and len(chunked["ssim_untuned"]) == 3
    with pytest.raises(ValueError, match="images must be one of"):
        TuningSettings(steps=1, where="some")
