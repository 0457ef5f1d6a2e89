"""The explanation maps, one record each: the pipeline, localise, audit, the report's writers
and the exported explain signature all loop over this registry.

A map reads the walk (the traversal's frames from the counterpart to the image,
(B, S, H, W, 1)), the walk carried onto the image (the same frames with the image's own
pixels under them, `inputs`), or the image alone ((B, H, W, 1)), and returns (B, H, W) in
[0, 1]. Its `make` builds that function from the classifier: make(classifier, layer) -> fn,
where `layer` is the convolution a layer-reading map (Grad-CAM) reads (None: its default)
and the others ignore it. The function must be graph-safe (TensorFlow ops only), because the
explain signature calls it inside its own graph.

Adding a map is one module with its `make` and one `register` line below
(docs/developing.md). Free of TensorFlow: `make` may be given as "module:function" and is
imported only when a map is built, so the command line can list the maps cheaply.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable

# What a map reads.
READS_WALK, READS_WALK_ON_IMAGE, READS_IMAGE = "walk", "walk_on_image", "image"
_READS = (READS_WALK, READS_WALK_ON_IMAGE, READS_IMAGE)


@dataclasses.dataclass(frozen=True)
class ExplanationMap:
    """One map.

    Attributes:
        name: its name in localisation.json, audit.json and the commands' --map options.
        key: its name in the explanation's result, explain.json's maps and the explain
            signature's outputs.
        title: its caption in the reports ("\\n" breaks the line).
        reads: READS_WALK (needs the inversion and the walk), READS_WALK_ON_IMAGE (the walk
            carried onto the image, `inputs`) or READS_IMAGE (the image alone).
        make: make(classifier, layer) -> fn(inputs) -> (B, H, W), or "module:function".
        chunk: images per call (0: all at once); a map that turns each image into many
            classifier inputs (the walk's frames, Integrated Gradients' path) is called on a
            few at a time.
    """

    name: str
    key: str
    title: str
    reads: str
    make: Callable | str
    chunk: int = 0

    def __post_init__(self):
        if self.reads not in _READS:
            raise ValueError(f"A map reads one of {_READS}. Received: {self.reads!r}.")

    @property
    def needs_walk(self) -> bool:
        """Whether the map depends on the inversion (and so on its seed)."""
        return self.reads != READS_IMAGE

    def inputs(self, walk, images):
        """What the map's function is called on, from the walk to the image (B, S, H, W, 1)
        and the images (B, H, W, 1); NumPy arrays or tensors alike.

        The walk carried onto the image is image + frame - last frame: the image itself with
        the walk's change taken out by degrees (its first frame is the trust rule's add-back,
        its last the image), so a map reads the classifier on this film's pixels, where the
        walk alone is drawn by the GAN.
        """
        if self.reads == READS_IMAGE:
            return images
        if self.reads == READS_WALK:
            return walk
        return carried_onto_image(walk, images)

    def build(self, classifier, layer: str | None = None) -> Callable:
        """The map's function for this classifier."""
        return build_map(self.make, classifier, layer)


def carried_onto_image(walk, images):
    """The walk carried onto the image, (B, S, H, W, 1): image + frame - last frame, so each
    frame is this image with the walk's change taken out by degrees (NumPy or tensors)."""
    return images[:, None] + walk - walk[:, -1:]


def build_map(make: Callable | str, classifier, layer: str | None = None) -> Callable:
    """`make(classifier, layer)`, `make` given as a function or "module:function". Keyed by
    `make`, two maps that differ only in what they read share one built function (the
    pipeline keeps it compiled)."""
    if isinstance(make, str):
        module, _, function = make.partition(":")
        make = getattr(importlib.import_module(module), function)
    return make(classifier, layer)


_REGISTRY: dict[str, ExplanationMap] = {}


def register(record: ExplanationMap) -> ExplanationMap:
    """Adds a map (after those already registered); names and keys must be new."""
    for known in _REGISTRY.values():
        if record.name == known.name or record.key == known.key:
            raise ValueError(f"A map named {record.name!r} or keyed {record.key!r} is already "
                             f"registered ({known.name!r}, {known.key!r}).")
    _REGISTRY[record.name] = record
    return record


def unregister(name: str) -> None:
    """Removes a map (a test's toy map; a plug-in turned off)."""
    _REGISTRY.pop(name, None)


def explanation_maps(reads: str | None = None) -> tuple[ExplanationMap, ...]:
    """Every registered map in registration order (the walk's first), or those that read
    `reads`."""
    return tuple(m for m in _REGISTRY.values() if reads is None or m.reads == reads)


def map_named(name: str) -> ExplanationMap:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"No map named {name!r}; one of {sorted(_REGISTRY)}.") from None


def map_keys() -> dict[str, str]:
    """{name: result key} of every map."""
    return {m.name: m.key for m in _REGISTRY.values()}


register(ExplanationMap("traversal", "traversal_map", "|difference|\n(traversal)", READS_WALK,
                        "covgan.explain.traverse:make_difference_map_fn"))
register(ExplanationMap("latent_gradients", "latent_gradients",
                        "latent gradients\n(change x grad)", READS_WALK,
                        "covgan.explain.latent_gradients:make_latent_gradients_map", chunk=8))
register(ExplanationMap("film_gradients", "film_gradients",
                        "latent gradients\non the film", READS_WALK_ON_IMAGE,
                        "covgan.explain.latent_gradients:make_latent_gradients_map", chunk=8))
register(ExplanationMap("gradcam", "gradcam", "Grad-CAM", READS_IMAGE,
                        "covgan.explain.gradcam:make_gradcam_map"))
register(ExplanationMap("gradient", "saliency", "input gradient", READS_IMAGE,
                        "covgan.explain.gradcam:make_saliency_map"))
register(ExplanationMap("integrated_gradients", "integrated_gradients",
                        "Integrated\nGradients", READS_IMAGE,
                        "covgan.explain.integrated_gradients:make_integrated_gradients_map",
                        chunk=8))
