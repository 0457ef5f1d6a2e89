import cv2
import numpy as np
import pytest

from covgan.data.sources import ClassMap, detect_format, discover
from covgan.errors import CovganError


def png(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((64, 64), value, np.uint8))


def test_class_map_defaults_are_case_insensitive():
    classes = ClassMap()
    assert classes.label("COVID-19") == 1 and classes.label("Covid") == 1
    assert classes.label("No_Finding") == 0 and classes.label("NORMAL") == 0
    assert classes.label("Viral Pneumonia") is None
    assert classes.label("Pneumonia/Viral/COVID-19") == 1
    with pytest.raises(CovganError, match="both"):
        ClassMap(positive=["a"], negative=["A"])


def test_folder_tree_at_any_depth_with_splits(tmp_path):
    png(tmp_path / "site A" / "train" / "Covid" / "1.png")
    png(tmp_path / "site A" / "train" / "Normal" / "2.png")
    png(tmp_path / "site A" / "Validation" / "Normal" / "3.png")
    png(tmp_path / "loose" / "Covid" / "4.png")
    png(tmp_path / "train" / "Viral Pneumonia" / "5.png")
    (tmp_path / "train" / "Covid").mkdir(parents=True)  # empty class folder
    (tmp_path / "README.txt").write_text("notes")
    found = discover(tmp_path, ClassMap())
    assert found.format == "folders"
    by_name = {i.path.name: i for i in found.images}
    assert set(by_name) == {"1.png", "2.png", "3.png", "4.png"}
    assert by_name["1.png"].split == "train" and by_name["1.png"].label == 1
    assert by_name["3.png"].split == "val" and by_name["3.png"].label == 0
    assert by_name["4.png"].split is None
    assert found.other_classes == {"Viral Pneumonia": 1}
    assert found.ignored_files == 1


def test_covidx_label_files(tmp_path):
    png(tmp_path / "train" / "a.png")
    png(tmp_path / "train" / "b.png")
    png(tmp_path / "test" / "c.png")
    (tmp_path / "train.txt").write_text(
        "p1 a.png positive rsna\np2 b.png negative rsna\np3 missing.png positive x\n"
    )
    (tmp_path / "test.txt").write_text("p4 c.png COVID-19 cohen\np5 d.png pneumonia x\n")
    assert detect_format(tmp_path) == "covidx"
    found = discover(tmp_path, ClassMap())
    assert sorted((i.patient_id, i.label, i.split) for i in found.images) == [
        ("p1", 1, "train"), ("p2", 0, "train"), ("p4", 1, "test"),
    ]
    assert len(found.missing) == 1 and found.other_classes == {"pneumonia": 1}


def test_metadata_csv(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        png(tmp_path / "images" / name)
    (tmp_path / "metadata.csv").write_text(
        "patientid,finding,view,modality,folder,filename\n"
        "1,Pneumonia/Viral/COVID-19,PA,X-ray,images,a.png\n"
        "1,Pneumonia/Viral/COVID-19,L,X-ray,images,b.png\n"
        "2,No Finding,AP,X-ray,images,c.png\n"
        "3,Pneumonia/Bacterial,PA,X-ray,images,d.png\n"
        "4,Pneumonia/Viral/COVID-19,Axial,CT,images,e.png\n"
    )
    assert detect_format(tmp_path) == "metadata"
    found = discover(tmp_path, ClassMap())
    assert sorted((i.path.name, i.label, i.patient_id) for i in found.images) == [
        ("a.png", 1, "1"), ("c.png", 0, "2"),
    ]
    assert sum(found.other_classes.values()) == 3


def test_missing_or_empty_source(tmp_path):
    with pytest.raises(CovganError, match="not found"):
        discover(tmp_path / "absent", ClassMap())
    (tmp_path / "empty").mkdir()
    with pytest.raises(CovganError, match="No labelled images"):
        discover(tmp_path / "empty", ClassMap())
