"""G and D: their contracts (named inputs, image range, float32 logits) and .keras round trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_keras_round_trip

from covgan.models.discriminator import build_discriminator
from covgan.models.generator import Drawing, build_generator, code_sizes
from covgan.shapes import IMAGE_SHAPE


def codes(count, d1=16, d2=4):
    rng = np.random.default_rng(0)
    return [rng.standard_normal((count, d1)).astype("float32"),
            rng.standard_normal((count, d2)).astype("float32")]


def test_generator_and_discriminator_contracts():
    generator = build_generator("tiny", z1_dim=16, z2_dim=4)
    assert [t.name for t in generator.inputs] == ["z1", "z2"]
    assert code_sizes(generator) == (16, 4)
    images = generator([np.zeros((2, 16), "float32"), np.zeros((2, 4), "float32")]).numpy()
    assert images.shape == (2, *IMAGE_SHAPE) and 0 <= images.min() and images.max() <= 1
    logits = build_discriminator("tiny")(images)
    assert logits.shape == (2, 1) and logits.dtype.name == "float32"


def test_generator_round_trips_in_safe_mode(tmp_path):
    generator = build_generator("tiny", z1_dim=16, z2_dim=4, inject_z2=True, seed=0)
    assert_keras_round_trip(generator, tmp_path / "g.keras", codes(2))


@pytest.mark.parametrize("class_aware", [False, True])
def test_discriminator_round_trips_in_safe_mode(tmp_path, class_aware):
    discriminator = build_discriminator("tiny", class_aware=class_aware, seed=1)
    images = np.random.default_rng(1).random((2, *IMAGE_SHAPE)).astype("float32")
    inputs = [images, np.array([0, 1], "int32")] if class_aware else images
    assert_keras_round_trip(discriminator, tmp_path / "d.keras", inputs)


def test_a_class_aware_discriminator_judges_the_same_image_by_its_class():
    discriminator = build_discriminator("tiny", class_aware=True, seed=1)
    images = np.random.default_rng(1).random((2, *IMAGE_SHAPE)).astype("float32")
    as_negative = discriminator([images, np.zeros(2, "int32")]).numpy()
    as_positive = discriminator([images, np.ones(2, "int32")]).numpy()
    assert as_negative.shape == (2, 1) and np.all(np.abs(as_negative - as_positive) > 1e-6)


def _perturbed(generator, layers):
    """A copy of `generator` with `layers`' weights replaced by random ones."""
    copy = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True, seed=0)
    copy.set_weights(generator.get_weights())
    rng = np.random.default_rng(5)
    for name in layers:
        layer = copy.get_layer(name)
        layer.set_weights([rng.standard_normal(w.shape).astype("float32")
                           for w in layer.get_weights()])
    return copy


def test_gated_residual_counterpart_is_the_base_image_exactly():
    generator = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True, seed=0)
    z1, z2 = codes(3)
    zero = np.zeros_like(z2)
    # Whatever the residual branch holds, z2 = 0 draws the same image, bit for bit; a
    # non-zero z2 draws another.
    other = _perturbed(generator, ["residual", "gate", "residual4_conv", "residual4_z2"])
    np.testing.assert_array_equal(generator([z1, zero]).numpy(), other([z1, zero]).numpy())
    assert np.abs(generator([z1, z2]).numpy() - other([z1, z2]).numpy()).max() > 1e-3
    # z2 does not reach the base: the trunk's weights are z1's alone.
    assert all("_z2" not in w.path or w.path.startswith("residual") for w in generator.weights)


def test_gated_residual_walk_turns_up_one_change():
    # Each pixel moves one way along t * z2, never back: the difference map at any step is
    # a scaled-down copy of the final one in sign and order.
    generator = _perturbed(build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True,
                                           seed=0), ["residual4_z2"])
    z1, z2 = codes(2)
    zero = generator([z1, np.zeros_like(z2)]).numpy()
    steps = [generator([z1, t * z2]).numpy() - zero for t in np.linspace(0, 1, 6)]
    assert np.abs(steps[-1]).max() > 1e-3
    for before, after in zip(steps, steps[1:]):
        assert np.all(np.abs(after) >= np.abs(before) - 1e-6)
        assert np.all(after * steps[-1] >= -1e-9)


def test_gated_residual_gradients_are_finite_at_zero_and_it_round_trips(tmp_path):
    generator = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True,
                                inject_z2=True, seed=0)
    z1, z2 = codes(2)
    z2 = tf.Variable(np.zeros_like(z2))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(generator([tf.constant(z1), tf.convert_to_tensor(z2)]))
    assert np.all(np.isfinite(tape.gradient(total, z2).numpy()))
    assert_keras_round_trip(generator, tmp_path / "g.keras", codes(2))


