"""One radiograph (or a batch) explained: inversion, traversal and every explanation map.

A pure function of arrays and models; the `covgan explain` command writes the files.
"""

from __future__ import annotations

import keras
import numpy as np
from numpy.typing import ArrayLike

from covgan.explain.gradcam import make_gradcam_fn, make_saliency_fn
from covgan.explain.integrated_gradients import make_integrated_gradients_fn
from covgan.explain.invert import InversionSettings, invert
from covgan.explain.latent_gradients import make_latent_gradients_fn
from covgan.explain.traverse import DEFAULT_STEPS, crossing_step, difference_maps, traverse_to_image

# Images per Integrated Gradients or latent-gradients call (each becomes many classifier
# inputs: IG's steps, the walk's frames).
_CHUNK = 8


def explain(generator: keras.Model, classifier: keras.Model, images: ArrayLike, *,
            settings: InversionSettings = InversionSettings(), steps: int = DEFAULT_STEPS,
            extrapolate: int = 0, layer: str | None = None, seed: int = 0,
            image_maps: bool = True, encoder: keras.Model | None = None) -> dict[str, np.ndarray]:
    """Everything the report shows, for every image.

    Args:
        generator, classifier: the run's G and (adapted) C.
        images: (N, 128, 128, 1) in [0, 1].
        settings: inversion settings (Eq. 2).
        steps, extrapolate: the walk n * z2 / steps, n = 0..steps (+ extrapolate).
        layer: Grad-CAM layer (default: the last convolution).
        seed: seed of the inversion's random starts.
        encoder: the run's E, for `settings.z1_start` "encoder".
        image_maps: also compute the maps of the image alone (Grad-CAM, input gradient,
            Integrated Gradients), which no inversion changes; False leaves them out, for a
            caller that repeats the inversion with other seeds.

    Returns:
        `invert`'s dict plus: traversal (N, S, 128, 128, 1), traversal_probabilities (N, S),
        crossing_step (N,), difference (signed, last minus first step, N, 128, 128, 1),
        and the maps (N, 128, 128) in [0, 1] named in settings.MAPS: traversal_map (|difference|),
        latent_gradients, gradcam, saliency (the input gradient), integrated_gradients. The
        names shared with the exported explain signature are its output names, so a server's
        answer reads the same.
    """
    images = np.asarray(images, np.float32)
    result = invert(generator, classifier, images, settings=settings, seed=seed, encoder=encoder)
    traversal, probabilities = traverse_to_image(generator, classifier, result["z1"],
                                                 result["z2"], steps=steps, extrapolate=extrapolate)
    traversal, probabilities = traversal.numpy(), probabilities.numpy()
    at_image = traversal[:, : steps + 1]
    signed, _ = difference_maps(at_image)
    explained = {
        **result,
        "traversal": traversal,
        "traversal_probabilities": probabilities,
        "crossing_step": crossing_step(probabilities),
        "difference": signed,
        "traversal_map": _unit_peak(np.abs(signed[..., 0])),
        "latent_gradients": _chunked(make_latent_gradients_fn(classifier), at_image),
    }
    if image_maps:
        heatmaps, _ = make_gradcam_fn(classifier, layer)(images)
        explained["gradcam"] = heatmaps.numpy()
        explained["saliency"] = make_saliency_fn(classifier)(images).numpy()
        explained["integrated_gradients"] = _chunked(make_integrated_gradients_fn(classifier),
                                                     images)
    return explained


def _chunked(function, inputs):
    """`function` over `inputs` a few images at a time (each expands into many classifier
    inputs), concatenated as numpy."""
    return np.concatenate([function(inputs[i : i + _CHUNK]).numpy()
                           for i in range(0, len(inputs), _CHUNK)])


def _unit_peak(maps):
    peaks = maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    return np.divide(maps, peaks, out=np.zeros_like(maps), where=peaks > 0)
