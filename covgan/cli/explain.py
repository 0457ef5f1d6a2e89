"""`covgan invert`, `traverse`, `gradcam` and `explain`: explanations of single radiographs."""

import contextlib
import dataclasses
import functools

import click

from covgan.cli.common import (
    OUT_HELP,
    RUN_HELP,
    SEED_HELP,
    emit,
    mixed_precision_for_this_command,
    seed_everything,
)
from covgan.cli.progress import ImageProgress, quiet_option
from covgan.cli.runner_options import (
    PASS_THROUGH,
    refuse_beam_options_on_a_local_run,
    runner_options,
)
from covgan.explain.settings import (
    BRANCH_TUNING_STEPS,
    DEFAULT_STEPS,
    DEFAULT_TUNED_IMAGES,
    INVERSION_PRESETS,
    TUNED_IMAGES,
    TUNED_LAYERS,
    TUNING_BCE_WEIGHTS,
    TUNING_FEATURE_WEIGHTS,
    TUNING_LEARNING_RATES,
    TUNING_RESIDUAL_FOCUS,
    Z1_STARTS,
    TuningSettings,
    inversion_settings,
    tuning_settings,
)

START_HELP = ("Where the inversion starts: normal (random codes), zeros (z1 = 0, the authors'), "
              "encoder (each image's first start at the run's encoder, `covgan encoder train`).")


def preset_default(field, covgan_value=None):
    """Help text naming each inversion preset's value of `field` (the covgan preset's
    `covgan_value` where a command has its own)."""
    values = ", ".join(
        f"{name}: {covgan_value if name == 'covgan' and covgan_value else getattr(settings, field)}"
        for name, settings in INVERSION_PRESETS.items())
    return f"[default: the preset's; {values}]"


def inversion_options(command=None, *, steps=None, restarts=None):
    """The Eq. 2 options shared by invert, traverse, gradcam, explain, localise and audit:
    --preset, then any field of it given on the command line (defaults: INVERSION_PRESETS),
    and --mixed-precision. The command receives the settings as `settings`.

    `steps`, `restarts` (as `@inversion_options(steps=N, restarts=R)`): the command's own
    values of the covgan preset's Adam steps and random starts, where --invert-steps or
    --restarts is not given (audit: AUDIT_INVERSION_STEPS, AUDIT_RESTARTS).
    """
    if command is None:
        return functools.partial(inversion_options, steps=steps, restarts=restarts)
    options = [
        click.option("--preset", type=click.Choice(sorted(INVERSION_PRESETS)), default="covgan",
                     show_default=True,
                     help="Inversion procedure: covgan's (restarts, prior, early stop) or the "
                          "authors' (one start at z1 = 0, Adam 0.01 / beta_1 0.5, 5000 steps)."),
        click.option("--invert-steps", type=click.IntRange(min=1),
                     help="Maximum Adam steps of the inversion. "
                          + preset_default("steps", steps)),
        click.option("--start", type=click.Choice(Z1_STARTS),
                     help=START_HELP + " " + preset_default("z1_start")),
        click.option("--restarts", type=click.IntRange(min=1),
                     help="Random starts per image; the best is kept. "
                          + preset_default("restarts", restarts)),
        click.option("--keep-best-after", type=click.IntRange(min=0),
                     help="Steps every start runs before only each image's best goes on (0: "
                          "all run to the end). " + preset_default("keep_best_after")),
        click.option("--invert-lr", type=click.FloatRange(min=0, min_open=True),
                     help="Inversion Adam learning rate. " + preset_default("learning_rate")),
        click.option("--mse-weight", type=click.FloatRange(min=0),
                     help="a in Eq. 2 (pixel fidelity). " + preset_default("mse_weight")),
        click.option("--bce-weight", type=click.FloatRange(min=0),
                     help="b in Eq. 2 (classifier agreement). " + preset_default("bce_weight")),
        click.option("--prior", type=click.FloatRange(min=0),
                     help="Weight of a term keeping z on the Gaussian shell, where G was "
                          "trained (keeps counterparts negative and traversals monotone). "
                          + preset_default("prior_weight")),
        click.option("--counterpart-weight", type=click.FloatRange(min=0),
                     help="Weight of a term holding the counterpart G(z1, 0) negative, "
                          "BCE(C(G(z1, 0)), 0), so the class evidence lies in what z2 adds. "
                          "Default: 1 for a G with a gated residual branch, 0 for any other "
                          "(the authors' preset: 0)."),
        click.option("--seed", type=int, default=0, show_default=True, help=SEED_HELP),
        click.option("--mixed-precision", is_flag=True,
                     help="G and C compute in bfloat16 (CPU) or float16 (GPU); the codes, the "
                          "loss and Adam's state stay float32. Fast where the hardware has "
                          "those units; emulated (slower) on CPUs without them."),
    ]

    own = {"steps": steps, "restarts": restarts}  # the inner function's arguments shadow these

    @functools.wraps(command)
    def in_chosen_precision(*args, mixed_precision, preset, invert_steps, start, restarts,
                            keep_best_after, invert_lr, mse_weight, bce_weight, prior,
                            counterpart_weight, **kwargs):
        mixed_precision_for_this_command(mixed_precision)  # before the command loads a model
        if preset == "covgan":  # the command's own values, where it has them
            invert_steps = own["steps"] if invert_steps is None else invert_steps
            restarts = own["restarts"] if restarts is None else restarts
        with options_refused_in_one_line():
            settings = inversion_settings(preset, steps=invert_steps, restarts=restarts,
                                          keep_best_after=keep_best_after,
                                          learning_rate=invert_lr, mse_weight=mse_weight,
                                          bce_weight=bce_weight, prior_weight=prior,
                                          z1_start=start, counterpart_weight=counterpart_weight)
        return command(*args, settings=settings, **kwargs)

    return functools.reduce(lambda f, option: option(f), reversed(options), in_chosen_precision)