def _drawn(upsampling, padding, image):
    """One trunk stage without its norm and ReLU: upsample 2x, then a fixed 3x3 convolution."""
    draw = Drawing(init=keras.initializers.Constant(0.0), upsampling=upsampling,
                   padding=padding)
    inputs = keras.Input(image.shape[1:])
    upsampled = keras.layers.UpSampling2D(2, interpolation=upsampling)(inputs)
    model = keras.Model(inputs, draw.conv(upsampled, 1, "conv", use_bias=False))
    # An off-centre kernel, as training leaves them: it weighs the left neighbour more.
    model.get_layer("conv").set_weights([np.array(
        [[0, 0, 0], [0.6, 0.3, 0.1], [0, 0, 0]], "float32").reshape(3, 3, 1, 1)])
    return model(image).numpy()[0, :, :, 0]


def test_bilinear_upsampling_draws_no_stripes_on_a_smooth_image():
    # A horizontal ramp: after nearest upsampling it is a staircase, and the convolution
    # turns the stairs into a period-2 pattern, the stripes of the trained runs.
    ramp = np.tile(np.linspace(0, 1, 16, dtype="float32"), (16, 1))[None, :, :, None]
    def stripes(drawn):
        interior = drawn[4:-4, 4:-4]
        return np.abs(interior[:, 1:-1] - (interior[:, :-2] + interior[:, 2:]) / 2).max()

    assert stripes(_drawn("nearest", "reflect", ramp)) > 0.005
    assert stripes(_drawn("bilinear", "reflect", ramp)) < 1e-5


def test_reflect_padding_hides_the_image_edge():
    # On a flat image a zero-padded convolution darkens the edge; a reflection-padded one
    # cannot tell the edge from the middle.
    flat = np.full((1, 8, 8, 1), 0.5, "float32")
    zeros, reflect = _drawn("bilinear", "zeros", flat), _drawn("bilinear", "reflect", flat)
    assert abs(zeros[:, 0].mean() - zeros[:, 8].mean()) > 0.1
    np.testing.assert_allclose(reflect, 0.5, atol=1e-6)


@pytest.mark.parametrize("gated", [False, True])
def test_a_bilinear_reflect_generator_round_trips_and_keeps_its_counterpart(tmp_path, gated):
    generator = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=gated,
                                inject_z2=True, upsampling="bilinear", padding="reflect",
                                seed=0)
    z1, z2 = codes(2)
    images = generator([z1, z2]).numpy()
    assert images.shape == (2, *IMAGE_SHAPE)
    loaded = assert_keras_round_trip(generator, tmp_path / "g.keras", [z1, z2])
    assert any(type(layer).__name__ == "ReflectPadding2D" for layer in loaded.layers)
    with pytest.raises(ValueError, match="padding"):
        build_generator("tiny", padding="wrap")


def test_a_saved_float32_generator_computes_in_a_mixed_policy_with_float32_images():
    from covgan.models.precision import in_global_policy

    generator = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True,
                                upsampling="bilinear", seed=0)
    z1, z2 = codes(2)
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        mixed = in_global_policy(generator)
        images = mixed([z1, z2]).numpy()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.compute_dtype for layer in mixed.layers
            if isinstance(layer, keras.layers.Conv2D)} == {"bfloat16"}
    # The output layer keeps float32, and the code's norm (a custom layer) works in it too.
    assert images.dtype == np.float32
    np.testing.assert_allclose(images, generator([z1, z2]).numpy(), atol=0.05)


def test_a_gated_generator_splits_into_a_trunk_and_the_branchs_head():
    from covgan.models.generator import residual_branch_layers, split_at_branch

    generator = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True, seed=0)
    trunk, head = split_at_branch(generator)
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((3, 16)).astype("float32")
    z2 = rng.standard_normal((3, 4)).astype("float32")
    np.testing.assert_allclose(head(trunk([z1, z2])), generator([z1, z2]), atol=1e-6)
    # The head's weights are the branch's, the very variables G holds.
    branch = {id(w) for layer in residual_branch_layers(generator) for w in layer.weights}
    assert {id(w) for w in head.weights} == branch
    with pytest.raises(ValueError, match="gated-residual"):
        split_at_branch(build_generator("tiny", z1_dim=16, z2_dim=4, seed=0))


def test_a_gated_generator_draws_its_counterpart_in_the_same_pass():
    from covgan.models.generator import with_counterpart

    generator = build_generator("tiny", z1_dim=16, z2_dim=4, gated_residual=True, seed=0)
    rng = np.random.default_rng(0)
    z1 = rng.standard_normal((3, 16)).astype("float32")
    z2 = rng.standard_normal((3, 4)).astype("float32")
    images, counterparts = with_counterpart(generator)([z1, z2])
    np.testing.assert_allclose(images, generator([z1, z2]), atol=1e-6)
    np.testing.assert_allclose(counterparts, generator([z1, np.zeros_like(z2)]), atol=1e-6)
    assert float(np.abs(images - counterparts).max()) > 1e-3  # z2 changes the image
    assert with_counterpart(generator) is with_counterpart(generator)  # built once per G
    assert with_counterpart(build_generator("tiny", z1_dim=16, z2_dim=4, seed=0)) is None
