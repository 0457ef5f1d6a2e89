"""Does the classifier read what the radiologists boxed? Its p(positive) with the boxes taken
out, against the same boxes moved elsewhere on the film, and an occlusion map scored against
the boxes.

The ground truth every map's pointing game is read against assumes the classifier's evidence
lies in the boxes. This asks the classifier itself, with no GAN and no gradient, on the first
--count positives with lesion masks of a prepared set's split:

- box removal: p(positive) of each film with its boxes' pixels replaced (--fill normal: by
  the same place on --donors negative films of the train split, the mean over them; --fill
  blur: by a copy of the film blurred by --sigma pixels, which on radiographs looks like an
  opacity, so it may raise p), against two controls: the same mask moved to --moves random
  places on the film (the drop an equal area causes anywhere) and mirrored left to right
  (the same place in the other lung), each overlapping the boxes by at most a tenth; per
  film, the paired difference and its bootstrap 95% interval (films whose boxes cannot be
  moved or mirrored clear of themselves count only in the first figure);
- occlusion (Zeiler & Fergus 2014): a --patch-pixel square, slid by --stride, filled the same
  way; each pixel's value is the mean drop in p over the squares that cover it. A map that
  reads the classifier directly at the square's scale, scored with the pointing game and the
  relevance mass like every map of `covgan localise`; with --against RUN/localisation.json
  (a localise run on the same films) paired with each of its maps, film by film.

With --against, each map's scores are also given apart on the films whose boxes cost more p
than the same area moved elsewhere and on the rest, beside those of a map that never looks at
the film (`lesion_prior`, the mean mask of DATA's training positives, as `covgan localise`
scores it): where the boxes the classifier reads are also where boxes usually are, a map can
point at them by pointing there. Everything is reported on all the films and on those the
classifier calls positive, with every film's figures (per_image). --pool reads several of
this tool's outputs (cross-validation folds, each run with its own --against) and prints each
map's means by reading over all their films.

    python tools/box_effect.py --classifier FILE --data DATA [--split heldout] [--count 100]
        [--against RUN/localisation.json]
    python tools/box_effect.py --pool FOLD0.json FOLD1.json ...
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan import cpu  # noqa: E402

# A moved mask may share at most this much of its area with the boxes.
MOVED_OVERLAP = 0.1


def blurred_copy(image, sigma):
    """The (H, W) film blurred by a Gaussian of `sigma` pixels."""
    import cv2

    return cv2.GaussianBlur(np.asarray(image, np.float32), (0, 0), sigma)


def with_region_filled(image, region, fill):
    """The (H, W) film with the pixels of the boolean `region` taken from `fill`."""
    return np.where(region, fill, image)


def moved_masks(mask, count, rng, tries=500):
    """Up to `count` copies of `mask` shifted as a whole to random places inside the film,
    each sharing at most MOVED_OVERLAP of its area with `mask` (fewer where none fit)."""
    mask = np.asarray(mask, bool)
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    moved = []
    for _ in range(tries):
        if len(moved) == count:
            break
        dy = rng.integers(-rows.min(), height - rows.max())
        dx = rng.integers(-cols.min(), width - cols.max())
        shifted = np.zeros_like(mask)
        shifted[rows + dy, cols + dx] = True
        if (shifted & mask).sum() <= MOVED_OVERLAP * mask.sum():
            moved.append(shifted)
    return moved


def mirrored_mask(mask):
    """[the mask flipped left to right] (the other lung of a frontal film), or [] where the
    flipped mask shares more than MOVED_OVERLAP of its area with the mask."""
    mirrored = np.asarray(mask, bool)[:, ::-1]
    return [mirrored] if (mirrored & mask).sum() <= MOVED_OVERLAP * mask.sum() else []


# The regions each film's boxes are compared with: equal areas anywhere on the film, and the
# same place in the other lung (a like-for-like control: both are lung).
CONTROLS = {"moved": lambda mask, rng, moves: moved_masks(mask, moves, rng),
            "mirrored": lambda mask, rng, moves: mirrored_mask(mask)}


def occlusion_map(probability, image, fill, patch, stride, p_image=None):
    """(H, W): the mean drop in p(positive) over the `patch`-pixel squares (slid by `stride`,
    their pixels taken from `fill`) that cover each pixel, from `p_image` (the film's own p;
    computed where not given); `probability` maps (N, H, W) films to (N,) p."""
    height, width = image.shape
    starts_y = sorted(set(range(0, height - patch + 1, stride)) | {height - patch})
    starts_x = sorted(set(range(0, width - patch + 1, stride)) | {width - patch})
    squares = [(y, x) for y in starts_y for x in starts_x]
    occluded = np.repeat(image[None], len(squares), 0)
    for n, (y, x) in enumerate(squares):
        occluded[n, y:y + patch, x:x + patch] = fill[y:y + patch, x:x + patch]
    if p_image is None:
        p_image = float(probability(image[None])[0])
    drops = p_image - probability(occluded)
    total, covered = np.zeros((height, width)), np.zeros((height, width))
    for drop, (y, x) in zip(drops, squares):
        total[y:y + patch, x:x + patch] += drop
        covered[y:y + patch, x:x + patch] += 1
    return (total / covered).astype(np.float32)


def box_effect(probability, images, masks, fills, *, moves=8, patch=16, stride=8, seed=0):
    """Per film: p as it is, with its boxes filled, with each control's regions filled (the
    mean over its regions; None where it has none), and the occlusion map's pointing game and
    relevance mass; and the (N, H, W) occlusion maps. `fills(image)` gives the films whose
    pixels replace a region (each is tried; results are their mean)."""
    from covgan.evaluation.localisation import pointing_game, relevance_mass

    rng = np.random.default_rng(seed)
    rows, maps = [], []
    for image, mask in zip(images, masks):
        controls = {name: find(mask, rng, moves) for name, find in CONTROLS.items()}
        regions = [mask, *(region for found in controls.values() for region in found)]
        p_image = float(probability(image[None])[0])
        p_filled, occlusion = [], []
        for fill in fills(image):
            p_filled.append(probability(np.stack([with_region_filled(image, region, fill)
                                                  for region in regions])))
            occlusion.append(occlusion_map(probability, image, fill, patch, stride, p_image))
        p_filled, occlusion = np.mean(p_filled, 0), np.mean(occlusion, 0)
        row = {"p": p_image, "box_share": float(mask.mean()),
               "p_boxes_filled": float(p_filled[0])}
        start = 1
        for name, found in controls.items():
            chosen = p_filled[start:start + len(found)]
            row[f"p_{name}_filled"] = float(chosen.mean()) if found else None
            start += len(found)
        row["occlusion"] = {"pointing_game": pointing_game(occlusion, mask),
                            "relevance_mass": relevance_mass(occlusion, mask)}
        rows.append(row)
        maps.append(occlusion)
    return rows, np.stack(maps)


def reading_of(row):
    """Whether the classifier reads this film's boxes: "read" where filling them costs more p
    than the same area moved elsewhere, "not_read" where not, "too_large" where the boxes
    cannot be moved clear of themselves."""
    if row["p_moved_filled"] is None:
        return "too_large"
    return "read" if row["p_moved_filled"] > row["p_boxes_filled"] else "not_read"


def figure(images, masks, maps, rows, per_group=2):
    """A BGR picture: for the first `per_group` films of each reading, the film with its boxes
    outlined and its occlusion map over it (scaled to its own maximum drop)."""
    import cv2

    from covgan.output.render import captioned, heat_overlay, to_uint8

    panels = []
    for group in ("read", "not_read", "too_large"):
        for i in [i for i, row in enumerate(rows) if reading_of(row) == group][:per_group]:
            outline, _ = cv2.findContours(masks[i].astype(np.uint8), cv2.RETR_EXTERNAL,
                                          cv2.CHAIN_APPROX_SIMPLE)
            film = cv2.cvtColor(to_uint8(images[i]), cv2.COLOR_GRAY2BGR)
            overlay = heat_overlay(images[i], np.clip(maps[i] / max(maps[i].max(), 1e-6), 0, 1))
            for tile in (film, overlay):
                cv2.drawContours(tile, outline, -1, (0, 255, 0), 1)
            row = rows[i]
            moved = "-" if row["p_moved_filled"] is None else f"{row['p_moved_filled']:.2f}"
            panels.append(captioned(
                [film, overlay],
                [f"{group.replace('_', ' ')}: p {row['p']:.2f}",
                 f"boxes filled {row['p_boxes_filled']:.2f}\nmoved filled {moved}"]))
    width = max(panel.shape[1] for panel in panels)
    return np.concatenate([np.pad(panel, ((0, 4), (0, width - panel.shape[1]), (0, 0)),
                                  constant_values=255) for panel in panels])


def summary(rows, against=None, kept=None):
    """Means and paired intervals over the films (`kept`: a mask of the films to count)."""
    from covgan.evaluation.localise import PAIRED_SCORES, paired_interval, paired_scores

    kept = np.ones(len(rows), bool) if kept is None else np.asarray(kept, bool)
    chosen = [row for row, keep in zip(rows, kept) if keep]
    result = {
        "n": len(chosen),
        "p": round(float(np.mean([r["p"] for r in chosen])), 4),
        "drop_boxes_filled": round(float(np.mean([r["p"] - r["p_boxes_filled"]
                                                  for r in chosen])), 4),
    }
    for name in CONTROLS:
        # Films whose boxes have this control: the drop of each, paired film by film.
        paired = [r for r in chosen if r[f"p_{name}_filled"] is not None]
        box_drop = np.array([r["p"] - r["p_boxes_filled"] for r in paired])
        control_drop = np.array([r["p"] - r[f"p_{name}_filled"] for r in paired])
        result[name] = {"n": len(paired)} if not paired else {
            "n": len(paired),
            "drop_boxes_filled": round(float(box_drop.mean()), 4),
            f"drop_{name}_filled": round(float(control_drop.mean()), 4),
            f"boxes_minus_{name}": [round(v, 4) for v in
                                    paired_interval(box_drop - control_drop)],
            "films_boxes_drop_more": round(float(np.mean(box_drop > control_drop)), 4)}
    result["occlusion"] = {score: round(float(np.mean([r["occlusion"][score]
                                                       for r in chosen])), 4)
                           for score in PAIRED_SCORES}
    if against is not None:
        result["maps_where_boxes_matter"] = maps_where_boxes_matter(rows, against, kept)
        occlusion = [row["occlusion"] for row in rows]
        result["occlusion_minus"] = {
            method: {"means": {score: round(float(np.mean([m[score] for m, keep
                                                           in zip(method_rows, kept) if keep])), 4)
                               for score in PAIRED_SCORES},
                     **{score: [round(v, 4) for v in interval] for score, interval
                        in paired_scores(occlusion, method_rows, kept).items()}}
            for method, method_rows in against["per_image"].items()}
    return result


def maps_where_boxes_matter(rows, against, kept):
    """Each map's mean scores on the films whose boxes, filled, cost more p than the same area
    moved elsewhere ("read": the classifier reads its boxes), on those where they cost no
    more ("not_read"), and on those whose boxes cannot be moved clear of themselves
    ("too_large"): a map that shows the classifier's evidence should point at the boxes more
    often where it reads them."""
    from covgan.evaluation.localise import PAIRED_SCORES

    groups = {group: [keep and reading_of(row) == group for row, keep in zip(rows, kept)]
              for group in ("read", "not_read", "too_large")}
    result = {group: {"n": int(sum(chosen))} for group, chosen in groups.items()}
    for method, method_rows in {**against["per_image"],
                                "occlusion": [r["occlusion"] for r in rows]}.items():
        for group, chosen in groups.items():
            picked = [m for m, keep in zip(method_rows, chosen) if keep]
            if picked:
                result[group][method] = {score: round(float(np.mean([m[score] for m in picked])),
                                                      4) for score in PAIRED_SCORES}
    return result


def pooled_readings(results: list[dict]) -> dict:
    """Each map's means by reading over the films of several of this tool's outputs, each
    group's means weighted by its films (the maps every output has)."""
    pooled = {}
    for group in ("read", "not_read", "too_large"):
        parts = [r["all"]["maps_where_boxes_matter"][group] for r in results]
        parts = [part for part in parts if part["n"]]
        if not parts:
            pooled[group] = {"n": 0}
            continue
        n = sum(part["n"] for part in parts)
        maps = [m for m in parts[0] if m != "n" and all(m in part for part in parts)]
        pooled[group] = {"n": n, **{m: {s: round(sum(part[m][s] * part["n"] for part in parts)
                                                 / n, 4)
                                        for s in ("pointing_game", "relevance_mass")}
                                    for m in maps}}
    return pooled