def walk_options(command):
    """The walk's length, --steps and --extrapolate (traverse and explain)."""
    command = click.option("--extrapolate", type=click.IntRange(min=0), default=0,
                           show_default=True,
                           help="Extra steps past the image, further along z2.")(command)
    return click.option("--steps", type=click.IntRange(min=1), default=DEFAULT_STEPS,
                        show_default=True,
                        help="N: steps from the counterpart (n = 0) to the image (n = N).")(command)


def tuning_options(command=None, *, steps=BRANCH_TUNING_STEPS, bce_weight=None,
                   residual_focus=None):
    """Pivotal tuning's options (explain, localise, audit): the command receives `tuning_for`,
    which gives the run's G its `TuningSettings` (`settings.tuning_settings`: a gated-residual
    G's branch is tuned, `steps` steps, unless --tune-steps is given; any other G only when
    asked). As `@tuning_options(steps=N, bce_weight=B, residual_focus=F)`, those are the
    command's own defaults where the option is not given (audit: AUDIT_TUNING_STEPS,
    AUDIT_TUNING_BCE, AUDIT_TUNING_FOCUS; None: tuning_settings' own).

    Raises (from tuning_for):
        CovganError: --tune-layers branch on a G without a gated branch.
    """
    if command is None:
        return functools.partial(tuning_options, steps=steps, bce_weight=bce_weight,
                                 residual_focus=residual_focus)
    own = {"bce_weight": bce_weight, "residual_focus": residual_focus}
    options = [
        click.option("--tune-steps", type=click.IntRange(min=0), default=None,
                     help="Pivotal tuning after the inversion: Adam steps fitting a copy of G to "
                          "each image while its counterpart G(z1, 0) stays the untuned G's, so "
                          "what the codes cannot draw enters the walk (0: off; one image at a "
                          f"time per thread). [default: {steps} on a gated-residual G's "
                          "branch, else 0]"),
        click.option("--tune-lr", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="Pivotal tuning's Adam learning rate. [default: "
                          f"{TUNING_LEARNING_RATES['branch']:g} for the branch, "
                          f"{TUNING_LEARNING_RATES['all']:g} for all of G]"),
        click.option("--tune-anchor", type=click.FloatRange(min=0), default=None,
                     help="Weight holding the tuned counterpart G'(z1, 0) to the untuned one "
                          f"(all of G only). [default: {TuningSettings.anchor_weight:g}]"),
        click.option("--tune-layers", type=click.Choice(TUNED_LAYERS), default=None,
                     help="What tuning changes: all of G, or only a gated-residual G's branch "
                          "(its counterpart then stays exactly the untuned G's; faster). Named "
                          "without --tune-steps, it is tuned the default steps. [default: "
                          "branch where G has one, else all]"),
        click.option("--tune-bce", type=click.FloatRange(min=0), default=None,
                     help="Weight of Eq. 2's classifier term in tuning, holding C's reading of "
                          "the tuned reconstruction to its reading of the image. [default: "
                          f"{TUNING_BCE_WEIGHTS['branch']:g} for the branch, "
                          f"{TUNING_BCE_WEIGHTS['all']:g} for all of G]"),
        click.option("--tune-features", type=click.FloatRange(min=0), default=None,
                     help="Weight of a term holding the classifier's activations on the tuned "
                          "reconstruction to those on the image (relative squared error at "
                          "--tune-feature-layer). [default: "
                          f"{TUNING_FEATURE_WEIGHTS['branch']:g} for the branch, "
                          f"{TUNING_FEATURE_WEIGHTS['all']:g} for all of G]"),
        click.option("--tune-feature-layer", default=None, metavar="NAME",
                     help="The classifier layer --tune-features compares. [default: its "
                          "deepest convolution at a quarter of the image's side or finer]"),
        click.option("--tune-focus", type=click.FloatRange(min=0), default=None,
                     help="Weight tuning's pixel fit toward where the inversion missed: each "
                          "pixel counts 1 + F x its untuned residual over the mean residual. "
                          f"[default: {TUNING_RESIDUAL_FOCUS['branch']:g} for the branch, "
                          f"{TUNING_RESIDUAL_FOCUS['all']:g} for all of G]"),
        click.option("--tune-counterpart-fit", type=click.FloatRange(min=0), default=None,
                     help="Tune all of G with its counterpart G(z1, 0) fitted to the image "
                          "where the inversion did not miss and held negative by the "
                          "classifier, in place of the anchor (brings the branch's tuning "
                          "terms and steps where not given; slower: each step draws two images "
                          "through all of G). [default: 0, off]"),
        click.option("--tune-where", type=click.Choice(TUNED_IMAGES), default=None,
                     help="Which images are tuned: all, or only those whose untuned "
                          "explanation the trust rule does not trust (the others keep their "
                          "untuned walk: on real films it localised better; see Real films). "
                          f"[default: {DEFAULT_TUNED_IMAGES}]"),
    ]

    @functools.wraps(command)
    def with_tuning(*args, tune_steps, tune_lr, tune_anchor, tune_layers, tune_bce,
                    tune_features, tune_feature_layer, tune_focus, tune_counterpart_fit,
                    tune_where, **kwargs):
        def tuning_for(generator):
            from covgan.errors import CovganError
            from covgan.models.generator import residual_branch_layers

            gated = bool(residual_branch_layers(generator))
            if tune_layers == "branch" and not gated:
                raise CovganError("--tune-layers branch needs a G with a gated residual branch "
                                  "(`covgan train --gated-residual`); this run's G has none.")
            # The counterpart fit brings its measured recipe, not this command's own terms.
            mine = {} if tune_counterpart_fit else own
            with options_refused_in_one_line():
                return tuning_settings(gated, steps=tune_steps, branch_steps=steps,
                                       learning_rate=tune_lr,
                                       anchor_weight=tune_anchor, layers=tune_layers,
                                       bce_weight=mine.get("bce_weight") if tune_bce is None
                                       else tune_bce,
                                       feature_weight=tune_features,
                                       feature_layer=tune_feature_layer,
                                       residual_focus=mine.get("residual_focus")
                                       if tune_focus is None else tune_focus,
                                       counterpart_fit=tune_counterpart_fit,
                                       where=tune_where)

        return command(*args, tuning_for=tuning_for, **kwargs)

    return functools.reduce(lambda f, option: option(f), reversed(options), with_tuning)


