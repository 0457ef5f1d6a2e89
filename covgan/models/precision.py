"""Mixed precision for models loaded from .keras files, and the policy covgan picks.

A .keras file records each layer's dtype policy (float32 when it was trained so), and
loading restores it whatever the global policy says: under a mixed policy a loaded G or C
would still compute in float32. `in_global_policy` rebuilds such a model in the global
policy, keeping its output layers in float32 (images and probabilities stay float32, as
Keras' mixed-precision guide advises for outputs), and copies the weights over.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def mixed_policy_name() -> str:
    """float16 on a GPU (tensor cores), bfloat16 on a CPU (no loss scaling needed)."""
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def in_global_policy(model: keras.Model) -> keras.Model:
    """`model` computing in Keras' global dtype policy, with the same weights; its output
    layers keep float32. Under float32 the model itself is returned."""
    policy = keras.mixed_precision.global_policy().name
    if policy == "float32":
        return model
    config = keras.saving.serialize_keras_object(model)
    outputs = {entry[0] for entry in _output_layers(config)}
    _set_layer_policies(config, policy, keep=outputs)
    rebuilt = keras.saving.deserialize_keras_object(config, safe_mode=True)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _output_layers(config):
    """The top model's [layer name, node, tensor] output entries in a serialized config."""
    entries = config.get("config", {}).get("output_layers", [])
    if entries and isinstance(entries[0], str):  # a single output: one flat entry
        entries = [entries]
    return entries


def _set_layer_policies(node, policy, keep=frozenset()):
    """Replaces every layer's serialized DTypePolicy in a Keras config, in place, except in
    the layers named in `keep` (at the top level: nested models' layers are all replaced)."""
    if isinstance(node, dict):
        if node.get("config", {}).get("name") in keep and "class_name" in node:
            return
        dtype = node.get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") == "DTypePolicy":
            node["dtype"] = policy
        for value in node.values():
            _set_layer_policies(value, policy, keep)
    elif isinstance(node, list):
        for value in node:
            _set_layer_policies(value, policy, keep)
