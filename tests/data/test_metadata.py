"""`covgan data prepare --metadata`: per-film columns into the manifest, stratified splits."""

import collections
import csv
import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from covgan.cli import main
from covgan.data import layout
from covgan.data.metadata import read_metadata
from covgan.data.prepare import prepare
from covgan.data.sources import ClassMap
from covgan.errors import CovganError


def films(root, count=40):
    """An RSNA-like tree: images/Normal and images/Pneumonia, one patient per film, and a
    metadata.csv naming each film by its path above the image folder, with a view column
    that goes with the class (as RSNA's AP films go with pneumonia)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        label = "Pneumonia" if i % 2 else "Normal"
        folder = root / "images" / label
        folder.mkdir(parents=True, exist_ok=True)
        name = f"film{i:03d}"
        cv2.imwrite(str(folder / f"{name}.jpg"), (rng.random((90, 80)) * 255).astype(np.uint8))
        view = "AP" if (i % 2) == (i % 5 != 0) else "PA"
        rows.append({"patientId": name, "path": f"images/{label}/{name}.jpg", "label": label,
                     "age": str(20 + i), "sex": "MF"[i % 2], "view": view})
    rows.append({"patientId": "nobody", "path": "images/Normal/nobody.jpg", "label": "Normal",
                 "age": "50", "sex": "F", "view": "PA"})
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[1:])  # film000 has no row
    return root / "images", root / "metadata.csv"


def test_metadata_columns_travel_into_the_manifest(tmp_path):
    images, table = films(tmp_path / "src")
    report = prepare(images, tmp_path / "out", class_map=ClassMap(["pneumonia"], ["normal"]),
                     metadata=table)
    assert report["metadata"]["key"] == "patientId"
    assert report["metadata"]["images_without_row"] == 1
    assert report["metadata"]["rows_matching_no_image"] == 1
    # Names the manifest uses itself travel renamed.
    assert report["metadata"]["columns"] == ["meta_path", "meta_label", "age", "sex", "view"]
    records = {dict(r.extra)["source_path"].rsplit("/", 1)[-1]: dict(r.extra)
               for r in layout.read_manifest(tmp_path / "out")}
    assert records["film007.jpg"]["view"] == "AP" and records["film007.jpg"]["age"] == "27"
    assert records["film010.jpg"]["meta_label"] == "Normal"
    assert records["film000.jpg"].get("view", "") == ""


def test_a_row_is_found_by_relative_path_when_stems_repeat(tmp_path):
    images, table = films(tmp_path / "src", count=6)
    # The same stem in both class folders: only the relative path tells the rows apart.
    cv2.imwrite(str(images / "Normal" / "film001.jpg"), np.zeros((64, 64), np.uint8))
    with open(table, "a", newline="") as handle:
        handle.write("x,images/Normal/film001.jpg,Normal,99,F,LL\n")
    found = read_metadata(table, sorted(images.rglob("*.jpg")), images, key="path")
    by_name = {f"{p.parent.name}/{p.name}": dict(row) for p, row in found.rows.items()}
    assert by_name["Normal/film001.jpg"]["view"] == "LL"
    assert by_name["Pneumonia/film001.jpg"]["view"] != "LL"


def test_stratified_splits_keep_each_mix_and_each_patient_in_one_split(tmp_path):
    strata = {f"p{i}": ("1" if i < 300 else "0", "AP" if i % 4 == 0 else "PA")
              for i in range(1000)}
    splits = layout.stratified_splits(strata)
    counts = collections.Counter((strata[p], s) for p, s in splits.items())
    for stratum in set(strata.values()):
        n = sum(counts[stratum, s] for s in layout.SPLITS)
        for split, share in zip(layout.SPLITS, layout.SPLIT_FRACTIONS):
            assert abs(counts[stratum, split] - share * n) <= 1, (stratum, split)
    # A patient's split does not depend on the patients of other strata.
    alone = layout.stratified_splits({p: s for p, s in strata.items() if s == ("1", "AP")})
    assert all(splits[p] == split for p, split in alone.items())


def test_the_folds_hold_out_every_patient_once_each_with_the_strata_mix():
    strata = {f"p{i}": ("1" if i < 300 else "0", "AP" if i % 4 == 0 else "PA")
              for i in range(1000)}
    assert layout.stratified_splits(strata, fold=0) == layout.stratified_splits(strata)
    for by_fold in ([layout.stratified_splits(strata, fold=k) for k in range(layout.FOLDS)],
                    [{p: layout.split_for_patient(p, fold=k) for p in strata}
                     for k in range(layout.FOLDS)]):
        held_out = [{p for p, s in splits.items() if s != "train"} for splits in by_fold]
        assert sum(map(len, held_out)) == len(strata) == len(set().union(*held_out))
    # Another fold keeps each stratum's shares as fold 0 does.
    counts = collections.Counter((strata[p], s)
                                 for p, s in layout.stratified_splits(strata, fold=3).items())
    for stratum in set(strata.values()):
        n = sum(counts[stratum, s] for s in layout.SPLITS)
        for split, share in zip(layout.SPLITS, layout.SPLIT_FRACTIONS):
            assert abs(counts[stratum, split] - share * n) <= 1, (stratum, split)
    with pytest.raises(CovganError, match="fold 5 is not one of 0..4"):
        layout.split_for_patient("p0", fold=layout.FOLDS)


def test_prepare_stratifies_by_label_and_a_metadata_column(tmp_path):
    images, table = films(tmp_path / "src", count=80)
    report = prepare(images, tmp_path / "out", class_map=ClassMap(["pneumonia"], ["normal"]),
                     metadata=table, stratify=("label", "view"))
    assert report["stratified_by"] == ["label", "view"]
    assert "stratified by label, view" in report["split_origin"]
    records = layout.read_manifest(tmp_path / "out")
    for split, share in zip(layout.SPLITS, layout.SPLIT_FRACTIONS):
        chosen = layout.select(records, split)
        for label in (0, 1):
            n = sum(r.label == label for r in records)
            assert abs(sum(r.label == label for r in chosen) - share * n) <= 2


def test_bad_metadata_options_fail_in_one_line_and_write_nothing(tmp_path):
    images, table = films(tmp_path / "src", count=6)
    out = tmp_path / "out"
    for extra, message in ((["--stratify", "label,site"], "'site' is not a metadata column"),
                           (["--metadata-key", "nope"], "has no column 'nope'"),
                           (["--fold", "5"], "--fold 5 is not one of 0..4")):
        result = CliRunner().invoke(main, ["data", "prepare", str(images), str(out),
                                           "--positive", "Pneumonia", "--negative", "Normal",
                                           "--metadata", str(table), *extra])
        assert result.exit_code == 1, result.output
        assert message in result.stderr.strip().splitlines()[-1]
        assert not out.exists()
    unrelated = tmp_path / "other.csv"
    unrelated.write_text("id,view\nsomeone,AP\n")
    with pytest.raises(CovganError, match="No row of"):
        read_metadata(unrelated, sorted(images.rglob("*.jpg")), images)


def test_prepare_command_reports_the_metadata(tmp_path):
    images, table = films(tmp_path / "src", count=10)
    result = CliRunner().invoke(main, ["data", "prepare", str(images), str(tmp_path / "out"),
                                       "--positive", "Pneumonia", "--negative", "Normal",
                                       "--metadata", str(table), "--stratify", "label",
                                       "--fold", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metadata"]["images_without_row"] == 1
    assert report["fold"] == {"fold": 2, "of": 5} and "fold 2 of 5" in report["split_origin"]