@contextlib.contextmanager
def options_refused_in_one_line():
    """The settings' own checks (a ValueError) reach the user as a one-line error: here the
    value came from the command line, not from a bug."""
    from covgan.errors import CovganError

    try:
        yield
    except ValueError as error:
        raise CovganError(str(error)) from None


def encoder_of(run, settings):
    """The run's encoder where the inversion starts there (else None;
    `covgan.training.runs.encoder_for`)."""
    from covgan.training.runs import encoder_for

    return encoder_for(run, settings)


def expanded(paths):
    """IMAGES with each folder replaced by its image files; a missing path, or a folder
    without any, refused in one line."""
    import pathlib

    from covgan.data.images import UnreadableImage, image_files
    from covgan.errors import CovganError

    paths = list(paths)
    missing = [p for p in paths if not pathlib.Path(p).exists()]
    if missing:
        raise CovganError(f"{missing[0]}: no such file or folder.")
    try:
        return image_files(paths)
    except UnreadableImage as error:
        raise CovganError(str(error)) from None


def load_images(paths):
    """Reads radiographs for a command; input warnings go to stderr."""
    from covgan.data.images import UnreadableImage, load_inputs
    from covgan.errors import CovganError

    try:
        images, warnings = load_inputs(paths)
    except UnreadableImage as error:
        raise CovganError(str(error)) from None
    for notes in warnings:
        for note in notes:
            click.echo(f"Warning: {note}", err=True)
    return images, warnings


