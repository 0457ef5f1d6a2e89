"""Imports a real radiograph collection into the prepared layout (`covgan data prepare`)."""

from __future__ import annotations

import concurrent.futures
import os
import re
from collections.abc import Callable

from covgan.data import layout
from covgan.data.images import UnreadableImage, read_radiograph
from covgan.data.sources import ClassMap, discover
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

    Returns:
        The report dict (also written as report.json).
    """
    class_map = class_map or ClassMap()
    found = discover(src, class_map, source_format)

    def load(item):
        try:
            return read_radiograph(item.path, aspect=aspect)[0], None
        except UnreadableImage as error:
            return None, str(error)

    records, unreadable = [], [{"path": p, "reason": r} for p, r in found.missing]
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for index, (item, (image, error)) in enumerate(
                zip(found.images, pool.map(load, found.images))
            ):
                if progress:
                    progress(1)
                if error:
                    unreadable.append({"path": str(item.path), "reason": error})
                    continue
                name = f"{index:06d}_{_safe_stem(item.path.stem)}.png"
                layout.write_png(tmp / "images" / name, image)
                split = item.split or layout.split_for_patient(item.patient_id)
                records.append(
                    layout.Record(
                        f"images/{name}", item.label, item.patient_id, split, "",
                        (("source_path", str(item.path)), ("source_class", item.class_name)),
                    )
                )
        if not records:
            raise _no_usable_images(src, found, unreadable)
        layout.write_manifest(tmp / layout.MANIFEST, records)
        report = _report(found, records, unreadable, aspect, src)
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
        "source": str(src),
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
