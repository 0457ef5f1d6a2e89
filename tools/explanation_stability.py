"""How much of an explanation is fixed by the radiograph, and how much by rounding.

Explains the first --count positives of a prepared set's split three ways with `covgan
explain`'s defaults and the same seed:

- as is (the reference);
- with every pixel moved by Gaussian noise of standard deviation --noise (1e-6: far below
  one grey level, 1/255), which changes nothing a reader or a classifier could see;
- through the exported explain signature's graph (tools run it in process, no server), once
  per --convolution.

and prints, as JSON, per comparison: how far the inversion's codes moved, the SSIM and the
trust verdicts, and for each walk map the correlation with the reference map and the distance
between their peaks, per image and summarised. Where a 1e-6 nudge already moves the maps as
much as the served graph does, the served explanation differs from the command line's only as
two runs of the command line do.

    python tools/explanation_stability.py --run RUN --data DATA [--count 8] [--split test]
"""

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan import cpu  # noqa: E402

WALK_KEYS = ("film_gradients", "latent_gradients", "traversal_map")


def compare(reference, other):
    """The other explanation against the reference, per image and summarised."""
    per_image = []
    for i in range(len(reference["z1"])):
        row = {"z1_moved": float(np.abs(other["z1"][i] - reference["z1"][i]).max()),
               "ssim": [float(reference["ssim"][i]), float(other["ssim"][i])],
               "trusted": [bool(reference["trusted"][i]), bool(other["trusted"][i])]}
        for key in WALK_KEYS:
            a, b = reference[key][i], other[key][i]
            peak_a = np.unravel_index(np.argmax(a), a.shape)
            peak_b = np.unravel_index(np.argmax(b), b.shape)
            row[key] = {"correlation": float(np.corrcoef(a.ravel(), b.ravel())[0, 1]),
                        "peak_distance_px": float(np.hypot(peak_a[0] - peak_b[0],
                                                           peak_a[1] - peak_b[1]))}
        per_image.append(row)
    summary = {"trust_verdicts_equal": sum(r["trusted"][0] == r["trusted"][1]
                                           for r in per_image),
               "n": len(per_image)}
    for key in WALK_KEYS:
        correlations = [r[key]["correlation"] for r in per_image]
        distances = [r[key]["peak_distance_px"] for r in per_image]
        summary[key] = {"median_correlation": round(float(np.median(correlations)), 3),
                        "min_correlation": round(float(np.min(correlations)), 3),
                        "median_peak_distance_px": round(float(np.median(distances)), 1),
                        "peaks_within_8px": int(np.sum(np.asarray(distances) <= 8))}
    return {"summary": summary, "per_image": per_image}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--noise", type=float, default=1e-6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--convolution", action="append", choices=("grouped", "patches"),
                        default=None, help="Served graph's tuning convolution (repeatable; "
                                           "default: both).")
    args = parser.parse_args()
    cpu.use_onednn()
    import tensorflow as tf

    from covgan.api import read_images
    from covgan.data import layout
    from covgan.explain.invert import InversionSettings, settings_for
    from covgan.explain.pipeline import explain
    from covgan.explain.settings import tuning_settings
    from covgan.export.settings import ServingSettings
    from covgan.export.signatures import generator_signatures, served_tuning
    from covgan.models.generator import residual_branch_layers
    from covgan.training.runs import load_run

    run = load_run(args.run)
    data = pathlib.Path(args.data)
    chosen = [r for r in layout.read_manifest(data) if r.label and r.split == args.split]
    images = read_images([str(data / r.path) for r in chosen[: args.count]])
    settings = settings_for(run.generator, InversionSettings())
    tuning = tuning_settings(bool(residual_branch_layers(run.generator)))

    def explained(pixels):
        return explain(run.generator, run.classifier, pixels, settings=settings,
                       seed=args.seed, tuning=tuning)

    started = time.perf_counter()
    reference = explained(images)
    noise = np.random.default_rng(args.seed).standard_normal(images.shape).astype("float32")
    nudged = np.clip(images + np.float32(args.noise) * noise, 0.0, 1.0)
    result = {"run": args.run, "data": args.data, "split": args.split, "n": len(images),
              "tuning": tuning.__dict__, "noise": args.noise,
              "nudged": compare(reference, explained(nudged))}
    for convolution in args.convolution or ["grouped", "patches"]:
        serving = ServingSettings(inversion=settings, seed=args.seed,
                                  tuning_convolution=convolution)
        assert served_tuning(run.generator, serving) == tuning
        signature = generator_signatures(run.generator, run.classifier, serving)["explain"]
        served = {k: v.numpy() for k, v in signature(images=tf.constant(images)).items()}
        result[f"served_{convolution}"] = compare(reference, served)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
