"""Callbacks for GAN training: traversal image summaries and crash-safe checkpoints."""

import keras
import numpy as np
import tensorflow as tf

from covgan.errors import CovganError
from covgan.explain.traverse import DEFAULT_STEP_SIZE, DEFAULT_STEPS, traverse
from covgan.models.generator import code_sizes
from covgan.output.render import traversal_grid

TRAVERSAL_TAG = "traversal"


def grid_codes(generator, rows=4, seed=0):
    """The (z1, z2) of a traversal grid's rows: `rows` draws of N(0, I) from `seed`."""
    rng = np.random.default_rng(seed)
    d1, d2 = code_sizes(generator)
    return (rng.standard_normal((rows, d1)).astype(np.float32),
            rng.standard_normal((rows, d2)).astype(np.float32))


def drawn_grid(generator, classifier, z1, z2, *, steps=DEFAULT_STEPS,
               step_size=DEFAULT_STEP_SIZE):
    """The traversal grid of codes (z1, z2) as uint8 (render.traversal_grid): one row per
    code, G(z1, n * step_size * z2) for n = 0..steps, each tile over C's p(positive)."""
    images, probabilities = traverse(generator, classifier, z1, z2, steps=steps,
                                     step_size=step_size)
    return traversal_grid(images.numpy(), probabilities.numpy())


class TraversalSummary(keras.callbacks.Callback):
    """Writes a traversal grid to TensorBoard every `every` epochs (and after the last).

    Rows are fixed (z1, z2) samples; columns are G(z1, n * 0.1 * z2) for
    n = 0..10; each tile is stamped with C's p(positive). The grid is
    (rows * 128) x (11 * 128) pixels, one channel, under the tag "traversal".
    """

    def __init__(self, log_dir, generator, classifier, *, rows=4, every=1, total_epochs=None,
                 seed=0, steps=DEFAULT_STEPS, step_size=DEFAULT_STEP_SIZE):
        super().__init__()
        self.generator = generator
        self.classifier = classifier
        self.every = max(1, int(every))
        self.total_epochs = total_epochs
        self.steps, self.step_size = steps, step_size
        self.z1, self.z2 = grid_codes(generator, rows, seed)
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def on_epoch_end(self, epoch, logs=None):
        finished = epoch + 1
        last = self.total_epochs is not None and finished == self.total_epochs
        if finished % self.every and not last:
            return
        grid = drawn_grid(self.generator, self.classifier, self.z1, self.z2,
                          steps=self.steps, step_size=self.step_size)
        with self.writer.as_default():
            tf.summary.image(TRAVERSAL_TAG, grid[None, ..., None], step=finished,
                             description="rows: z1 samples; columns: n = 0..10 of n * 0.1 * z2; "
                                         "tiles stamped with the classifier's p(positive)")
        self.writer.flush()

    def on_train_end(self, logs=None):
        self.writer.close()


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves G, D, both optimizers, the seed state and the epoch count after every epoch (or,
    given `objects` by name instead of a GAN, those: the encoder's training uses it).

    tf.train.CheckpointManager writes the data files first and then replaces the
    small `checkpoint` state file atomically, so a run killed at any moment
    (SIGKILL included) restores from the last finished epoch.
    """

    def __init__(self, directory, gan=None, *, keep=2, **objects):
        super().__init__()
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epochs_done")
        if gan is not None:
            objects.update(gan=gan, d_optimizer=gan.d_optimizer, g_optimizer=gan.g_optimizer)
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch, **objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=keep)

    def restore(self):
        """Restores the latest checkpoint, if any; returns the number of finished epochs."""
        if self.manager.latest_checkpoint:
            self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
        return int(self.epoch.numpy())

    def restore_from(self, directory):
        """Restores another run's latest checkpoint (--init-from); returns its epoch count."""
        latest = tf.train.latest_checkpoint(str(directory))
        if not latest:
            raise CovganError(f"{directory} holds no checkpoint to start from.")
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            first = str(error).strip().splitlines()[0]
            raise CovganError(f"{latest} does not fit this GAN's shapes ({first}); start from "
                              "a run with the same preset and code sizes.") from None
        return int(self.epoch.numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)
