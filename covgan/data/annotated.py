"""The positives with lesion masks that localisation is scored on, read as arrays."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from covgan.data import layout
from covgan.data.pipeline import make_dataset
from covgan.errors import CovganError


@dataclasses.dataclass(frozen=True)
class AnnotatedPositives:
    split: str                     # as asked, or the evaluation split where none was
    records: list[layout.Record]   # in manifest order: the order of the arrays' rows
    images: np.ndarray             # (N, H, W, 1) in [0, 1]
    masks: np.ndarray              # (N, H, W) bool: inside a lesion


def annotated_positives(data_dir: str | os.PathLike, count: int,
                        split: str | None = None) -> AnnotatedPositives:
    """Up to `count` positives with lesion masks from `split` (default: the evaluation split),
    read at once."""
    records = layout.read_manifest(data_dir)
    split = split or layout.evaluation_split(records)
    chosen = layout.held_out_positives_with_masks(records, count, split)
    if not chosen:
        raise CovganError(f"{data_dir} has no positives with lesion masks in its {split!r} "
                          "split to score.")
    images, _, masks = next(iter(make_dataset(data_dir, chosen, batch_size=len(chosen),
                                              with_masks=True, cache=None)))
    return AnnotatedPositives(split, chosen, images.numpy(), masks.numpy()[..., 0] > 0.5)
