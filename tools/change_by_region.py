"""Where a GAN run's walk changes the image, and which of those changes the classifier reads.

For `--count` random codes (z1, z2 ~ N(0, I)) it compares G(z1, z2) with its negative
counterpart G(z1, 0): the mean |change| along the image's edges against its interior, the
share of samples whose largest change lies in the outer band, and the classifier's
p(positive) when only the band's change, or only the interior's, is put on the counterpart.
A map whose maximum sits in the band while the classifier reads the interior scores badly
on the pointing game for a reason of G's, not of the classifier's.

It also measures G's stripes: the period-2 energy of the drawn images (the mean
|x[i] - (x[i-1] + x[i+1]) / 2| along rows and along columns) against the same of the run's
real training images.

    python tools/change_by_region.py --run runs/gan_cg10 --count 256 --band 4
"""

import argparse
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan.data import layout  # noqa: E402
from covgan.data.images import load_inputs  # noqa: E402
from covgan.models.classifier import positive_probability  # noqa: E402
from covgan.models.generator import code_sizes  # noqa: E402
from covgan.training.runs import load_run  # noqa: E402


def edge_profile(mean_change, band):
    """Mean |change| of the first and last `band` columns and rows, and the interior's."""
    columns, rows = mean_change.mean(axis=0), mean_change.mean(axis=1)
    interior = float(np.median(mean_change[2 * band:-2 * band, 2 * band:-2 * band]))
    def rounded(values):
        return [round(float(v), 4) for v in values]

    return {
        "left_columns": rounded(columns[:band]), "right_columns": rounded(columns[-band:]),
        "top_rows": rounded(rows[:band]), "bottom_rows": rounded(rows[-band:]),
        "interior_median": round(interior, 4),
    }


def period2_energy(images):
    """{"along_rows": vertical stripes, "along_columns": horizontal ones}: the mean distance of
    each pixel from the mean of its two neighbours, for (N, H, W) images."""
    along_rows = np.abs(images[:, :, 1:-1] - (images[:, :, :-2] + images[:, :, 2:]) / 2)
    along_columns = np.abs(images[:, 1:-1] - (images[:, :-2] + images[:, 2:]) / 2)
    return {"along_rows": round(float(along_rows.mean()), 4),
            "along_columns": round(float(along_columns.mean()), 4)}


def real_images(data_dir, count):
    """Up to `count` training images of a prepared folder, (N, H, W)."""
    records = layout.select(layout.read_manifest(data_dir), "train")[:count]
    images, _ = load_inputs([pathlib.Path(data_dir) / r.path for r in records])
    return images[..., 0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--band", type=int, default=4, help="outer band width in pixels")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    run = load_run(args.run)
    generator, classifier = run.generator, run.classifier
    d1, d2 = code_sizes(generator)
    rng = np.random.default_rng(args.seed)
    z1 = rng.standard_normal((args.count, d1)).astype("float32")
    z2 = rng.standard_normal((args.count, d2)).astype("float32")
    drawn = np.asarray(generator([z1, z2], training=False))
    counterpart = np.asarray(generator([z1, np.zeros_like(z2)], training=False))
    change = drawn - counterpart
    size = change.shape[1]
    in_band = np.zeros((size, size), bool)
    in_band[:args.band], in_band[-args.band:] = True, True
    in_band[:, :args.band], in_band[:, -args.band:] = True, True
    peaks = np.abs(change[..., 0]).reshape(args.count, -1).argmax(axis=1)

    def p(images):
        return round(float(np.mean(positive_probability(classifier, np.clip(images, 0, 1)))), 3)

    band_only = change * in_band[None, :, :, None]
    print(json.dumps({
        "run": args.run, "count": args.count, "band_pixels": args.band, "seed": args.seed,
        "mean_abs_change": edge_profile(np.abs(change[..., 0]).mean(axis=0), args.band),
        "share_of_largest_changes_in_band": round(float(in_band.reshape(-1)[peaks].mean()), 3),
        "band_share_of_area": round(float(in_band.mean()), 3),
        "period2_energy": {
            "drawn": period2_energy(drawn[..., 0]),
            "real": period2_energy(real_images(run.config["data"], args.count)),
        },
        "p_positive": {
            "counterpart": p(counterpart),
            "drawn": p(drawn),
            "counterpart_plus_band_change": p(counterpart + band_only),
            "counterpart_plus_interior_change": p(counterpart + change - band_only),
        },
    }, indent=2))


if __name__ == "__main__":
    main()
