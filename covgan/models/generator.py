"""The generator G(z1, z2) -> (128, 128, 1) radiographs in [0, 1].

A linear projection of [z1, z2] to a 4x4 feature map, then five stages of
nearest-neighbour upsampling + 3x3 convolution + batch norm + ReLU to 128x128
(upsampling then convolving avoids transposed-convolution checkerboards), and a
3x3 convolution to one channel with a sigmoid, kept in float32 under mixed precision.

With `inject_z2`, the disease code also enters every stage as a per-channel
shift, a bias-free linear map of z2 added before the ReLU: z2 = 0 adds exactly
nothing (the negative counterpart is untouched) and n * lambda * z2 moves every
stage linearly along the traversal.

With `gated_residual`, z2 never touches the anatomy. The stages draw a base image from
z1 alone; a residual branch leaves the trunk after its third stage and draws a change r
and a gate m in [0, 1] from it and from z2's direction:

    G(z1, z2) = sigmoid(base(z1) + amount(|z2|) * m(z1, z2/|z2|) * r(z1, z2/|z2|))

with amount = tanh(|z2| / sqrt(d2)), exactly 0 at z2 = 0. The counterpart G(z1, 0) is the base
image exactly, and a walk t * z2 only turns up one masked change: the difference map
is that change, not a side effect of moving the whole image.

Two drawing choices decide G's artefacts. Nearest-neighbour upsampling followed by a 3x3
convolution gives even and odd output pixels different views of the duplicated input, so
every image carries a period-2 pattern, the stripes and cross-hatch of the trained runs
(2-4x the real radiographs' period-2 energy); `upsampling="bilinear"` interpolates instead.
Zero padding tells each convolution where the image edge is, and the trained runs drew
bright alternating columns there, which the gated branch then changed along the walk: the
traversal map's maximum sat on the image border for 84-90% of random codes;
`padding="reflect"` pads every convolution of G by reflection, so the edge looks like more
image.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
from keras import ops

from covgan.models.options import PADDING, UPSAMPLING

Z1_DIM = 100
Z2_DIM = 10

# Widths of the 4x4 projection and of each of the five stages (4 -> 128 pixels).
PRESETS = {
    "paper": (512, (512, 256, 128, 64, 32)),
    "tiny": (128, (96, 64, 32, 16, 8)),
}
# Real films: tiny's G (twice as wide at 32-128 pixels measured worse; training/presets.py).
PRESETS["films"] = PRESETS["tiny"]


def residual_branch_layers(generator: keras.Model) -> list[keras.layers.Layer]:
    """The gated residual branch's layers (the stages leaving the trunk, the change and the
    gate): what a walk from z2 = 0 turns up. Empty for a G without `gated_residual`."""
    return [layer for layer in generator.layers
            if layer.name.startswith("residual") or layer.name == "gate"]


def split_at_branch(generator: keras.Model) -> tuple[keras.Model, keras.Model]:
    """A gated-residual G as (trunk, head), sharing G's layers: trunk(z) gives what the branch
    does not change (the branch's input features, z2's direction and amount, the base image's
    logit) and head(trunk(z)) == G(z). Fitting the head alone fits the branch without
    recomputing the trunk.

    Raises:
        ValueError: a G without a gated branch.
    """
    if not residual_branch_layers(generator):
        raise ValueError("Only a gated-residual G has a branch to split at; this G has none.")
    amount, direction = generator.get_layer("z2_amount").output
    parts = [generator.get_layer(f"residual{BRANCH_FROM_STAGE + 1}_up").input, direction, amount,
             generator.get_layer("to_image").output]
    return (keras.Model(generator.inputs, parts, name="trunk"),
            keras.Model(parts, generator.outputs, name="branch_head"))


@functools.lru_cache(maxsize=4)
def with_counterpart(generator: keras.Model) -> keras.Model | None:
    """A gated-residual G as (z1, z2) -> (G(z1, z2), G(z1, 0)) in one pass, sharing G's
    layers: the counterpart is the sigmoid of the base image's logit, which z2 never reaches,
    so it is G(z1, 0) exactly and costs nothing beyond the image (the locality term's second
    render of every row, for the training step). None for a G without a gated branch.

    Kept per G, and built apart from G and the GAN so no checkpoint or saved model holds it.
    """
    if not residual_branch_layers(generator):
        return None
    counterpart = keras.layers.Activation("sigmoid", dtype="float32", name="counterpart")(
        generator.get_layer("to_image").output)
    return keras.Model(generator.inputs, [generator.outputs[0], counterpart],
                       name="with_counterpart")


def drawn_with_counterparts(generator: keras.Model, z1, z2, *, training: bool = False):
    """(G(z1, z2), G(z1, 0)). A gated G draws both in one pass (`with_counterpart`: its base
    image is the counterpart, and its branch's batch statistics come from the rows z2 draws
    alone); any other G renders the counterparts as rows of their own in the same call."""
    both_at_once = with_counterpart(generator)
    if both_at_once is not None:
        images, counterparts = both_at_once([z1, z2], training=training)
        return images, counterparts
    batch = ops.shape(z1)[0]
    both = generator([ops.concatenate([z1, z1], 0),
                      ops.concatenate([z2, ops.zeros_like(z2)], 0)], training=training)
    return both[:batch], both[batch:]


def code_sizes(generator: keras.Model) -> tuple[int, int]:
    """(d1, d2): the sizes of the structure code z1 and the disease code z2 G takes."""
    return int(generator.inputs[0].shape[-1]), int(generator.inputs[1].shape[-1])


@keras.saving.register_keras_serializable(package="covgan")
class CodeAmountAndDirection(keras.layers.Layer):
    """z2 -> (tanh(scale * |z2|) (B, 1), z2 / |z2| (B, d2)); both exactly 0 at z2 = 0.

    |z2| is taken as sqrt(|z2|^2 + eps) - sqrt(eps): exactly 0 at 0 with a finite gradient
    there (inversion moves z2 through it). `scale` 1 / sqrt(d2) puts a typical z2 ~ N(0, I)
    at tanh(1), so a walk t * z2 turns the change up over the whole walk rather than in its
    first steps."""

    EPS = 1e-6

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, z2):
        # In float32 under any policy: the norm of a small code needs more than bfloat16's
        # three digits, and the constants below are float32.
        z2 = ops.cast(z2, "float32")
        squared = ops.sum(ops.square(z2), axis=-1, keepdims=True)
        norm = ops.sqrt(squared + self.EPS) - ops.sqrt(self.EPS)
        return ops.tanh(self.scale * norm), z2 / (norm + ops.sqrt(self.EPS))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1), tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="covgan")
class ReflectPadding2D(keras.layers.Layer):
    """Pads height and width by `size` pixels, mirroring the image (no repeated edge row)."""

    def __init__(self, size=1, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        k = self.size
        return ops.pad(x, [[0, 0], [k, k], [k, k], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        def grown(n):
            return None if n is None else n + 2 * self.size

        return batch, grown(height), grown(width), channels

    def get_config(self):
        return {**super().get_config(), "size": self.size}


# The residual branch leaves the trunk after this stage (32 x 32 pixels).
BRANCH_FROM_STAGE = 3


def build_generator(preset: str = "tiny", *, z1_dim: int = Z1_DIM, z2_dim: int = Z2_DIM,
                    inject_z2: bool = False, gated_residual: bool = False,
                    upsampling: str = "nearest", padding: str = "zeros",
                    seed: int | None = None) -> keras.Model:
    """Builds G with named inputs "z1" (B, z1_dim), "z2" (B, z2_dim) and output "images".

    Args:
        preset: "paper", "tiny" or "films" (see PRESETS).
        z1_dim: structure code size (the authors use 100).
        z2_dim: disease code size (the authors use 10).
        inject_z2: also add a linear map of z2 to every stage (see the module docstring);
            with gated_residual, z2's direction enters every residual stage instead of only
            the first.
        gated_residual: base image from z1, masked change from z2 (module docstring).
        upsampling: "nearest" (the paper's) or "bilinear" (no period-2 stripes).
        padding: "zeros" ("same" convolutions) or "reflect" (no edge signal).
        seed: initialiser seed.
    """
    if preset not in PRESETS:
        raise ValueError(f"Unknown generator preset {preset!r}; one of {sorted(PRESETS)}.")
    if upsampling not in UPSAMPLING:
        raise ValueError(f"Unknown upsampling {upsampling!r}; one of {UPSAMPLING}.")
    if padding not in PADDING:
        raise ValueError(f"Unknown padding {padding!r}; one of {PADDING}.")
    # One seeded initialiser for every layer: it draws the same values for the same shape, so
    # the gated branch's stages and its residual and gate heads start as copies of the trunk's
    # stages and image head (with z2's shift at zero, change = base logit at the start). Every
    # gated run was trained from that start; on untrained G's, pivotal tuning's counterpart
    # fit draws what the codes missed into the counterpart from it, and hardly at all from
    # independently drawn branch weights (tests/models/test_seeds.py pins the copy).
    draw = Drawing(init=keras.initializers.HeNormal(seed=seed), upsampling=upsampling,
                    padding=padding)
    base, stages = PRESETS[preset]
    init = draw.init
    z1 = keras.Input((z1_dim,), name="z1")
    z2 = keras.Input((z2_dim,), name="z2")
    if gated_residual:
        amount, direction = CodeAmountAndDirection(scale=z2_dim ** -0.5, name="z2_amount")(z2)
        x = z1
    else:
        x = keras.layers.Concatenate(name="codes")([z1, z2])
    x = keras.layers.Dense(4 * 4 * base, use_bias=False, kernel_initializer=init, name="project")(x)
    x = keras.layers.Reshape((4, 4, base))(x)
    # synchronized: under tf.distribute the batch statistics are the global batch's, so a
    # mirrored or multiworker step computes what one device would (per-replica statistics
    # would not); without a strategy it changes nothing.
    x = keras.layers.BatchNormalization(momentum=0.9, synchronized=True, name="project_bn")(x)
    x = keras.layers.ReLU()(x)
    branch = None
    for stage, width in enumerate(stages, start=1):
        x = draw.stage(x, width, f"up{stage}", z2 if inject_z2 and not gated_residual else None)
        if gated_residual and stage == BRANCH_FROM_STAGE:
            branch = x
        elif branch is not None:
            first = stage == BRANCH_FROM_STAGE + 1
            branch = draw.stage(branch, width, f"residual{stage}",
                                direction if inject_z2 or first else None)
    if not gated_residual:
        x = draw.conv(x, 1, "to_image")
        images = keras.layers.Activation("sigmoid", dtype="float32", name="images")(x)
        return keras.Model([z1, z2], images, name=f"generator_{preset}")
    base_logit = draw.conv(x, 1, "to_image")
    change = draw.conv(branch, 1, "residual")
    gate = draw.conv(branch, 1, "gate", activation="sigmoid")
    masked = keras.layers.Multiply(name="masked_change")([change, gate])
    masked = keras.layers.Multiply(name="scaled_change")(
        [masked, keras.layers.Reshape((1, 1, 1))(amount)])
    logit = keras.layers.Add(name="image_logit")([base_logit, masked])
    images = keras.layers.Activation("sigmoid", dtype="float32", name="images")(logit)
    return keras.Model([z1, z2], images, name=f"generator_{preset}_gated")


@dataclasses.dataclass(frozen=True)
class Drawing:
    """How G's layers draw: the initialiser, the upsampling and the convolutions' padding."""

    init: keras.initializers.Initializer
    upsampling: str
    padding: str

    def conv(self, x, width, name, **kwargs):
        """A 3x3 convolution that keeps the size, zero- or reflection-padded."""
        if self.padding == "reflect":
            x = ReflectPadding2D(1, name=f"{name}_pad")(x)
        return keras.layers.Conv2D(width, 3, padding="valid" if self.padding == "reflect"
                                   else "same", kernel_initializer=self.init, name=name,
                                   **kwargs)(x)

    def stage(self, x, width, name, code=None):
        """Upsample 2x, 3x3 conv, batch norm, an optional shift by a bias-free map of
        `code`, ReLU."""
        # The trunk's upsampling layers keep the names earlier runs were saved with ("up1"...).
        x = keras.layers.UpSampling2D(
            2, interpolation=self.upsampling,
            name=f"{name}_up" if name.startswith("residual") else name)(x)
        x = self.conv(x, width, f"{name}_conv", use_bias=False)
        x = keras.layers.BatchNormalization(momentum=0.9, synchronized=True,
                                            name=f"{name}_bn")(x)
        if code is not None:
            shift = keras.layers.Dense(width, use_bias=False, kernel_initializer="zeros",
                                       name=f"{name}_z2")(code)
            x = keras.layers.Add()([x, keras.layers.Reshape((1, 1, width))(shift)])
        return keras.layers.ReLU()(x)
