"""`covgan explain IMAGES --runner beam`: every image explained on Apache Beam, written as it
finishes (per image every score of explain.json's rows, the maps, the reconstruction, the
counterpart and the image with the walk's change taken out, under OUT/results), then
OUT/explain.json listing them all.

    images -> chunks of PROGRESS_CHUNK in input order (GroupByKey)
           -> explain each chunk (`covgan.explain.pipeline.explain`; G and C once per
              worker), write its part (`shards`)

A chunk holds the images `covgan explain` would explain together, so each image's
explanation is the one the local command gives. An image that cannot be read is listed with
its error and the rest go on. Imports Apache Beam: the command imports this module only for a
Beam run.
"""

from __future__ import annotations

import dataclasses
import pathlib

import apache_beam as beam
from apache_beam.utils.shared import Shared

from covgan.errors import CovganError
from covgan.explain.pipeline import PROGRESS_CHUNK
from covgan.io import write_json
from covgan.scale import shards
from covgan.scale.model_dofn import WithModels
from covgan.scale.runner import failures_in_one_line
from covgan.scale.workers import fail_once_after_writing

# Arrays kept per image beside its maps (Figure 2's panels).
PICTURES = ("reconstructions", "counterparts", "add_backs")


@dataclasses.dataclass(frozen=True)
class ExplainJob:
    run_dir: str
    out: str
    settings: object  # InversionSettings
    tuning: object  # TuningSettings
    steps: int
    extrapolate: int
    layer: str | None
    seed: int
    threads: int = 0


class ExplainImages(WithModels):
    """Each chunk of images explained and written as its part; its number goes on."""

    def process(self, batch):
        from covgan.data.images import UnreadableImage, load_inputs
        from covgan.explain.pipeline import explain
        from covgan.output.writers import explanation_rows, maps_held

        job = self.job
        chunk, members = batch[0], sorted(batch[1])
        if chunk in shards.done_chunks(job.out):  # a retry after the part was written
            return
        lines, readable, pixels, warnings = {}, [], [], []
        for index, path in members:
            try:
                image, notes = load_inputs([path])
            except UnreadableImage as error:
                lines[index] = {"id": path, "index": index, "source": path,
                                "error": str(error)}
                continue
            readable.append((index, path))
            pixels.append(image[0])
            warnings.append(notes[0])
        arrays = {}
        if readable:
            import numpy as np

            result = explain(self.models.generator, self.models.classifier, np.stack(pixels),
                             settings=job.settings, steps=job.steps,
                             extrapolate=job.extrapolate, layer=job.layer, seed=job.seed,
                             encoder=self.models.encoder, tuning=job.tuning)
            rows = explanation_rows([p for _, p in readable], result, warnings)
            for k, ((index, path), row) in enumerate(zip(readable, rows)):
                lines[index] = {"id": path, "index": index, **row}
                for record in maps_held(result):
                    arrays[f"{index}/maps/{record.name}"] = result[record.key][k]
                for key in PICTURES:
                    arrays[f"{index}/{key}"] = result[key][k]
        shards.write_part(job.out, chunk, [lines[i] for i, _ in members], arrays)
        fail_once_after_writing(chunk)
        yield chunk


def run_explanations(job: ExplainJob, paths, *, options, overwrite, describe) -> list[dict]:
    """Explains `paths` on Beam into OUT (resuming the same job there) and returns every
    image's line, in input order."""
    done = shards.start_or_resume(job.out, describe, overwrite=overwrite)
    with failures_in_one_line(job.out):
        with beam.Pipeline(options=options) as pipeline:
            _ = (pipeline
                 | "Images" >> beam.Create(list(enumerate(paths)))
                 | "Chunk" >> beam.Map(lambda e: (e[0] // PROGRESS_CHUNK, e))
                 | "NotDone" >> beam.Filter(lambda e: e[0] not in done)
                 | "BatchForExplaining" >> beam.GroupByKey()
                 | "Explain" >> beam.ParDo(ExplainImages(job, Shared())))
    lines = sorted(shards.all_lines(job.out), key=lambda line: line["index"])
    if [line["index"] for line in lines] != list(range(len(paths))):
        raise CovganError(f"The Beam run finished incomplete: {len(paths) - len(lines)} of "
                          f"{len(paths)} images unwritten; run the same command again to go on.")
    return lines


def write_summary(out, lines, settings: dict) -> dict:
    """OUT/explain.json: every image's row (explain.json's own, plus its id and index, or its
    error), the settings and where the arrays are."""
    from covgan.explain.maps import explanation_maps

    payload = {"images": lines, "settings": settings,
               "maps": [{"name": m.name, "key": m.key, "title": " ".join(m.title.split())}
                        for m in explanation_maps()],
               "results": str(pathlib.Path(out) / shards.RESULTS),
               "unreadable": sum(1 for line in lines if "error" in line)}
    write_json(pathlib.Path(out) / "explain.json", payload)
    return payload
