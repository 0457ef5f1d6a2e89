"""Seeds of their own for the weights a builder's seeded initialisers do not reach.

A builder seeds the He-normal initialisers of its layers from `seed`. A layer left on
Keras' default initialiser, or a weight Keras draws itself (SpectralNormalization's u),
takes Keras' global generator instead, so the builder's seed did not fix it: the same seed
built a different model in every process. Those weights take `layer_seed(seed, name)`; the
others keep their initialisers, so the weights earlier runs started from are unchanged (the
paper classifier's aside: `covgan.models.classifier`).
"""

from __future__ import annotations

import zlib

import keras


def layer_seed(seed: int | None, name: str) -> int | None:
    """The seed of the layer (or weight) called `name` in a model built from `seed`."""
    if seed is None:
        return None
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**31


def glorot_uniform(seed: int | None, name: str) -> keras.initializers.Initializer:
    """Keras' default kernel initialiser, seeded for the layer `name`."""
    return keras.initializers.GlorotUniform(seed=layer_seed(seed, name))
