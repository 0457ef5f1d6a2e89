"""The scored positives: masks that match the manifest's files, the split resolved, and a set
without any refused by name."""

import numpy as np
import pytest
from PIL import Image

from covgan.data import layout
from covgan.data.annotated import annotated_positives
from covgan.errors import CovganError


def test_the_positives_come_with_their_own_masks_in_manifest_order(phantom_dir):
    films = annotated_positives(phantom_dir, 3)
    assert films.split == layout.evaluation_split(layout.read_manifest(phantom_dir))
    assert len(films.records) == 3 and films.images.shape == (3, 128, 128, 1)
    assert films.masks.shape == (3, 128, 128) and films.masks.dtype == bool
    for record, mask in zip(films.records, films.masks):
        assert record.label == 1 and record.split == films.split
        on_disk = np.asarray(Image.open(phantom_dir / record.mask_path)) > 127
        np.testing.assert_array_equal(mask, on_disk)
        assert mask.any()


def test_a_split_without_annotated_positives_is_refused_by_name(phantom_dir):
    with pytest.raises(CovganError, match="no positives with lesion masks in its 'nowhere'"):
        annotated_positives(phantom_dir, 3, "nowhere")
