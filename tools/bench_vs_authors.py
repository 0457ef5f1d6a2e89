"""Inversion against the authors' procedure: time per image to the same fidelity.

Both procedures run through covgan's own solver on the same G, C and images:

- the authors' (INVERSION_PRESETS["authors"]): one image at a time, one start at z1 = 0,
  Adam 0.01 / beta_1 0.5, no prior, all 5000 steps;
- covgan's default (INVERSION_PRESETS["covgan"]): the images in one batch, restarts, the prior
  and early stopping.

The solver records every iterate, so each run gives mean SSIM against wall time. The ratio is
the authors' wall time per image to their final SSIM divided by covgan's wall time per image
to first reach that SSIM; `ratio_at_covgan_final` is the converse where covgan stops short of
it: the authors' time to first reach covgan's final SSIM over covgan's whole time.

With `tuning` (a gated-residual G: what `covgan explain` tunes by default), covgan's curve
goes on past the inversion into the pivotal tuning its explanations start from (`run_tuned`):
the tuned copy of G reconstructs the image more closely than any code of G, so this measures
the fidelity covgan explains from, not Eq. 2's; the result says which.

Where the authors' run is shortened (the paper preset: 5000 steps per
image take too long here), its per-step cost is measured and the time to 5000 steps
extrapolated; its final SSIM is taken as the last one measured only if the curve has stopped
rising (a falling curve ends lower still, so the last value is the harder target), which the
result says. Used by tools/bench.py (part inversion_vs_authors).
"""

import dataclasses
import time

import numpy as np

from covgan.cpu import use_onednn

use_onednn()  # before TensorFlow is imported, as the commands do
# The imports below must follow that call.
import tensorflow as tf  # noqa: E402

from covgan.explain.batched_tuning import (  # noqa: E402
    BatchedBranchTuner,
    batched_tuning_works,
)
from covgan.explain.invert import (  # noqa: E402
    best_restarts,
    make_inversion_fn,
    settings_for,
    start_codes,
)
from covgan.explain.pivotal_tuning import PivotalTuner  # noqa: E402
from covgan.explain.settings import (  # noqa: E402
    INVERSION_PRESETS,
    TUNING_BATCH,
    TuningSettings,
    tuning_settings,
)
from covgan.models.generator import code_sizes, residual_branch_layers  # noqa: E402

CURVE_POINTS = 40
# Where the tuned curve is sampled, as fractions of the tuning's steps: one whole tuning per
# point (the tuner's loop runs all its steps in one graph and records nothing on the way).
TUNING_FRACTIONS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)
# The authors' SSIM curve counts as flat when its last fifth gained less than this (a loss
# lower in MSE + BCE can come with a lower SSIM, so the curve may also fall).
FLAT_GAIN = 0.005


def ssim_of(generator, images, codes, d1):
    """{"ssim": the mean, "ssim_per_image": each image's} of G(codes) against `images`: a mean
    of two can hide one inversion jumping to its exact code while the other stays put."""
    reconstructions = generator([codes[:, :d1], codes[:, d1:]], training=False)
    each = tf.image.ssim(reconstructions, images, max_val=1.0).numpy()
    return {"ssim": float(np.mean(each)), "ssim_per_image": [round(float(v), 4) for v in each]}


def classifier_passes(settings, generator, step):
    """C's forward and input-gradient passes per image in a solver's first `step` loop steps:
    the work a step of either procedure is made of (the profile: C is most of a step). Each
    row runs C once a step, twice with the counterpart term (G(z1, 0) read too); a pruning
    solver runs every start for `keep_best_after` steps, then one row per image. The passes
    outside the loop (C(x) once, the final objective) are left out."""
    s = settings_for(generator, settings)
    per_row = 2 if s.counterpart_weight else 1
    restarts = max(1, s.restarts)
    if restarts > 1 and 0 < s.keep_best_after < s.steps:
        first = min(step, s.keep_best_after)
        return per_row * (restarts * first + step - first)
    return per_row * restarts * step


