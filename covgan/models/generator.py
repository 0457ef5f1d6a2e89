"""The generator G(z1, z2) -> (128, 128, 1) radiographs in [0, 1].

A linear projection of [z1, z2] to a 4x4 feature map, then five stages of
nearest-neighbour upsampling + 3x3 convolution + batch norm + ReLU to 128x128
(upsampling then convolving avoids transposed-convolution checkerboards), and a
3x3 convolution to one channel with a sigmoid, kept in float32 under mixed precision.

With `inject_z2`, the disease code also enters every stage as a per-channel
shift, a bias-free linear map of z2 added before the ReLU: z2 = 0 adds exactly
nothing (the negative counterpart is untouched) and n * lambda * z2 moves every
stage linearly along the traversal.
"""

from __future__ import annotations

import keras

Z1_DIM = 100
Z2_DIM = 10

# Widths of the 4x4 projection and of each of the five stages (4 -> 128 pixels).
PRESETS = {
    "paper": (512, (512, 256, 128, 64, 32)),
    "tiny": (128, (96, 64, 32, 16, 8)),
}


def code_sizes(generator: keras.Model) -> tuple[int, int]:
    """(d1, d2): the sizes of the structure code z1 and the disease code z2 G takes."""
    return int(generator.inputs[0].shape[-1]), int(generator.inputs[1].shape[-1])


def build_generator(preset: str = "tiny", *, z1_dim: int = Z1_DIM, z2_dim: int = Z2_DIM,
                    inject_z2: bool = False, seed: int | None = None) -> keras.Model:
    """Builds G with named inputs "z1" (B, z1_dim), "z2" (B, z2_dim) and output "images".

    Args:
        preset: "paper" or "tiny" (see PRESETS).
        z1_dim: structure code size (the authors use 100).
        z2_dim: disease code size (the authors use 10).
        inject_z2: also add a linear map of z2 to every stage (see the module docstring).
        seed: initialiser seed.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown generator preset {preset!r}; one of {sorted(PRESETS)}.")
    base, stages = PRESETS[preset]
    init = keras.initializers.HeNormal(seed=seed)
    z1 = keras.Input((z1_dim,), name="z1")
    z2 = keras.Input((z2_dim,), name="z2")
    x = keras.layers.Concatenate(name="codes")([z1, z2])
    x = keras.layers.Dense(4 * 4 * base, use_bias=False, kernel_initializer=init, name="project")(x)
    x = keras.layers.Reshape((4, 4, base))(x)
    # synchronized: under tf.distribute the batch statistics are the global batch's, so a
    # mirrored or multiworker step computes what one device would (per-replica statistics
    # would not); without a strategy it changes nothing.
    x = keras.layers.BatchNormalization(momentum=0.9, synchronized=True, name="project_bn")(x)
    x = keras.layers.ReLU()(x)
    for stage, width in enumerate(stages, start=1):
        x = keras.layers.UpSampling2D(2, name=f"up{stage}")(x)
        x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=init,
                                name=f"up{stage}_conv")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, synchronized=True,
                                            name=f"up{stage}_bn")(x)
        if inject_z2:
            shift = keras.layers.Dense(width, use_bias=False, kernel_initializer="zeros",
                                       name=f"up{stage}_z2")(z2)
            x = keras.layers.Add()([x, keras.layers.Reshape((1, 1, width))(shift)])
        x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=init, name="to_image")(x)
    images = keras.layers.Activation("sigmoid", dtype="float32", name="images")(x)
    return keras.Model([z1, z2], images, name=f"generator_{preset}")
