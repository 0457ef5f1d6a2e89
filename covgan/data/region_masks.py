"""The masks an audit reads beside a prepared image: its lung fields (the data set's own, or
a folder given with --lung-masks) and, for phantoms, the shortcut marker's box."""

from __future__ import annotations

import os
import pathlib

import cv2
import numpy as np

from covgan.data import layout
from covgan.errors import CovganError
from covgan.shapes import IMAGE_SIZE


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A mask image as a (128, 128) boolean array.

    Raises:
        CovganError: not a readable image.
    """
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise CovganError(f"{path} is not a readable mask image.")
    return cv2.resize(mask, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_NEAREST) > 127


def lung_mask(data_dir, record: layout.Record, lung_dir=None) -> np.ndarray | None:
    """The record's lung mask: the data set's own, else DIR/<image stem>.* from
    --lung-masks, else None (the audit then estimates the lung fields)."""
    candidates = []
    if layout.lung_mask_path(record):
        candidates.append(pathlib.Path(data_dir) / layout.lung_mask_path(record))
    if lung_dir:
        candidates += sorted(pathlib.Path(lung_dir).glob(f"{pathlib.Path(record.path).stem}.*"))
    return read_mask(candidates[0]) if candidates else None


def marker_mask(data_dir, record: layout.Record) -> np.ndarray | None:
    """Where the record's shortcut marker is, for phantoms stamped with one; else None."""
    path = layout.marker_mask_path(record)
    return read_mask(pathlib.Path(data_dir) / path) if path else None
