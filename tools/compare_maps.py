"""One map against others in a saved localisation.json, film by film: each map's pointing game
and relevance mass and the paired 95% interval of the first minus each other (as `covgan
localise` computes its own intervals, bootstrap seed 0). For comparisons a run did not print,
e.g. two maps of the walk in a run made before localise paired them. With --against OTHER
(a localisation.json of the same films and seeds, from another GAN or classifier), each of
the maps named is also paired with the same map of OTHER: this run's minus OTHER's. With
--pool MORE (a localisation.json of other films, at the same seeds: another cross-validation
fold's run, `covgan data prepare --fold K`), the films of every file are scored as one set,
each film with its own fold's classifier and GAN. With --called-positive, only the films the
classifier calls positive (p(positive) of the film >= 0.5, as localise's own called_positive
figures) are scored, in every file (with --against, the first file's films). Prints JSON.

    python tools/compare_maps.py RUN/localisation.json film_gradients latent_gradients gradient
    python tools/compare_maps.py RUN/localisation.json film_gradients gradient \
        --against OTHER/localisation.json
    python tools/compare_maps.py FOLD0/localisation.json film_gradients gradient \
        --pool FOLD1/localisation.json --called-positive
"""

import argparse
import json

from covgan.evaluation.localise import CALLED_POSITIVE, PAIRED_SCORES, paired_scores


def rounded_intervals(rows, other_rows) -> dict:
    """{score: [low, high]} of rows minus other_rows, film by film, to three places."""
    return {s: [round(x, 3) for x in interval]
            for s, interval in paired_scores(rows, other_rows).items()}


def compare_maps(scores: dict, method: str, others: list[str]) -> dict:
    """{"n", "means": {map: {score: mean}}, "minus": {other: {score: [low, high]}}}."""
    rows = scores["per_image"]
    missing = [m for m in (method, *others) if m not in rows]
    if missing:
        raise SystemExit(f"error: no map {missing[0]!r} in this localisation.json; it has "
                         f"{sorted(rows)}")
    return {
        "n": len(rows[method]),
        "means": {m: {s: round(float(sum(r[s] for r in rows[m]) / len(rows[m])), 4)
                      for s in PAIRED_SCORES} for m in (method, *others)},
        "minus": {other: rounded_intervals(rows[method], rows[other]) for other in others},
    }


def pooled(parts: list[dict]) -> dict:
    """One localisation of the films of every part (other films each, the same seeds): the
    maps every part has, their per-film rows one part after another."""
    images = [image for part in parts for image in part["images"]]
    if len(set(images)) < len(images):
        raise SystemExit("error: the pooled localisation.json files share films; pool runs "
                         "that held out different films (covgan data prepare --fold K).")
    if any(part["seeds"] != parts[0]["seeds"] for part in parts):
        raise SystemExit("error: the pooled localisation.json files differ in seeds.")
    maps = set.intersection(*(set(part["per_image"]) for part in parts))
    return {"images": images, "seeds": parts[0]["seeds"],
            "per_image": {m: [row for part in parts for row in part["per_image"][m]]
                          for m in sorted(maps)}}


def called_positive(scores: dict) -> list[bool]:
    """Whether the classifier calls each film positive (its p(positive) of the film itself)."""
    films = scores.get("inversion", {}).get("per_image")
    if films is None or len(films) != len(scores["images"]):
        raise SystemExit("error: this localisation.json has no p(positive) per film "
                         "(inversion.per_image); localise it again to use --called-positive.")
    return [film["p_image"] >= CALLED_POSITIVE for film in films]


def kept_films(scores: dict, keep: list[bool]) -> dict:
    """`scores` with only the films `keep` marks: its images and per-film rows."""
    if not any(keep):
        raise SystemExit("error: the classifier calls none of these films positive.")
    return {**scores, "images": [image for image, k in zip(scores["images"], keep) if k],
            "per_image": {m: [row for row, k in zip(rows, keep) if k]
                          for m, rows in scores["per_image"].items()}}


def check_same_films(scores: dict, other: dict) -> None:
    """Refuses two localisation.json files that did not score the same films and seeds."""
    for key in ("images", "seeds"):
        if scores.get(key) != other.get(key):
            raise SystemExit(f"error: the two localisation.json files differ in {key}; pair "
                             "runs scored on the same films and seeds.")


def compare_runs(scores: dict, other: dict, maps: list[str]) -> dict:
    """Each map of `scores` against the same map of `other`, on the same films and seeds."""
    check_same_films(scores, other)
    missing = [m for m in maps if m not in other["per_image"]]
    if missing:
        raise SystemExit(f"error: no map {missing[0]!r} in the --against localisation.json")
    return {
        "means": compare_maps(other, maps[0], maps[1:])["means"],
        "minus": {m: rounded_intervals(scores["per_image"][m], other["per_image"][m])
                  for m in maps},
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("localisation", help="a localisation.json (covgan localise)")
    parser.add_argument("method", help="the map compared")
    parser.add_argument("others", nargs="+", help="the maps it is compared with")
    parser.add_argument("--against", metavar="LOCALISATION_JSON",
                        help="another run's localisation.json of the same films and seeds")
    parser.add_argument("--pool", metavar="LOCALISATION_JSON", action="append", default=[],
                        help="another fold's localisation.json (other films, the same seeds), "
                             "scored with the first as one set; give it once per fold")
    parser.add_argument("--called-positive", action="store_true",
                        help=f"score only the films the classifier calls positive "
                             f"(p >= {CALLED_POSITIVE})")
    args = parser.parse_args(argv)
    if args.pool and args.against:
        parser.error("--against pairs one run's films; it does not take --pool")
    paths = (args.localisation, *args.pool, *([args.against] if args.against else []))
    parts = []
    for path in paths:
        with open(path) as handle:
            parts.append(json.load(handle))
    other = parts.pop() if args.against else None
    if args.called_positive:
        if other is not None:  # the first file's films in both, so that they still pair
            check_same_films(parts[0], other)
            other = kept_films(other, called_positive(parts[0]))
        parts = [kept_films(part, called_positive(part)) for part in parts]
    scores = pooled(parts) if args.pool else parts[0]
    result = {**compare_maps(scores, args.method, args.others),
              "called_positive": args.called_positive}
    if args.pool:  # each fold's own figures beside the pooled ones
        result["folds"] = [{"localisation": path,
                            **compare_maps(part, args.method, args.others)}
                           for path, part in zip(paths, parts)]
    if other is not None:
        result["against"] = {"localisation": args.against,
                             **compare_runs(scores, other, [args.method, *args.others])}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
