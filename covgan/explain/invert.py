"""Eq. 2: find (z1, z2) whose G(z1, z2) reproduces a real radiograph x.

    argmin_{z1, z2}  a * MSE(G(z1, z2), x) + b * BCE(C(G(z1, z2)), C(x))  [+ c * prior]
                     [+ w * BCE(C(G(z1, 0)), 0): the counterpart held negative]

solved for a whole batch at once by Adam written as a pure function: z, both
moment estimates and the step count are tensors carried through a
tf.while_loop inside a tf.function. Nothing is a tf.Variable, so the same
function can be exported as a SavedModel signature and serve concurrent
requests. Each image gets several random starts (restarts) and keeps the best;
an image stops moving once its loss has not improved by `tolerance` (relative)
for `patience` steps, and the loop ends when all have stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from covgan.explain.adam import adam_update
from covgan.explain.settings import (
    ADD_BACK_THRESHOLD,
    COUNTERPART,
    IMAGE,
    PROBABILITY_COLUMNS,
    PROBABILITY_TRUST_GAP,
    RECONSTRUCTION,
    SSIM_TRUST_THRESHOLD,
    InversionSettings,
)
from covgan.models import losses
from covgan.models.classifier import positive_probability
from covgan.models.generator import code_sizes, drawn_with_counterparts, residual_branch_layers

# Re-exported: the settings and thresholds live in settings.py (no TensorFlow there).
__all__ = ["InversionSettings", "PROBABILITY_TRUST_GAP", "SSIM_TRUST_THRESHOLD", "IMAGE",
           "RECONSTRUCTION", "COUNTERPART", "PROBABILITY_COLUMNS", "make_inversion_fn",
           "settings_for", "start_codes", "stateless_starts", "best_restarts", "trust_conditions",
           "is_trusted", "score_inversion", "score_drawn", "invert"]


def make_inversion_fn(generator: keras.Model, classifier: keras.Model,
                      settings: InversionSettings = InversionSettings(), *,
                      record: bool = False) -> Callable:
    """Compiles the batched solver: (images, z1_start, z2_start) -> (z1, z2, loss, steps).

    Args:
        generator: G, [z1, z2] -> images.
        classifier: C, images -> probabilities (B, 2).
        settings: `InversionSettings`.
        record: also return every step's iterate and loss (for fidelity-against-time
            curves; the benchmark uses it).

    Returns:
        A tf.function. Inputs: images (N, 128, 128, 1), z1_start (N, d1),
        z2_start (N, d2). Outputs: best z1, z2, their per-image loss, and the
        number of steps each image ran; with `record`, then the iterates (S, N, d1 + d2)
        and their losses (S, N) of the S steps the loop ran (row t: before update t + 1).
    """
    s = settings_for(generator, settings)
    d1, _ = code_sizes(generator)

    def objective(z, images, target):
        z1, z2 = z[:, :d1], z[:, d1:]
        if s.counterpart_weight:
            reconstruction, counterpart = drawn_with_counterparts(generator, z1, z2)
        else:
            reconstruction = generator([z1, z2], training=False)
        p = positive_probability(classifier, reconstruction)
        loss = s.mse_weight * losses.mean_squared_error(reconstruction, images)
        loss += s.bce_weight * losses.binary_cross_entropy(target, p)
        if s.counterpart_weight:  # the walk's start held negative: BCE(0, C(G(z1, 0)))
            p_counterpart = positive_probability(classifier, counterpart)
            loss += s.counterpart_weight * losses.binary_cross_entropy(
                tf.zeros_like(p_counterpart), p_counterpart)
        if s.prior_weight:
            # Keep each code near the Gaussian shell, |z|^2 / d ~ 1, where G was trained.
            shell = tf.square(tf.reduce_mean(tf.square(z1), -1) - 1.0)
            active = tf.cast(tf.reduce_any(z2 != 0.0, -1), tf.float32)
            shell += active * tf.square(tf.reduce_mean(tf.square(z2), -1) - 1.0)
            loss += s.prior_weight * shell
        return loss

    def descend(images, target, z, steps):
        """Adam from z for at most `steps` steps, each row stopping after `patience` steps
        without improvement. Returns the best iterate and loss per row, the steps each ran,
        and (with `record`) every step's iterates and losses."""
        zeros = tf.zeros_like(z)
        count = tf.shape(z)[0]
        infinity = tf.fill([count], np.float32(np.inf))
        state = (
            tf.constant(0), z, zeros, zeros, z, infinity,
            tf.zeros([count], tf.int32),  # steps since the last improvement
            tf.zeros([count], tf.int32),  # steps run
        )
        if record:
            state += (tf.TensorArray(tf.float32, size=0, dynamic_size=True),
                      tf.TensorArray(tf.float32, size=0, dynamic_size=True))

        def running(step, z, m, v, best_z, best, stale, ran, *history):
            return tf.logical_and(step < steps, tf.reduce_any(stale < s.patience))

        def adam_step(step, z, m, v, best_z, best, stale, ran, *history):
            with tf.GradientTape() as tape:
                tape.watch(z)
                loss = objective(z, images, target)
            if record:
                history = (history[0].write(step, z), history[1].write(step, loss))
            gradient = tape.gradient(loss, z)
            moving = tf.cast(stale < s.patience, tf.float32)[:, None]
            m, v, update = adam_update(m, v, gradient, tf.cast(step + 1, tf.float32),
                                       s.learning_rate, beta_1=s.beta_1, beta_2=s.beta_2,
                                       epsilon=s.epsilon)
            improved = loss < best * (1.0 - s.tolerance)
            best_z = tf.where(improved[:, None], z, best_z)
            best = tf.where(improved, loss, best)
            stale = tf.where(improved, 0, stale + 1)
            ran = ran + tf.cast(moving[:, 0] > 0, tf.int32)
            return (step + 1, z - moving * update, m, v, best_z, best, stale, ran, *history)

        _, z, _, _, best_z, best, _, ran, *history = tf.while_loop(running, adam_step, state)
        # The loop keeps the best iterate seen; score the final one too.
        final = objective(z, images, target)
        better = final < best
        best_z = tf.where(better[:, None], z, best_z)
        best = tf.minimum(final, best)
        return best_z, best, ran, tuple(h.stack() for h in history)

    pruning = s.restarts > 1 and 0 < s.keep_best_after < s.steps

    @tf.function(reduce_retracing=True)
    def solve(images, z1_start, z2_start):
        images = tf.convert_to_tensor(images, tf.float32)
        target = tf.stop_gradient(positive_probability(classifier, images))
        z = tf.concat([z1_start, z2_start], axis=-1)
        if not pruning:
            best_z, best, ran, history = descend(images, target, z, s.steps)
        else:
            wrong = f"A pruning solver takes {s.restarts} image-major rows per image."
            if z.shape[0] is not None and z.shape[0] % s.restarts:
                raise ValueError(f"{wrong} Received: {z.shape[0]} rows.")
            tf.debugging.assert_equal(tf.shape(z)[0] % s.restarts, 0, message=wrong)
            # Every start for keep_best_after steps; then only each image's best goes on,
            # with a fresh Adam state, while the others keep what they reached.
            best_z, best, ran, history = descend(images, target, z, s.keep_best_after)
            kept = best_restarts(best, s.restarts)[:, None]
            on_z, on_best, on_ran, on_history = descend(
                tf.gather_nd(images, kept), tf.gather_nd(target, kept),
                tf.gather_nd(best_z, kept), s.steps - s.keep_best_after)
            best_z = tf.tensor_scatter_nd_update(best_z, kept, on_z)
            best = tf.tensor_scatter_nd_update(best, kept, on_best)
            ran = tf.tensor_scatter_nd_add(ran, kept, on_ran)
            if record:
                history = tuple(_continued(early, later, kept)
                                for early, later in zip(history, on_history))
        if record:
            return best_z[:, :d1], best_z[:, d1:], best, ran, *history
        return best_z[:, :d1], best_z[:, d1:], best, ran

    return solve


