"""Imports a real radiograph collection into the prepared layout (`covgan data prepare`)."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import re
from collections.abc import Callable

from covgan.data import layout
from covgan.data.annotations import (
    MaskIndex,
    boxes_mask,
    prepared_mask,
    read_boxes,
    read_mask_file,
)
from covgan.data.images import UnreadableImage, read_radiograph
from covgan.data.sources import ClassMap, discover, readable
from covgan.errors import CovganError
from covgan.io import atomic_directory, write_json


def prepare(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    class_map: ClassMap | None = None,
    source_format: str = "auto",
    aspect: str = "crop",
    overwrite: bool = False,
    workers: int = 4,
    progress: Callable | None = None,
    masks: str | os.PathLike | None = None,
    boxes: str | os.PathLike | None = None,
) -> dict:
    """Converts every positive and negative image of `src` into `out_dir`.

    Unreadable files are skipped and listed, never fatal. The source's own
    train/val/test split is kept; images without one get a stable patient-level
    80/10/10 split. The output folder appears only once it is complete.

    Args:
        src: the source folder (see `covgan.data.sources`).
        out_dir: the prepared folder to create.
        class_map: a `ClassMap`; the defaults map covid/normal.
        source_format: "auto", "folders", "covidx" or "metadata".
        aspect: "crop" or "pad" (see `covgan.data.images`).
        overwrite: replace an existing non-empty `out_dir`.
        workers: decoding threads (OpenCV releases the GIL).
        progress: optional callable taking the number of files just processed.
        masks: a folder of lesion mask files (see `covgan.data.annotations`).
        boxes: an RSNA-style CSV of lesion boxes in source pixels.

    Returns:
        The report dict (also written as report.json).
    """
    class_map = class_map or ClassMap()
    found = discover(src, class_map, source_format)
    mask_index = MaskIndex(masks) if masks else None
    box_table = read_boxes(boxes) if boxes else None
    source = pathlib.Path(src)

    def load(item):
        try:
            image, info = read_radiograph(item.path, aspect=aspect)
            return image, _annotation(item.path, (info["height"], info["width"])), None
        except UnreadableImage as error:
            return None, None, str(error)
        except Exception as error:  # one odd file must never abort an import
            return None, None, f"could not be read ({type(error).__name__}: {error})"

    def _annotation(path, shape):
        """The prepared lesion mask of one image, or None where none is given."""
        found_mask = None
        if mask_index:
            mask_file = mask_index.find(path, source)
            if mask_file is not None:
                found_mask = read_mask_file(mask_file, shape)
        if box_table is not None and path.stem in box_table:
            from_boxes = boxes_mask(box_table[path.stem], shape)
            found_mask = from_boxes if found_mask is None else found_mask | from_boxes
        return None if found_mask is None else prepared_mask(found_mask, aspect)

    records, unreadable = [], [{"path": readable(p), "reason": r} for p, r in found.missing]
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for index, (item, (image, mask, error)) in enumerate(
                zip(found.images, pool.map(load, found.images))
            ):
                if progress:
                    progress(1)
                if error:
                    unreadable.append({"path": readable(str(item.path)), "reason": error})
                    continue
                name = f"{index:06d}_{_safe_stem(item.path.stem)}.png"
                layout.write_png(tmp / "images" / name, image)
                mask_path = ""
                if mask is not None:
                    mask_path = f"masks/{name}"
                    layout.write_png(tmp / mask_path, mask)
                split = item.split or layout.split_for_patient(item.patient_id)
                records.append(
                    layout.Record(
                        f"images/{name}", item.label, item.patient_id, split, mask_path,
                        (("source_path", readable(str(item.path))),
                         ("source_class", item.class_name)),
                    )
                )
        if not records:
            raise _no_usable_images(src, found, unreadable)
        layout.write_manifest(tmp / layout.MANIFEST, records)
        report = _report(found, records, unreadable, aspect, src)
        if masks or boxes:
            report["annotations"] = {
                "masks": str(masks) if masks else None, "boxes": str(boxes) if boxes else None,
                "images_with_mask": sum(bool(r.mask_path) for r in records),
                "positives_without_mask": sum(r.label == 1 and not r.mask_path
                                              for r in records),
            }
        write_json(tmp / "report.json", report)
    return report


def _report(found, records, unreadable, aspect, src):
    with_source_split = sum(1 for i in found.images if i.split)
    splits = {
        s: {
            "positive": sum(r.label == 1 for r in layout.select(records, s)),
            "negative": sum(r.label == 0 for r in layout.select(records, s)),
        }
        for s in layout.SPLITS
    }
    patient_splits = {}
    for r in records:
        patient_splits.setdefault(r.patient_id, set()).add(r.split)
    return {
        "source": readable(str(src)),
        "format": found.format,
        "imported": {
            "positive": sum(r.label == 1 for r in records),
            "negative": sum(r.label == 0 for r in records),
        },
        "splits": splits,
        "split_origin": "source" if with_source_split == len(found.images) else (
            "patient-hash" if with_source_split == 0 else "source, patient-hash for the rest"
        ),
        "patients_in_several_splits": sum(len(s) > 1 for s in patient_splits.values()),
        "skipped_other_class": sum(found.other_classes.values()),
        "skipped_by_class": dict(sorted(found.other_classes.items())),
        "unreadable": len(unreadable),
        "unreadable_files": unreadable,
        "ignored_non_image_files": found.ignored_files,
        "aspect": aspect,
    }


def _no_usable_images(src, found, unreadable):
    return CovganError(
        f"No usable images in {src}: {sum(found.other_classes.values())} of other classes "
        f"{dict(found.other_classes)}, {len(unreadable)} unreadable. "
        "Check --positive/--negative."
    )


def _safe_stem(stem):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60].strip("_") or "image"
