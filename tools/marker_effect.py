"""How much a classifier reads the shortcut marker of `covgan data synth --shortcut` phantoms.

The ground truth an audit of a shortcut classifier is checked against: it re-renders the
held-out phantoms of a synthesised set with and without the corner marker (every other pixel
the same: the marker is drawn last, from the image's own random stream) and prints, as JSON,
the classifier's mean p(positive) on

- the negatives, plain and with the marker stamped on;
- the positives that carry the marker, as drawn and with it taken off;
- the positives without one, as drawn and with one stamped on;

and the share of negatives the marker alone turns positive (p >= 0.5). A classifier that
learned the disease barely moves; one that learned the marker calls marked negatives positive.

    python tools/marker_effect.py --data DATA --classifier runs/classifier/classifier.keras
"""

import argparse
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan.data import layout  # noqa: E402
from covgan.data.synth import render_one  # noqa: E402
from covgan.errors import CovganError  # noqa: E402


def render(seed, index, label, lesion_contrast, marker):
    """Phantom `index` of set `seed`, with or without the marker, otherwise as synthesised
    (its label is the index's own; `label` is the manifest's, checked against it)."""
    phantom = render_one(seed, index, 0.0, lesion_contrast, marker=marker)
    if phantom.label != label:
        raise CovganError(f"Phantom {index} of seed {seed} is not labelled {label}.")
    return phantom.image


def marker_effect(classifier, data_dir, split="test"):
    from covgan.models.classifier import positive_probability

    data_dir = pathlib.Path(data_dir)
    report = json.loads((data_dir / "report.json").read_text())
    if report.get("source") != "phantom":
        raise CovganError(f"{data_dir} is not a synthesised phantom set.")
    seed, contrast = report["seed"], report["lesion_contrast"]
    rows = []
    for record in layout.select(layout.read_manifest(data_dir), split):
        index = int(pathlib.Path(record.path).stem.split("_")[-1])
        rows.append((index, record.label, dict(record.extra).get("shortcut") == "1"))

    def p(images):
        batch = np.stack(images)[..., None].astype(np.float32)
        return positive_probability(classifier, batch).numpy()

    result = {"data": str(data_dir), "split": split}
    for name, label, marked in (("negatives", 0, False), ("marked_positives", 1, True),
                                ("plain_positives", 1, False)):
        chosen = [i for i, y, m in rows if y == label and m == marked]
        if not chosen:
            continue
        without = p([render(seed, i, label, contrast, False) for i in chosen])
        with_marker = p([render(seed, i, label, contrast, True) for i in chosen])
        result[name] = {"n": len(chosen),
                        "p_without_marker": round(float(without.mean()), 4),
                        "p_with_marker": round(float(with_marker.mean()), 4),
                        "called_positive_without": round(float((without >= 0.5).mean()), 4),
                        "called_positive_with": round(float((with_marker >= 0.5).mean()), 4)}
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="A `covgan data synth` folder.")
    parser.add_argument("--classifier", required=True, help="classifier.keras")
    parser.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    args = parser.parse_args(argv)
    from covgan.models.classifier import load_classifier

    print(json.dumps(marker_effect(load_classifier(args.classifier), args.data, args.split),
                     indent=2))


if __name__ == "__main__":
    main()
