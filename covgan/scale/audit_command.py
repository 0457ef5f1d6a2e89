"""`covgan audit --runner beam`: the command's side of a Beam audit (what to audit, the job's
identity, the finished files); the pipeline is `covgan.scale.audit_pipeline`."""

from __future__ import annotations

import dataclasses
import pathlib

from covgan.errors import CovganError
from covgan.io import atomic_path, write_json
from covgan.scale import shards
from covgan.scale.runner import pipeline_options, require_beam


def audit_on_beam(run_dir, data_spec, out, *, split, attribute, count, external, lung_dir,
                  overwrite, settings, seed, tuning_for, runner, threads, beam_args) -> dict:
    """Runs the audit on Beam into OUT (resuming the same job there) and writes
    OUT/audit.json and OUT/audit.html as the in-process audit does; returns the result.

    Raises:
        CovganError: Beam missing, --external (not on Beam yet), OUT holding another job,
            options neither covgan's nor Beam's.
    """
    require_beam()
    if external:
        raise CovganError("--external is not run on Beam yet: audit the second set with its "
                          "own command (--data DATA2 --split all).")
    options = pipeline_options(runner, beam_args)
    from covgan.data import layout
    from covgan.data.catalog import resolve_data
    from covgan.evaluation.attributes import attribute_values
    from covgan.evaluation.audit import audit_header
    from covgan.evaluation.audit_parts import finish_audit
    from covgan.explain.invert import settings_for
    from covgan.explain.settings import DEFAULT_MAP
    from covgan.output.audit_report import write_audit_report
    from covgan.scale.audit_pipeline import AuditJob, figure_reader, run_audit
    from covgan.training.runs import load_run

    run = load_run(run_dir)
    settings = settings_for(run.generator, settings)  # as it ran, recorded
    tuning = tuning_for(run.generator)
    shown = resolve_data(data_spec or run.config["data"])  # as the in-process audit names it
    data_dir = pathlib.Path(shown).resolve()  # as the workers read it
    records = layout.read_manifest(data_dir)
    split = split or layout.evaluation_split(records)
    chosen = layout.select(records, split)
    if not chosen:
        raise CovganError(f"{data_dir} has no {split!r} split.")
    values = names = None
    if attribute:  # a column no film has fails here, before any worker starts
        values = attribute_values(layout.column_values(chosen, attribute))[0]
        names = layout.class_names(chosen)
    out = pathlib.Path(out).resolve()
    job = AuditJob(run_dir=str(pathlib.Path(run_dir).resolve()), data_dir=str(data_dir),
                   out=str(out), count=count, threshold=0.5, seed=seed, settings=settings,
                   tuning=tuning, lung_dir=str(pathlib.Path(lung_dir).resolve())
                   if lung_dir else None, threads=threads)
    describe = {"command": "audit", "run": job.run_dir,
                "models": shards.model_digests(run_dir), "data": job.data_dir,
                "split": split, "count": count, "threshold": job.threshold, "seed": seed,
                "settings": dataclasses.asdict(settings), "tuning": dataclasses.asdict(tuning),
                "attribute": attribute, "lung_masks": job.lung_dir}
    p, accumulator = run_audit(job, list(enumerate(chosen)), attribute=values,
                               options=options, overwrite=overwrite, describe=describe)
    labels = [r.label for r in chosen]
    result = audit_header(labels, p, threshold=job.threshold, attribute=values,
                          attribute_name=attribute, class_names=names, seed=seed)
    result, pictures = finish_audit(result, accumulator,
                                    figure_reader(out, accumulator.positions()),
                                    default_map=DEFAULT_MAP, seed=seed)
    result.update({"run": str(run_dir), "data": str(shown), "split": split,
                   "settings": dataclasses.asdict(settings),
                   "tuning": dataclasses.asdict(tuning), "results": str(out / shards.RESULTS)})
    write_json(out / "audit.json", result)
    with atomic_path(out / "audit.html") as tmp:
        write_audit_report(tmp, result, pictures)
    return result
