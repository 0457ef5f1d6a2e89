"""The prepared data set layout shared by `data synth` and `data prepare`.

```
DATA/
  images/<name>.png      8-bit grayscale, 128x128
  masks/<name>.png       lesion masks (0/255), where known
  lungs/<name>.png       lung-field masks (0/255), where known (phantoms)
  markers/<name>.png     the shortcut marker's box (0/255), phantoms that carry one
  manifest.csv           path,label,patient_id,split[,mask_path,...][,lung_mask_path]
                         [,marker_mask_path]
  report.json            what was imported, skipped and why
```

Paths in the manifest are relative to DATA. Extra columns are allowed and kept.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from covgan.data.phantom import stable_fraction
from covgan.errors import CovganError

MANIFEST = "manifest.csv"
REQUIRED_COLUMNS = ("path", "label", "patient_id", "split")
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
# Cross-validation: fold K moves the held-out (val + test) fifth of the patients by K fifths,
# so folds 0..FOLDS-1 hold out every patient once; fold 0 is the split every set has had.
FOLDS = 5
# The optional manifest column naming an image's lung-field mask.
LUNG_MASK_COLUMN = "lung_mask_path"
# Phantoms with the spurious corner marker: where it is, so an audit can check a map finds it.
MARKER_MASK_COLUMN = "marker_mask_path"


@dataclasses.dataclass(frozen=True)
class Record:
    """One manifest row."""

    path: str
    label: int
    patient_id: str
    split: str
    mask_path: str = ""
    extra: tuple = ()  # (column, value) pairs beyond the standard ones


def lung_mask_path(record: Record) -> str:
    """The record's lung-field mask, relative to DATA, or "" where the data set has none."""
    return dict(record.extra).get(LUNG_MASK_COLUMN, "")


def marker_mask_path(record: Record) -> str:
    """The record's shortcut-marker mask, relative to DATA, or "" where it has no marker."""
    return dict(record.extra).get(MARKER_MASK_COLUMN, "")


def column_values(records: Sequence, column: str) -> list[str]:
    """Each record's value of a manifest column ("" where a record lacks it).

    Raises:
        CovganError: no record has the column.
    """
    rows = [dict(r.extra) for r in records]
    if not any(column in row for row in rows):
        known = sorted({c for row in rows for c in row})
        raise CovganError(f"No film has a {column!r} column. Received columns: {known} "
                          "(add metadata with `covgan data prepare --metadata`).")
    return [row.get(column, "") for row in rows]


def class_names(records: Sequence) -> tuple[str, str]:
    """The source's names of class 0 and 1 where each label came from one source class
    (Normal, Pneumonia), else ("negative", "positive")."""
    names = ["negative", "positive"]
    for label in (0, 1):
        found = {dict(r.extra).get("source_class", "") for r in records if r.label == label}
        if len(found) == 1 and "" not in found:
            names[label] = found.pop()
    return tuple(names)


def split_for_patient(patient_id, fractions=SPLIT_FRACTIONS, fold=0):
    """A stable train/val/test assignment: every image of a patient lands together."""
    return _split_at(stable_fraction(f"split:{patient_id}"), fractions, fold)


def _split_at(position, fractions, fold):
    """The split at `position` in [0, 1) (train, val, test in that order), turned by `fold`."""
    if not 0 <= fold < FOLDS:
        raise CovganError(f"fold {fold} is not one of 0..{FOLDS - 1}.")
    position = (position + fold * (1.0 - fractions[0])) % 1.0
    edge = 0.0
    for split, fraction in zip(SPLITS, fractions):
        edge += fraction
        if position < edge:
            return split
    return SPLITS[-1]


