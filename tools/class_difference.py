"""What the two classes of a prepared set differ by on average, as the set is and with each
class weighted to the same mix of a manifest column's values (the weights of `covgan train
--balance-by` and `covgan classifier train --balance-by`).

A class-conditional GAN's critic learns the class from real films. Where a column (the view,
the site) goes with the class, the difference of the class means carries that column's own
difference too, and a GAN walk that draws "the class" draws it. This prints, for one split:

- the mean positive film minus the mean negative film, as is and balanced by --by;
- within each of the column's values, the same difference (the class effect at that value);
- each value's effect (its films minus the others', averaged over the two classes);
- for each difference, its mean absolute value and its Pearson correlation with each value's
  effect over the pixels: how much of the class difference looks like the column.

With --figure, the as-is and balanced differences and the first value's effect side by side
(mid grey 0, white up, black down, one scale for all, clipped at the 99.5th percentile of
the absolute values). No model, no TensorFlow: the prepared
PNGs only.

    python tools/class_difference.py --data DATA --by view [--split train] [--figure FIG.png]
"""

import argparse
import json
import pathlib

import numpy as np


def weighted_mean(images, weights):
    return np.tensordot(weights / weights.sum(), images, axes=1)


def class_difference(images, labels, weights=None):
    """The (weighted) mean of the positive films minus that of the negative ones."""
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, float)
    positive = labels == 1
    return (weighted_mean(images[positive], weights[positive])
            - weighted_mean(images[~positive], weights[~positive]))


def value_effects(images, labels, values):
    """{value: its films' mean minus the others', averaged over the classes that have both}."""
    effects = {}
    for value in sorted(set(values)):
        per_class = [images[(labels == y) & (values == value)].mean(0)
                     - images[(labels == y) & (values != value)].mean(0)
                     for y in (0, 1)
                     if np.any((labels == y) & (values == value))
                     and np.any((labels == y) & (values != value))]
        if per_class:
            effects[value] = np.mean(per_class, axis=0)
    return effects


def described(difference, effects):
    return {
        "mean_abs": round(float(np.abs(difference).mean()), 4),
        "mean": round(float(difference.mean()), 4),
        "correlation_with": {value: round(float(np.corrcoef(difference.ravel(),
                                                            effect.ravel())[0, 1]), 3)
                             for value, effect in effects.items()},
    }


def figure(panels, captions):
    """A BGR picture of difference images on one symmetric grey scale."""
    from covgan.output.render import captioned

    # The 99.5th percentile, so that a few extreme pixels do not flatten the rest.
    scale = max(float(np.percentile(np.abs(p), 99.5)) for p in panels) or 1.0
    tiles = [np.round(np.clip(0.5 + 0.5 * p / scale, 0, 1) * 255).astype(np.uint8)
             for p in panels]
    return captioned(tiles, [f"{c}\n(+-{scale:.2f} full scale)" for c in captions])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a prepared data folder")
    parser.add_argument("--by", required=True, metavar="COLUMN", help="a manifest column")
    parser.add_argument("--split", default="train")
    parser.add_argument("--figure", metavar="PNG")
    args = parser.parse_args(argv)
    import cv2

    from covgan.data import layout
    from covgan.evaluation.attributes import attribute_values
    from covgan.training.balance import balance_weights

    records = layout.select(layout.read_manifest(args.data), args.split)
    if not records or len({r.label for r in records}) < 2:
        raise SystemExit(f"error: {args.data}'s {args.split} split does not hold both classes.")
    weights, table = balance_weights(records, args.by, balance_classes=False)
    values = np.asarray(attribute_values(layout.column_values(records, args.by))[0], object)
    labels = np.asarray([r.label for r in records])
    images = np.stack([cv2.imread(str(pathlib.Path(args.data) / r.path), cv2.IMREAD_GRAYSCALE)
                       for r in records]).astype(np.float32) / 255.0

    effects = value_effects(images, labels, values)
    as_is = class_difference(images, labels)
    balanced = class_difference(images, labels, weights)
    result = {
        "data": args.data, "split": args.split, "n": len(records), "column": args.by,
        "films": {str(y): {v: int(np.sum((labels == y) & (values == v)))
                           for v in sorted(set(values))} for y in (0, 1)},
        "as_is": described(as_is, effects),
        "balanced": described(balanced, effects),
        "within": {v: described(class_difference(images[values == v], labels[values == v]),
                                effects)
                   for v in sorted(set(values)) if len(set(labels[values == v])) == 2},
        "value_effect": {v: described(e, effects) for v, e in effects.items()},
        "weights": table,
    }
    if args.figure:
        first = sorted(effects)[0]
        picture = figure([as_is, balanced, effects[first]],
                         ["positive - negative, as is", f"balanced by {args.by}",
                          f"{args.by} {first} - the rest"])
        if not cv2.imwrite(args.figure, picture):
            raise SystemExit(f"error: could not write {args.figure}")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
