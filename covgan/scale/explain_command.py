"""`covgan explain --runner beam`: the command's side (the job's identity, explain.json); the
pipeline is `covgan.scale.explain_pipeline`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

from covgan.scale import shards
from covgan.scale.runner import pipeline_options, require_beam


def explain_on_beam(images, run_dir, out, *, steps, extrapolate, layer, overwrite, settings,
                    seed, tuning_for, runner, threads, beam_args) -> dict:
    """Explains `images` (paths) on Beam into OUT, resuming the same job there, and writes
    OUT/explain.json; returns its payload.

    Raises:
        CovganError: Beam missing, OUT holding another job, options neither covgan's nor
            Beam's, a failed pipeline (what finished is kept).
    """
    require_beam()
    options = pipeline_options(runner, beam_args)
    from covgan.explain.invert import settings_for
    from covgan.scale.explain_pipeline import ExplainJob, run_explanations, write_summary
    from covgan.training.runs import load_run

    run_model = load_run(run_dir)
    settings = settings_for(run_model.generator, settings)  # as it ran, recorded
    tuning = tuning_for(run_model.generator)
    paths = [str(pathlib.Path(p).resolve()) for p in images]
    out = pathlib.Path(out).resolve()
    job = ExplainJob(run_dir=str(pathlib.Path(run_dir).resolve()), out=str(out),
                     settings=settings, tuning=tuning, steps=steps, extrapolate=extrapolate,
                     layer=layer, seed=seed, threads=threads)
    recorded = {"run": str(run_dir), "steps": steps, "extrapolate": extrapolate,
                "layer": layer, "seed": seed, **dataclasses.asdict(settings),
                "tuning": dataclasses.asdict(tuning)}
    describe = {"command": "explain", "run": job.run_dir,
                "models": shards.model_digests(run_dir), "images": len(paths),
                "images_sha256": hashlib.sha256(json.dumps(paths).encode()).hexdigest(),
                "settings": recorded}
    lines = run_explanations(job, paths, options=options, overwrite=overwrite, describe=describe)
    return write_summary(out, lines, recorded)
