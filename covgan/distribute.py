"""tf.distribute strategies for `covgan train --strategy`.

`mirrored` replicates over the local GPUs, or over logical CPU devices where no
GPU exists (set up with `split_cpu` before TensorFlow initialises its devices).
"""

import tensorflow as tf

from covgan.errors import CovganError

STRATEGIES = ("default", "mirrored")


def split_cpu(replicas):
    """Splits the CPU into `replicas` logical devices; call before any TF op runs."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    )


def make_strategy(name):
    """The strategy called `name` ("default" or "mirrored")."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise CovganError(f"Unknown strategy {name!r}; one of {STRATEGIES}.")
