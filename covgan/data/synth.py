"""Writes a phantom data set to disk (`covgan data synth`, and DATA=phantom)."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
from collections.abc import Callable

import cv2
import numpy as np

from covgan.data import layout
from covgan.data.phantom import (
    DEFAULT_LESION_CONTRAST,
    phantom_label,
    phantom_rng,
    render_phantom,
)
from covgan.io import atomic_directory, write_json


def synthesize(
    out_dir: str | os.PathLike,
    *,
    count: int = 2000,
    seed: int = 0,
    shortcut: float = 0.0,
    lesion_contrast: float = DEFAULT_LESION_CONTRAST,
    overwrite: bool = False,
    progress: Callable | None = None,
) -> dict:
    """Renders `count` phantoms into a prepared data folder, atomically.

    Args:
        out_dir: the folder to create.
        count: number of images, half negative and half positive.
        seed: data set seed; image i depends only on (seed, i).
        shortcut: fraction of positives stamped with the spurious corner marker.
        lesion_contrast: multiplier on lesion density.
        overwrite: replace an existing non-empty folder.
        progress: optional callable taking the number of images just written.

    Returns:
        The report dict (also written as report.json).
    """
    if count < 2:
        raise ValueError(f"count must be at least 2. Received: count={count}.")
    if not 0.0 <= shortcut <= 1.0:
        raise ValueError(f"shortcut must be in [0, 1]. Received: shortcut={shortcut}.")
    records = []
    with atomic_directory(out_dir, overwrite=overwrite) as tmp:
        for index, phantom in _render_all(count, seed, shortcut, lesion_contrast):
            name = f"phantom_{index:05d}.png"
            layout.write_png(tmp / "images" / name, phantom.image)
            mask_path = ""
            if phantom.label == 1:
                mask_path = f"masks/{name}"
                layout.write_png(tmp / mask_path, phantom.lesion_mask)
            # Every phantom's own lung fields: the audit's regions need no estimate here.
            lung_path = f"lungs/{name}"
            layout.write_png(tmp / lung_path, phantom.lung_mask)
            marker_path = ""
            if phantom.shortcut:
                marker_path = f"markers/{name}"
                layout.write_png(tmp / marker_path, phantom.marker_mask)
            patient = f"phantom-{seed}-{index:05d}"
            records.append(
                layout.Record(
                    f"images/{name}", phantom.label, patient, layout.split_for_patient(patient),
                    mask_path, (("shortcut", int(phantom.shortcut)),
                                (layout.LUNG_MASK_COLUMN, lung_path),
                                (layout.MARKER_MASK_COLUMN, marker_path)),
                )
            )
            if progress:
                progress(1)
        layout.write_manifest(tmp / layout.MANIFEST, records)
        report = {
            "source": "phantom",
            "seed": seed,
            "count": count,
            "shortcut": shortcut,
            "lesion_contrast": lesion_contrast,
            "imported": _label_counts(records),
            "splits": {s: len(layout.select(records, s)) for s in layout.SPLITS},
            "shortcut_marked": sum(dict(r.extra)["shortcut"] for r in records),
        }
        write_json(tmp / "report.json", report)
    return report


def render_one(seed, index, shortcut, lesion_contrast, *, marker=None):
    """Phantom `index` of data set `seed`; the marker decision is part of its stream.

    `marker` True or False overrides that decision and changes nothing else in the image (the
    marker is drawn last), so a phantom can be seen with and without it
    (tools/marker_effect.py)."""
    rng = phantom_rng(seed, index)
    label = phantom_label(index)
    stamped = label == 1 and rng.random() < shortcut
    if marker is not None:
        stamped = bool(marker)
    return render_phantom(rng, label=label, shortcut=stamped, lesion_contrast=lesion_contrast)


def _render_chunk(seed, indices, shortcut, lesion_contrast):
    return [render_one(seed, i, shortcut, lesion_contrast) for i in indices]


def _render_all(count, seed, shortcut, lesion_contrast, chunk=64):
    """Yields (index, Phantom) in order, rendered on all cores.

    Threads, not processes: OpenCV and NumPy release the GIL for the heavy work,
    and a process pool would re-import the caller's main script or fork a
    process that may have loaded TensorFlow.
    """
    workers = min(os.cpu_count() or 1, 8)
    starts = range(0, count, chunk)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(_render_chunk, seed, range(a, min(a + chunk, count)), shortcut,
                        lesion_contrast)
            for a in starts
        ]
        for start, future in zip(starts, futures):
            for offset, phantom in enumerate(future.result()):
                yield start + offset, phantom


def contact_sheet(
    data_dir: str | os.PathLike, out_file: str | os.PathLike, *, columns: int = 8, rows: int = 4
) -> None:
    """A grid of the first images, negatives and positives alternating.

    Each tile is captioned with its label; positives have their lesion outline
    drawn beside a clean copy, so the finding can be judged with and without it.
    """
    data_dir = pathlib.Path(data_dir)
    records = layout.read_manifest(data_dir)
    negatives = [r for r in records if r.label == 0]
    positives = [r for r in records if r.label == 1]
    chosen = [r for pair in zip(negatives, positives) for r in pair][: columns * rows]
    tiles = [_tile(data_dir, r) for r in chosen]
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (columns * rows - len(tiles))
    grid = np.concatenate(
        [np.concatenate(tiles[i * columns : (i + 1) * columns], 1) for i in range(rows)], 0
    )
    out_file = pathlib.Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_file), grid):
        raise OSError(f"Could not write {out_file}.")


def _tile(data_dir, record):
    gray = cv2.imread(str(data_dir / record.path), cv2.IMREAD_GRAYSCALE)
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    outlined = image.copy()
    if record.mask_path:
        mask = cv2.imread(str(data_dir / record.mask_path), cv2.IMREAD_GRAYSCALE)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(outlined, contours, -1, (40, 40, 230), 1)
    tile = np.concatenate([image, outlined], axis=0)
    caption = np.full((16, tile.shape[1], 3), 255, np.uint8)
    text = "positive" if record.label else "negative"
    if dict(record.extra).get("shortcut") == "1":
        text += " +marker"
    cv2.putText(caption, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.pad(np.concatenate([tile, caption], 0), ((2, 2), (2, 2), (0, 0)), constant_values=255)


def _label_counts(records):
    return {
        "positive": sum(r.label == 1 for r in records),
        "negative": sum(r.label == 0 for r in records),
    }
