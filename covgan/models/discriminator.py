"""The discriminator D: a real/fake critic with spectral normalisation.

Five stride-2 4x4 convolutions (128 -> 4 pixels), each spectrally normalised and
followed by LeakyReLU(0.2), then a spectrally normalised dense logit. Spectral
norm updates its power-iteration estimate only when called with training=True.

The class-aware form is a projection discriminator (Miyato & Koyama, ICLR 2018): it
also takes the image's class (the true label of a real image, the intended class of a
generated one) and adds <embed(class), features> to the logit, so a "positive" that
lacks what real positives have is judged fake even when it passes as some radiograph.
"""

from __future__ import annotations

import keras

from covgan.models.seeding import layer_seed
from covgan.shapes import IMAGE_SHAPE

PRESETS = {
    "paper": (64, 128, 256, 512, 512),
    "tiny": (16, 32, 64, 128, 128),
}
PRESETS["films"] = PRESETS["tiny"]  # training/presets.py


def build_discriminator(preset: str = "tiny", *, class_aware: bool = False,
                        seed: int | None = None) -> keras.Model:
    """Builds D: "images" (B, 128, 128, 1) in [0, 1] -> "logits" (B, 1), float32.

    Args:
        preset: "paper", "tiny" or "films" (see PRESETS).
        class_aware: also take "labels" (B,) int32 (0 negative, 1 positive) and project
            them onto the features (see the module docstring).
        seed: initialiser seed.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown discriminator preset {preset!r}; one of {sorted(PRESETS)}.")
    init = keras.initializers.HeNormal(seed=seed)
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="normalise")(images)
    for block, width in enumerate(PRESETS[preset], start=1):
        conv = keras.layers.Conv2D(width, 4, strides=2, padding="same", kernel_initializer=init,
                                   name=f"down{block}_conv")
        x = keras.layers.SpectralNormalization(conv, name=f"down{block}")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(1, kernel_initializer=init, name="logit")
    logits = keras.layers.SpectralNormalization(dense, name="logits", dtype="float32")(x)
    if not class_aware:
        return _seed_power_iteration(keras.Model(images, logits, name=f"discriminator_{preset}"),
                                     seed)
    labels = keras.Input((), dtype="int32", name="labels")
    one_hot = keras.layers.CategoryEncoding(2, output_mode="one_hot", name="one_hot")(labels)
    # The class embedding as a bias-free dense map of the one-hot class, so that it can be
    # spectrally normalised like the rest of D (the projection paper does).
    embed = keras.layers.Dense(x.shape[-1], use_bias=False, kernel_initializer=init,
                               name="class_embedding")
    embedding = keras.layers.SpectralNormalization(embed, name="class_embed")(one_hot)
    projection = keras.layers.Dot(axes=1, name="projection", dtype="float32")([embedding, x])
    logits = keras.layers.Add(name="class_logits", dtype="float32")([logits, projection])
    return _seed_power_iteration(
        keras.Model([images, labels], logits, name=f"discriminator_{preset}_class_aware"), seed)


def _seed_power_iteration(model, seed):
    """Draws each SpectralNormalization layer's power-iteration vector u as Keras does
    (truncated normal, stddev 0.02), but from `seed`: Keras draws it unseeded."""
    if seed is None:
        return model
    for layer in model.layers:
        if isinstance(layer, keras.layers.SpectralNormalization):
            u = layer.vector_u
            draw = keras.initializers.TruncatedNormal(stddev=0.02, seed=layer_seed(seed, u.path))
            u.assign(draw(u.shape, u.dtype))
    return model
