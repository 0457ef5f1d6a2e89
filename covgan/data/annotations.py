"""Lesion annotations for real data: a mask file per image, or boxes in a CSV.

`covgan data prepare --masks DIR` matches a mask to an image by the image's path relative to
the source (any image extension: `train/Covid/01.jpeg` -> `DIR/train/Covid/01.png`), else by
its file stem alone when that stem is unique in DIR. `--boxes CSV` reads RSNA-pneumonia-style
rows `patientId,x,y,width,height` in source pixels, several rows per image allowed (their
union), rows without a box ignored; patientId is the image's file stem. Either way the mask
is rasterised at the source image's size and goes through the same square crop (or zero
padding) and resize as the image, with nearest-neighbour sampling, so it stays binary and
lies where the lesion lies in the prepared image.
"""

from __future__ import annotations

import csv
import os
import pathlib

import cv2
import numpy as np

from covgan.data.images import UnreadableImage, is_image_file, square
from covgan.errors import CovganError
from covgan.shapes import IMAGE_SIZE

BOX_COLUMNS = ("patientId", "x", "y", "width", "height")


class MaskIndex:
    """Finds the mask file for a source image in a folder of masks."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = pathlib.Path(folder)
        if not self.folder.is_dir():
            raise CovganError(f"Mask folder not found: {self.folder}.")
        files = [p for p in self.folder.rglob("*") if p.is_file() and is_image_file(p)]
        self.by_relative = {p.relative_to(self.folder).with_suffix(""): p for p in files}
        stems = {}
        for path in files:
            stems.setdefault(path.stem, []).append(path)
        self.by_stem = {stem: paths[0] for stem, paths in stems.items() if len(paths) == 1}

    def find(self, image: pathlib.Path, source: pathlib.Path) -> pathlib.Path | None:
        try:
            relative = image.relative_to(source).with_suffix("")
        except ValueError:
            relative = None
        if relative is not None and relative in self.by_relative:
            return self.by_relative[relative]
        return self.by_stem.get(image.stem)


def read_boxes(path: str | os.PathLike) -> dict[str, list[tuple[float, float, float, float]]]:
    """{patientId: [(x, y, width, height), ...]} from an RSNA-style box CSV.

    Raises:
        CovganError: a missing file, or one without the box columns.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CovganError(f"Box file not found: {path}.")
    boxes = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in BOX_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise CovganError(f"{path} lacks the box columns {missing}; expected "
                              f"{','.join(BOX_COLUMNS)}.")
        for row in reader:
            try:
                box = tuple(float(row[c]) for c in BOX_COLUMNS[1:])
            except (TypeError, ValueError):
                continue  # a row that records "no box" for the image
            boxes.setdefault(row["patientId"], []).append(box)
    return boxes


def read_mask_file(path: pathlib.Path, source_shape: tuple[int, int]) -> np.ndarray:
    """A mask file as a boolean array of the source image's (height, width): nonzero = lesion.

    Raises:
        UnreadableImage: not a decodable image.
    """
    pixels = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if pixels is None:
        raise UnreadableImage(f"mask {path} is not a decodable image")
    height, width = source_shape
    if pixels.shape != (height, width):
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_NEAREST)
    return pixels > 0


def boxes_mask(boxes, source_shape: tuple[int, int]) -> np.ndarray:
    """The union of (x, y, width, height) boxes, in source pixels, as a boolean array."""
    height, width = source_shape
    mask = np.zeros((height, width), bool)
    for x, y, w, h in boxes:
        left, top = max(0, int(round(x))), max(0, int(round(y)))
        right, bottom = min(width, int(round(x + w))), min(height, int(round(y + h)))
        mask[top:bottom, left:right] = True
    return mask


def prepared_mask(mask: np.ndarray, aspect: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """The source-size mask through the image's square crop or pad and its resize."""
    squared = square(mask.astype(np.uint8), aspect, pad_value=0)
    return cv2.resize(squared, (size, size), interpolation=cv2.INTER_NEAREST) > 0