@click.command(short_help="Find the GAN codes (z1, z2) of radiographs.")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help=RUN_HELP)
@click.option("--out", required=True, type=click.Path(file_okay=False), help=OUT_HELP)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@inversion_options
@quiet_option
def invert(images, run_dir, out, overwrite, settings, seed, quiet):
    """Find the GAN codes (z1, z2) of radiographs (Eq. 2); write reconstructions.

    Writes OUT/invert.json, OUT/latents.npz (z1, z2, sources; input to `covgan
    traverse --latents`) and, per image, the reconstruction and its negative
    counterpart G(z1, 0) as PNG.

    \b
    Example:
      covgan invert chest.png --run runs/gan --out out/invert
    """
    import numpy as np

    from covgan.data.layout import write_png
    from covgan.explain.invert import invert as solve
    from covgan.explain.invert import settings_for
    from covgan.io import atomic_directory, check_new_directory, write_json
    from covgan.output.writers import inversion_rows, stems
    from covgan.training.runs import load_run

    check_new_directory(out, overwrite=overwrite)
    run = load_run(run_dir)
    settings = settings_for(run.generator, settings)  # as it ran, recorded
    pixels, warnings = load_images(images)
    seed_everything(seed)
    with ImageProgress(len(pixels), "inverting", quiet) as progress:
        result = solve(run.generator, run.classifier, pixels, settings=settings, seed=seed,
                       encoder=encoder_of(run, settings), progress=progress.advance)
    rows = inversion_rows(images, result, warnings)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        for stem, reconstruction, counterpart in zip(stems(images), result["reconstructions"],
                                                     result["counterparts"]):
            write_png(tmp / f"{stem}_reconstruction.png", reconstruction[..., 0])
            write_png(tmp / f"{stem}_counterpart.png", counterpart[..., 0])
        np.savez(tmp / "latents.npz", z1=result["z1"], z2=result["z2"],
                 sources=np.array([str(p) for p in images]))
        payload = {"images": rows, "run": str(run_dir),
                   "settings": {**dataclasses.asdict(settings), "seed": seed}}
        write_json(tmp / "invert.json", payload)
    emit(payload)


@click.command()
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--latents", type=click.Path(exists=True, dir_okay=False), default=None,
              help="z1/z2 from `covgan invert` (latents.npz) instead of IMAGES.")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help=RUN_HELP)
