"""Finding labelled radiographs in the layouts public COVID sets ship in.

Three layouts are recognised (see `detect_format`):

- "folders": one folder per class at any depth, optionally below train/val/test
  folders (for example covid19-dataset/train/Covid/*.png). The class is the
  image's parent folder; the split is the nearest train/val/test ancestor.
  Patients are unknown, so each image counts as its own patient.
- "covidx": label files (train.txt, val.txt, test.txt) whose lines read
  `patient_id filename label [source]`; the split is the file's name.
- "metadata": a metadata.csv with a `finding` column (covid-chestxray-dataset),
  images under its `folder` column; findings such as "Pneumonia/Viral/COVID-19"
  match on any of their "/" parts. CT rows and lateral views are skipped.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import os
import pathlib

from covgan.data.images import is_image_file
from covgan.errors import CovganError

DEFAULT_POSITIVE = ("covid", "covid-19", "covid19", "positive")
DEFAULT_NEGATIVE = ("normal", "negative", "no finding")
FORMATS = ("auto", "folders", "covidx", "metadata")
_SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}


@dataclasses.dataclass(frozen=True)
class SourceImage:
    """A labelled file found in a source; split is None where the source has none."""

    path: pathlib.Path
    label: int
    class_name: str
    patient_id: str
    split: str | None


@dataclasses.dataclass
class Discovery:
    """What a source holds: usable images, and what was passed over and why."""

    format: str
    images: list
    other_classes: collections.Counter  # class name -> count, neither positive nor negative
    missing: list  # (path, reason) for files a label file names but that are absent
    ignored_files: int = 0  # non-image files in a folder tree


class ClassMap:
    """Maps source class names to 1 (positive), 0 (negative) or None (another class)."""

    def __init__(self, positive=DEFAULT_POSITIVE, negative=DEFAULT_NEGATIVE):
        self.positive = {_normalise(n) for n in positive}
        self.negative = {_normalise(n) for n in negative}
        both = self.positive & self.negative
        if both:
            raise CovganError(f"Classes named both positive and negative: {sorted(both)}.")

    def label(self, name):
        parts = [_normalise(p) for p in str(name).split("/")]
        if any(p in self.positive for p in parts):
            return 1
        if any(p in self.negative for p in parts):
            return 0
        return None


def detect_format(src):
    """Guesses the layout of `src` (see the module docstring)."""
    src = pathlib.Path(src)
    metadata = src / "metadata.csv"
    if metadata.is_file() and "finding" in _csv_columns(metadata):
        return "metadata"
    if _covidx_label_files(src):
        return "covidx"
    return "folders"


def discover(src: str | os.PathLike, class_map: ClassMap, source_format: str = "auto") -> list:
    """Lists the labelled images of `src`.

    Raises:
        CovganError: `src` is missing or holds no usable image.
    """
    src = pathlib.Path(src)
    if not src.is_dir():
        raise CovganError(f"Source folder not found: {src}.")
    if source_format not in FORMATS:
        raise CovganError(f"Unknown source format {source_format!r}; one of {FORMATS}.")
    if source_format == "auto":
        source_format = detect_format(src)
    reader = {"folders": _folders, "covidx": _covidx, "metadata": _metadata}[source_format]
    found = reader(src, class_map)
    if not found.images and not found.other_classes:
        raise CovganError(f"No labelled images found in {src} (read as {source_format!r}).")
    return found


def _folders(src, class_map):
    found = Discovery("folders", [], collections.Counter(), [])
    for folder, subfolders, files in os.walk(src):
        subfolders.sort()
        folder = pathlib.Path(folder)
        relative = folder.relative_to(src).parts
        for name in sorted(files):
            path = folder / name
            if not is_image_file(path):
                found.ignored_files += 1
                continue
            if not relative or relative[-1].lower() in _SPLIT_NAMES:
                found.other_classes["(no class folder)"] += 1
                continue
            class_name = readable(relative[-1])
            label = class_map.label(class_name)
            if label is None:
                found.other_classes[class_name] += 1
                continue
            split = next(
                (
                    _SPLIT_NAMES[p.lower()]
                    for p in reversed(relative[:-1])
                    if p.lower() in _SPLIT_NAMES
                ),
                None,
            )
            patient = readable(path.relative_to(src).with_suffix("").as_posix())
            found.images.append(SourceImage(path, label, class_name, patient, split))
    return found


def _covidx_label_files(src):
    files = []
    for path in sorted(src.glob("*.txt")):
        split = next((s for k, s in _SPLIT_NAMES.items() if k in path.stem.lower()), None)
        if split is None:
            continue
        with open(path, errors="replace") as f:
            first = f.readline().split()
        if len(first) >= 3 and is_image_file(first[1]):
            files.append((path, split))
    return files


def _covidx(src, class_map):
    found = Discovery("covidx", [], collections.Counter(), [])
    for label_file, split in _covidx_label_files(src):
        with open(label_file, errors="replace") as f:
            for line in f:
                tokens = line.split()
                if len(tokens) < 3:
                    continue
                patient, filename, class_name = tokens[0], tokens[1], tokens[2]
                label = class_map.label(class_name)
                if label is None:
                    found.other_classes[class_name] += 1
                    continue
                candidates = [
                    src / split / filename,
                    src / label_file.stem / filename,
                    src / "images" / filename,
                    src / filename,
                ]
                path = next((c for c in candidates if c.is_file()), None)
                if path is None:
                    found.missing.append((str(candidates[0]), "listed in a label file but missing"))
                    continue
                found.images.append(SourceImage(path, label, class_name, patient, split))
    return found


def _metadata(src, class_map):
    found = Discovery("metadata", [], collections.Counter(), [])
    with open(src / "metadata.csv", newline="", errors="replace") as f:
        rows = csv.DictReader(f)
        for row in rows:
            # A short row leaves its last columns None: read every field as text.
            field = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
            finding = field.get("finding", "")
            modality = (field.get("modality") or "X-ray").lower()
            view = (field.get("view") or "PA").upper()
            if modality not in ("x-ray", "xray", "cr", "dx"):
                found.other_classes[f"(modality {field.get('modality')})"] += 1
                continue
            if view in ("L", "LATERAL", "AXIAL", "CORONAL"):
                found.other_classes[f"(view {field.get('view')})"] += 1
                continue
            label = class_map.label(finding)
            if label is None:
                found.other_classes[finding or "(empty finding)"] += 1
                continue
            filename = field.get("filename", "")
            if not filename:
                found.missing.append((f"metadata.csv line {rows.line_num}", "row has no file name"))
                continue
            candidates = [src / (field.get("folder") or "images") / filename, src / filename]
            path = next((c for c in candidates if c.is_file()), None)
            if path is None:
                found.missing.append((str(candidates[0]), "listed in metadata.csv but missing"))
                continue
            patient = field.get("patientid") or field.get("patient_id") or filename
            found.images.append(SourceImage(path, label, finding, patient, None))
    return found


def readable(text: str) -> str:
    """`text` with any undecodable file-name bytes spelled out (\\xff), safe to write as UTF-8."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def _csv_columns(path):
    with open(path, newline="", errors="replace") as f:
        return next(csv.reader(f), [])


def _normalise(name):
    return " ".join(str(name).replace("_", " ").strip().lower().split())
