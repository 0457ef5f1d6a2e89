import csv

import cv2
import numpy as np
import pytest

from covgan.data import layout
from covgan.data.synth import contact_sheet, synthesize


def test_layout_counts_and_masks(phantom_dir):
    records = layout.read_manifest(phantom_dir)
    assert len(records) == 96
    assert sum(r.label for r in records) == 48
    for record in records:
        image = cv2.imread(str(phantom_dir / record.path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (128, 128) and image.dtype == np.uint8
        assert bool(record.mask_path) == (record.label == 1)
        if record.mask_path:
            mask = cv2.imread(str(phantom_dir / record.mask_path), cv2.IMREAD_UNCHANGED)
            assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255
    assert {r.split for r in records} == {"train", "val", "test"}


def test_every_phantom_has_its_own_lung_mask(phantom_dir):
    from covgan.data.phantom import phantom_rng, render_phantom

    records = layout.read_manifest(phantom_dir)
    assert all(layout.lung_mask_path(r) for r in records)
    for index in (0, 1):  # phantom_dir is synthesize(..., count=96, seed=3, shortcut=0.5)
        record = records[index]
        lungs = cv2.imread(str(phantom_dir / layout.lung_mask_path(record)),
                           cv2.IMREAD_UNCHANGED) > 127
        rng = phantom_rng(3, index)
        stamped = record.label == 1 and rng.random() < 0.5
        expected = render_phantom(rng, label=record.label, shortcut=stamped).lung_mask
        assert 0.1 < lungs.mean() < 0.5 and np.array_equal(lungs, expected)
    assert layout.lung_mask_path(layout.Record("a.png", 0, "p", "train")) == ""


def test_marked_phantoms_say_where_their_marker_is(phantom_dir):
    records = layout.read_manifest(phantom_dir)
    marked = [r for r in records if dict(r.extra)["shortcut"] == "1"]
    assert marked and all(r.label == 1 for r in marked)
    assert all(bool(layout.marker_mask_path(r)) == (r in marked) for r in records)
    for record in marked[:4]:
        image = cv2.imread(str(phantom_dir / record.path), cv2.IMREAD_GRAYSCALE)
        box = cv2.imread(str(phantom_dir / layout.marker_mask_path(record)),
                         cv2.IMREAD_GRAYSCALE) > 127
        # A small box in the upper-left corner that holds the letter's bright strokes.
        assert 20 < box.sum() < 400
        rows, columns = np.nonzero(box)
        assert rows.max() < 32 and columns.max() < 32
        assert image[box].max() > 200


def test_shortcut_only_on_positives(phantom_dir):
    records = layout.read_manifest(phantom_dir)
    marked = [r for r in records if dict(r.extra)["shortcut"] == "1"]
    assert all(r.label == 1 for r in marked)
    assert 12 <= len(marked) <= 36  # half of 48 positives, give or take chance


def test_same_seed_writes_identical_files(tmp_path):
    a = tmp_path / "a"
    b = tmp_path / "b"
    synthesize(a, count=8, seed=7)
    synthesize(b, count=8, seed=7)
    for name in ("phantom_00000.png", "phantom_00007.png"):
        assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()
    assert (a / "manifest.csv").read_text() == (b / "manifest.csv").read_text()


def test_parallel_and_serial_rendering_agree(tmp_path):
    """Above a few hundred images rendering is spread over processes; order and pixels hold."""
    from covgan.data.synth import _render_all, render_one

    rendered = list(_render_all(300, 5, 0.3, 1.0, chunk=64))
    assert [i for i, _ in rendered] == list(range(300))
    for index in (0, 131, 299):
        np.testing.assert_array_equal(
            rendered[index][1].image, render_one(5, index, 0.3, 1.0).image
        )


def test_refuses_to_overwrite_without_flag(tmp_path):
    out = tmp_path / "data"
    synthesize(out, count=4)
    before = (out / "manifest.csv").read_text()
    with pytest.raises(FileExistsError, match="overwrite"):
        synthesize(out, count=6)
    assert (out / "manifest.csv").read_text() == before
    synthesize(out, count=6, overwrite=True)
    with open(out / "manifest.csv") as f:
        assert len(list(csv.DictReader(f))) == 6


def test_failed_synthesis_leaves_nothing(tmp_path, monkeypatch):
    import covgan.data.synth as synth

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth.layout, "write_manifest", broken)
    with pytest.raises(RuntimeError):
        synthesize(tmp_path / "data", count=4)
    assert not (tmp_path / "data").exists()
    assert list(tmp_path.iterdir()) == []


def test_contact_sheet(phantom_dir, tmp_path):
    sheet = tmp_path / "sheet.png"
    contact_sheet(phantom_dir, sheet)
    image = cv2.imread(str(sheet))
    assert image.shape[0] > 4 * 256 and image.shape[1] > 8 * 128