def curve(generator, images, codes, losses, settings, seconds, offset=0.0):
    """SSIM (mean and per image) at about CURVE_POINTS recorded steps, each image at its best
    start there; the time of step t is `offset` (time spent before the solver: the encoder)
    plus the solver's time prorated by steps (t + 1) / S."""
    steps = int(codes.shape[0])
    d1 = code_sizes(generator)[0]
    restarts = max(1, settings.restarts)
    points = []
    for t in np.unique(np.linspace(0, steps - 1, CURVE_POINTS).round().astype(int)):
        pick = best_restarts(losses[t], restarts)
        chosen = tf.gather(codes[t], pick)
        points.append({"step": int(t + 1), "seconds": offset + seconds * (t + 1) / steps,
                       "classifier_passes": classifier_passes(settings, generator, int(t + 1)),
                       "loss": float(tf.reduce_mean(tf.gather(losses[t], pick))),
                       **ssim_of(generator, images, chosen, d1)})
    return points


def traced(generator, classifier, settings, *arrays):
    """The recording solver, traced for these arrays' shapes without running it, so that a
    timed call measures the solve alone."""
    solve = make_inversion_fn(generator, classifier, settings, record=True)
    solve.get_concrete_function(*(tf.TensorSpec(a.shape, tf.float32) for a in arrays))
    return solve


def run_covgan(generator, classifier, images, settings, seed, encoder=None):
    """covgan's default: all images in one batch, as `covgan invert` solves them. With an
    encoder start, the encoder's time counts as part of covgan's. Returns the summary and each
    image's final codes (N, d1 + d2)."""
    d1, d2 = code_sizes(generator)
    restarts = max(1, settings.restarts)
    repeated = np.repeat(images, restarts, axis=0)
    encoded, encoding = None, 0.0
    if settings.z1_start == "encoder":
        encoder(images, training=False)  # once untimed, like the solver's tracing
        started = time.perf_counter()
        encoded = encoder(images, training=False)
        encoding = time.perf_counter() - started
    z1, z2 = start_codes(np.random.default_rng(seed), len(repeated), d1, d2, settings, encoded)
    solve = traced(generator, classifier, settings, repeated, z1, z2)
    started = time.perf_counter()
    z1_best, z2_best, loss, ran, codes, losses = solve(repeated, z1, z2)
    solving = time.perf_counter() - started
    seconds = encoding + solving
    points = curve(generator, images, codes, losses, settings, solving, encoding)
    pick = best_restarts(loss, restarts)
    final = tf.concat([tf.gather(z1_best, pick), tf.gather(z2_best, pick)], axis=1)
    steps = int(codes.shape[0])
    points.append({"step": steps, "seconds": seconds,
                   "classifier_passes": classifier_passes(settings, generator, steps),
                   "loss": float(tf.reduce_mean(tf.gather(loss, pick))),
                   **ssim_of(generator, images, final, d1)})
    count = len(images)
    return {"images_in_batch": count, "restarts": restarts, "steps_run": steps,
            "seconds_per_image": seconds / count, "final_ssim": points[-1]["ssim"],
            "final_ssim_per_image": points[-1]["ssim_per_image"],
            "classifier_passes_per_image": points[-1]["classifier_passes"],
            "curve_per_image": [{**p, "seconds": p["seconds"] / count} for p in points]}, final


def explain_tuning(generator, steps=None):
    """The pivotal tuning `covgan explain` runs on this G (steps 0: none, for a G without a
    gated branch); `steps` shortens it."""
    gated = bool(residual_branch_layers(generator))
    return tuning_settings(gated, steps=steps if gated else None)


