"""Eq. 1 and Eq. 2 terms as small pure functions of tensors.

Each returns per-example losses (shape (B,)), so callers can average over the
global batch under tf.distribute (`scale_to_global_batch`).
"""

from keras import ops

_EPSILON = 1e-7


def nonsaturating_discriminator_loss(real_logits, fake_logits, real_weights=None):
    """-log D(x) - log(1 - D(G(z))), the discriminator's half of Eq. 1.

    Goodfellow et al. 2014: D maximises E[log D(x)] + E[log(1 - D(G(z)))]. With
    logits l, -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).

    Args:
        real_logits: (B, 1) or (B,) D's logits on real images.
        fake_logits: (B, 1) or (B,) D's logits on generated images.
        real_weights: optional (B,) weights of the real images' terms, so that the
            expectation over x is over a reweighted data set (`covgan train --balance-by`).

    Returns:
        (B,) per-example losses.
    """
    real = ops.reshape(real_logits, (-1,))
    fake = ops.reshape(fake_logits, (-1,))
    real_loss = ops.softplus(-real)
    if real_weights is not None:
        real_loss = real_loss * ops.cast(ops.reshape(real_weights, (-1,)), real_loss.dtype)
    return real_loss + ops.softplus(fake)


def nonsaturating_generator_loss(fake_logits):
    """-log D(G(z)), the non-saturating generator loss (Goodfellow et al. 2014, sec. 3).

    Returns:
        (B,) per-example losses, softplus(-logits).
    """
    return ops.softplus(-ops.reshape(fake_logits, (-1,)))


def classifier_cross_entropy(labels, probabilities):
    """-log p_C(y | G(z1, z2)), the classifier term of Eq. 1.

    Args:
        labels: (B,) intended classes, 0 or 1.
        probabilities: (B, 2) the frozen classifier's softmax output.

    Returns:
        (B,) per-example losses.
    """
    probabilities = ops.cast(probabilities, "float32")
    chosen = ops.take_along_axis(
        probabilities, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1
    )[:, 0]
    return -ops.log(ops.clip(chosen, _EPSILON, 1.0))


def locality_penalty(change, tv_weight=1.0):
    """L1 + total variation of the change z2 makes, G(z1, z2) - G(z1, 0) (a covgan lever).

    Eq. 1 lets G satisfy C with changes anywhere (a chest that grows and darkens); this term
    asks for the smallest change that does it, in few compact places: small in L1 (sparse) and
    in total variation (piecewise flat, so no speckle). Both are per-pixel means.

    Args:
        change: (B, H, W, C) the difference between an image and its negative counterpart.
        tv_weight: weight of the total-variation part against the L1 part.

    Returns:
        (B,) per-example penalties.
    """
    change = ops.cast(change, "float32")
    l1 = ops.mean(ops.abs(change), axis=(1, 2, 3))
    down = ops.mean(ops.abs(change[:, 1:] - change[:, :-1]), axis=(1, 2, 3))
    across = ops.mean(ops.abs(change[:, :, 1:] - change[:, :, :-1]), axis=(1, 2, 3))
    return l1 + tv_weight * (down + across)


def change_overlap(change, other):
    """How much two changes of the same image lie in the same places: the cosine similarity of
    their absolute values over the pixels, in [0, 1] (a covgan lever, `lambda_spread`).

    Scale-free, so asking for a low overlap moves where a change lies without making it larger
    (the locality term keeps it small): two disease codes for one z1 should change different
    places, which gives the inversion a code whose change lies where a film's own finding is.

    Args:
        change, other: (B, H, W, C) two differences G(z1, z2) - G(z1, 0) for the same z1.

    Returns:
        (B,) per-example overlaps.
    """
    flat = [ops.reshape(ops.abs(ops.cast(c, "float32")), (ops.shape(c)[0], -1))
            for c in (change, other)]
    dot = ops.sum(flat[0] * flat[1], axis=-1)
    norms = ops.sqrt(ops.sum(ops.square(flat[0]), -1) * ops.sum(ops.square(flat[1]), -1))
    return dot / (norms + _EPSILON)


def scale_to_global_batch(per_example, global_batch_size):
    """Sum / global batch: the mean over all replicas once gradients are summed."""
    return ops.sum(ops.cast(per_example, "float32")) / ops.cast(global_batch_size, "float32")


def binary_cross_entropy(targets, predictions):
    """Elementwise BCE between probabilities (Eq. 2's classifier agreement term)."""
    predictions = ops.clip(ops.cast(predictions, "float32"), _EPSILON, 1.0 - _EPSILON)
    targets = ops.cast(targets, "float32")
    return -(targets * ops.log(predictions) + (1.0 - targets) * ops.log(1.0 - predictions))


def mean_squared_error(a, b):
    """Per-example MSE over all pixels (Eq. 2's fidelity term): (B, ...) -> (B,)."""
    squared = ops.square(ops.cast(a, "float32") - ops.cast(b, "float32"))
    return ops.mean(ops.reshape(squared, (ops.shape(squared)[0], -1)), axis=-1)

