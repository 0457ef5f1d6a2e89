"""tools/alt_phantoms.py: the second phantom drawing is a pure function of (seed, index), every
positive and only the positives carry a lesion mask, and `covgan data prepare` imports what it
writes with those masks."""

import numpy as np
from helpers import load_tool


def test_the_other_drawing_is_reproducible_and_masks_exactly_its_positives():
    tool = load_tool("alt_phantoms")
    films = [tool.draw(0, index) for index in range(16)]
    again, label, mask = tool.draw(0, 3)
    np.testing.assert_array_equal(again, films[3][0])
    assert label == films[3][1] and (mask == films[3][2]).all()
    assert not np.array_equal(tool.draw(1, 3)[0], again)
    labels = [label for _, label, _ in films]
    assert 0 < sum(labels) < len(labels)
    for image, label, mask in films:
        assert image.shape == (128, 128) and image.dtype == np.uint8
        assert mask.any() == bool(label)  # a positive's mask is never empty, a negative's is


def test_data_prepare_imports_the_tree_with_its_masks(tmp_path, monkeypatch):
    from covgan.data import layout
    from covgan.data.prepare import prepare

    tool = load_tool("alt_phantoms")
    monkeypatch.setattr("sys.argv", ["alt_phantoms", str(tmp_path / "alt"), "--count", "12"])
    tool.main()
    report = prepare(tmp_path / "alt" / "images", tmp_path / "data",
                     masks=tmp_path / "alt" / "masks")
    manifest = layout.read_manifest(tmp_path / "data")
    positives = [record for record in manifest if record.label == 1]
    assert len(manifest) == 12 and len(positives) > 0
    assert report["annotations"]["images_with_mask"] == len(positives)
