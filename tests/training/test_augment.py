import keras
import numpy as np
import tensorflow as tf

from covgan.training.augment import diff_augment


def test_translation_and_cutout_are_seeded_and_change_images():
    images = tf.ones((4, 32, 32, 1))
    a = diff_augment(images, keras.random.SeedGenerator(1)).numpy()
    b = diff_augment(images, keras.random.SeedGenerator(1)).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == images.shape
    zero_fraction = (a == 0).mean(axis=(1, 2, 3))
    # Cutout removes a quarter of the image (half the side), translation up to 1/8 per side more.
    assert np.all(zero_fraction > 0.1) and np.all(zero_fraction < 0.6)
    only_shift = diff_augment(images, keras.random.SeedGenerator(2), cutout=0).numpy()
    assert set(np.unique(only_shift)) <= {0.0, 1.0}


def test_gradients_flow_through_the_augmentation():
    images = tf.Variable(tf.random.uniform((2, 32, 32, 1), seed=0))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(diff_augment(images, keras.random.SeedGenerator(0)) ** 2)
    gradient = tape.gradient(loss, images)
    assert gradient is not None
    assert float(tf.reduce_sum(tf.abs(gradient))) > 0
    assert (
        float(tf.reduce_mean(tf.cast(gradient == 0, tf.float32))) > 0.1
    )  # cut-out pixels get none
