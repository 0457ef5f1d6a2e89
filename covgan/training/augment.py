"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) for small real data sets.

The same random translation and cutout are applied to real and generated images
before D sees them, so D cannot memorise the few real images, and gradients flow
through the augmentation to G. Per-sample randomness comes from the caller's
`keras.random.SeedGenerator`.
"""

from keras import ops, random


def diff_augment(images, seed_generator, *, translation=0.125, cutout=0.5):
    """Randomly translates (zero fill) and cuts out a square from each image.

    Args:
        images: (B, H, W, C) float.
        seed_generator: a `keras.random.SeedGenerator`.
        translation: maximum shift as a fraction of the side.
        cutout: side of the cut-out square as a fraction of the side.

    Returns:
        Augmented images, same shape and dtype.
    """
    batch = ops.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    if translation:
        shift = ops.round(
            random.uniform((batch, 2), -translation, translation, seed=seed_generator)
            * ops.convert_to_tensor([width, height], "float32")
        )
        ones, zeros = ops.ones((batch, 1)), ops.zeros((batch, 1))
        # Projective transform rows [a0 a1 a2 b0 b1 b2 c0 c1]: output(x, y) = input(x + dx, y + dy).
        transform = ops.concatenate(
            [ones, zeros, shift[:, :1], zeros, ones, shift[:, 1:], zeros, zeros], axis=1
        )
        images = ops.image.affine_transform(
            images, transform, interpolation="nearest", fill_mode="constant", fill_value=0.0
        )
    if cutout:
        centre = random.uniform((batch, 2), 0.0, 1.0, seed=seed_generator)
        ys = ops.reshape(ops.arange(height, dtype="float32") / height, (1, height, 1, 1))
        xs = ops.reshape(ops.arange(width, dtype="float32") / width, (1, 1, width, 1))
        cy = ops.reshape(centre[:, 0], (-1, 1, 1, 1))
        cx = ops.reshape(centre[:, 1], (-1, 1, 1, 1))
        inside = ops.logical_and(ops.abs(ys - cy) < cutout / 2, ops.abs(xs - cx) < cutout / 2)
        images = images * ops.cast(ops.logical_not(inside), images.dtype)
    return images
