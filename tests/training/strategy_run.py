"""Trains covgan's GAN for one epoch under a tf.distribute strategy, latents fixed by row.

Run as a script by test_gan_presets.py (mirrored needs the CPU split before TensorFlow
starts; multiworker needs a process per worker):

    python strategy_run.py DATA CLASSIFIER OUT STRATEGY [STRATEGY ...]

Each strategy's run goes through `train_gan`, the code `covgan train --strategy` runs. The
latents are the only randomness in a step, and each strategy draws its own, so they are
replaced by fixed ones: the whole global batch's rows, of which each replica takes its own
slice. With the same images, any two strategies must then compute the same step.
"""

import collections
import json
import sys
import threading

import numpy as np

GLOBAL_BATCH = 16


def fix_latents(z1_dim, z2_dim):
    """Makes ConditionalGAN.sample_latents return fixed rows: one set for D's step, one for G's."""
    import tensorflow as tf

    from covgan.training.conditional_gan import ConditionalGAN

    rng = np.random.default_rng(0)
    sets = []
    for _ in range(2):
        y = np.arange(GLOBAL_BATCH) % 2
        z1 = rng.standard_normal((GLOBAL_BATCH, z1_dim)).astype("f4")
        z2 = rng.standard_normal((GLOBAL_BATCH, z2_dim)).astype("f4") * y[:, None]
        sets.append((z1, z2, y.astype("int32")))
    calls = collections.Counter()  # per thread: MirroredStrategy traces each replica in its own

    def sample_latents(self, batch_size):
        if tf.executing_eagerly():  # building the model, outside any step
            return tuple(tf.constant(v[:batch_size]) for v in sets[0])
        # Called while tracing the step: D's first, then G's, once per replica (thread).
        z1, z2, y = sets[calls[threading.get_ident()] % 2]
        calls[threading.get_ident()] += 1
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        start = tf.cast(replica, "int32") * tf.cast(batch_size, "int32")
        return tuple(tf.slice(tf.constant(v), [start] + [0] * (v.ndim - 1),
                              [batch_size] + list(v.shape[1:])) for v in (z1, z2, y))

    ConditionalGAN.sample_latents = sample_latents


def main():
    data, classifier, out, *strategies = sys.argv[1:]
    if "mirrored" in strategies:
        from covgan.training.distribute import split_cpu

        split_cpu(2)
    import keras
    import tensorflow as tf

    from covgan.training.gan import GANTrainingConfig, train_gan

    fix_latents(z1_dim=16, z2_dim=4)
    results = {}
    for strategy in strategies:
        keras.utils.set_random_seed(0)  # as `covgan train` does (weights' initial values)
        config = GANTrainingConfig(data=data, classifier=classifier, out=f"{out}/{strategy}",
                                   epochs=1, batch_size=GLOBAL_BATCH, z1_dim=16, z2_dim=4,
                                   strategy=strategy, seed=0)
        results[strategy] = train_gan(config, verbose=0)
    results["cpu_devices"] = len(tf.config.list_logical_devices("CPU"))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
