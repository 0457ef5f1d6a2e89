import numpy as np

from covgan.explain.traverse import crossing_step, difference_maps, traversal_scales, traverse
from covgan.models.classifier import build_classifier
from covgan.models.generator import build_generator


def test_traversal_runs_from_the_counterpart_to_the_image():
    generator = build_generator("tiny", z1_dim=8, z2_dim=3, seed=0)
    classifier = build_classifier("tiny", seed=0)
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((2, 8)).astype("float32")
    z2 = rng.standard_normal((2, 3)).astype("float32")
    images, probabilities = traverse(generator, classifier, z1, z2, chunk=5)
    assert images.shape == (2, 11, 128, 128, 1) and probabilities.shape == (2, 11)
    start = generator([z1, np.zeros_like(z2)], training=False).numpy()
    end = generator([z1, z2], training=False).numpy()
    np.testing.assert_allclose(images[:, 0].numpy(), start, atol=1e-5)
    np.testing.assert_allclose(images[:, -1].numpy(), end, atol=1e-5)
    np.testing.assert_allclose(probabilities[:, -1].numpy(),
                               classifier(end).numpy()[:, 1], atol=1e-5)
    extended, _ = traverse(generator, classifier, z1, z2, extrapolate=3)
    assert extended.shape[1] == 14


def test_scales_crossing_and_differences():
    np.testing.assert_allclose(traversal_scales(4, 0.25), [0, 0.25, 0.5, 0.75, 1.0])
    p = np.array([[0.1, 0.4, 0.6, 0.9], [0.2, 0.2, 0.3, 0.4], [0.7, 0.8, 0.9, 0.9]])
    assert crossing_step(p).tolist() == [2, -1, 0]
    images = np.zeros((1, 3, 2, 2, 1))
    images[0, -1, 0, 0, 0] = 0.5
    images[0, -1, 1, 1, 0] = -0.25
    signed, absolute = difference_maps(images)
    assert signed[0, 0, 0, 0] == 0.5 and absolute[0, 1, 1, 0] == 0.25


def test_traverse_to_image_ends_at_the_reconstruction():
    from covgan.explain.traverse import traverse_to_image

    generator = build_generator("tiny", z1_dim=8, z2_dim=3, seed=0)
    classifier = build_classifier("tiny", seed=0)
    rng = np.random.default_rng(1)
    z1 = rng.standard_normal((2, 8)).astype("float32")
    z2 = rng.standard_normal((2, 3)).astype("float32") * 3
    images, _ = traverse_to_image(generator, classifier, z1, z2, steps=5, extrapolate=2)
    assert images.shape[1] == 8
    np.testing.assert_allclose(images[:, 5].numpy(), generator([z1, z2]).numpy(), atol=1e-5)
    np.testing.assert_allclose(images[:, 0].numpy(), generator([z1, 0 * z2]).numpy(), atol=1e-5)
