"""Does blurring a map help it find the boxes? Every registered map of the held-out
positives, scored against their lesion masks as is and after a Gaussian blur of each width.

Explains the first --count positives with lesion masks of a prepared set's split once
(`covgan explain`'s defaults, --seed) and prints, as JSON, each map's mean pointing game and
relevance mass at every --sigmas width (pixels; 0: the map as is). A blur merges a noisy
map's speckle into regions: it asks whether a map's peak misses the box because of noise
or because it points elsewhere, and whether the default map gains from it more than the
baselines do (a lever for `covgan localise` only if it does).

    python tools/map_smoothing.py --run RUN --data DATA [--split heldout] [--count 100]
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan import cpu  # noqa: E402


def blurred(maps, sigma):
    """The (N, H, W) maps blurred by a Gaussian of `sigma` pixels (0: as they are)."""
    import cv2

    if not sigma:
        return maps
    return np.stack([cv2.GaussianBlur(m, (0, 0), sigma) for m in maps])


def scores(maps_by_name, masks, sigmas):
    """{map: {sigma: {pointing_game, relevance_mass}}} over the images."""
    from covgan.evaluation.localisation import pointing_game, relevance_mass

    result = {}
    for name, maps in maps_by_name.items():
        maps = np.asarray(maps, np.float32).reshape(len(masks), *masks.shape[1:])
        result[name] = {}
        for sigma in sigmas:
            smooth = blurred(maps, sigma)
            result[name][str(sigma)] = {
                "pointing_game": round(float(np.mean([pointing_game(m, k)
                                                      for m, k in zip(smooth, masks)])), 4),
                "relevance_mass": round(float(np.mean([relevance_mass(m, k)
                                                       for m, k in zip(smooth, masks)])), 4)}
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--sigmas", default="0,2,4,8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--invert-steps", type=int, default=None,
                        help="the inversion's Adam steps (default: explain's)")
    args = parser.parse_args()
    cpu.use_onednn()
    from covgan.data.annotated import annotated_positives
    from covgan.explain.invert import settings_for
    from covgan.explain.maps import map_keys
    from covgan.explain.pipeline import explain
    from covgan.explain.settings import InversionSettings, tuning_settings
    from covgan.models.generator import residual_branch_layers
    from covgan.training.runs import load_run

    run = load_run(args.run)
    films = annotated_positives(args.data, args.count, args.split)
    images, masks = films.images, films.masks
    settings = InversionSettings() if args.invert_steps is None else InversionSettings(
        steps=args.invert_steps)
    result = explain(run.generator, run.classifier, images,
                     settings=settings_for(run.generator, settings), seed=args.seed,
                     tuning=tuning_settings(bool(residual_branch_layers(run.generator))))
    sigmas = [float(s) if "." in s else int(s) for s in args.sigmas.split(",")]
    print(json.dumps({"run": args.run, "data": args.data, "split": args.split,
                      "n": len(images), "box_share": round(float(masks.mean()), 4),
                      "seed": args.seed,
                      "maps": scores({name: result[key] for name, key in map_keys().items()},
                                     masks, sigmas)}, indent=2))


if __name__ == "__main__":
    main()