@click.option("--out", required=True, type=click.Path(file_okay=False), help=OUT_HELP)
@walk_options
@click.option("--sweep", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also render the same z1 with this many random z2 draws (class variety).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@inversion_options
def traverse(images, latents, run_dir, out, steps, extrapolate, sweep, overwrite, settings,
             seed):
    """Walk the disease code from the negative counterpart to the image and beyond.

    Give radiographs (inverted first) or --latents from `covgan invert`. Writes,
    per image, a strip of every step with p(positive), an animated GIF, a plot
    of p(positive) by step and the |last - first| difference map, plus
    OUT/traverse.json.

    \b
    Example:
      covgan traverse chest.png --run runs/gan --out out/traverse --extrapolate 5
      covgan traverse --latents out/invert/latents.npz --run runs/gan --out out/t2 --sweep 8
    """
    import numpy as np

    from covgan.errors import CovganError
    from covgan.explain.traverse import crossing_step, difference_maps, traverse_to_image
    from covgan.io import atomic_directory, check_new_directory, write_json
    from covgan.models.generator import code_sizes
    from covgan.output.writers import stems, write_traversals
    from covgan.training.runs import load_run

    if bool(images) == bool(latents):
        raise CovganError("Give either IMAGES or --latents FILE.")
    check_new_directory(out, overwrite=overwrite)
    run = load_run(run_dir)
    seed_everything(seed)
    if latents:
        codes = np.load(latents, allow_pickle=False)
        if not {"z1", "z2"} <= set(codes.files):
            raise CovganError(f"{latents} holds no z1/z2 arrays (make it with `covgan invert`).")
        z1, z2 = codes["z1"].astype(np.float32), codes["z2"].astype(np.float32)
        expected = code_sizes(run.generator)
        if (z1.shape[-1], z2.shape[-1]) != expected or len(z1) != len(z2):
            raise CovganError(f"{latents} codes have sizes {z1.shape}, {z2.shape}; this run "
                              f"needs (N, {expected[0]}) and (N, {expected[1]}).")
        sources = [str(s) for s in codes["sources"]] if "sources" in codes.files else [
            f"latent{i}" for i in range(len(z1))]
    else:
        from covgan.explain.invert import invert as solve

        pixels, _ = load_images(images)
        inverted = solve(run.generator, run.classifier, pixels, settings=settings, seed=seed,
                         encoder=encoder_of(run, settings))
        z1, z2, sources = inverted["z1"], inverted["z2"], list(images)
    frames, probabilities = traverse_to_image(run.generator, run.classifier, z1, z2,
                                              steps=steps, extrapolate=extrapolate)
    frames, probabilities = frames.numpy(), probabilities.numpy()
    crossings = crossing_step(probabilities)
    _, absolute = difference_maps(frames[:, : steps + 1])
    with atomic_directory(out, overwrite=overwrite) as tmp:
        rows = write_traversals(tmp, sources, frames, probabilities, crossings, absolute,
                                steps=steps)
        for i, row in enumerate(rows):
            if sweep:
                row["sweep_probabilities"] = _write_sweep(tmp / f"{stems(sources)[i]}_sweep.png",
                                                          run, z1[i], sweep, seed)
        payload = {"images": rows, "steps": steps, "extrapolate": extrapolate,
                   "image_step": steps, "run": str(run_dir)}
        write_json(tmp / "traverse.json", payload)
    emit(payload)


def _write_sweep(path, run, z1, count, seed):
    """The same z1 with `count` positive z2 draws: the variety of findings the GAN learned."""
    import numpy as np

    from covgan.models.classifier import positive_probability
    from covgan.models.generator import code_sizes
    from covgan.output.render import captioned, to_uint8
    from covgan.output.writers import write_bgr

    rng = np.random.default_rng(seed)
    z2 = rng.standard_normal((count, code_sizes(run.generator)[1])).astype(np.float32)
    images = run.generator([np.repeat(z1[None], count, 0), z2], training=False)
    p = np.asarray(positive_probability(run.classifier, images))
    tiles = [to_uint8(image) for image in images.numpy()]
    write_bgr(path, captioned(tiles, [f"draw {k}\np={v:.2f}" for k, v in enumerate(p)], scale=1))
    return p.tolist()


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--classifier", "classifier_file", default=None, type=click.Path(dir_okay=False),
              help="The classifier (.keras); defaults to the run's when --run is given.")
