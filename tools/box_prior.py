"""How well does a map score that never looks at the film? The mean of the training split's
lesion masks (where lesions usually are in this set) as one fixed map, scored against the
held-out boxes with the pointing game and the relevance mass, and paired film by film with a
localise run's maps; and every map over the films whose box the prior's peak misses.

`covgan localise` scores this prior itself (the map "lesion_prior" and its "off_prior"
films); this tool scores it against localisation.json files written before it did, and pools
cross-validation folds. Give one DATA and its localise run's localisation.json (the same
films: --split and --count as localise was given), or several pairs (`covgan data prepare
--fold K`): their films are pooled, each fold scored with its own training split's prior.
Prints JSON.

    python tools/box_prior.py DATA RUN/localisation.json [DATA2 RUN2/localisation.json ...]
        [--maps film_gradients gradient integrated_gradients gradcam]
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan.errors import CovganError  # noqa: E402
from covgan.evaluation.lesion_prior import (  # noqa: E402
    mask_prior,
    missed,
    prior_scores,
    training_masks,
)
from covgan.evaluation.localise import PAIRED_SCORES, paired_scores  # noqa: E402

DEFAULT_MAPS = ("film_gradients", "gradient", "integrated_gradients", "gradcam")


def prior_rows(train_masks: np.ndarray, masks: np.ndarray) -> list[dict]:
    """Per held-out film, the scores of the training masks' mean (one map for every film), and
    the film's mask area share (what a flat map scores on both: chance)."""
    rows = prior_scores(mask_prior(train_masks), masks)
    return [{**row, "area_share": float(np.mean(mask))} for row, mask in zip(rows, masks)]


def off_prior_films(rows: list[dict], localisation_rows: dict, maps) -> dict:
    """Over the films whose box the prior's peak misses (`lesion_prior.missed`): each map's
    means, and the first map minus each other, film by film."""
    kept = missed(rows)
    if not kept.any():
        return {"n": 0}
    first, *others = maps
    mean = lambda rs, s: round(float(np.mean([r[s] for r, k in zip(rs, kept) if k])), 4)  # noqa: E731
    return {"n": int(kept.sum()), "area_share": mean(rows, "area_share"),
            "means": {m: {s: mean(localisation_rows[m], s) for s in PAIRED_SCORES} for m in maps},
            f"{first}_minus": {m: {s: [round(x, 3) for x in interval] for s, interval in
                                   paired_scores(localisation_rows[first], localisation_rows[m],
                                                 kept).items()}
                               for m in others}}


def against_prior(rows: list[dict], localisation_rows: dict, maps) -> dict:
    """The prior's mean scores and each map's paired interval minus it, film by film."""
    missing = [m for m in maps if m not in localisation_rows]
    if missing:
        raise SystemExit(f"error: no map {missing[0]!r} in the localisation.json; it has "
                         f"{sorted(localisation_rows)}")
    mean = lambda rs, s: round(float(np.mean([r[s] for r in rs])), 4)  # noqa: E731
    return {
        "n": len(rows),
        "area_share": mean(rows, "area_share"),
        "prior": {s: mean(rows, s) for s in PAIRED_SCORES},
        "means": {m: {s: mean(localisation_rows[m], s) for s in PAIRED_SCORES} for m in maps},
        "minus_prior": {m: {s: [round(x, 3) for x in interval]
                            for s, interval in paired_scores(localisation_rows[m], rows).items()}
                        for m in maps},
        "off_prior": off_prior_films(rows, localisation_rows, maps),
    }


def fold_rows(data: str, localisation: dict) -> list[dict]:
    """The prior's rows on the films a localisation.json scored, from `data`'s train split."""
    from covgan.data.annotated import annotated_positives

    try:
        held = annotated_positives(data, localisation["n"], localisation.get("split"))
        train = training_masks(data, held.split)
    except CovganError as error:
        raise SystemExit(f"error: {error}") from None
    if [record.path for record in held.records] != localisation["images"]:
        raise SystemExit(f"error: {data}'s {held.split} positives are not the films the "
                         "localisation.json scored; give the DATA it was localised on.")
    if train is None:
        raise SystemExit(f"error: {data} has no training masks apart from the films scored "
                         f"(split {held.split!r}).")
    return prior_rows(train, held.masks)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", metavar="DATA LOCALISATION_JSON",
                        help="a prepared data folder and its localise run's localisation.json; "
                             "more pairs pool their films")
    parser.add_argument("--maps", nargs="+", default=list(DEFAULT_MAPS),
                        help="the maps paired with the prior (default: %(default)s)")
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error("give DATA and LOCALISATION_JSON in pairs")
    rows, scored, folds = [], {m: [] for m in args.maps}, []
    for data, path in zip(args.pairs[::2], args.pairs[1::2]):
        with open(path) as handle:
            localisation = json.load(handle)
        these = fold_rows(data, localisation)
        result = against_prior(these, localisation["per_image"], args.maps)
        folds.append({"data": data, "localisation": path, **result})
        rows += these
        for m in args.maps:
            scored[m] += localisation["per_image"][m]
    print(json.dumps({**against_prior(rows, scored, args.maps), "folds": folds}, indent=2))


if __name__ == "__main__":
    main()