def run_tuned(generator, classifier, images, inverted, codes, tuning: TuningSettings):
    """The reconstruction covgan's explanations start from: the inversion (`inverted`,
    run_covgan's summary, and its `codes`), then the pivotal tuning `covgan explain` runs:
    TUNING_BATCH images at a time in one batched loop where `batched_tuning_works`, else
    one image at a time (`covgan explain` then tunes TUNING_THREADS at once, so it is no
    slower per image). Each point of the curve is a whole tuning of k steps
    (TUNING_FRACTIONS of `tuning.steps`), timed from the copies' reset; its time is the
    inversion's per image plus the tuning's per image, its SSIM that of G'(z1, z2), G'
    changed for each image."""
    d1 = code_sizes(generator)[0]
    z1, z2 = codes[:, :d1].numpy(), codes[:, d1:].numpy()
    base = inverted["seconds_per_image"]
    points = [inverted["curve_per_image"][-1]]
    # One pass through C a tuning step (the feature and classifier terms share it), if any.
    per_step = 1 if tuning.uses_classifier else 0
    reading = classifier if tuning.uses_classifier else None
    batched = batched_tuning_works(generator, tuning)
    batches = [slice(start, start + TUNING_BATCH)
               for start in range(0, len(images), TUNING_BATCH)]
    if batched:
        together = BatchedBranchTuner(generator, tuning, reading)
        for batch in batches:  # traces the loop (any length) for each batch size, untimed
            together.tune(images[batch], z1[batch], z2[batch], steps=1)
    for k in sorted({max(1, round(tuning.steps * f)) for f in TUNING_FRACTIONS}):
        if batched:
            seconds, ssim = [], []  # the batches' times, summed to the whole tuning's below
            for batch in batches:
                started = time.perf_counter()
                together.tune(images[batch], z1[batch], z2[batch], steps=k)
                seconds.append(time.perf_counter() - started)
                for j in range(len(images[batch])):  # copy j is image batch.start + j's
                    i = batch.start + j
                    ssim.append(ssim_of(together.with_branch_of(j), images[i:i + 1],
                                        codes[i:i + 1], d1)["ssim"])
            seconds = [sum(seconds) / len(images)]
        else:
            tuner = PivotalTuner(generator, dataclasses.replace(tuning, steps=k), reading)
            tuner.tune(images[:1], z1[:1], z2[:1])  # traces the loop, untimed
            seconds, ssim = [], []
            for i in range(len(images)):
                started = time.perf_counter()
                tuned = tuner.tune(images[i:i + 1], z1[i:i + 1], z2[i:i + 1])
                seconds.append(time.perf_counter() - started)
                ssim.append(ssim_of(tuned, images[i:i + 1], codes[i:i + 1], d1)["ssim"])
        points.append({"tuning_steps": k, "seconds": base + float(np.mean(seconds)),
                       "classifier_passes": inverted["classifier_passes_per_image"]
                       + per_step * k,
                       "ssim": float(np.mean(ssim)),
                       "ssim_per_image": [round(v, 4) for v in ssim]})
    return {"tuning": dataclasses.asdict(tuning),
            "tuned_in": (_batches_said([len(images[batch]) for batch in batches])
                         if batched else "one image at a time"),
            "fidelity": "G'(z1, z2) after pivotal tuning: G changed for each image, as "
                        "covgan's explanations use it (not Eq. 2's G(z1, z2))",
            "seconds_per_image": points[-1]["seconds"], "final_ssim": points[-1]["ssim"],
            "final_ssim_per_image": points[-1]["ssim_per_image"],
            "classifier_passes_per_image": points[-1]["classifier_passes"],
            "curve_per_image": points}


def _batches_said(sizes):
    """'one batch of 2', '2 batches of 16', '3 batches (16, 16, 4)'."""
    if len(sizes) == 1:
        return f"one batch of {sizes[0]}"
    if len(set(sizes)) == 1:
        return f"{len(sizes)} batches of {sizes[0]}"
    return f"{len(sizes)} batches ({', '.join(map(str, sizes))})"


