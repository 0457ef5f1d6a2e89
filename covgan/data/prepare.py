"""Imports a real radiograph collection into the prepared layout (`covgan data prepare`)."""

from __future__ import annotations

import concurrent.futures
import dataclasses
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
from covgan.data.metadata import read_metadata
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
    metadata: str | os.PathLike | None = None,
    metadata_key: str | None = None,
    patient_column: str | None = None,
    stratify: tuple[str, ...] = (),
    fold: int = 0,
) -> dict:
    """Converts every positive and negative image of `src` into `out_dir`.

    Unreadable files are skipped and listed, never fatal. The source's own
    train/val/test split is kept; images without one get a stable patient-level
    80/10/10 split (stratified on request). The output folder appears only once it is
    complete.

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
        metadata: a CSV of per-film columns (age, sex, view, ...) carried into the manifest
            (`covgan.data.metadata`).
        metadata_key: the metadata column naming each film (default: the best match).
        patient_column: a metadata column that names each film's patient (default: the
            source's own patient ids, or one patient per film).
        stratify: columns whose values every split should mix alike: "label" and any
            metadata column (its manifest name); the split stays patient-level.
        fold: the cross-validation fold of the split made here (0..layout.FOLDS-1; 0 is
            the default split): each fold holds out another fifth of the patients.

    Returns:
        The report dict (also written as report.json).
    """
    class_map = class_map or ClassMap()
    found = discover(src, class_map, source_format)
    mask_index = MaskIndex(masks) if masks else None
    box_table = read_boxes(boxes) if boxes else None
    source = pathlib.Path(src)
    table = (read_metadata(metadata, [i.path for i in found.images], source, key=metadata_key)
             if metadata else None)
    _check_columns(table, patient_column, stratify)
    if not 0 <= fold < layout.FOLDS:
        raise CovganError(f"--fold {fold} is not one of 0..{layout.FOLDS - 1}.")

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
                described = (table.for_image(item.path) if table else None) or ()
                patient = dict(described).get(patient_column) or item.patient_id
                records.append(
                    layout.Record(
                        f"images/{name}", item.label, patient, item.split, mask_path,
                        (("source_path", readable(str(item.path))),
                         ("source_class", item.class_name), *described),
                    )
                )
        if not records:
            raise _no_usable_images(src, found, unreadable)
        records = _split(records, stratify, fold)
        layout.write_manifest(tmp / layout.MANIFEST, records)
        report = _report(found, records, unreadable, aspect, src)
        if masks or boxes:
            report["annotations"] = {
                "masks": str(masks) if masks else None, "boxes": str(boxes) if boxes else None,
                "images_with_mask": sum(bool(r.mask_path) for r in records),
                "positives_without_mask": sum(r.label == 1 and not r.mask_path
                                              for r in records),
            }
        if table:
            report["metadata"] = {
                "file": table.file, "key": table.key, "columns": list(table.columns),
                "images_without_row": sum(table.for_image(i.path) is None
                                          for i in found.images),
                "rows_matching_no_image": table.unused_rows,
                "patient_column": patient_column,
            }
        if fold:
            report["fold"] = {"fold": fold, "of": layout.FOLDS}
            report["split_origin"] = report["split_origin"].replace(
                "patient-hash", f"patient-hash fold {fold} of {layout.FOLDS}")
        if stratify:
            report["stratified_by"] = list(stratify)
            report["split_origin"] = report["split_origin"].replace(
                "patient-hash", f"patient-hash stratified by {', '.join(stratify)}")
        write_json(tmp / "report.json", report)
    return report


def _check_columns(table, patient_column, stratify):
    known = set(table.columns) if table else set()
    for column in [patient_column, *stratify]:
        if column and column != "label" and column not in known:
            raise CovganError(
                f"{column!r} is not a metadata column. Received: "
                f"{sorted(known) if known else 'no --metadata'}; --stratify also takes label.")


def _split(records, stratify, fold):
    """Records with a split each: the source's where it gave one, else by patient (hashed,
    or stratified on the `stratify` columns' values of each patient's first film), in the
    cross-validation fold `fold`."""
    if fold and all(r.split for r in records):
        raise CovganError(f"--fold {fold}: the source gives every image its own split, so "
                          "there is no split of covgan's to fold.")
    if not stratify:
        return [r if r.split else dataclasses.replace(r, split=layout.split_for_patient(
            r.patient_id, fold=fold)) for r in records]
    strata = {}
    for r in records:
        if not r.split:
            values = dict(r.extra, label=str(r.label))
            strata.setdefault(r.patient_id, tuple(values.get(c, "") for c in stratify))
    splits = layout.stratified_splits(strata, fold=fold)
    return [r if r.split else dataclasses.replace(r, split=splits[r.patient_id])
            for r in records]


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
