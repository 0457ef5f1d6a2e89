"""`covgan audit`: a whole data set's evidence, to catch a classifier that relies on shortcuts."""

import dataclasses

import click

from covgan.cli.common import OUT_HELP, RUN_HELP, emit, seed_everything
from covgan.cli.explain import encoder_of, inversion_options, tuning_options
from covgan.cli.progress import ImageProgress, quiet_option
from covgan.cli.runner_options import PASS_THROUGH, runner_options
from covgan.explain.settings import (
    AUDIT_INVERSION_STEPS,
    AUDIT_RESTARTS,
    AUDIT_TUNING_BCE,
    AUDIT_TUNING_FOCUS,
    AUDIT_TUNING_STEPS,
)


def load_split(data_spec, split, lung_dir):
    """(data folder, split, images, labels, lung masks, marker masks, records) of one split
    ('all': every image)."""
    import numpy as np

    from covgan.data import layout
    from covgan.data.catalog import resolve_data
    from covgan.data.pipeline import make_dataset
    from covgan.data.region_masks import lung_mask, marker_mask
    from covgan.errors import CovganError

    data_dir = resolve_data(data_spec)
    records = layout.read_manifest(data_dir)
    split = split or layout.evaluation_split(records)
    chosen = layout.select(records, split)
    if not chosen:
        raise CovganError(f"{data_dir} has no {split!r} split.")
    batches = list(make_dataset(data_dir, chosen, batch_size=64, cache=None))
    images = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    lungs = [lung_mask(data_dir, r, lung_dir) for r in chosen]
    markers = [marker_mask(data_dir, r) for r in chosen]
    return data_dir, split, images, labels, lungs, markers, chosen


@click.command(context_settings=PASS_THROUGH)
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help=RUN_HELP)
@click.option("--data", "data_spec", default=None, metavar="DATA",
              help="The data to audit (default: the run's data).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help=OUT_HELP)
@click.option("--split", type=click.Choice(["train", "val", "test", "heldout", "all"]),
              default=None,
              help="Split of DATA (default: test, else val; heldout: val and test).")
@click.option("--attribute", metavar="COLUMN", default=None,
              help="A manifest column (view, sex, age, site, ...; `data prepare --metadata`): "
                   "the classifier's scores and, within each class, its p(positive) per value, "
                   "flagged where it reads the column; every group's maps, strips and global "
                   "change value by value.")
@click.option("--count", type=click.IntRange(min=1), default=200, show_default=True,
              help="Images explained per group at most.")
@click.option("--external", "external_spec", default=None, metavar="DATA2",
              help="A second prepared folder (every image): the classifier's metrics beside "
                   "its own split's, and the same audit on it.")
@click.option("--lung-masks", "lung_dir", type=click.Path(exists=True, file_okay=False),
              default=None, help="Lung masks named by image stem, where DATA has none of its "
                                 "own (else an approximate estimate, flagged as such).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
@inversion_options(steps=AUDIT_INVERSION_STEPS, restarts=AUDIT_RESTARTS)
@tuning_options(steps=AUDIT_TUNING_STEPS, bce_weight=AUDIT_TUNING_BCE,
                residual_focus=AUDIT_TUNING_FOCUS)
@runner_options
@quiet_option
def audit(run_dir, data_spec, out, split, attribute, count, external_spec, lung_dir, overwrite,
          settings, seed, tuning_for, runner, threads_per_worker, beam_args, quiet):
    """Audit a classifier's evidence over a data set: where every map's mass lies, what the
    walk changes about the whole chest, and flags in plain language.

    Groups: the positives, and the classifier's false positives and false
    negatives (each up to --count images). Per group and map (the traversal's,
    latent gradients on the walk and on the film, Grad-CAM, input gradient,
    Integrated Gradients): the mean map and its mass by region (lungs, the rest
    of the thorax, outside the body, the border band, the four corners); from
    negative counterpart to reconstruction: mean intensity, contrast, thorax
    width and height, lung area and border brightness with 95% intervals. With
    --attribute COLUMN, all of it by the column's values too, led by whether the
    classifier reads the column within a class. Writes OUT/audit.html
    (self-contained) and OUT/audit.json, and prints the JSON.

    With --runner beam the images are explained on Apache Beam (each chosen
    image once, written to OUT/results as it finishes); a run again on the same
    OUT goes on where the last stopped.

    \b
    Example:
      covgan audit --run runs/gan --out out/audit --external data/other_hospital
      covgan audit --run runs/gan_rsna --data data/rsna --split heldout \
        --attribute view --out out/audit_view
      covgan audit --run runs/gan --out out/audit --runner beam \
        --direct_running_mode=multi_processing --direct_num_workers=2 --threads-per-worker 1
    """
    from covgan.data.layout import class_names, column_values
    from covgan.evaluation.attributes import attribute_values
    from covgan.evaluation.audit import (
        audit_images,
        choose_groups,
        chosen_images,
        probabilities_of,
    )
    from covgan.evaluation.metrics import classification_scores
    from covgan.explain.invert import settings_for
    from covgan.io import atomic_directory, check_new_directory, write_json
    from covgan.output.audit_report import write_audit_report
    from covgan.scale.runner import is_beam
    from covgan.training.runs import load_run

    if is_beam(runner):
        from covgan.scale.audit_command import audit_on_beam

        return emit(audit_on_beam(
            run_dir, data_spec, out, split=split, attribute=attribute, count=count,
            external=external_spec, lung_dir=lung_dir, overwrite=overwrite, settings=settings,
            seed=seed, tuning_for=tuning_for, runner=runner, threads=threads_per_worker,
            beam_args=beam_args))
    check_new_directory(out, overwrite=overwrite)
    run = load_run(run_dir)
    settings = settings_for(run.generator, settings)  # as it ran, recorded
    tuning = tuning_for(run.generator)
    seed_everything(seed)

    def audited(spec, chosen_split):
        """One data set's audit, and the classifier's scores on it (C read once per image)."""
        folder, chosen_split, images, labels, lungs, markers, records = load_split(
            spec, chosen_split, lung_dir)
        values = names = None
        if attribute:  # a column no film has fails here, before any inversion
            values = attribute_values(column_values(records, attribute))[0]
            names = class_names(records)
        p = probabilities_of(run.classifier, images)
        total = len(chosen_images(choose_groups(labels, p, count, 0.5)))
        with ImageProgress(total, f"auditing {spec}", quiet) as progress:
            result, pictures = audit_images(run.generator, run.classifier, images, labels, p,
                                            lungs=lungs, markers=markers, count=count,
                                            settings=settings, seed=seed,
                                            encoder=encoder_of(run, settings), tuning=tuning,
                                            attribute=values, attribute_name=attribute,
                                            class_names=names, progress=progress.advance)
        scores = {**classification_scores(labels, p, 0.5), "data": str(folder),
                  "split": chosen_split}
        return folder, chosen_split, result, pictures, scores

    data_dir, split, result, pictures, own = audited(data_spec or run.config["data"], split)
    result.update({"run": str(run_dir), "data": str(data_dir), "split": split,
                   "settings": dataclasses.asdict(settings),
                   "tuning": dataclasses.asdict(tuning)})
    external_pictures = None
    if external_spec:
        _, _, other, external_pictures, theirs = audited(external_spec, "all")
        result["external"] = {"own": own, "external": theirs, "audit": other}
    with atomic_directory(out, overwrite=overwrite) as tmp:
        write_json(tmp / "audit.json", result)
        write_audit_report(tmp / "audit.html", result, pictures, external_pictures)
    emit(result)
