"""A Keras functional model run with its own weights for every row of the batch.

Pivotal tuning fits a copy of G's branch to each image. One image at a time, a step is a
batch of one: too small to keep 2 cores busy (TUNING_THREADS). Here K copies are one tensor
per weight, (K, *shape), and each layer that holds weights computes row k with slice k:

- Conv2D: one grouped convolution, the K rows' channels side by side as K groups, group k
  convolved with row k's kernel (tf.vectorized_map would loop instead: TF's Conv2D has no
  batched form for a kernel that differs per row);
- Dense: a batched matrix product;
- BatchNormalization, in inference mode: each row's gamma and beta, the shared moving
  statistics.

Layers without weights are called as they are. The gradient of a sum of per-row losses with
respect to the stacked weights is then each row's own gradient, in one pass. Grouped
convolutions have a gradient on GPUs and with TF's oneDNN CPU kernels (covgan turns them on),
not with TF's own CPU kernels (`grouped_convolution_gradients_work`). `convolution="patches"`
computes each row's convolution as its image patches (tf.image.extract_patches) times its
kernel, a batched matrix product: the same values (to rounding), a gradient on every kernel
of every device, so an exported graph that tunes runs on any TF Serving build; on a 2-core
CPU with oneDNN its step took 2.6-4.4x the grouped convolution's for the tiny branch's three
layer shapes (one throw-away measurement, 16 rows).
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf

from covgan.explain.settings import CONVOLUTIONS

# Layers with weights this module can run per row; a model with any other is refused.
SUPPORTED = (keras.layers.Conv2D, keras.layers.Dense, keras.layers.BatchNormalization)


def check_supported(model: keras.Model) -> None:
    """Raises ValueError where `model` has a layer with weights that `per_row_call` cannot
    run row by row (the caller then tunes one image at a time)."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if type(layer) not in SUPPORTED:
            raise ValueError(f"Per-row weights support {[t.__name__ for t in SUPPORTED]}; "
                             f"layer {layer.name!r} is a {type(layer).__name__}.")
        if isinstance(layer, keras.layers.Conv2D) and (
                layer.groups != 1 or layer.data_format != "channels_last"
                or layer.padding not in ("same", "valid")):
            raise ValueError(f"Per-row weights run channels-last Conv2D of one group and "
                             f"'same' or 'valid' padding; layer {layer.name!r} is not one.")
        if isinstance(layer, keras.layers.BatchNormalization) and layer.axis not in (-1, 3):
            raise ValueError(f"Per-row weights run BatchNormalization over the last axis; layer "
                             f"{layer.name!r} normalises axis {layer.axis}.")


@functools.cache
def grouped_convolution_gradients_work() -> bool:
    """Whether a grouped convolution's gradients run on this process's default device (TF's
    own CPU kernels refuse them; oneDNN's and cuDNN's have them)."""
    x = tf.ones([1, 4, 4, 2])
    kernel = tf.ones([3, 3, 1, 2])
    try:
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
        tape.gradient(y, [x, kernel])[0].numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
        return False
    return True


def stacked(model: keras.Model, rows: int) -> list[tf.Tensor]:
    """`model`'s trainable weights repeated for `rows` rows: (rows, *shape) each, in the order
    of `model.trainable_variables`."""
    return [tf.repeat(w.value[None], rows, axis=0) for w in model.trainable_variables]


