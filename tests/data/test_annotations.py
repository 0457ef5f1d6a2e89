"""Lesion masks and boxes imported with real data land where the lesion is, binary."""

import csv
import json

import cv2
import numpy as np

from covgan.data import layout
from covgan.data.prepare import prepare


def write_source(root):
    """Two 300x200 (w x h) positives and a negative, each with a bright lesion somewhere."""
    images = {}
    for name, cls, (x, y) in (("a", "Covid", (40, 60)), ("b", "Covid", (220, 120)),
                              ("n", "Normal", (150, 100))):
        pixels = np.full((200, 300), 60, np.uint8)
        pixels[y : y + 20, x : x + 30] = 250
        (root / cls).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / cls / f"{name}.png"), pixels)
        images[name] = (x, y)
    return images


def prepared_masks(out):
    records = {r.path.split("_", 1)[1]: r for r in layout.read_manifest(out)}
    return {name: cv2.imread(str(out / r.mask_path), cv2.IMREAD_GRAYSCALE) if r.mask_path
            else None for name, r in records.items()}, records


def test_mask_files_follow_the_image_through_crop_and_resize(tmp_path):
    src = tmp_path / "src"
    lesions = write_source(src)
    masks = tmp_path / "masks"
    (masks / "Covid").mkdir(parents=True)
    for name in ("a", "b"):  # a by relative path, b by stem in another folder
        x, y = lesions[name]
        mask = np.zeros((200, 300), np.uint8)
        mask[y : y + 20, x : x + 30] = 255
        folder = masks / "Covid" if name == "a" else masks
        cv2.imwrite(str(folder / f"{name}.png"), mask)
    out = tmp_path / "out"
    report = prepare(src, out, masks=masks)
    found, records = prepared_masks(out)
    assert report["annotations"]["images_with_mask"] == 2
    assert found["n.png"] is None
    for name in ("a.png", "b.png"):
        mask = found[name]
        assert set(np.unique(mask)) <= {0, 255}  # nearest-neighbour: still binary
        image = cv2.imread(str(out / records[name].path), cv2.IMREAD_GRAYSCALE)
        # The prepared lesion is bright exactly where the prepared mask is.
        assert image[mask > 0].mean() > 200 and image[mask == 0].mean() < 100
    # b's lesion (x 220..250 of 300) falls outside the 200x200 centre crop (50..250) in part.
    assert 0 < (found["b.png"] > 0).sum() < (found["a.png"] > 0).sum() * 1.5


def test_boxes_csv_rsna_style_with_empty_rows_and_padding(tmp_path):
    src = tmp_path / "src"
    lesions = write_source(src)
    boxes = tmp_path / "boxes.csv"
    with open(boxes, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["patientId", "x", "y", "width", "height", "Target"])
        x, y = lesions["a"]
        writer.writerow(["a", x, y, 30, 20, 1])
        writer.writerow(["n", "", "", "", "", 0])  # no box for this image
    out = tmp_path / "out"
    report = prepare(src, out, boxes=boxes, aspect="pad")
    found, records = prepared_masks(out)
    assert report["annotations"]["images_with_mask"] == 1
    image = cv2.imread(str(out / records["a.png"].path), cv2.IMREAD_GRAYSCALE)
    assert image[found["a.png"] > 0].mean() > 200
    assert json.loads((out / "report.json").read_text())["annotations"]["boxes"] == str(boxes)
