"""`covgan data synth` and `covgan data prepare`."""

import click

from covgan.cli.common import emit, progressbar


@click.group()
def data():
    """Make or import a prepared data folder (images/, masks/, manifest.csv)."""


@data.command()
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--count", type=click.IntRange(min=2), default=2000, show_default=True,
              help="Images to render, half negative, half positive.")
@click.option("--seed", type=int, default=0, show_default=True, help="Data set seed.")
@click.option("--shortcut", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of positives stamped with a spurious corner marker.")
@click.option("--lesion-contrast", type=click.FloatRange(min=0.0), default=None,
              help="Lesion density multiplier (default: the tuned value; larger is easier).")
@click.option("--preview", type=click.Path(dir_okay=False), default=None,
              help="Also write a contact sheet PNG of the first 32 images.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def synth(out, count, seed, shortcut, lesion_contrast, preview, overwrite):
    """Render synthetic chest radiographs with lesion masks into OUT.

    Negatives are clear; positives carry bilateral, peripheral, lower-zone
    ground-glass opacities and consolidations, with a pixel mask of each.

    \b
    Example:
      covgan data synth phantoms --count 2000 --preview phantoms.png
      covgan data synth cheaters --shortcut 0.8   # positives often carry a marker
    """
    from covgan.data.phantom import DEFAULT_LESION_CONTRAST
    from covgan.data.synth import contact_sheet, synthesize
    from covgan.io import check_new_directory

    check_new_directory(out, overwrite=overwrite)
    contrast = DEFAULT_LESION_CONTRAST if lesion_contrast is None else lesion_contrast
    with progressbar(count, "Rendering phantoms") as bar:
        report = synthesize(out, count=count, seed=seed, shortcut=shortcut,
                            lesion_contrast=contrast, overwrite=overwrite, progress=bar.update)
    if preview:
        contact_sheet(out, preview)
        report["preview"] = preview
    emit({"out": out, **report})


@data.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--positive", multiple=True, metavar="NAME",
              help="Class name counted positive (repeatable; replaces the defaults: "
                   "covid, covid-19, covid19, positive).")
@click.option("--negative", multiple=True, metavar="NAME",
              help="Class name counted negative (repeatable; replaces the defaults: "
                   "normal, negative, no finding).")
@click.option("--format", "source_format", default="auto", show_default=True,
              type=click.Choice(["auto", "folders", "covidx", "metadata"]),
              help="Source layout: class folders, COVIDx label files, or metadata.csv.")
@click.option("--aspect", type=click.Choice(["crop", "pad"]), default="crop", show_default=True,
              help="Make non-square images square by centre crop or edge padding.")
@click.option("--masks", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of lesion masks, one per image (same relative path or file stem); "
                   "nonzero pixels are lesion.")
@click.option("--boxes", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV of lesion boxes patientId,x,y,width,height in source pixels (RSNA "
                   "style; patientId = the image's file stem).")
@click.option("--metadata", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CSV with a row per film (age, sex, view, site, ...): every column goes "
                   "into manifest.csv, for `classifier evaluate --by` and `audit --attribute`. "
                   "A row names its film by relative path or file stem.")
@click.option("--metadata-key", metavar="COLUMN", default=None,
              help="The metadata column naming each film (default: the one that matches the "
                   "most images).")
@click.option("--patient-column", metavar="COLUMN", default=None,
              help="A metadata column naming each film's patient, so that every film of a "
                   "patient lands in the same split.")
@click.option("--stratify", metavar="COLUMNS", default="",
              help="Comma-separated columns whose mix every split keeps, for example "
                   "label,view (label and metadata columns; the split stays by patient).")
@click.option("--fold", type=int, default=0, show_default=True, metavar="K",
              help="Cross-validation fold K of 5: each fold holds out (val and test) another "
                   "fifth of the patients, so folds 0-4 hold out every patient once; 0 is the "
                   "default split.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def prepare(src, out, positive, negative, source_format, aspect, masks, boxes, metadata,
            metadata_key, patient_column, stratify, fold, overwrite):
    """Import a real radiograph collection from SRC into a prepared folder OUT.

    Reads class-folder trees (with optional train/val/test folders above the
    class folders), COVIDx label files or a metadata.csv with a `finding`
    column. Images become 128x128 grayscale PNGs. Other classes are skipped and
    counted; unreadable files are skipped and listed in OUT/report.json. Lesion
    masks (--masks) or boxes (--boxes) go through the same crop and resize into
    OUT/masks/, so `covgan localise --data OUT` can score explanations. Metadata
    (--metadata) travels into manifest.csv, and report.json counts the films
    without a row.

    \b
    Example:
      covgan data prepare ../shared/data/covid19-dataset data/covid19
      covgan data prepare covidx/ data/covidx --positive COVID-19 --negative normal
      covgan data prepare rsna/ data/rsna --boxes rsna/stage_2_train_labels.csv
      covgan data prepare ../shared/data/rsna-pneumonia-adult/images data/rsna \
        --positive Pneumonia --boxes ../shared/data/rsna-pneumonia-adult/boxes.csv \
        --metadata ../shared/data/rsna-pneumonia-adult/metadata.csv --stratify label,view
    """
    from covgan.data.prepare import prepare as prepare_data
    from covgan.data.sources import DEFAULT_NEGATIVE, DEFAULT_POSITIVE, ClassMap, discover
    from covgan.io import check_new_directory

    check_new_directory(out, overwrite=overwrite)
    class_map = ClassMap(positive or DEFAULT_POSITIVE, negative or DEFAULT_NEGATIVE)
    total = len(discover(src, class_map, source_format).images)
    with progressbar(total, "Importing") as bar:
        report = prepare_data(src, out, class_map=class_map, source_format=source_format,
                              aspect=aspect, overwrite=overwrite, progress=bar.update,
                              masks=masks, boxes=boxes, metadata=metadata,
                              metadata_key=metadata_key, patient_column=patient_column,
                              stratify=tuple(c.strip() for c in stratify.split(",") if c.strip()),
                              fold=fold)
    summary = {k: v for k, v in report.items() if k != "unreadable_files"}
    summary["unreadable_files"] = report["unreadable_files"][:20]
    emit({"out": out, **summary})