def per_row_call(model: keras.Model, weights: list[tf.Tensor], inputs,
                 convolution: str = "grouped"):
    """`model(inputs, training=False)` with row k of the batch computed by weights[i][k] in
    place of model.trainable_variables[i]. Non-trainable weights (moving statistics) are
    shared. `check_supported(model)` first. `convolution` is one of CONVOLUTIONS (the module
    docstring says when each)."""
    if convolution not in CONVOLUTIONS:
        raise ValueError(f"convolution must be one of {CONVOLUTIONS}. Received: {convolution!r}.")
    conv = _conv if convolution == "grouped" else _conv_by_patches
    where = {id(v): i for i, v in enumerate(model.trainable_variables)}

    def own(variable):
        return weights[where[id(variable)]] if id(variable) in where else variable.value[None]

    def operation_fn(layer):
        if not layer.weights:
            return layer
        if isinstance(layer, keras.layers.Conv2D):
            return lambda x, **_: conv(layer, own, x)
        if isinstance(layer, keras.layers.Dense):
            return lambda x, **_: _dense(layer, own, x)
        return lambda x, **_: _batch_norm(layer, own, x)

    # Keras' own walk through a functional graph, the one Functional.call makes with each
    # layer in place; here the layers with weights are swapped for their per-row versions.
    outputs = model._run_through_graph(inputs, operation_fn=operation_fn)
    single = isinstance(outputs, (list, tuple)) and len(outputs) == 1
    return outputs[0] if single else outputs  # as Functional.call unpacks one output


def _conv(layer, own, x):
    kernel = own(layer.kernel)  # (K or 1, kh, kw, C_in, C_out)
    kernel = tf.broadcast_to(kernel, [tf.shape(x)[0], *kernel.shape[1:]])
    kh, kw, c_in, c_out = kernel.shape[1:]
    rows, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    # K rows as K groups of one image's channels: (1, H, W, K * C_in) against
    # (kh, kw, C_in, K * C_out), group k reading row k's channels with row k's kernel.
    grouped = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, height, width, rows * c_in])
    kernels = tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), [kh, kw, c_in, rows * c_out])
    y = tf.nn.conv2d(grouped, kernels, strides=layer.strides, padding=layer.padding.upper(),
                     dilations=layer.dilation_rate)
    y = tf.transpose(tf.reshape(y, [tf.shape(y)[1], tf.shape(y)[2], rows, c_out]), [2, 0, 1, 3])
    if layer.use_bias:
        y = y + _per_row(own(layer.bias), y)
    return layer.activation(y)


def _conv_by_patches(layer, own, x):
    kernel = own(layer.kernel)  # (K or 1, kh, kw, C_in, C_out)
    kh, kw, c_in, c_out = kernel.shape[1:]
    patches = tf.image.extract_patches(
        x, sizes=[1, kh, kw, 1], strides=[1, *layer.strides, 1],
        rates=[1, *layer.dilation_rate, 1], padding=layer.padding.upper())
    # Patches are flattened (kh, kw, C_in) row-major, as the kernel reshapes.
    y = tf.einsum("bhwp,bpo->bhwo", patches,
                  tf.broadcast_to(tf.reshape(kernel, [-1, kh * kw * c_in, c_out]),
                                  [tf.shape(x)[0], kh * kw * c_in, c_out]))
    if layer.use_bias:
        y = y + _per_row(own(layer.bias), y)
    return layer.activation(y)


def _dense(layer, own, x):
    kernel = own(layer.kernel)  # (K or 1, in, out); 1 for a frozen layer, shared by all rows
    kernel = tf.broadcast_to(kernel, [tf.shape(x)[0], *kernel.shape[1:]])
    shape = tf.shape(x)
    flat = tf.reshape(x, [shape[0], -1, shape[-1]])
    y = tf.reshape(tf.einsum("bni,bio->bno", flat, kernel),
                   tf.concat([shape[:-1], [kernel.shape[-1]]], axis=0))
    if layer.use_bias:
        y = y + _per_row(own(layer.bias), y)
    return layer.activation(y)


def _batch_norm(layer, own, x):
    scale = tf.math.rsqrt(layer.moving_variance.value + layer.epsilon)
    y = (x - layer.moving_mean.value) * scale
    if layer.scale:
        y = y * _per_row(own(layer.gamma), y)
    if layer.center:
        y = y + _per_row(own(layer.beta), y)
    return y


def _per_row(vector, x):
    """A (K or 1, C) parameter shaped to broadcast over x's (K, ..., C) row by row."""
    return tf.reshape(vector, [tf.shape(vector)[0], *[1] * (len(x.shape) - 2), -1])