@click.option("--run", "run_dir", default=None, type=click.Path(file_okay=False),
              help="Also invert and show the paper's Figure 2 side by side.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help=OUT_HELP)
@click.option("--layer", default=None, help="Convolution layer (default: the last one).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@inversion_options
def gradcam(images, classifier_file, run_dir, out, layer, overwrite, settings, seed):
    """Grad-CAM and input-gradient saliency for the positive class.

    With --run, each image also gets the paper's Figure 2: image |
    reconstruction | negative counterpart | |difference| | Grad-CAM | the image
    with the walk's change taken out, with
    p(positive) under each.

    \b
    Example:
      covgan gradcam chest.png --classifier runs/classifier/classifier.keras --out out/cam
      covgan gradcam chest.png --run runs/gan --out out/figure2
    """
    from covgan.errors import CovganError
    from covgan.explain.gradcam import make_gradcam_fn, make_saliency_fn
    from covgan.io import atomic_directory, check_new_directory, write_json
    from covgan.models.classifier import load_classifier
    from covgan.output.render import captioned, heat_map, heat_overlay
    from covgan.output.writers import figure, inversion_rows, stems, write_bgr

    if not classifier_file and not run_dir:
        raise CovganError("Give --classifier FILE, or --run RUN to use the run's classifier.")
    check_new_directory(out, overwrite=overwrite)
    run = None
    if run_dir:
        from covgan.training.runs import load_run

        run = load_run(run_dir)
    classifier = load_classifier(classifier_file) if classifier_file else run.classifier
    pixels, warnings = load_images(images)
    heatmaps, probabilities = make_gradcam_fn(classifier, layer)(pixels)
    heatmaps, probabilities = heatmaps.numpy(), probabilities.numpy()
    saliency = make_saliency_fn(classifier)(pixels).numpy()
    inverted = None
    if run:
        from covgan.explain.invert import invert as solve

        seed_everything(seed)
        inverted = solve(run.generator, classifier, pixels, settings=settings, seed=seed,
                         encoder=encoder_of(run, settings))
        rows_of_inversion = inversion_rows(images, inverted, warnings)
    rows = []
    with atomic_directory(out, overwrite=overwrite) as tmp:
        for i, stem in enumerate(stems(images)):
            write_bgr(tmp / f"{stem}_gradcam.png", heat_overlay(pixels[i], heatmaps[i]))
            write_bgr(tmp / f"{stem}_saliency.png", heat_map(saliency[i]))
            row = {
                "source": str(images[i]),
                "p_image": float(probabilities[i, 1]),
                "warnings": warnings[i],
            }
            if inverted:
                write_bgr(tmp / f"{stem}_figure.png",
                          captioned(*figure(pixels[i], inverted, i, heatmaps[i])))
                row.update(rows_of_inversion[i])
            rows.append(row)
        payload = {"images": rows, "layer": layer or "last convolution"}
        write_json(tmp / "gradcam.json", payload)
    emit(payload)


@click.command(context_settings=PASS_THROUGH)
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help=RUN_HELP)
@click.option("--out", required=True, type=click.Path(file_okay=False), help=OUT_HELP)
@walk_options
@click.option("--layer", default=None, help="Grad-CAM layer (default: the last convolution).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@inversion_options
@tuning_options
@runner_options
@quiet_option
def explain(images, run_dir, out, steps, extrapolate, layer, overwrite, settings, seed,
            tuning_for, runner, threads_per_worker, beam_args, quiet):
    """Explain radiographs: inversion, traversal, difference map and Grad-CAM, in one report.

    IMAGES are files or folders (every image file under them). Writes
    OUT/report.html (self-contained: open it in any browser), OUT/explain.json
    and, per image, the Figure 2 strip, the traversal strip and GIF, and the
    p(positive)-by-step plot. Inversions the GAN cannot reproduce faithfully are
    marked untrusted everywhere.

    With --runner beam (for whole data sets) the images are explained on Apache
    Beam and written as they finish: OUT/results holds every image's scores
    (JSON lines) and maps (compressed arrays), OUT/explain.json lists every
    image; no per-image pictures or report. A run again on the same OUT goes on
    where the last stopped.

    \b
    Example:
      covgan explain chest.png other.jpg --run runs/gan --out out/explain
      covgan explain data/rsna/images --run runs/gan --out out/all --runner beam \
        --direct_running_mode=multi_processing --direct_num_workers=2
    """
    from covgan.explain.invert import settings_for
    from covgan.explain.pipeline import explain as run_explanation
    from covgan.io import atomic_directory, check_new_directory
    from covgan.output.writers import write_explanation
    from covgan.scale.runner import is_beam
    from covgan.training.runs import load_run

    # Click hands options it does not know to the variadic IMAGES: they are Beam's.
    beam_args = [*beam_args, *(a for a in images if a.startswith("--"))]
    refuse_beam_options_on_a_local_run(runner, beam_args)
    images = expanded(a for a in images if not a.startswith("--"))
    if is_beam(runner):
        from covgan.scale.explain_command import explain_on_beam

        return emit(explain_on_beam(
            images, run_dir, out, steps=steps, extrapolate=extrapolate, layer=layer,
            overwrite=overwrite, settings=settings, seed=seed, tuning_for=tuning_for,
            runner=runner, threads=threads_per_worker, beam_args=beam_args))
    check_new_directory(out, overwrite=overwrite)
    run = load_run(run_dir)
    settings = settings_for(run.generator, settings)  # as it ran, recorded
    tuning = tuning_for(run.generator)
    pixels, warnings = load_images(images)
    seed_everything(seed)
    with ImageProgress(len(pixels), "explaining", quiet) as progress:
        result = run_explanation(run.generator, run.classifier, pixels, settings=settings,
                                 steps=steps, extrapolate=extrapolate, layer=layer, seed=seed,
                                 encoder=encoder_of(run, settings), tuning=tuning,
                                 progress=progress.advance)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        payload = write_explanation(
            tmp,
            out,
            images,
            pixels,
            result,
            warnings,
            steps=steps,
            settings={"run": run_dir, "extrapolate": extrapolate, **vars(settings),
                      "tuning": dataclasses.asdict(tuning)},
        )
    emit(payload)