def run_authors(generator, classifier, images, settings, seed):
    """The authors' procedure, one image at a time: the median time per image, the mean
    curve."""
    d1, d2 = code_sizes(generator)
    solve = traced(generator, classifier, settings, images[:1], np.zeros((1, d1)),
                   np.zeros((1, d2)))
    rng = np.random.default_rng(seed)
    seconds, ssim_rows, final = [], [], []
    for i in range(len(images)):
        z1, z2 = start_codes(rng, 1, d1, d2, settings)
        started = time.perf_counter()
        z1_best, z2_best, _, _, codes, losses = solve(images[i:i + 1], z1, z2)
        seconds.append(time.perf_counter() - started)
        ssim_rows.append(curve(generator, images[i:i + 1], codes, losses, settings, 1.0))
        final.append(ssim_of(generator, images[i:i + 1],
                             tf.concat([z1_best, z2_best], axis=1), d1)["ssim"])
    per_image = float(np.median(seconds))
    steps = int(settings.steps)
    points = [{"step": p["step"], "seconds": per_image * p["step"] / steps,
               "classifier_passes": p["classifier_passes"],
               "ssim": float(np.mean([row[k]["ssim"] for row in ssim_rows])),
               "ssim_per_image": [row[k]["ssim"] for row in ssim_rows],
               "loss": float(np.mean([row[k]["loss"] for row in ssim_rows]))}
              for k, p in enumerate(ssim_rows[0])]
    return {"images": len(images), "steps_run": steps, "seconds_per_image": per_image,
            "seconds_per_step": per_image / steps, "final_ssim": float(np.mean(final)),
            "final_ssim_per_image": [round(v, 4) for v in final],
            "curve_per_image": points}


def flattened(points):
    """Whether the curve's last fifth (by step) gained less than FLAT_GAIN SSIM: it has stopped
    rising."""
    last = points[-1]
    earlier = [p for p in points if p["step"] <= 0.8 * last["step"]]
    return bool(earlier) and last["ssim"] - earlier[-1]["ssim"] < FLAT_GAIN


def first_at(run, ssim):
    """The first point of `run`'s curve at or above `ssim` (None: it never gets there)."""
    return next((p for p in run["curve_per_image"] if p["ssim"] >= ssim), None)


