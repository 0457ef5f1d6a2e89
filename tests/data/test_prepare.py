import json

import cv2
import numpy as np
import pytest
from helpers import build_messy_tree

from covgan.data import layout
from covgan.data.prepare import prepare
from covgan.data.sources import ClassMap
from covgan.errors import CovganError


def test_shared_covid19_dataset(shared_dataset, tmp_path):
    out = tmp_path / "covid19"
    report = prepare(shared_dataset, out)
    assert report["imported"] == {"positive": 137, "negative": 90}
    assert report["skipped_other_class"] == 90
    assert report["skipped_by_class"] == {"Viral Pneumonia": 90}
    assert report["unreadable"] == 0
    assert report["split_origin"] == "source"
    assert report["splits"]["train"] == {"positive": 111, "negative": 70}
    assert report["splits"]["val"] == {"positive": 26, "negative": 20}
    records = layout.read_manifest(out)
    assert len(records) == 227
    for record in records[::25]:
        image = cv2.imread(str(out / record.path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (128, 128) and image.dtype == np.uint8
        source = dict(record.extra)["source_path"]
        assert ("/train/" in source) == (record.split == "train")
    assert json.loads((out / "report.json").read_text()) == report


def test_messy_tree_imports_what_it_can_and_lists_the_rest(tmp_path):
    src = tmp_path / "messy"
    build_messy_tree(src)
    report = prepare(src, tmp_path / "out")
    assert report["imported"] == {"positive": 2, "negative": 6}
    assert sorted(f["path"].split("/")[-1] for f in report["unreadable_files"]) == [
        "notes.png", "truncated.png",
    ]
    assert report["split_origin"] == "patient-hash"
    records = layout.read_manifest(tmp_path / "out")
    assert {r.split for r in records} <= set(layout.SPLITS)


def test_patient_level_split_keeps_patients_together(tmp_path):
    src = tmp_path / "meta"
    (src / "images").mkdir(parents=True)
    rows = ["patientid,finding,view,modality,folder,filename"]
    for patient in range(40):
        for shot in range(3):
            name = f"p{patient}_{shot}.png"
            cv2.imwrite(str(src / "images" / name), np.full((64, 64), 100, np.uint8))
            finding = "COVID-19" if patient % 2 else "No Finding"
            rows.append(f"{patient},{finding},PA,X-ray,images,{name}")
    (src / "metadata.csv").write_text("\n".join(rows) + "\n")
    report = prepare(src, tmp_path / "out")
    assert report["patients_in_several_splits"] == 0
    records = layout.read_manifest(tmp_path / "out")
    splits = {}
    for r in records:
        splits.setdefault(r.patient_id, set()).add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    assert {s for v in splits.values() for s in v} == {"train", "val", "test"}


def test_unmatched_classes_fail_cleanly_and_write_nothing(tmp_path):
    src = tmp_path / "src"
    build_messy_tree(src)
    with pytest.raises(CovganError, match="No usable images"):
        prepare(src, tmp_path / "out", class_map=ClassMap(["tumour"], ["healthy"]))
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src"]
