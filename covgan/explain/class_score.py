"""The class score every gradient map differentiates: the classifier's logit for the class.

Gradients of p (or of a clipped log p) vanish once the classifier is confident: for a logit gap
above ~16, float32 softmax returns exactly 1 and 0, and Grad-CAM and saliency come out all
zero. So the score is computed from logits. The classifier is re-traced as one flat chain of
its leaf layers (the same layer objects, so the same weights; plain, nested and Sequential
models all work); its last Dense layer is applied without its activation, and whatever
follows it must only turn logits into probabilities (an Activation, a Softmax, covgan's
TwoClassProbabilities). Then, for class c:

- 2 units: z_c - z_other, the logit difference (what log p_c - log p_other equals);
- 1 unit (sigmoid): z for the positive class, -z for the negative.

A classifier whose last Dense layer is followed by anything else falls back to
log p_c - log p_other computed from probabilities (documented, and flagged in `ScoreModel`).
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from covgan.errors import CovganError
from covgan.models.classifier import TwoClassProbabilities

POSITIVE = 1
# Layers that only turn logits into probabilities; anything else after the last Dense is not.
_OUTPUT_CONVENTIONS = (keras.layers.Activation, keras.layers.Softmax, TwoClassProbabilities)
# A last Dense with one of these activations has logits before its activation.
_LOGIT_ACTIVATIONS = ("softmax", "sigmoid", "linear")


def leaf_layers(model):
    """The non-input leaf layers of a chain-structured model, nested models inlined."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            yield from leaf_layers(layer)
        else:
            yield layer


def _convolutions(leaves):
    return [leaf.name for leaf in leaves if isinstance(leaf, keras.layers.Conv2D)]


def last_convolution(model):
    """Name of the last 2-D convolution, searched through nested models."""
    convolutions = _convolutions(leaf_layers(model))
    if not convolutions:
        raise CovganError("The classifier has no Conv2D layer for Grad-CAM; pass --layer.")
    return convolutions[-1]


def feature_convolution(model) -> str:
    """Name of the deepest 2-D convolution whose output keeps at least a quarter of the input's
    side (VGG16's and the tiny preset's block3_conv3 at 128 pixels): deep enough to be what the
    classifier reads, fine enough to say where."""
    side = model.inputs[0].shape[1]
    convolutions = [leaf.name for leaf in leaf_layers(model)
                    if isinstance(leaf, keras.layers.Conv2D) and 4 * leaf.output.shape[1] >= side]
    if not convolutions:
        raise CovganError("The classifier has no Conv2D layer at a quarter of the image's side "
                          "or finer; name one for the feature term.")
    return convolutions[-1]


@dataclasses.dataclass
class ScoreModel:
    """images -> (activations of one layer, class score, probabilities (B, 2)).

    Attributes:
        model: the re-traced chain: images -> [activations, input of the last Dense,
            probabilities].
        dense: the classifier's last Dense layer (its kernel and bias give the logits).
        from_logits: False where the fallback score from probabilities is used.
    """

    model: keras.Model
    dense: keras.layers.Dense | None
    from_logits: bool

    def __call__(self, images, target_class=POSITIVE):
        activations, features, probabilities = self.model(images, training=False)
        probabilities = tf.cast(probabilities, tf.float32)
        if not self.from_logits:
            p = tf.clip_by_value(probabilities, 1e-7, 1.0)
            score = tf.math.log(p[:, target_class]) - tf.math.log(p[:, 1 - target_class])
            return activations, score, probabilities
        kernel = tf.cast(self.dense.kernel, tf.float32)
        logits = tf.matmul(tf.cast(features, tf.float32), kernel)
        if self.dense.use_bias:
            logits += tf.cast(self.dense.bias, tf.float32)
        if logits.shape[-1] == 1:
            score = logits[:, 0] if target_class == POSITIVE else -logits[:, 0]
        else:
            score = logits[:, target_class] - logits[:, 1 - target_class]
        return activations, score, probabilities


def score_model(classifier: keras.Model, layer: str | None = None) -> ScoreModel:
    """Re-traces `classifier` for gradient maps (see the module docstring).

    Args:
        classifier: an adapted covgan classifier (B, 2) probabilities.
        layer: the layer whose activations are returned (default: the last convolution, or the
            output layer of a model without one; Grad-CAM asks for a convolution itself).

    Raises:
        CovganError: unknown layer, or a classifier that is not a chain of layers, or whose
            re-traced chain does not reproduce its output.
    """
    leaves = list(leaf_layers(classifier))
    if layer is None:
        layer = (_convolutions(leaves) or [leaves[-1].name])[-1]
    denses = [i for i, leaf in enumerate(leaves) if isinstance(leaf, keras.layers.Dense)]
    last_dense = denses[-1] if denses else None
    from_logits = (
        last_dense is not None
        and getattr(leaves[last_dense].activation, "__name__", "") in _LOGIT_ACTIVATIONS
        and all(isinstance(leaf, _OUTPUT_CONVENTIONS) for leaf in leaves[last_dense + 1:])
    )
    images = keras.Input(classifier.inputs[0].shape[1:])
    x, activations, features = images, None, None
    try:
        for index, leaf in enumerate(leaves):
            if index == last_dense:
                features = x
            x = leaf(x)
            if leaf.name == layer:
                activations = x
    except Exception as error:
        raise CovganError(
            "Gradient maps need a chain-structured classifier (plain, nested or Sequential); "
            f"re-tracing failed ({type(error).__name__})."
        ) from None
    if activations is None:
        raise CovganError(f"No layer named {layer!r} in the classifier.")
    rebuilt = keras.Model(images, [activations, features if features is not None else x, x])
    probe = np.random.default_rng(0).random((2, *classifier.inputs[0].shape[1:])).astype("float32")
    if not np.allclose(rebuilt(probe)[2], classifier(probe, training=False), atol=1e-4):
        raise CovganError("Gradient maps could not re-trace this classifier faithfully "
                          "(branching?).")
    return ScoreModel(rebuilt, leaves[last_dense] if from_logits else None, from_logits)
