"""Augmentation of the classifier's training films (`covgan classifier train --augment`).

Small real sets come from few hospitals: a classifier can learn where a film's crop puts the
mediastinum, or its exposure, as readily as the disease. Each training film is shifted,
zoomed and rotated a little (edges filled by reflection, not black bands a classifier could
read) and its brightness and contrast changed, so that no fixed position or exposure stands
in for the label. No flips: the heart's side is anatomy. Validation and held-out films are
never augmented.
"""

import keras
import tensorflow as tf

# The largest changes, as fractions: of the side (shift, zoom), of a full turn (rotation),
# and of the [0, 1] range (brightness) or the contrast factor.
SHIFT = 0.06
ZOOM = 0.1
ROTATION = 0.02
BRIGHTNESS = 0.1
CONTRAST = 0.2


def film_augmenter(seed: int = 0) -> keras.Sequential:
    """The random layers, each seeded from `seed` (a fresh draw for every film)."""
    return keras.Sequential([
        keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="reflect", seed=seed),
        keras.layers.RandomZoom(ZOOM, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomRotation(ROTATION, fill_mode="reflect", seed=seed + 2),
        keras.layers.RandomBrightness(BRIGHTNESS, value_range=(0.0, 1.0), seed=seed + 3),
        keras.layers.RandomContrast(CONTRAST, value_range=(0.0, 1.0), seed=seed + 4),
    ], name="film_augmenter")


def augmented(dataset: tf.data.Dataset, seed: int = 0) -> tf.data.Dataset:
    """`dataset`'s batches ((images, labels) or (images, labels, weights)) with the images
    augmented and clipped to [0, 1]; labels and weights as they were."""
    augmenter = film_augmenter(seed)

    def augment(images, *rest):
        images = tf.clip_by_value(augmenter(images, training=True), 0.0, 1.0)
        return (images, *rest)

    # One batch at a time: the layers draw from one seed state, and parallel calls could read
    # it before either advanced it, giving two batches the same draws (seen in 6 of 40 runs).
    return dataset.map(augment)
