"""A builder's `seed` fixes every initial value of its model, heads and non-trainable state
included: untrained models in tests and benchmarks are the same in every process."""

import numpy as np
import pytest

from covgan.models.classifier import build_classifier
from covgan.models.discriminator import build_discriminator
from covgan.models.encoder import build_encoder
from covgan.models.generator import build_generator

BUILDERS = {
    "classifier": lambda seed: build_classifier("tiny", seed=seed),
    "generator": lambda seed: build_generator("tiny", z1_dim=8, z2_dim=2, seed=seed),
    "gated generator": lambda seed: build_generator("tiny", z1_dim=8, z2_dim=2,
                                                    gated_residual=True, seed=seed),
    "discriminator": lambda seed: build_discriminator("tiny", seed=seed),
    "class-aware discriminator": lambda seed: build_discriminator("tiny", class_aware=True,
                                                                  seed=seed),
    "encoder": lambda seed: build_encoder("tiny", z1_dim=8, z2_dim=2, seed=seed),
}


def random_weights(model):
    """Each weight's path and values, leaving out those every build starts the same (zeros
    and ones: biases, batch-norm state, zero-initialised layers)."""
    return {w.path: w.numpy() for w in model.weights
            if np.unique(w.numpy()).size > 1}


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_the_same_seed_builds_the_same_model_and_another_seed_another(builder):
    # Built one after the other in one process, where an unseeded layer would draw from
    # Keras' global generator and so start differently each time.
    first, again, other = random_weights(builder(3)), random_weights(builder(3)), \
        random_weights(builder(4))
    assert first.keys() == again.keys() == other.keys() and first
    for path in first:
        np.testing.assert_array_equal(first[path], again[path], err_msg=path)
        assert not np.array_equal(first[path], other[path]), path


def identical_kernels(model):
    kernels = [(path, values) for path, values in random_weights(model).items()
               if path.endswith("kernel")]
    return {(path, other_path) for i, (path, kernel) in enumerate(kernels)
            for other_path, other in kernels[i + 1:]
            if kernel.shape == other.shape and np.array_equal(kernel, other)}


# Every builder but the gated G (its branch starts as a copy, on purpose), and the paper C.
NO_COPIES = {name: builder for name, builder in BUILDERS.items() if name != "gated generator"}
NO_COPIES["paper classifier"] = lambda seed: build_classifier("vgg16", seed=seed)


@pytest.mark.parametrize("builder", NO_COPIES.values(), ids=NO_COPIES.keys())
def test_no_two_layers_start_from_the_same_kernel(builder):
    # A seeded Keras initialiser draws the same values for a shape on every call: shared by
    # layers of one shape (VGG16's deeper convolutions), it would start them identical.
    assert identical_kernels(builder(0)) == set()


def test_a_gated_branch_starts_as_a_copy_of_the_trunk():
    # On purpose (build_generator): its stages and heads start as the trunk's, and nothing
    # else starts alike.
    copies = identical_kernels(BUILDERS["gated generator"](0))
    assert copies == {("residual4_conv/kernel", "up4_conv/kernel"),
                      ("residual5_conv/kernel", "up5_conv/kernel"),
                      ("residual/kernel", "gate/kernel"), ("residual/kernel", "to_image/kernel"),
                      ("gate/kernel", "to_image/kernel")}
