"""covgan from Python: the command line's verbs as functions of a run and arrays.

Each function takes a run (a `Run`, or the path of a run folder) and images, and returns
arrays; none writes a file. Images may be given as file paths (any radiograph file, read as
the commands read them) or as float arrays in [0, 1] of shape (128, 128), (N, 128, 128) or
(N, 128, 128, 1). The defaults are the commands' defaults, so `explain_images(run, files)`
computes what `covgan explain FILES --run RUN` computes. (The verb is not called `explain`:
`covgan.explain` is the package of the explanation's algorithms.)
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import numpy as np

from covgan.shapes import IMAGE_SHAPE
from covgan.training.runs import Run
from covgan.training.runs import load_run as _load_run

Images = str | os.PathLike | Sequence[str | os.PathLike] | np.ndarray


def load_run(path: str | os.PathLike) -> Run:
    """Opens a run folder that `covgan train` wrote (its G and frozen C, in Keras' safe mode).

    Example:
        ```python
        run = covgan.load_run("runs/demo/gan")
        run.generator, run.classifier
        ```

    Raises:
        CovganError: not a finished covgan run, or files that are not ours.
    """
    return _load_run(path)


def read_images(images: Images) -> np.ndarray:
    """Images as the commands take them: (N, 128, 128, 1) float32 in [0, 1].

    Example:
        ```python
        batch = covgan.read_images(["chest1.png", "chest2.dcm"])
        ```

    Raises:
        UnreadableImage: a file that cannot be read, named.
        ValueError: an array of another shape, or values outside [0, 1].
    """
    from covgan.data.images import load_inputs

    if isinstance(images, (str, os.PathLike)):
        images = [images]
    if isinstance(images, (list, tuple)) and all(isinstance(i, (str, os.PathLike))
                                                 for i in images):
        return load_inputs([pathlib.Path(i) for i in images])[0]
    array = np.asarray(images, np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim == 3:
        array = array[..., None]
    if array.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"Images must be (N, 128, 128, 1), (N, 128, 128) or (128, 128). "
                         f"Received: shape {np.shape(images)}.")
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("Image values must be finite and in [0, 1].")
    return array


def explain_images(run: Run | str | os.PathLike, images: Images, *, seed: int = 0,
                   tune: bool = True, steps: int | None = None) -> dict[str, np.ndarray]:
    """Explains each image as `covgan explain` does: inversion (Eq. 2), per-image tuning of G
    (on by default for a gated-residual G), the walk from the negative counterpart, and
    every map.

    Args:
        run: a `Run` or a run folder.
        images: file paths or arrays (see the module docstring).
        seed: seed of the inversion's random starts.
        tune: pivotal tuning as the command runs it by default; False: the inversion alone.
        steps: steps of the walk (default: the command's).

    Returns:
        Per image (the first axis): probabilities (N, 3: image, reconstruction,
        counterpart), ssim, mse, trusted, reconstructions, counterparts, traversal
        (N, S, 128, 128, 1), traversal_probabilities (N, S), film_walk and
        film_walk_probabilities (the same walk on the image itself: frame 0 the image with
        the walk's change taken out, the last the image), and the maps (N, 128, 128) in
        [0, 1]: film_gradients (the default), latent_gradients, traversal_map (|difference|),
        gradcam, saliency (the input gradient), integrated_gradients.

    Example:
        ```python
        result = covgan.explain_images("runs/demo/gan", ["chest.png"])
        result["film_gradients"][0]   # where the evidence is
        ```
    """
    from covgan.explain.pipeline import explain as explain_batch
    from covgan.explain.settings import DEFAULT_STEPS

    run = _run(run)
    return explain_batch(run.generator, run.classifier, read_images(images),
                         settings=_inversion(run), steps=steps or DEFAULT_STEPS, seed=seed,
                         encoder=run.encoder, tuning=_tuning(run, tune))


def invert(run: Run | str | os.PathLike, images: Images, *,
           seed: int = 0) -> dict[str, np.ndarray]:
    """Finds each image's codes (z1, z2) as `covgan invert` does (Eq. 2, no tuning).

    Returns:
        z1, z2, reconstructions, counterparts, probabilities (N, 3), mse, ssim, trusted, ...

    Example:
        ```python
        codes = covgan.invert(run, images)
        covgan.traverse(run, codes["z1"], codes["z2"])
        ```
    """
    from covgan.explain.invert import invert as invert_batch

    run = _run(run)
    return invert_batch(run.generator, run.classifier, read_images(images),
                        settings=_inversion(run), seed=seed, encoder=run.encoder)


def traverse(run: Run | str | os.PathLike, z1: np.ndarray, z2: np.ndarray, *,
             steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The walk from each code's negative counterpart G(z1, 0) to G(z1, z2), and the
    classifier's p(positive) at every step.

    Returns:
        (images (N, S, 128, 128, 1), probabilities (N, S)), S = steps + 1.

    Example:
        ```python
        walk, p = covgan.traverse(run, codes["z1"], codes["z2"])
        ```
    """
    from covgan.explain.settings import DEFAULT_STEPS
    from covgan.explain.traverse import traverse_to_image

    run = _run(run)
    walk, probabilities = traverse_to_image(run.generator, run.classifier, z1, z2,
                                            steps=steps or DEFAULT_STEPS)
    return walk.numpy(), probabilities.numpy()


def localise(run: Run | str | os.PathLike, images: Images, masks: np.ndarray, *,
             seeds: Sequence[int] = (0,), tune: bool = True, curves: bool = False,
             prior: np.ndarray | None = None) -> dict:
    """Scores every map against lesion masks as `covgan localise` does (pointing game,
    relevance mass, IoU, AUROC; paired intervals against each baseline).

    Args:
        masks: (N, 128, 128) booleans, the lesions (boxes or masks).
        seeds: inversion seeds; the maps that depend on the inversion are averaged over them.
        curves: also the deletion and insertion curves (slower).
        prior: (128, 128) where lesions usually lie, e.g. the mean of the training films'
            masks: scored as the map "lesion_prior", and every map again over the films
            whose lesion its peak misses ("off_prior").

    Example:
        ```python
        scores = covgan.localise(run, images, masks, seeds=(0, 1, 2))
        scores["methods"]["film_gradients"]["pointing_game"]
        ```
    """
    from covgan.evaluation.localise import score_localisation

    run = _run(run)
    return score_localisation(run.generator, run.classifier, read_images(images),
                              np.asarray(masks, bool), settings=_inversion(run),
                              seeds=tuple(seeds), curves=curves, encoder=run.encoder,
                              tuning=_tuning(run, tune), prior=prior)


def audit(run: Run | str | os.PathLike, images: Images, labels: Sequence[int], *,
          attribute: Sequence[str] | None = None, count: int = 200, seed: int = 0) -> dict:
    """Audits a set of films as `covgan audit` does: per group (positives, false positives,
    false negatives) and map, where the evidence lies and what the walk changes, with flags;
    with `attribute` (one value per film: view, sex, ...) also value by value, led by whether
    the classifier reads the attribute within a class.

    Returns:
        The JSON part of audit.json (groups, flags[, attribute]).

    Example:
        ```python
        result = covgan.audit(run, images, labels, attribute=views)
        [flag["text"] for flag in result["flags"]]
        ```
    """
    from covgan.evaluation.attributes import attribute_values
    from covgan.evaluation.audit import audit_images, probabilities_of
    from covgan.explain.invert import settings_for
    from covgan.explain.settings import (
        AUDIT_INVERSION_STEPS,
        AUDIT_RESTARTS,
        AUDIT_TUNING_BCE,
        AUDIT_TUNING_FOCUS,
        AUDIT_TUNING_STEPS,
        inversion_settings,
        tuning_settings,
    )
    from covgan.models.generator import residual_branch_layers

    run = _run(run)
    batch = read_images(images)
    labels = np.asarray(labels, int)
    values = attribute_values(attribute)[0] if attribute is not None else None
    settings = settings_for(run.generator, inversion_settings(
        steps=AUDIT_INVERSION_STEPS, restarts=AUDIT_RESTARTS))
    tuning = tuning_settings(bool(residual_branch_layers(run.generator)),
                             branch_steps=AUDIT_TUNING_STEPS, bce_weight=AUDIT_TUNING_BCE,
                             residual_focus=AUDIT_TUNING_FOCUS)
    p = probabilities_of(run.classifier, batch)
    result, _ = audit_images(run.generator, run.classifier, batch, labels, p, count=count,
                             settings=settings, seed=seed, encoder=run.encoder, tuning=tuning,
                             attribute=values)
    return result


def _run(run):
    return run if isinstance(run, Run) else _load_run(run)


def _inversion(run):
    from covgan.explain.invert import settings_for
    from covgan.explain.settings import inversion_settings

    return settings_for(run.generator, inversion_settings())


def _tuning(run, tune):
    from covgan.explain.settings import TuningSettings, tuning_settings
    from covgan.models.generator import residual_branch_layers

    if not tune:
        return TuningSettings()
    return tuning_settings(bool(residual_branch_layers(run.generator)))