def stratified_splits(strata: dict[str, tuple], fractions=SPLIT_FRACTIONS,
                      fold: int = 0) -> dict[str, str]:
    """A stable patient-level split that gives every stratum the same train/val/test shares.

    Args:
        strata: {patient_id: stratum}, the stratum any hashable (say (label, view)).
        fractions: the train, val and test shares.
        fold: the cross-validation fold (0..FOLDS-1; see FOLDS).

    Returns:
        {patient_id: split}. Within a stratum the patients are ordered by the same hash as
        `split_for_patient` and cut at the shares, so a stratum of n patients puts
        round(n * share) in each split (up to rounding), and a patient's split never depends
        on another stratum's patients.
    """
    members = {}
    for patient, stratum in strata.items():
        members.setdefault(stratum, []).append(patient)
    splits = {}
    for patients in members.values():
        patients.sort(key=lambda p: (stable_fraction(f"split:{p}"), p))
        for rank, patient in enumerate(patients):
            splits[patient] = _split_at((rank + 0.5) / len(patients), fractions, fold)
    return splits


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes a float [0, 1] or bool array as an 8-bit PNG (raises if it cannot)."""
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    else:
        array = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), array):
        raise OSError(f"Could not write {path}.")


def write_manifest(path: str | os.PathLike, records: Iterable[Record]) -> None:
    """Writes records to manifest.csv; extra columns appear in first-seen order."""
    extra_columns = []
    for record in records:
        for column, _ in record.extra:
            if column not in extra_columns:
                extra_columns.append(column)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*REQUIRED_COLUMNS, "mask_path", *extra_columns])
        for r in records:
            extra = dict(r.extra)
            writer.writerow(
                [r.path, r.label, r.patient_id, r.split, r.mask_path]
                + [extra.get(c, "") for c in extra_columns]
            )


def read_manifest(data_dir: str | os.PathLike) -> list[Record]:
    """Reads DATA/manifest.csv into Records, checking columns, labels and splits.

    Raises:
        CovganError: the folder or manifest is missing or malformed.
    """
    data_dir = pathlib.Path(data_dir)
    path = data_dir / MANIFEST
    if not path.is_file():
        raise CovganError(
            f"{data_dir} is not a prepared data folder: {MANIFEST} not found "
            "(make one with `covgan data prepare` or `covgan data synth`, or use DATA=phantom)."
        )
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CovganError(f"{path} lacks the columns {missing}. Received: {reader.fieldnames}.")
        standard = set(REQUIRED_COLUMNS) | {"mask_path"}
        records = []
        for line, row in enumerate(reader, start=2):
            if row["label"] not in ("0", "1") or row["split"] not in SPLITS:
                raise CovganError(
                    f"{path}:{line}: label must be 0 or 1 and split one of {SPLITS}. "
                    f"Received: label={row['label']!r}, split={row['split']!r}."
                )
            extra = tuple((k, v) for k, v in row.items() if k not in standard)
            records.append(
                Record(
                    row["path"], int(row["label"]), row["patient_id"], row["split"],
                    row.get("mask_path") or "", extra,
                )
            )
    if not records:
        raise CovganError(f"{path} lists no images.")
    return records


def select(records: Iterable[Record], split: str) -> list[Record]:
    """The records of one split ('train', 'val', 'test'), the held-out ones ('heldout': val
    and test), or every record ('all': an external set scored as a whole, whatever split its
    preparation gave each image)."""
    if split == "all":
        return list(records)
    if split == "heldout":
        return [r for r in records if r.split in ("val", "test")]
    return [r for r in records if r.split == split]


def held_out_positives_with_masks(records: Sequence[Record], count: int,
                                  split: str | None = None) -> list[Record]:
    """Up to `count` positives with lesion masks from `split` (default: the evaluation split),
    in manifest order."""
    split = split or evaluation_split(records)
    chosen = [r for r in select(records, split) if r.label == 1 and r.mask_path]
    return chosen[:count]


def evaluation_split(records: Sequence[Record]) -> str:
    """'test' where the data set has one, else 'val' (sources often ship only train/val)."""
    for split in ("test", "val"):
        if select(records, split):
            return split
    raise CovganError("The data set has neither a test nor a val split to evaluate on.")