def settings_for(generator: keras.Model, settings: InversionSettings) -> InversionSettings:
    """`settings` with what they leave to the inversion chosen for this G (the counterpart
    weight: `InversionSettings.for_generator`); the commands record these."""
    return settings.for_generator(bool(residual_branch_layers(generator)))


def _continued(early: tf.Tensor, later: tf.Tensor, kept: tf.Tensor) -> tf.Tensor:
    """A pruned solve's record, all rows: the first phase's steps (S1, rows, ...), then the
    kept rows' later steps (S2, images, ...) with every other row held at its last value."""
    held = tf.repeat(early[-1:], tf.shape(later)[0], axis=0)
    rows_first = tf.tensor_scatter_nd_update(
        tf.experimental.numpy.swapaxes(held, 0, 1), kept,
        tf.experimental.numpy.swapaxes(later, 0, 1))
    return tf.concat([early, tf.experimental.numpy.swapaxes(rows_first, 0, 1)], axis=0)


def start_codes(rng: np.random.Generator, rows: int, d1: int, d2: int,
                settings: InversionSettings, encoded: tuple[ArrayLike, ArrayLike] | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The starts of `rows` solver rows, image-major (row i * restarts + k is image i's start
    k): z2 ~ N(0, I); z1 ~ N(0, I), or 0 where `settings.z1_start` is "zeros" (the authors'
    start). Where it is "encoder", `encoded` holds the encoder's (z1, z2) per image, and each
    image's first start takes them (its other starts stay random, so the best-of-restarts
    pick can still fall back on one).

    Raises:
        ValueError: an encoder start without `encoded`, or `encoded` not one row per image.
    """
    z1 = rng.standard_normal((rows, d1)).astype(np.float32)
    z2 = rng.standard_normal((rows, d2)).astype(np.float32)
    if settings.z1_start == "zeros":
        z1[:] = 0.0
    elif settings.z1_start == "encoder":
        if encoded is None:
            raise ValueError("An encoder start needs the encoder's codes. Received: encoded=None.")
        e1, e2 = (np.asarray(e, np.float32) for e in encoded)
        if len(e1) == 0 or rows % len(e1):
            raise ValueError(f"encoded must hold one row per image. Received: {len(e1)} rows "
                             f"for {rows} starts.")
        restarts = rows // len(e1)
        z1[::restarts], z2[::restarts] = e1, e2
    return z1, z2


def stateless_starts(images, restarts: int, d1: int, d2: int, settings: InversionSettings,
                     seed, encoded=None) -> tuple[tf.Tensor, tf.Tensor]:
    """`start_codes`' starts, drawn by TensorFlow's stateless generator from the seed and each
    image's own content (its fingerprint): an image gets the same starts alone or in any batch,
    in `invert` and in an exported signature's graph alike, so `covgan explain`, a served
    explanation and a server that splits a request all start it in the same place.

    Args:
        images: (N, 128, 128, 1); rows are N * restarts, image-major.
        seed: the seed (an int or a scalar tensor).
        encoded: the encoder's (z1, z2) per image where `settings.z1_start` is "encoder".
    """
    fingerprints = tf.bitcast(tf.fingerprint(tf.reshape(images, [tf.shape(images)[0], -1])),
                              tf.int64)  # (N,): FarmHash of each image's bytes
    rows = tf.reshape(fingerprints[:, None] + tf.range(restarts, dtype=tf.int64)[None], [-1])
    seeds = tf.stack([tf.fill(tf.shape(rows), tf.cast(seed, tf.int64)), rows], axis=1)

    def draw(row_seed):
        return (tf.random.stateless_normal([d1], seed=row_seed),
                tf.random.stateless_normal([d2], seed=row_seed + tf.constant([1, 0], tf.int64)))

    z1, z2 = tf.map_fn(draw, seeds, fn_output_signature=(tf.float32, tf.float32))
    if settings.z1_start == "zeros":
        z1 = tf.zeros_like(z1)
    elif settings.z1_start == "encoder":
        if encoded is None:
            raise ValueError("An encoder start needs the encoder's codes. Received: encoded=None.")
        # Each image's first start at E(x), its others random (the best-of-restarts pick can
        # still fall back on one).
        first = tf.equal(tf.range(tf.shape(rows)[0]) % restarts, 0)[:, None]
        z1 = tf.where(first, tf.repeat(encoded[0], restarts, axis=0), z1)
        z2 = tf.where(first, tf.repeat(encoded[1], restarts, axis=0), z2)
    return z1, z2


def best_restarts(loss: tf.Tensor, restarts: int) -> tf.Tensor:
    """Row of the lowest final loss for each image; rows are image-major (i * restarts + k).

    Graph-safe: used by `invert` and by the exported invert signature alike.
    """
    count = tf.shape(loss)[0] // restarts
    best = tf.argmin(tf.reshape(loss, (count, restarts)), axis=1, output_type=tf.int32)
    return best + tf.range(count) * restarts


def trust_conditions(p_image: tf.Tensor, p_reconstruction: tf.Tensor, ssim: tf.Tensor,
                     p_add_back: tf.Tensor) -> dict[str, tf.Tensor]:
    """Each condition of the trust rule, True where it holds: ssim (the reconstruction looks
    like the image), probability_gap (C reads it within PROBABILITY_TRUST_GAP of how it reads
    x) and add_back_negative (the add-back G(z1, 0) + (x - G(z1, z2)), the counterpart plus all
    the GAN failed to reproduce, reads negative; where it reads positive, the residual alone
    carries the evidence and the walk explains something else)."""
    return {
        "ssim": ssim >= SSIM_TRUST_THRESHOLD,
        "probability_gap": tf.abs(p_reconstruction - p_image) <= PROBABILITY_TRUST_GAP,
        "add_back_negative": p_add_back < ADD_BACK_THRESHOLD,
    }


def is_trusted(p_image: tf.Tensor, p_reconstruction: tf.Tensor, ssim: tf.Tensor,
               p_add_back: tf.Tensor) -> tf.Tensor:
    """The trust rule: every one of `trust_conditions` holds."""
    conditions = trust_conditions(p_image, p_reconstruction, ssim, p_add_back)
    return tf.logical_and(tf.logical_and(conditions["probability_gap"], conditions["ssim"]),
                          conditions["add_back_negative"])


def score_inversion(generator: keras.Model, classifier: keras.Model, images: ArrayLike,
                    z1: ArrayLike, z2: ArrayLike) -> dict[str, tf.Tensor]:
    """An inversion's outputs, named as the exported invert signature names them.

    Graph-safe tensors in, tensors out; `invert` converts them to numpy.

    Returns:
        z1, z2, reconstructions G(z1, z2), counterparts G(z1, 0), probabilities (N, 3) with
        columns PROBABILITY_COLUMNS (p(positive) of image, reconstruction, counterpart), mse,
        ssim, add_backs (x + G(z1, 0) - G(z1, z2), clipped to [0, 1]: the image with what the
        walk changes taken out, and also the counterpart with the residual put back),
        add_back_probabilities (their p(positive)) and trusted (`is_trusted`).
    """
    images = tf.convert_to_tensor(images, tf.float32)
    z1, z2 = tf.convert_to_tensor(z1, tf.float32), tf.convert_to_tensor(z2, tf.float32)
    return score_drawn(classifier, images, z1, z2, generator([z1, z2], training=False),
                       generator([z1, tf.zeros_like(z2)], training=False))


def score_drawn(classifier: keras.Model, images, z1, z2, reconstructions,
                counterparts) -> dict[str, tf.Tensor]:
    """`score_inversion` of drawings already made (by a tuned G, say): graph-safe tensors."""
    p_image = positive_probability(classifier, images)
    p_reconstruction = positive_probability(classifier, reconstructions)
    p_counterpart = positive_probability(classifier, counterparts)
    ssim = tf.image.ssim(reconstructions, images, max_val=1.0)
    add_backs = tf.clip_by_value(images + counterparts - reconstructions, 0.0, 1.0)
    p_add_back = positive_probability(classifier, add_backs)
    return {
        "z1": z1, "z2": z2, "reconstructions": reconstructions, "counterparts": counterparts,
        "probabilities": tf.stack([p_image, p_reconstruction, p_counterpart], axis=1),
        "mse": tf.reduce_mean(tf.square(reconstructions - images), axis=[1, 2, 3]),
        "ssim": ssim,
        "add_backs": add_backs,
        "add_back_probabilities": p_add_back,
        "trusted": is_trusted(p_image, p_reconstruction, ssim, p_add_back),
    }


def invert(generator: keras.Model, classifier: keras.Model, images: ArrayLike, *,
           settings: InversionSettings = InversionSettings(), seed: int = 0,
           solver: Callable | None = None, batch: int = 64,
           encoder: keras.Model | None = None,
           progress: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    """Inverts a batch of radiographs and scores each inversion.

    Args:
        generator: G.
        classifier: C (adapted, frozen).
        images: (N, 128, 128, 1) float32 in [0, 1].
        settings: `InversionSettings`.
        seed: seed of the random starts.
        solver: a function from `make_inversion_fn` (compiled once, reused).
        batch: images solved together (each with `settings.restarts` starts).
        encoder: E, images -> [z1, z2]; needed where `settings.z1_start` is "encoder".
        progress: called with the number of images just solved, after each batch.

    Returns:
        A dict of numpy arrays, one row per image: `score_inversion`'s keys, plus loss (the
        final Eq. 2 objective) and steps (Adam steps run).
    """
    images = np.asarray(images, np.float32)
    solver = solver or make_inversion_fn(generator, classifier, settings)
    d1, d2 = code_sizes(generator)
    restarts = max(1, settings.restarts)
    if settings.z1_start == "encoder" and encoder is None:
        raise ValueError("settings.z1_start is 'encoder' but no encoder was given. "
                         "Received: encoder=None.")
    parts = []
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        repeated = np.repeat(chunk, restarts, axis=0)
        encoded = encoder(chunk, training=False) if settings.z1_start == "encoder" else None
        starts = stateless_starts(chunk, restarts, d1, d2, settings, seed, encoded)
        z1, z2, loss, ran = solver(repeated, *starts)
        pick = best_restarts(loss, restarts)
        parts.append([tf.gather(t, pick).numpy() for t in (z1, z2, loss, ran)])
        if progress:
            progress(len(chunk))
    z1, z2, loss, ran = (np.concatenate(p) for p in zip(*parts))
    scores = score_inversion(generator, classifier, images, z1, z2)
    return {**{k: np.asarray(v) for k, v in scores.items()}, "loss": loss, "steps": ran}
