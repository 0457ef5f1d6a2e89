"""The written-out Adam step the inversion and pivotal tuning share."""

import keras
import numpy as np
import tensorflow as tf

from covgan.explain.adam import adam_update


def test_adam_update_takes_the_steps_keras_adam_takes():
    target = np.array([3.0, -2.0, 0.5], np.float32)
    ours = tf.Variable(np.zeros(3, np.float32))
    theirs = tf.Variable(np.zeros(3, np.float32))
    # Keras adds epsilon to sqrt(v) before the bias correction, the paper after; with a tiny
    # epsilon both are the same step.
    optimizer = keras.optimizers.Adam(learning_rate=0.1, epsilon=1e-12)
    m = v = tf.zeros(3)
    for step in range(1, 8):
        gradient = 2.0 * (ours - target)
        m, v, update = adam_update(m, v, gradient, float(step), 0.1, epsilon=1e-12)
        ours.assign_sub(update)
        optimizer.apply_gradients([(2.0 * (theirs - target), theirs)])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(ours.numpy()) > 0.5)  # it moved: seven steps of about 0.1 each