def pool_main(paths):
    results = []
    for path in paths:
        with open(path) as file:
            result = json.load(file)
        if "maps_where_boxes_matter" not in result.get("all", {}):
            raise SystemExit(f"error: {path} was run without --against; it has no maps to pool.")
        results.append(result)
    print(json.dumps({"pooled": paths, "n": sum(r["all"]["n"] for r in results),
                      "maps_where_boxes_matter": pooled_readings(results)}, indent=2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", nargs="+", metavar="BOX_EFFECT_JSON",
                        help="pool several outputs of this tool (run with --against) instead")
    parser.add_argument("--classifier", help="classifier.keras")
    parser.add_argument("--data", help="a prepared set with lesion masks")
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--fill", choices=["normal", "blur"], default="normal",
                        help="what replaces a removed region: the same place on --donors "
                             "negative training films, or a copy of the film blurred by "
                             "--sigma pixels")
    parser.add_argument("--donors", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=16.0)
    parser.add_argument("--moves", type=int, default=8)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--against", help="a `covgan localise` localisation.json of the same "
                                          "films, to pair the occlusion map with its maps")
    parser.add_argument("--figure", metavar="PNG",
                        help="also write the first two films of each reading with their "
                             "boxes and occlusion maps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.pool:
        return pool_main(args.pool)
    if not (args.classifier and args.data):
        parser.error("--classifier and --data are required (or --pool)")
    cpu.use_onednn()
    from covgan.data import layout
    from covgan.data.annotated import annotated_positives
    from covgan.data.pipeline import make_dataset
    from covgan.errors import CovganError
    from covgan.evaluation.lesion_prior import (
        LESION_PRIOR,
        mask_prior,
        prior_scores,
        training_masks,
    )
    from covgan.evaluation.localise import CALLED_POSITIVE
    from covgan.models.classifier import load_classifier, positive_probability

    classifier = load_classifier(args.classifier)
    try:
        films = annotated_positives(args.data, args.count, args.split)
    except CovganError as error:  # no films to score: one line, as the tool's other refusals
        raise SystemExit(f"error: {error}") from None
    chosen, images, masks = films.records, films.images[..., 0], films.masks
    if args.fill == "blur":
        def fills(image):
            return [blurred_copy(image, args.sigma)]
    else:
        negatives = [r for r in layout.select(layout.read_manifest(args.data), "train")
                     if r.label == 0]
        if len(negatives) < args.donors:
            raise SystemExit(f"error: {args.data}'s train split has {len(negatives)} "
                             f"negatives, fewer than --donors {args.donors}.")
        picked = np.random.default_rng(args.seed).choice(len(negatives), args.donors,
                                                         replace=False)
        donors = next(iter(make_dataset(args.data, [negatives[i] for i in picked],
                                        batch_size=args.donors, cache=None)))[0].numpy()[..., 0]

        def fills(image):
            return list(donors)
    against = None
    if args.against:
        with open(args.against) as file:
            against = json.load(file)
        if against["images"] != [record.path for record in chosen]:
            raise SystemExit(f"error: {args.against} scored other films than these "
                             f"{len(chosen)}; run it with the same --data, --split, --count.")
        training = training_masks(args.data, films.split)
        if training is not None and LESION_PRIOR not in against["per_image"]:
            against["per_image"][LESION_PRIOR] = prior_scores(mask_prior(training), masks)

    def probability(films):
        return np.concatenate([positive_probability(classifier, part[..., None]).numpy()
                               for part in np.array_split(films, -(-len(films) // 256))])

    rows, maps = box_effect(probability, images, masks, fills, moves=args.moves,
                            patch=args.patch, stride=args.stride, seed=args.seed)
    if args.figure:
        from covgan.output.writers import write_bgr

        write_bgr(args.figure, figure(images, masks, maps, rows))
    called = np.array([r["p"] >= CALLED_POSITIVE for r in rows])
    print(json.dumps({"classifier": args.classifier, "data": args.data, "split": args.split,
                      "fill": args.fill, **({"sigma": args.sigma} if args.fill == "blur"
                                            else {"donors": args.donors}),
                      "moves": args.moves, "patch": args.patch,
                      "stride": args.stride, "seed": args.seed,
                      "box_share": round(float(masks.mean()), 4),
                      "all": summary(rows, against),
                      "called_positive": summary(rows, against, called) if called.any()
                      else {"n": 0},
                      "images": [record.path for record in chosen], "per_image": rows},
                     indent=2))


if __name__ == "__main__":
    main()
