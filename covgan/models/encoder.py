"""The encoder E: a radiograph -> the codes (z1, z2) that G would draw it from.

A warm start for Eq. 2: the inversion begins at E(x) instead of at a random code, so it
spends its steps refining a near answer rather than finding one (issue 10's inversion lever,
issue 14's speed). E is trained after G, on G's own samples (`covgan.training.encoder`).

Five stride-2 4x4 convolutions with LeakyReLU(0.2) (128 -> 4 pixels, the critic's trunk
without its spectral norm), global average pooling, a dense layer, and two linear heads:
z1 and z2, float32 under mixed precision.
"""

from __future__ import annotations

import os
import pathlib

import keras

from covgan.errors import CovganError
from covgan.models.seeding import glorot_uniform
from covgan.shapes import IMAGE_SHAPE

# Where a run keeps its encoder.
ENCODER_FILE = "encoder.keras"

PRESETS = {
    "paper": ((64, 128, 256, 512, 512), 512),
    "tiny": ((32, 64, 128, 128, 256), 256),
}
PRESETS["films"] = PRESETS["tiny"]


def build_encoder(preset: str = "tiny", *, z1_dim: int, z2_dim: int,
                  seed: int | None = None) -> keras.Model:
    """Builds E: "images" (B, 128, 128, 1) in [0, 1] -> ["z1" (B, z1_dim), "z2" (B, z2_dim)].

    Args:
        preset: "paper", "tiny" or "films" (see PRESETS); usually the run's preset.
        z1_dim, z2_dim: the sizes of the generator's codes.
        seed: initialiser seed.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown encoder preset {preset!r}; one of {sorted(PRESETS)}.")
    widths, hidden = PRESETS[preset]
    init = keras.initializers.HeNormal(seed=seed)
    images = keras.Input(IMAGE_SHAPE, name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="normalise")(images)
    for block, width in enumerate(widths, start=1):
        x = keras.layers.Conv2D(width, 4, strides=2, padding="same", kernel_initializer=init,
                                name=f"down{block}")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(hidden, activation="relu", kernel_initializer=init, name="hidden")(x)
    z1 = keras.layers.Dense(z1_dim, kernel_initializer=glorot_uniform(seed, "z1"), name="z1",
                            dtype="float32")(x)
    z2 = keras.layers.Dense(z2_dim, kernel_initializer=glorot_uniform(seed, "z2"), name="z2",
                            dtype="float32")(x)
    return keras.Model(images, [z1, z2], name=f"encoder_{preset}")


def load_encoder(path: str | os.PathLike, z1_dim: int, z2_dim: int) -> keras.Model:
    """Loads a .keras encoder in safe mode and checks it fits a generator of these code sizes.

    Raises:
        CovganError: missing, not loadable, or not an encoder for these codes.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CovganError(f"Encoder file not found: {path}.")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        raise CovganError(f"{path} is not a covgan encoder ({type(error).__name__}).") from None
    shapes = [tuple(t.shape[1:]) for t in getattr(model, "outputs", None) or []]
    if shapes != [(z1_dim,), (z2_dim,)] or tuple(model.inputs[0].shape[1:]) != IMAGE_SHAPE:
        raise CovganError(f"{path} is not an encoder for codes of sizes ({z1_dim}, {z2_dim}). "
                          f"Received: outputs {shapes}.")
    return model
