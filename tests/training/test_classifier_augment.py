"""The classifier's film augmentation: every film changed a little, labels and weights kept."""

import numpy as np
import tensorflow as tf

from covgan.training.classifier_augment import augmented


def test_augmentation_changes_each_film_within_range_and_keeps_labels_and_weights():
    rng = np.random.default_rng(0)
    film = rng.random((128, 128, 1)).astype("f4")
    film[40:80, 40:80] = 1.0  # a bright square that a shift or zoom must move
    films = np.repeat(film[None], 6, axis=0)  # one film six times: each copy drawn anew
    labels, weights = np.arange(6) % 2, np.linspace(0.5, 1.5, 6).astype("f4")
    batches = list(augmented(tf.data.Dataset.from_tensor_slices((films, labels, weights))
                             .batch(3), seed=0))
    out = np.concatenate([b[0].numpy() for b in batches])
    assert out.shape == films.shape and out.min() >= 0.0 and out.max() <= 1.0
    # Every copy changed, each differently (not one shared draw for the whole batch).
    assert (np.abs(out - films).mean(axis=(1, 2, 3)) > 0.01).all()
    assert all(np.abs(out[i] - out[j]).mean() > 0.001 for i in range(6) for j in range(i))
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), labels)
    np.testing.assert_array_equal(np.concatenate([b[2].numpy() for b in batches]), weights)
    # A two-part dataset (no weights) keeps its form.
    pairs = next(iter(augmented(tf.data.Dataset.from_tensor_slices((films, labels)).batch(6))))
    assert len(pairs) == 2 and pairs[0].shape == films.shape
