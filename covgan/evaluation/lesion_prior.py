"""Where lesions usually lie: a map that never looks at the film.

The mean of the training split's lesion masks is one fixed map for every film. Scored against
the held-out masks like every explanation map, it is the bar a map must clear before its
pointing game says it found this film's lesion: in a set such as RSNA pneumonia most boxes lie
in the lower lung fields, and a map that peaks there scores well whatever the film shows. The
films whose lesion the prior misses (its peak outside the mask) are the ones on which a map
can only score by reading the film; `covgan localise` reports every map on them as well.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from covgan.data import layout
from covgan.errors import CovganError
from covgan.evaluation.localisation import pointing_game, relevance_mass

# The prior's name among the maps of localisation.json.
LESION_PRIOR = "lesion_prior"
# The split the prior is drawn from; scoring it on these films would show it their own masks.
PRIOR_SPLIT = "train"


def mask_prior(masks: np.ndarray) -> np.ndarray:
    """The mean of (N, H, W) boolean masks: each pixel's share of lesions covering it."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or not len(masks):
        raise ValueError(f"mask_prior takes (N, H, W) masks, N >= 1. Received: "
                         f"shape={masks.shape}.")
    return masks.astype(np.float64).mean(0)


def prior_scores(prior: np.ndarray, masks: np.ndarray) -> list[dict]:
    """Per film, the prior's pointing game and relevance mass against its mask (the scores
    localise pairs film by film)."""
    return [{"pointing_game": pointing_game(prior, mask),
             "relevance_mass": relevance_mass(prior, mask)} for mask in masks]


def missed(rows: list[dict]) -> np.ndarray:
    """(N,) booleans from the prior's per-film scores (`prior_scores`): the films whose mask
    its peak misses (pointing game < 0.5)."""
    return np.array([row["pointing_game"] < 0.5 for row in rows], bool)


def off_prior(prior: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) booleans: the films whose mask the prior's peak misses."""
    return missed(prior_scores(prior, masks))


def training_masks(data_dir: str | os.PathLike, scored_split: str) -> np.ndarray | None:
    """(N, H, W) booleans: the lesion masks of `data_dir`'s training positives, or None where
    the split scored includes them ('train', 'all') or no training positive has a mask."""
    if scored_split in (PRIOR_SPLIT, "all"):  # `layout.select`'s splits that hold it
        return None
    records = layout.read_manifest(data_dir)
    paths = [os.path.join(data_dir, r.mask_path) for r in layout.select(records, PRIOR_SPLIT)
             if r.label == 1 and r.mask_path]
    masks = []
    for path in paths:
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise CovganError(f"Cannot read the lesion mask {path}.")
        masks.append(mask > 127)
    if len({m.shape for m in masks}) > 1:
        raise CovganError(f"{data_dir}'s training lesion masks differ in size; prepare the "
                          "data with `covgan data prepare`.")
    return np.stack(masks) if masks else None