def compare(generator, classifier, images, *, authors_steps=None, covgan_steps=None, seed=0,
            encoder=None, tuning=None):
    """Both procedures on `images`; `authors_steps` shortens the authors' run (extrapolated to
    their 5000 steps), `covgan_steps` caps covgan's (only to keep a smoke test short). With
    `encoder` (the run's E), covgan also runs from one encoder start (`--start encoder
    --restarts 1`), timed from before E, against the same authors' run: `encoder_start`. With
    `tuning` (steps > 0), each of covgan's runs goes on into that pivotal tuning (`run_tuned`):
    `tuned` beside it, against the same authors' run."""
    authors = INVERSION_PRESETS["authors"]
    full_steps = authors.steps
    if authors_steps:
        authors = dataclasses.replace(authors, steps=authors_steps, patience=authors_steps)
    ours = INVERSION_PRESETS["covgan"]
    if covgan_steps:
        ours = dataclasses.replace(ours, steps=covgan_steps)
    theirs = run_authors(generator, classifier, images, authors, seed)
    covgan, codes = run_covgan(generator, classifier, images, ours, seed)
    shortened = theirs["steps_run"] < full_steps
    flat = flattened(theirs["curve_per_image"])
    seconds_authors = theirs["seconds_per_step"] * full_steps
    passes_authors = classifier_passes(authors, generator, full_steps)
    target_ssim = theirs["final_ssim"]

    def against_authors(ours_run):
        reached = first_at(ours_run, target_ssim)
        ratio = reached and seconds_authors / max(reached["seconds"], 1e-9)
        # The ratio in two factors: how many fewer passes through C covgan needs, and how much
        # less each costs it (batching; the rest of a step).
        fewer = reached and passes_authors / max(reached["classifier_passes"], 1)
        return {
            "covgan_seconds_per_image_to_target": reached and reached["seconds"],
            "ratio": ratio,
            # A shortened run's final SSIM is only known where its curve has flattened.
            "ratio_valid": reached is not None and (flat or not shortened),
            "covgan_classifier_passes_per_image_to_target": reached
            and reached["classifier_passes"],
            "classifier_passes_ratio": fewer,
            "seconds_per_pass_ratio": reached and ratio / fewer,
        }

    result = {
        "images": len(images),
        "authors": {**theirs, "full_steps": full_steps, "shortened": shortened,
                    "curve_flattened": flat,
                    "seconds_per_image_to_final": seconds_authors,
                    "classifier_passes_per_image_to_final": passes_authors},
        "covgan": covgan,
        "target_ssim": target_ssim,
        **against_authors(covgan),
    }

    def then_tuned(inverted, codes):
        tuned = run_tuned(generator, classifier, images, inverted, codes, tuning)
        return {"covgan": tuned, **against_authors(tuned)}

    if tuning is not None and tuning.steps:
        result["tuned"] = then_tuned(covgan, codes)
    if encoder is not None:
        started, codes = run_covgan(generator, classifier, images,
                                    dataclasses.replace(ours, z1_start="encoder", restarts=1),
                                    seed, encoder=encoder)
        result["encoder_start"] = {"covgan": started, **against_authors(started)}
        if tuning is not None and tuning.steps:
            result["encoder_start"]["tuned"] = then_tuned(started, codes)
    # The other way round: how long the authors take to first reach where covgan stops.
    theirs_reach = first_at(theirs, covgan["final_ssim"])
    result["authors_seconds_per_image_to_covgan_final"] = theirs_reach and theirs_reach["seconds"]
    result["ratio_at_covgan_final"] = theirs_reach and (theirs_reach["seconds"]
                                                        / covgan["seconds_per_image"])
    if shortened:
        result["note"] = (f"authors' run shortened to {theirs['steps_run']} of {full_steps} "
                          f"steps: time to {full_steps} extrapolated from the per-step cost; "
                          + ("its SSIM curve had flattened, so its last SSIM is the target"
                             if flat else "its SSIM curve was still rising, so its final SSIM "
                             "is unknown and the ratio is not valid"))
    return result


def models_and_images(run_dir, preset, count):
    """G, C and target images for the comparison: a trained run and its held-out images where
    `run_dir` names one (tiny preset), else untrained models of `preset` and images G draws
    from random codes (an exact solution exists)."""
    from covgan.models.classifier import build_classifier
    from covgan.models.generator import build_generator, code_sizes
    from covgan.training.presets import PRESET_TRAINING

    if run_dir and preset == "tiny":
        from covgan.data import layout
        from covgan.data.catalog import resolve_data
        from covgan.data.images import load_inputs
        from covgan.training.runs import load_run

        run = load_run(run_dir)
        data = resolve_data(run.config["data"])
        records = layout.read_manifest(data)
        chosen = layout.select(records, layout.evaluation_split(records))[:count]
        images, _ = load_inputs([data / r.path for r in chosen])
        models = f"run {run_dir}, {len(images)} held-out images"
        return run.generator, run.classifier, images, models
    generator = build_generator(preset, inject_z2=PRESET_TRAINING[preset]["inject_z2"], seed=0)
    classifier = build_classifier("tiny" if preset == "tiny" else "vgg16", seed=0)
    d1, d2 = code_sizes(generator)
    rng = np.random.default_rng(1)
    codes = [rng.standard_normal((count, d)).astype("f4") for d in (d1, d2)]
    images = generator(codes, training=False).numpy()
    return generator, classifier, images, f"untrained {preset} G and C; images drawn by G"


def with_fields(settings, text, what="inversion"):
    """'steps=1000,learning_rate=0.1' -> `settings` (a settings dataclass) with those fields
    replaced, each read as the field's own type (a field left None reads as a number where it
    is one, else as text)."""
    names = [f.name for f in dataclasses.fields(settings)]
    changes = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in names:
            raise SystemExit(f"unknown {what} setting {name!r}; choose from {names}")
        default = getattr(settings, name)
        changes[name] = _as_number_or_text(value) if default is None else type(default)(value)
    return dataclasses.replace(settings, **changes)


