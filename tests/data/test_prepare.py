import json
import os

import cv2
import numpy as np
import pytest
from helpers import build_messy_tree, write_dicom

from covgan.data import layout
from covgan.data import prepare as prepare_module
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


def test_odd_files_are_skipped_or_read_never_fatal(tmp_path, monkeypatch):
    src = tmp_path / "odd"
    build_messy_tree(src)
    grey = np.full((200, 200), 120, np.uint8)
    # A file name (and a site folder) that are not valid UTF-8, as copied from old media.
    site = os.path.join(os.fsencode(src), b"site-\xff")
    os.makedirs(os.path.join(site, b"Covid"))
    ok, encoded = cv2.imencode(".png", grey)
    with open(os.path.join(site, b"Covid", b"caf\xe9.png"), "wb") as f:
        f.write(encoded.tobytes())
    # A valid JPEG with bytes after its end marker; a 2-frame colour DICOM.
    ok, encoded = cv2.imencode(".jpg", grey)
    (src / "Covid" / "trailer.jpg").write_bytes(encoded.tobytes() + b"\0" * 100)
    write_dicom(src / "Covid" / "cine.dcm", np.full((2, 400, 400, 3), 90, np.uint8), "RGB")
    # Any other failure of one file (here a reader error nobody foresaw) is reported.
    cv2.imwrite(str(src / "NORMAL" / "explodes.png"), grey)
    real_read = prepare_module.read_radiograph

    def read(path, **kwargs):
        if path.name == "explodes.png":
            raise ValueError("axes don't match array")
        return real_read(path, **kwargs)

    monkeypatch.setattr(prepare_module, "read_radiograph", read)
    report = prepare(src, tmp_path / "out")
    assert report["imported"] == {"positive": 5, "negative": 6}
    reasons = {f["path"].split("/")[-1]: f["reason"] for f in report["unreadable_files"]}
    assert set(reasons) == {"notes.png", "truncated.png", "explodes.png"}
    assert reasons["explodes.png"] == "could not be read (ValueError: axes don't match array)"
    records = layout.read_manifest(tmp_path / "out")
    sources = {dict(r.extra)["source_path"].split("/odd/")[-1]: r for r in records}
    assert "site-\\xff/Covid/caf\\xe9.png" in sources
    assert sources["site-\\xff/Covid/caf\\xe9.png"].patient_id == "site-\\xff/Covid/caf\\xe9"
    json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))


def test_metadata_rows_without_a_file_name_are_listed(tmp_path):
    src = tmp_path / "meta"
    (src / "images").mkdir(parents=True)
    cv2.imwrite(str(src / "images" / "a.png"), np.full((64, 64), 100, np.uint8))
    (src / "metadata.csv").write_text(
        "patientid,finding,view,modality,folder,filename\n"
        "1,COVID-19,PA,X-ray,images,a.png\n"
        "2,COVID-19\n"  # a short row: its last four columns are missing
        "3,No Finding,PA,X-ray,images,\n"
    )
    report = prepare(src, tmp_path / "out")
    assert report["imported"] == {"positive": 1, "negative": 0}
    assert [f["reason"] for f in report["unreadable_files"]] == ["row has no file name"] * 2
    assert report["unreadable_files"][0]["path"] == "metadata.csv line 3"
