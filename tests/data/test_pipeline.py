import shutil

import numpy as np
import pytest

from covgan.data import layout
from covgan.data.pipeline import make_dataset


def test_batches_follow_the_image_convention(phantom_dir):
    records = layout.read_manifest(phantom_dir)
    dataset = make_dataset(phantom_dir, records, batch_size=16)
    images, labels = next(iter(dataset))
    assert images.shape == (16, 128, 128, 1) and images.dtype.name == "float32"
    assert labels.shape == (16,) and labels.dtype.name == "int32"
    assert 0.0 <= float(images.numpy().min()) and float(images.numpy().max()) <= 1.0
    assert labels.numpy().tolist() == [r.label for r in records[:16]]
    assert sum(int(b[0].shape[0]) for b in dataset) == len(records)
    # No autotuner thread beside training (it cost a third of an epoch on 2 cores).
    assert dataset.options().autotune.enabled is False


def test_masks_match_the_manifest(phantom_dir):
    records = layout.read_manifest(phantom_dir)
    images, labels, masks = next(iter(make_dataset(phantom_dir, records, batch_size=32,
                                                   with_masks=True)))
    area = masks.numpy().reshape(32, -1).sum(1)
    assert np.all((area > 0) == (labels.numpy() == 1))
    assert set(np.unique(masks.numpy())) <= {0.0, 1.0}


def test_shuffle_is_seeded_and_reshuffles(phantom_dir):
    records = layout.read_manifest(phantom_dir)

    def order(seed):
        dataset = make_dataset(phantom_dir, records, batch_size=96, shuffle=True, seed=seed)
        return [b[0].numpy().reshape(96, -1).mean(1) for b in dataset.take(1).repeat(2)]

    first, second = order(1), order(1)
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], first[1])  # a new order each epoch


def test_file_cache_serves_the_second_epoch(phantom_dir, tmp_path):
    # A copy of eight images, deleted after the first epoch: the second can only come from
    # the cache file.
    records = layout.read_manifest(phantom_dir)[:8]
    data = tmp_path / "data"
    for name in [r.path for r in records] + [r.mask_path for r in records if r.mask_path]:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(phantom_dir / name, data / name)
    cache = tmp_path / "cache" / "train"
    dataset = make_dataset(data, records, batch_size=8, cache=str(cache))
    first = np.concatenate([b[0].numpy() for b in dataset])
    assert list(cache.parent.iterdir())
    shutil.rmtree(data)
    second = np.concatenate([b[0].numpy() for b in dataset])
    np.testing.assert_array_equal(first, second)


def test_empty_records_are_rejected(phantom_dir):
    with pytest.raises(ValueError, match="at least one record"):
        make_dataset(phantom_dir, [], batch_size=4)


def test_each_weight_travels_with_its_image_through_cache_and_shuffle(phantom_dir):
    records = layout.select(layout.read_manifest(phantom_dir), "train")[:24]
    # A weight that names its image: the image's own mean brightness.
    plain = make_dataset(phantom_dir, records, batch_size=24)
    brightness = next(iter(plain))[0].numpy().mean(axis=(1, 2, 3))
    weighted = make_dataset(phantom_dir, records, batch_size=8, shuffle=True, seed=3,
                            weights=brightness.tolist())
    for _ in range(2):  # the second epoch comes from the cache, reshuffled
        for images, labels, weights in weighted:
            np.testing.assert_allclose(weights.numpy(), images.numpy().mean(axis=(1, 2, 3)),
                                       rtol=1e-6)
    with pytest.raises(ValueError, match="one weight per record"):
        make_dataset(phantom_dir, records, batch_size=8, weights=[1.0])
