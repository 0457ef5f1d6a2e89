"""The discriminator D: a real/fake critic with spectral normalisation (no class head).

Five stride-2 4x4 convolutions (128 -> 4 pixels), each spectrally normalised and
followed by LeakyReLU(0.2), then a spectrally normalised dense logit. Spectral
norm updates its power-iteration estimate only when called with training=True.
"""

from __future__ import annotations

import keras

from covgan.shapes import IMAGE_SHAPE

PRESETS = {
    "paper": (64, 128, 256, 512, 512),
    "tiny": (16, 32, 64, 128, 128),
}


def build_discriminator(preset: str = "tiny", *, seed: int | None = None) -> keras.Model:
    """Builds D: "images" (B, 128, 128, 1) in [0, 1] -> "logits" (B, 1), float32."""
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
    return keras.Model(images, logits, name=f"discriminator_{preset}")