def _as_number_or_text(value):
    try:
        return float(value)
    except ValueError:
        return value


def parse_variant(text):
    """'steps=1000,learning_rate=0.1' -> the covgan preset with those fields replaced."""
    return with_fields(INVERSION_PRESETS["covgan"], text)


def reached_at(run, target):
    """Seconds per image at which `run`'s curve first reaches SSIM `target`, rounded (None:
    never, or no target)."""
    reached = None if target is None else first_at(run, target)
    return reached and round(reached["seconds"], 2)


def tuned_line(generator, classifier, images, inverted, codes, tuning, target):
    """`run_tuned`'s curve in short: tuning steps, seconds per image and SSIM at each point."""
    tuned = run_tuned(generator, classifier, images, inverted, codes, tuning)
    return {"tuning_steps": tuning.steps,
            "seconds_per_image": round(tuned["seconds_per_image"], 1),
            "final_ssim": round(tuned["final_ssim"], 3),
            "seconds_per_image_to_target": reached_at(tuned, target),
            "curve": [(p.get("tuning_steps", 0), round(p["seconds"], 2), round(p["ssim"], 3))
                      for p in tuned["curve_per_image"]]}


def main():
    """covgan's solver under other settings on a run's held-out images: final SSIM, time per
    image and when each first reaches `--target` SSIM (e.g. the authors' final from the
    benchmark's JSON)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a trained tiny-preset run")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--target", type=float, default=None, help="an SSIM to time")
    parser.add_argument("--tune", type=int, default=None, metavar="STEPS",
                        help="also go on into the explanation's pivotal tuning of this many "
                             "steps (0: the steps `covgan explain` tunes) and time that curve")
    parser.add_argument("--variant", action="append", default=[],
                        help="settings replaced in the covgan preset, e.g. steps=1000,"
                             "learning_rate=0.1 (repeatable; the preset itself always runs)")
    parser.add_argument("--tuning-variant", action="append", default=[],
                        help="with --tune: settings replaced in the explanation's tuning, e.g. "
                             "bce_weight=0,feature_weight=0 (repeatable; the explanation's own "
                             "tuning always runs)")
    args = parser.parse_args()
    if args.tuning_variant and args.tune is None:
        parser.error("--tuning-variant needs --tune")
    generator, classifier, images, models = models_and_images(args.run, "tiny", args.images)
    encoder = None
    if any("z1_start=encoder" in v for v in args.variant):
        from covgan.training.runs import load_run

        encoder = load_run(args.run).encoder  # `covgan encoder train --run RUN` made it
        if encoder is None:
            raise SystemExit(f"{args.run} has no encoder.keras: run covgan encoder train first")
    for variant in ["", *args.variant]:
        result, codes = run_covgan(generator, classifier, images, parse_variant(variant), seed=0,
                                   encoder=encoder)
        line = {"variant": variant or "covgan preset", "models": models,
                "steps_run": result["steps_run"],
                "seconds_per_image": round(result["seconds_per_image"], 1),
                # The start's SSIM (the best start by loss): with one encoder start, G(E(x))'s.
                "start_ssim": round(result["curve_per_image"][0]["ssim"], 3),
                "final_ssim": round(result["final_ssim"], 3),
                "seconds_per_image_to_target": reached_at(result, args.target)}
        if args.tune is not None:
            tuning = explain_tuning(generator, steps=args.tune or None)
            if not tuning.steps:
                raise SystemExit("--tune: this run's G has no gated branch to tune")
            line["tuned"] = tuned_line(generator, classifier, images, result, codes, tuning,
                                       args.target)
            for text in args.tuning_variant:
                line.setdefault("tuned_variants", {})[text] = tuned_line(
                    generator, classifier, images, result, codes,
                    with_fields(tuning, text, "tuning"), args.target)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
