"""Per-film metadata for real data: `covgan data prepare --metadata CSV`.

A metadata CSV has one row per film and any columns (age, sex, view, site, ...). A row is
matched to an image the way a mask file is (`covgan.data.annotations`): by the image's path
relative to the source (a row's value may carry any extension and any folders above the
source, as RSNA's `images/Normal/<id>.jpg` does for the source `images/`), else by its file
stem where the stem names one row only. The key column is the one that matches the most
images, unless the caller names it. Every other column travels into manifest.csv; a column
whose name the manifest already uses (path, label, split, ...) travels as `meta_<name>`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pathlib
from collections.abc import Sequence

from covgan.data import layout
from covgan.errors import CovganError

# Names the manifest uses itself (layout's columns and the provenance prepare adds).
RESERVED = frozenset({*layout.REQUIRED_COLUMNS, "mask_path", layout.LUNG_MASK_COLUMN,
                      layout.MARKER_MASK_COLUMN, "source_path", "source_class"})
RENAMED_PREFIX = "meta_"


def _path_keys(value: str) -> tuple[str, ...]:
    """The keys a cell can match: its parts without extension, every trailing run of them
    (`a/b/c.jpg` -> `a/b/c`, `b/c`, `c`)."""
    parts = pathlib.PurePosixPath(value.strip().replace("\\", "/")).with_suffix("").parts
    return tuple("/".join(parts[i:]) for i in range(len(parts)))


@dataclasses.dataclass
class Metadata:
    """A metadata table matched to the images of one import."""

    file: str
    key: str
    columns: tuple[str, ...]  # the manifest's names for the carried columns, in file order
    rows: dict[pathlib.Path, tuple[tuple[str, str], ...]]  # image -> (column, value) pairs
    unused_rows: int

    def for_image(self, path: pathlib.Path) -> tuple[tuple[str, str], ...] | None:
        """The image's (column, value) pairs, or None where no row names it."""
        return self.rows.get(path)


def read_metadata(path: str | os.PathLike, images: Sequence[pathlib.Path],
                  source: str | os.PathLike, *, key: str | None = None) -> Metadata:
    """Reads a metadata CSV and matches its rows to `images` (found under `source`).

    Args:
        path: the CSV (a header row, then one row per film).
        images: the source files being imported.
        source: the folder they were found under (their relative paths are matched).
        key: the column naming each row's film; None: the column that matches most images.

    Raises:
        CovganError: a missing or empty file, an unknown key column, or no row matching
            any image.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CovganError(f"Metadata file not found: {path}.")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f for f in (reader.fieldnames or []) if f]
        table = [{f: (row.get(f) or "").strip() for f in fields} for row in reader]
    if not fields or not table:
        raise CovganError(f"{path} has no header or no rows.")
    if key is not None and key not in fields:
        raise CovganError(f"{path} has no column {key!r}. Received: {fields}.")
    source = pathlib.Path(source)
    wanted = {}
    for image in images:
        try:
            relative = image.relative_to(source).with_suffix("").as_posix()
        except ValueError:
            relative = None
        wanted[image] = (relative, image.stem)
    candidates = [key] if key else fields
    best = max(((_match(table, column, wanted), column) for column in candidates),
               key=lambda found: len(found[0]))
    matched, column = best
    if not matched:
        raise CovganError(f"No row of {path} names any of the {len(images)} images "
                          f"(tried the column{'s' if len(candidates) > 1 else ''} "
                          f"{candidates} against their relative paths and file stems).")
    carried = [f for f in fields if f != column]
    names = {f: RENAMED_PREFIX + f if f in RESERVED else f for f in carried}
    rows = {image: tuple((names[f], table[index][f]) for f in carried)
            for image, index in matched.items()}
    return Metadata(str(path), column, tuple(names[f] for f in carried), rows,
                    len(table) - len(set(matched.values())))


def _match(table, column, wanted):
    """{image: row index} for the images a column names (relative path first, then a stem
    that names one row only)."""
    by_key, counts = {}, {}
    for index, row in enumerate(table):
        if not row[column]:
            continue
        for key in _path_keys(row[column]):
            by_key.setdefault(key, index)
            counts[key] = counts.get(key, 0) + 1
    matched = {}
    for image, (relative, stem) in wanted.items():
        if relative is not None and relative in by_key and counts[relative] == 1:
            matched[image] = by_key[relative]
        elif counts.get(stem) == 1:
            matched[image] = by_key[stem]
    return matched
