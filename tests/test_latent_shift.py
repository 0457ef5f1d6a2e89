"""tools/latent_shift.py: the search stops at the first length below the target, and a walk
runs from its counterpart to the image's own code."""

import numpy as np
from helpers import load_tool


def test_the_search_stops_at_the_first_length_below_the_target_or_at_its_lowest():
    tool = load_tool("latent_shift")
    p = np.array([[0.9, 0.5, 0.05, 0.01],     # first below 0.1: index 2, not the lowest (3)
                  [0.9, 0.6, 0.3, 0.4]])      # never below: the lowest, index 2
    np.testing.assert_array_equal(tool.first_below(p, 0.1), [2, 2])


def test_a_walk_runs_from_the_counterpart_to_the_image_code_in_even_steps():
    tool = load_tool("latent_shift")
    start, end = np.zeros((2, 3), np.float32), np.array([[1, 2, 3], [-1, 0, 4]], np.float32)
    codes = tool.codes_along(start, end, 4)
    assert len(codes) == 5
    np.testing.assert_array_equal(codes[0], start)
    np.testing.assert_array_equal(codes[-1], end)
    np.testing.assert_allclose(codes[1], end / 4)


def test_the_shifted_walk_ends_at_the_image_code_and_runs_in_a_graph():
    import tensorflow as tf

    from covgan.explain.class_score import POSITIVE, score_model
    from covgan.models.classifier import build_classifier
    from covgan.models.generator import build_generator

    tool = load_tool("latent_shift")
    generator = build_generator("tiny", z1_dim=8, z2_dim=3, seed=0)
    classifier = build_classifier("tiny", seed=0)
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((2, 8)).astype("float32")
    z2 = rng.standard_normal((2, 3)).astype("float32")
    scorer = score_model(classifier)
    # A target every p is below: the search stops at its first length.
    walk = tf.function(lambda a, b: tool.latent_shift_z2_walk(
        generator, classifier, a, b, steps=4, target=1.01, scorer=scorer))
    frames, p = walk(z1, z2)
    assert frames.shape == (2, 5, 128, 128, 1) and p.shape == (2, 5)
    end = generator([z1, z2], training=False)
    np.testing.assert_allclose(frames[:, -1], end, atol=1e-5)
    np.testing.assert_allclose(p[:, -1], classifier(end)[:, 1], atol=1e-5)
    with tf.GradientTape() as tape:
        codes = tf.constant(z2)
        tape.watch(codes)
        _, score, _ = scorer(generator([tf.constant(z1), codes], training=False), POSITIVE)
    step = -tape.gradient(score, codes).numpy()
    step /= np.linalg.norm(step, axis=1, keepdims=True)
    start = z2 + tool.SHIFT_FRACTIONS[0] * np.linalg.norm(z2, axis=1, keepdims=True) * step
    np.testing.assert_allclose(frames[:, 0], generator([z1, start], training=False), atol=1e-4)
