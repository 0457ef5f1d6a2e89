"""tf.distribute strategies for `covgan train --strategy`.

- `mirrored` replicates over the local GPUs, or over logical CPU devices where
  no GPU exists (set up with `split_cpu` before TensorFlow initialises).
- `multiworker` spans processes or hosts described by TF_CONFIG. Keras' fit()
  cannot build a custom-train_step model under it, so `fit_distributed` drives
  the same `train_step` through `strategy.run` over a distributed dataset.
Losses are already divided by the global batch inside train_step.
"""

import json
import os
import sys
import tempfile

import keras
import tensorflow as tf

from covgan.errors import CovganError

STRATEGIES = ("default", "mirrored", "multiworker")


def split_cpu(replicas):
    """Splits the CPU into `replicas` logical devices; call before any TF op runs."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    )


def make_strategy(name):
    """The strategy called `name` (see STRATEGIES)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise CovganError("--strategy multiworker needs TF_CONFIG describing the cluster.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise CovganError(f"Unknown strategy {name!r}; one of {STRATEGIES}.")


def is_chief():
    """True unless TF_CONFIG names this process a non-chief worker."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief)


def writable_dir(run_dir):
    """The run folder on the chief; a throw-away folder on other workers (they must save too)."""
    return run_dir if is_chief() else tempfile.mkdtemp(prefix="covgan-worker-")


def shard_by_data(dataset):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit_distributed(model, strategy, dataset, *, epochs, initial_epoch, callbacks, verbose):
    """fit() for MultiWorkerMirroredStrategy: same train_step, same callbacks, per epoch.

    Returns:
        history: {tracker name: [value per epoch]}.
    """
    distributed = strategy.experimental_distribute_dataset(shard_by_data(dataset))

    @tf.function
    def step(batch):
        return strategy.run(model.train_step, args=(batch,))

    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    callback_list.on_train_begin()
    history = {}
    for epoch in range(initial_epoch, epochs):
        for metric in model.metrics:
            metric.reset_state()
        callback_list.on_epoch_begin(epoch)
        for batch in distributed:
            logs = step(batch)
        logs = {k: float(strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None))
                for k, v in logs.items()}
        callback_list.on_epoch_end(epoch, logs)
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        if verbose:
            values = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            print(f"Epoch {epoch + 1}/{epochs} - {values}", file=sys.stderr, flush=True)
    callback_list.on_train_end()
    return history
