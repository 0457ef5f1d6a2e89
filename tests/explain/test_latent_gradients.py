import keras
import numpy as np

from covgan.explain.latent_gradients import make_latent_gradients_fn


def test_only_changes_the_classifier_reads_are_credited():
    inputs = keras.Input((128, 128, 1))
    x = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    frames = np.zeros((1, 5, 128, 128, 1), np.float32)
    for step in range(5):  # a walk that brightens one square, step by step
        frames[0, step, 40:60, 40:60] = 0.2 * step
    maps = make_latent_gradients_fn(model)(frames).numpy()
    assert maps.shape == (1, 128, 128)
    assert maps[0, 40:60, 40:60].max() == 1.0
    assert maps[0, :30].max() == 0.0 and maps[0, 70:].max() == 0.0  # nothing changed there
