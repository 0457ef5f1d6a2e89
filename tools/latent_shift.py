"""Latent Shift (Cohen et al. 2021, torchxrayvision's Gifsplanation) through the run's own GAN,
against the paper's walk, every walk scored against the lesion masks.

Latent Shift walks a code along the classifier's gradient: z - a * grad_z score / |grad_z
score|, from a = 0 (the image's code) to the first length at which p(positive) falls below
--target. Here the code is the inversion's (z1, z2), so each walk starts from the same
inversion and only the direction and the length differ. Four walks per film, each drawn
by the run's G as covgan's walk is (DEFAULT_STEPS + 1 frames from the counterpart to the
image), each read through the default map (the change weighted by the classifier's gradient
along the walk carried onto the film) and the traversal's |difference|:

- paper: z2 -> 0 (covgan's walk, the paper's);
- latent_shift: Latent Shift of both codes;
- latent_shift_z2: Latent Shift of z2 alone (z1 kept: the patient's anatomy);
- paper_stopped: the paper's walk from the first a z2 (a = 1, 0.95, ..., 0) at which p falls
  below --target: the part of the walk past a negative reading left out.

The inversion is untuned (pivotal tuning draws each film's own copy of G; these walks need
the one G), so the paper's figures are those of `covgan localise --tune-steps 0`. Prints
JSON: per walk, the pointing game and relevance mass (each film's mean over --seeds), the
paired 95% intervals against the input gradient and against the paper's walk's default
map, the share of negative counterparts and the median length walked (a fraction of the norm
of the codes shifted: of z2 for all but latent_shift, the paper's 1); and the cosine between
-grad_z2 and -z2 (1: Latent Shift of z2 walks the paper's line).

    python tools/latent_shift.py --run RUN --data DATA [--split heldout] [--count 100] [--seeds 3]

With --localise OUT, the whole of `covgan localise` at its defaults (tuning included: each
tuned film's walk through its own G) runs with its walk replaced by Latent Shift of z2,
stopped at --target, writes localisation.json's content to OUT and prints each map's scores
and, with --against RUN/localisation.json (`covgan localise`'s, the paper's walk, the same
films and seeds), the paired 95% intervals of each map of the shifted walk minus the same
map there:

    python tools/latent_shift.py --run RUN --data DATA --seeds 3 --localise OUT.json \
        --against RUN/localisation.json
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from covgan import cpu  # noqa: E402

WALKS = ("paper", "latent_shift", "latent_shift_z2", "paper_stopped")
# Lengths tried, as fractions of the code's norm: Latent Shift's own search stops at the
# first one whose p falls below the target.
SHIFT_FRACTIONS = np.linspace(0.05, 2.0, 40, dtype=np.float32)
STOP_FRACTIONS = np.linspace(1.0, 0.0, 21, dtype=np.float32)


def first_below(probabilities, target: float):
    """Per row of (N, K) p along increasing lengths, the index of the first below `target`,
    or of the lowest p where none is (the nearest the search got). Graph-safe."""
    import tensorflow as tf

    below = tf.convert_to_tensor(probabilities) < target
    return tf.where(tf.reduce_any(below, 1),
                    tf.argmax(tf.cast(below, tf.int32), 1, output_type=tf.int32),
                    tf.argmin(probabilities, 1, output_type=tf.int32))


def shift_search(generator, classifier, z1, z2, u1, u2, size, target):
    """Latent Shift's search from (z1, z2) along the unit direction (u1, u2), at
    SHIFT_FRACTIONS of `size` (N, 1): the codes at the first length whose p falls below
    `target` (or at the lowest p), and that length as a fraction of `size`. Graph-safe."""
    import tensorflow as tf

    from covgan.models.classifier import positive_probability

    fractions = tf.constant(SHIFT_FRACTIONS)
    rows, tried = tf.shape(z2)[0], len(SHIFT_FRACTIONS)
    lengths = fractions[None, :, None] * size[:, :, None]  # (N, K, 1)
    tried1 = tf.reshape(z1[:, None] + lengths * u1[:, None], (-1, tf.shape(z1)[1]))
    tried2 = tf.reshape(z2[:, None] + lengths * u2[:, None], (-1, tf.shape(z2)[1]))
    found = tf.reshape(positive_probability(classifier, generator([tried1, tried2],
                                                                  training=False)),
                       (rows, tried))
    fraction = tf.gather(fractions, first_below(found, target))[:, None]
    return z1 + fraction * size * u1, z2 + fraction * size * u2, fraction[:, 0]


def codes_along(start: np.ndarray, end: np.ndarray, steps: int) -> list[np.ndarray]:
    """steps + 1 codes on the line from `start` (the counterpart) to `end` (the image)."""
    return [start + (end - start) * n / steps for n in range(steps + 1)]


def walks_for(generator, classifier, z1, z2, *, target, steps):
    """{walk: (frames (N, steps + 1, H, W, 1), length used (N,))} for the four walks."""
    import tensorflow as tf

    from covgan.explain.class_score import POSITIVE, score_model
    from covgan.models.classifier import positive_probability

    scorer = score_model(classifier)

    def p(a, b):
        return np.asarray(positive_probability(classifier, generator([a, b], training=False)))

    with tf.GradientTape() as tape:
        codes = [tf.constant(z1), tf.constant(z2)]
        tape.watch(codes)
        _, score, _ = scorer(generator(codes, training=False), POSITIVE)
    g1, g2 = (g.numpy() for g in tape.gradient(score, codes))

    def shifted(d1, d2, size):
        """Latent Shift along the unit direction -(d1, d2), searched up to twice `size` (N, 1),
        the norm of the codes it shifts: the search's codes and length (a fraction of it),
        16 films at a time (each tries every length at once)."""
        norm = np.sqrt((d1**2).sum(1, keepdims=True) + (d2**2).sum(1, keepdims=True))
        u1, u2 = -d1 / norm, -d2 / norm
        parts = [shift_search(generator, classifier, z1[i : i + 16], z2[i : i + 16],
                              u1[i : i + 16], u2[i : i + 16], size[i : i + 16], target)
                 for i in range(0, len(z1), 16)]
        s1, s2, fraction = (np.concatenate([np.asarray(part[k]) for part in parts])
                            for k in range(3))
        return (s1, s2), fraction

    size2 = np.linalg.norm(z2, axis=1, keepdims=True)
    size = np.sqrt(size2**2 + (z1**2).sum(1, keepdims=True))
    starts = {"paper": ((z1, 0 * z2), np.ones(len(z1), np.float32)),
              "latent_shift": shifted(g1, g2, size),
              "latent_shift_z2": shifted(0 * g1, g2, size2)}
    along = np.stack([p(z1, f * z2) for f in STOP_FRACTIONS], 1)
    kept = STOP_FRACTIONS[np.asarray(first_below(along, target))][:, None]
    starts["paper_stopped"] = ((z1, kept * z2), 1.0 - kept[:, 0])
    walks = {}
    for name, ((s1, s2), length) in starts.items():
        frames = [np.asarray(generator([a, b], training=False))
                  for a, b in zip(codes_along(s1, z1, steps), codes_along(s2, z2, steps))]
        walks[name] = (np.stack(frames, 1), length)
    cosine = (g2 * z2).sum(1) / np.linalg.norm(g2, axis=1) / np.linalg.norm(z2, axis=1)
    return walks, cosine


def latent_shift_z2_walk(generator, classifier, z1, z2, *, steps, extrapolate=0, target=0.1,
                         scorer=None):
    """Latent Shift of z2 stopped at `target`, in the place of `traverse_to_image` (its
    arguments and returns: frames (B, steps + 1, H, W, 1) from the shifted code to z2, and
    their p). Graph-safe, so a tuned film's compiled walk takes it too."""
    import tensorflow as tf

    from covgan.explain.class_score import POSITIVE
    from covgan.models.classifier import positive_probability

    if extrapolate:
        raise SystemExit("error: the shifted walk does not extrapolate")
    z1, z2 = tf.convert_to_tensor(z1, tf.float32), tf.convert_to_tensor(z2, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(z2)
        _, score, _ = scorer(generator([z1, z2], training=False), POSITIVE)
    gradient = tape.gradient(score, z2)
    unit = -gradient / (tf.norm(gradient, axis=1, keepdims=True) + 1e-12)
    _, start, _ = shift_search(generator, classifier, z1, z2, tf.zeros_like(z1), unit,
                               tf.norm(z2, axis=1, keepdims=True), target)
    rows, width = tf.shape(z2)[0], tf.shape(z2)[1]
    along = tf.range(steps + 1, dtype=tf.float32) / steps
    codes = start[:, None] + along[None, :, None] * (z2 - start)[:, None]
    frames = generator([tf.repeat(z1, steps + 1, axis=0), tf.reshape(codes, (-1, width))],
                       training=False)
    return (tf.reshape(frames, (rows, steps + 1, *frames.shape[1:])),
            tf.reshape(positive_probability(classifier, frames), (rows, steps + 1)))


def localise_shifted(run, images, masks, args):
    """`covgan localise` at its defaults with the walk replaced (see the module docstring)."""
    import functools

    import keras

    from covgan.evaluation import localise
    from covgan.explain import pipeline
    from covgan.explain.class_score import score_model
    from covgan.explain.invert import settings_for
    from covgan.explain.settings import InversionSettings, tuning_settings
    from covgan.models.generator import residual_branch_layers
    from covgan.training.runs import encoder_for

    pipeline.traverse_to_image = functools.partial(
        latent_shift_z2_walk, target=args.target, scorer=score_model(run.classifier))
    settings = settings_for(run.generator, InversionSettings())
    keras.utils.set_random_seed(0)  # as `covgan localise --seed 0`
    return localise.score_localisation(
        run.generator, run.classifier, images, masks, settings=settings,
        seeds=tuple(range(args.seeds)), curves=False,
        encoder=encoder_for(run, settings),
        tuning=tuning_settings(bool(residual_branch_layers(run.generator))))


def shifted_summary(scores, chosen, args):
    """Writes the shifted walk's localisation to args.localise; returns each map's pointing
    game and relevance mass and, against args.against, the paired intervals."""
    from covgan.evaluation.localise import PAIRED_SCORES, paired_scores
    from covgan.io import write_json

    scores["images"] = [str(r.path) for r in chosen]
    write_json(args.localise, scores)
    summary = {"n": scores["n"], "seeds": scores["seeds"], "target": args.target,
               "maps": {m: {s: round(v[s], 4) for s in PAIRED_SCORES}
                        for m, v in scores["methods"].items()},
               "trusted_fraction": scores["inversion"]["trusted_fraction"],
               "median_ssim": scores["inversion"]["median_ssim"],
               "counterpart_negative_fraction":
                   scores["inversion"]["counterpart_negative_fraction"]}
    if args.against:
        with open(args.against) as handle:
            paper = json.load(handle)
        if paper["images"] != scores["images"] or paper["seeds"] != scores["seeds"]:
            raise SystemExit("error: --against scored other films or seeds")
        summary["minus_paper"] = {
            m: {s: [round(x, 3) for x in v] for s, v in
                paired_scores(scores["per_image"][m], paper["per_image"][m]).items()}
            for m in scores["per_image"] if m in paper["per_image"]}
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.1,
                        help="Latent Shift's stop: p(positive) below this")
    parser.add_argument("--localise", metavar="OUT",
                        help="run covgan localise with Latent Shift of z2 as the walk")
    parser.add_argument("--against", metavar="LOCALISATION_JSON",
                        help="with --localise: covgan localise's, to pair each map with")
    args = parser.parse_args()
    if args.against and not args.localise:
        parser.error("--against pairs a --localise run; give --localise OUT too")
    cpu.use_onednn()
    from covgan.data.annotated import annotated_positives
    from covgan.data.catalog import resolve_data
    from covgan.evaluation.localisation import localisation_scores
    from covgan.evaluation.localise import PAIRED_SCORES, paired_scores
    from covgan.explain.invert import settings_for
    from covgan.explain.maps import map_named
    from covgan.explain.pipeline import explain
    from covgan.explain.settings import (
        DEFAULT_MAP,
        DEFAULT_STEPS,
        InversionSettings,
        TuningSettings,
    )
    from covgan.models.classifier import positive_probability
    from covgan.training.runs import load_run

    run = load_run(args.run)
    data_dir = resolve_data(args.data)  # a folder, or a built-in name such as "phantom"
    films = annotated_positives(data_dir, args.count, args.split)
    chosen, images, masks = films.records, films.images, films.masks
    if args.localise:
        print(json.dumps(shifted_summary(localise_shifted(run, images, masks, args), chosen,
                                         args), indent=2))
        return
    maps = {"default": map_named(DEFAULT_MAP), "difference": map_named("traversal")}
    built = {name: record.build(run.classifier) for name, record in maps.items()}

    def scored(frames):
        out = {}
        for name, record in maps.items():
            inputs = record.inputs(frames, images)
            values = np.concatenate([np.asarray(built[name](inputs[i : i + 8]))
                                     for i in range(0, len(inputs), 8)])
            out[name] = [localisation_scores(m, k) for m, k in zip(values, masks)]
        return out

    per_seed, negative, lengths, cosines, gradient = [], {}, {}, [], None
    for seed in range(args.seeds):
        result = explain(run.generator, run.classifier, images,
                         settings=settings_for(run.generator, InversionSettings()), seed=seed,
                         tuning=TuningSettings(steps=0), image_maps=seed == 0)
        if seed == 0:
            gradient = [localisation_scores(m, k) for m, k in zip(result["saliency"], masks)]
        walks, cosine = walks_for(run.generator, run.classifier, result["z1"], result["z2"],
                                  target=args.target, steps=DEFAULT_STEPS)
        cosines.append(cosine)
        seed_scores = {}
        for walk, (frames, length) in walks.items():
            counterparts = np.asarray(positive_probability(run.classifier, frames[:, 0]))
            negative.setdefault(walk, []).append(float(np.mean(counterparts < 0.5)))
            lengths.setdefault(walk, []).extend(length.tolist())
            for name, rows in scored(frames).items():
                seed_scores[f"{walk}:{name}"] = rows
        per_seed.append(seed_scores)
    pooled = {key: [{s: float(np.mean([seed[key][i][s] for seed in per_seed]))
                     for s in PAIRED_SCORES}
                    for i in range(len(images))] for key in per_seed[0]}

    def mean(rows, score):
        return round(float(np.mean([r[score] for r in rows])), 4)

    def interval(rows, others):
        return {s: [round(x, 3) for x in v] for s, v in paired_scores(rows, others).items()}

    print(json.dumps({
        "run": args.run, "data": args.data, "split": args.split, "n": len(images),
        "seeds": args.seeds, "target": args.target, "tuning": "none",
        "cosine_minus_gradient_z2_with_minus_z2": [
            round(float(q), 4)
            for q in np.percentile(np.concatenate(cosines), [0, 25, 50, 75, 100])],
        "gradient": {s: mean(gradient, s) for s in PAIRED_SCORES},
        "walks": {walk: {
            "counterpart_negative": round(float(np.mean(negative[walk])), 4),
            "median_length": round(float(np.median(lengths[walk])), 3),
            "maps": {name: {
                **{s: mean(pooled[f"{walk}:{name}"], s)
                   for s in PAIRED_SCORES},
                "minus_gradient": interval(pooled[f"{walk}:{name}"], gradient),
                "minus_paper_default": interval(pooled[f"{walk}:{name}"],
                                                pooled["paper:default"])}
                for name in maps}} for walk in WALKS},
    }, indent=2))


if __name__ == "__main__":
    main()
