"""`covgan train` and `covgan evaluate`: the conditional GAN and the paper's evaluation."""

import dataclasses
import pathlib
import sys

import click

from covgan.cli.common import (
    RUN_HELP,
    SEED_HELP,
    emit,
    seed_everything,
    warn_if_bfloat16_is_emulated,
)
from covgan.cli.explain import encoder_of, inversion_options, tuning_options
from covgan.cli.progress import ImageProgress, quiet_option
from covgan.models.options import PADDING, UPSAMPLING
from covgan.training.presets import PRESET_TRAINING, GANTrainingConfig, preset_help

GAN = GANTrainingConfig(data="", classifier="", out="")  # its defaults


@click.command(short_help="Train the conditional GAN against the frozen classifier.")
@click.option("--data", "data_spec", required=True, metavar="DATA",
              help="A prepared data folder, or `phantom`.")
@click.option("--classifier", "classifier_file", required=True, type=click.Path(dir_okay=False),
              help="The frozen classifier (.keras; 1-unit sigmoid or 2-unit softmax).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--preset", type=click.Choice(sorted(PRESET_TRAINING)), default=GAN.preset,
              show_default=True,
              help="tiny: small G and D with covgan's training levers; films: tiny for real "
                   "radiographs (DiffAugment, reflection padding, 150 epochs); paper: the "
                   "authors' G and D and Eq. 1 as written.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help=f"Epochs {preset_help('epochs')}.")
@click.option("--batch-size", type=click.IntRange(min=2), default=None,
              help=f"Global batch {preset_help('batch_size')}.")
@click.option("--g-lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help=f"Generator Adam learning rate {preset_help('g_learning_rate')}.")
@click.option("--d-lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help=f"Discriminator Adam learning rate {preset_help('d_learning_rate')}.")
@click.option("--lambda-cls", type=click.FloatRange(min=0), default=None,
              help="Weight of the classifier cross-entropy in G's loss, Eq. 1 "
                   f"{preset_help('lambda_cls')}.")
@click.option("--lambda-locality", type=click.FloatRange(min=0), default=None,
              help="Weight of an L1 + total-variation penalty on G(z1, z2) - G(z1, 0) for "
                   "positive samples: the change z2 makes should be small and compact "
                   f"(0: Eq. 1 as in the paper) {preset_help('lambda_locality')}.")
@click.option("--lambda-spread", type=click.FloatRange(min=0), default=None,
              help="Weight of the overlap between where two disease codes change the same "
                   "image: codes should change different places, so an inversion can choose "
                   "where a film's change lies (0: off, as in the paper; default 0).")
@click.option("--class-critic/--no-class-critic", default=None,
              help="A class-aware critic (projection discriminator) that sees the true label "
                   "of real images and the intended class of generated ones, beside C's term "
                   f"(off: the paper's class-blind D) {preset_help('class_critic')}.")
@click.option("--gated-residual/--no-gated-residual", default=None,
              help="G draws a base image from z1 and a masked change from z2, so G(z1, 0) is "
                   "the base exactly and a traversal only turns up that change (off: the "
                   f"paper's G of [z1, z2]) {preset_help('gated_residual')}.")
@click.option("--upsampling", type=click.Choice(UPSAMPLING), default=None,
              help="How G doubles its feature maps: nearest (the paper's; each 3x3 convolution "
                   "after it draws a period-2 pattern, the stripes) or bilinear "
                   f"{preset_help('upsampling')}.")
@click.option("--padding", type=click.Choice(PADDING), default=None,
              help="How G's convolutions pad: zeros (the paper's; the edge is visible to every "
                   f"layer and G draws artefacts there) or reflect {preset_help('padding')}.")
@click.option("--g-ema", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help="Momentum of a moving average of G's weights, saved as the generator "
                   f"(0: off) {preset_help('g_ema')}.")
@click.option("--z1-dim", type=click.IntRange(min=1), default=GAN.z1_dim, show_default=True,
              help="Size of the structure code z1.")
@click.option("--z2-dim", type=click.IntRange(min=1), default=GAN.z2_dim, show_default=True,
              help="Size of the disease code z2.")
@click.option("--inject-z2/--no-inject-z2", default=None,
              help="Also feed z2 to every generator stage; z2 = 0 still adds nothing "
                   f"{preset_help('inject_z2')}.")
@click.option("--classes", "positive_rate", type=click.Choice(["balanced", "prior"]),
              default=GAN.positive_rate, show_default=True,
              help="Sample y balanced, or with the training data's class prior.")
@click.option("--balance-by", metavar="COLUMN", default=None,
              help="A manifest column (view, site, ...) that goes with the class: weight the "
                   "critic's real images so that each class has the same mix of its values, "
                   "so the class-aware critic does not learn the class by it.")
@click.option("--augment/--no-augment", default=None,
              help=f"DiffAugment (translation, cutout) for small data {preset_help('augment')}.")
@click.option("--mixed-precision", is_flag=True,
              help="bfloat16 on CPU, float16 on GPU; both optimizers loss-scaled.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]),
              default="default", show_default=True,
              help="tf.distribute strategy (multiworker reads the cluster from TF_CONFIG).")
@click.option("--summary-every", type=click.IntRange(min=1), default=GAN.summary_every,
              show_default=True,
              help="Epochs between TensorBoard traversal images.")
@click.option("--seed", type=int, default=0, show_default=True, help=SEED_HELP)
@click.option("--init-from", type=click.Path(file_okay=False, exists=True), default=None,
              help="Start from another run's last checkpoint (G, D, optimizers, epoch count) "
                   "and train on to --epochs with this command's settings: fine-tuning, e.g. "
                   "with --lambda-locality. The architecture options must match that run's.")
def train(data_spec, classifier_file, out, preset, epochs, batch_size, g_lr, d_lr, lambda_cls,
          lambda_locality, lambda_spread, class_critic, gated_residual, upsampling, padding,
          g_ema, z1_dim, z2_dim, inject_z2, positive_rate, balance_by, augment, mixed_precision,
          strategy, summary_every, seed, init_from):
    """Train the conditional GAN (Eq. 1) against a frozen classifier.

    Writes RUN/config.json, classifier.keras (a copy), generator.keras,
    discriminator.keras, checkpoints/ and logs/ (TensorBoard: losses and
    traversal grids). Running the same command again continues a killed run.

    \b
    Example:
      covgan train --data phantom --classifier runs/classifier/classifier.keras --out runs/gan
      tensorboard --logdir runs/gan/logs
      covgan train --data phantom --classifier runs/classifier/classifier.keras \\
        --out runs/gan-local --init-from runs/gan --lambda-locality 10 --epochs 24
    """
    from covgan.data.catalog import resolve_data
    from covgan.training.gan import class_code_warning, preset_config, train_gan

    data_dir = resolve_data(data_spec)
    seed_everything(seed)
    config = preset_config(
        preset, data=str(data_dir), classifier=str(classifier_file), out=str(out),
        epochs=epochs, batch_size=batch_size, g_learning_rate=g_lr, d_learning_rate=d_lr,
        lambda_cls=lambda_cls, lambda_locality=lambda_locality, lambda_spread=lambda_spread,
        class_critic=class_critic, gated_residual=gated_residual, upsampling=upsampling,
        padding=padding, g_ema=g_ema,
        z1_dim=z1_dim, z2_dim=z2_dim, inject_z2=inject_z2, positive_rate=positive_rate,
        balance_by=balance_by, augment=augment, mixed_precision=mixed_precision, strategy=strategy,
        summary_every=summary_every, seed=seed, init_from=str(init_from or ""),
    )
    if mixed_precision:
        warn_if_bfloat16_is_emulated()
    summary = train_gan(config, verbose=1 if sys.stderr.isatty() else 2)
    warning = class_code_warning(summary)
    if warning:
        click.echo(warning, err=True)
    emit(summary)


@click.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help="A trained run folder.")
@click.option("--repeats", type=click.IntRange(min=1), default=1000, show_default=True,
              help="z1 draws per seed (each rendered with z2 = 0 and 3 z2 ~ N(0, I)).")
@click.option("--seeds", type=click.IntRange(min=1), default=5, show_default=True,
              help="Seeds of the class-consistency draws (mean and spread over them).")
@click.option("--pairs", type=click.IntRange(min=1), default=1000, show_default=True,
              help="(z1, z2) traversals scored for monotonicity.")
@click.option("--data", "data_spec", default=None, metavar="DATA",
              help="Real images for the Frechet distance (default: the run's data).")
@click.option("--seed", type=int, default=0, show_default=True, help=SEED_HELP)
def evaluate(run_dir, repeats, seeds, pairs, data_spec, seed):
    """Score a trained GAN as the paper does; writes RUN/evaluation.json.

    Class consistency (mean, std over seeds), traversal monotonicity (fraction
    and Spearman rho) and a Frechet distance on the classifier's features; and
    covgan's code overlap: how much two random codes' changes of one z1 lie in the
    same places (1: every code draws the same change).

    \b
    Example:
      covgan evaluate --run runs/gan | jq .class_consistency
    """
    import time

    import numpy as np

    from covgan.data import layout
    from covgan.data.catalog import resolve_data
    from covgan.data.pipeline import make_dataset
    from covgan.evaluation.gan import evaluate_gan
    from covgan.io import write_json
    from covgan.training.runs import load_run

    run = load_run(run_dir)
    data_dir = resolve_data(data_spec or run.config["data"])
    records = layout.read_manifest(data_dir)
    held_out = layout.select(records, layout.evaluation_split(records))
    real = np.concatenate([b[0].numpy() for b in make_dataset(data_dir, held_out, batch_size=256,
                                                               cache=None)])
    seed_everything(seed)
    started = time.perf_counter()
    result = evaluate_gan(
        run.generator, run.classifier, real, repeats=repeats, seeds=seeds, pairs=pairs,
        positive_rate=0.5, seed=seed, progress=lambda label: click.echo(label, err=True),
    )
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["run"] = str(run_dir)
    write_json(pathlib.Path(run_dir) / "evaluation.json", result)
    emit(result)


@click.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help=RUN_HELP)
@click.option("--data", "data_spec", default=None, metavar="DATA",
              help="Data with lesion masks (default: the run's data).")
@click.option("--count", type=click.IntRange(min=1), default=32, show_default=True,
              help="Held-out positives with masks to explain and score.")
@click.option("--split", type=click.Choice(["test", "val", "heldout", "train", "all"]),
              default=None,
              help="Split whose positives are scored (default: test, else val; heldout: val "
                   "and test, for more films).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inversion start seeds (--seed, --seed + 1, ...); maps that depend on the "
                   "inversion are averaged over them per image.")
@click.option("--no-curves", is_flag=True, help="Skip the deletion and insertion curves.")
@inversion_options
@tuning_options
@quiet_option
def localise(run_dir, data_spec, count, split, seeds, no_curves, settings, seed, tuning_for,
             quiet):
    """Score every explanation map against lesion masks, each against Grad-CAM.

    Maps: the traversal's |difference| and its classifier-weighted form (latent
    gradients), Grad-CAM, the input gradient and Integrated Gradients; and a map
    that never looks at the film, the training positives' mean lesion mask
    (lesion_prior: where lesions usually lie), the bar a map must clear before
    its pointing game says it read the film. Scores: pointing game, relevance
    mass inside the mask, IoU of the top pixels, pixel AUROC, deletion and
    insertion curves, and for each map a paired bootstrap 95% interval of its
    difference from Grad-CAM. Runs on held-out positives that have masks
    (phantoms, or a prepared folder with mask_path), and again over those the
    classifier itself calls positive (`called_positive`) and over those whose
    lesion lies where the prior's peak does not (`off_prior`). Writes
    RUN/localisation.json, prints it, and prints a table on stderr.

    \b
    Example:
      covgan localise --run runs/gan --count 64 --seeds 3
      covgan localise --run runs/gan_rsna --data data/rsna --split heldout --count 100
    """
    from covgan.data.annotated import annotated_positives
    from covgan.data.catalog import resolve_data
    from covgan.evaluation.lesion_prior import PRIOR_SPLIT, mask_prior, training_masks
    from covgan.evaluation.localise import score_localisation, table
    from covgan.explain.invert import settings_for
    from covgan.io import write_json
    from covgan.training.runs import load_run

    run = load_run(run_dir)
    settings = settings_for(run.generator, settings)  # as it ran, recorded
    tuning = tuning_for(run.generator)
    data_dir = resolve_data(data_spec or run.config["data"])
    films = annotated_positives(data_dir, count, split)
    training = training_masks(data_dir, films.split)
    seed_everything(seed)
    with ImageProgress(len(films.images) * seeds, "localising", quiet) as progress:
        scores = score_localisation(run.generator, run.classifier, films.images, films.masks,
                                    settings=settings, seeds=tuple(range(seed, seed + seeds)),
                                    curves=not no_curves, tie_seed=seed,
                                    encoder=encoder_of(run, settings), tuning=tuning,
                                    prior=None if training is None else mask_prior(training),
                                    progress=progress.advance)
    scores.update({"run": str(run_dir), "data": str(data_dir), "split": films.split,
                   "images": [str(r.path) for r in films.records],  # the per-image lists' order
                   "settings": dataclasses.asdict(settings),
                   "tuning": dataclasses.asdict(tuning),
                   # Where the film-blind baseline came from (None: no training masks to use).
                   "lesion_prior_from": None if training is None else {
                       "split": PRIOR_SPLIT, "masks": len(training)}})
    write_json(pathlib.Path(run_dir) / "localisation.json", scores)
    click.echo(table(scores), err=True)
    emit(scores)
