"""`covgan audit --runner beam`: the audit as an Apache Beam pipeline.

    manifest -> batches of 64 in data order (GroupByKey) -> classify (C once per worker)
             -> each group's first --count images (Top.Smallest per group)
             -> chunks of EXPLAIN_CHUNK chosen images in data order (GroupByKey)
             -> explain each chunk (`audit.explain_rows`; G and C once per worker),
                write its part (`shards`)
             -> with the chunks an earlier run on the same OUT wrote: read every part,
                sum its images' evidence into one AuditAccumulator (a combiner)
                -> OUT/.beam/

The command then finishes the audit from that accumulator with the in-process audit's own
code (`audit_parts.finish_audit`) and writes audit.json and audit.html as it always does.
Chunks hold the same images as the in-process audit's, so each image is explained alike: the
inversion is sensitive to its batch through floating point (an image explained with other
images beside it ends elsewhere), so the batches are keyed by position and grouped, not
formed by BatchElements, whose sizes adapt to timing. (GroupIntoBatches would do the same,
but its real-time timer sends the DirectRunner to its single-process fallback.)
Imports Apache Beam: the command imports this module only for a Beam run.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import apache_beam as beam
import numpy as np
from apache_beam.utils.shared import Shared

from covgan.errors import CovganError
from covgan.evaluation.audit import EXPLAIN_CHUNK
from covgan.evaluation.audit_parts import FIGURE_KEYS, GROUPS, AuditAccumulator
from covgan.io import atomic_path, write_json
from covgan.scale import shards
from covgan.scale.model_dofn import WithModels
from covgan.scale.runner import failures_in_one_line
from covgan.scale.workers import fail_once_after_writing, prepared_images

# Images classified together, as `audit.probabilities_of` batches them.
CLASSIFY_BATCH = 64
WORK = ".beam"


@dataclasses.dataclass(frozen=True)
class AuditJob:
    """What every worker needs to explain its chunks: plain values, pickled to the workers."""

    run_dir: str
    data_dir: str
    out: str
    count: int
    threshold: float
    seed: int
    settings: object  # InversionSettings
    tuning: object  # TuningSettings
    lung_dir: str | None = None  # --lung-masks
    threads: int = 0  # TensorFlow threads per worker (0: its default)


def _groups_of(label, p, threshold):
    predicted = p >= threshold
    return [group for group, member in zip(GROUPS, (label == 1, label == 0 and predicted,
                                                   label == 1 and not predicted)) if member]


def _encoded(rows, lines):
    """A chunk's lines (numbers) and arrays, as its part keeps them."""
    arrays = {}
    for k, row in enumerate(rows):
        arrays[f"{k}/image"] = row["image"]
        for method, value in row["maps"].items():
            arrays[f"{k}/maps/{method}"] = value
        for key in FIGURE_KEYS:
            if key not in row["maps"]:  # Grad-CAM is one of the maps
                arrays[f"{k}/figure/{key}"] = row["figure"][key]
    return lines, arrays


def decoded(lines, arrays):
    """A part's rows, with their arrays as stored (what the accumulator adds)."""
    rows = []
    for k, line in enumerate(lines):
        image = arrays[f"{k}/image"]
        maps = {m: arrays[f"{k}/maps/{m}"] for m in line["evidence"]["shares"]}
        rows.append({**line, "image": image, "maps": maps,
                     "figure": {"image": image[..., None],
                                **{key: maps[key] if key in maps else arrays[f"{k}/figure/{key}"]
                                   for key in FIGURE_KEYS}}})
    return rows


def read_part(out, chunk):
    return decoded(shards.read_lines(out, chunk), shards.read_arrays(out, chunk))


class Classify(WithModels):
    """Each batch's p(positive): (position, label, p) per image."""

    def process(self, batch):
        from covgan.evaluation.audit import probabilities_of

        members = sorted(batch[1], key=lambda m: m[0])
        images = prepared_images(self.job.data_dir, [r for _, r in members])
        for (position, record), p in zip(members, probabilities_of(
                self.models.classifier, images, batch=CLASSIFY_BATCH)):
            yield position, int(record.label), float(p)


class Explain(WithModels):
    """Each chunk explained and written as its part; its number goes on."""

    def __init__(self, job, shared, values):
        super().__init__(job, shared)
        self.values = values

    def process(self, batch):
        from covgan.data.region_masks import lung_mask, marker_mask
        from covgan.evaluation.audit import explain_rows

        job = self.job
        chunk, members = batch[0], sorted(batch[1], key=lambda m: m[0])
        if chunk in shards.done_chunks(job.out):  # a retry after the part was written
            yield chunk
            return
        records = [m[1] for m in members]
        rows = explain_rows(
            self.models.generator, self.models.classifier, prepared_images(job.data_dir, records),
            lungs=[lung_mask(job.data_dir, r, job.lung_dir) for r in records],
            markers=[marker_mask(job.data_dir, r) for r in records],
            settings=job.settings, seed=job.seed, encoder=self.models.encoder,
            tuning=job.tuning)
        lines = [{"id": record.path, "position": position, "groups": groups,
                  "value": None if self.values is None else self.values[position],
                  "label": int(record.label), "trusted": row["trusted"],
                  "evidence": row["evidence"]}
                 for (position, record, groups), row in zip(members, rows)]
        shards.write_part(job.out, chunk, *_encoded(rows, lines))
        fail_once_after_writing(chunk)
        yield chunk


class Combine(beam.CombineFn):
    """The combiner: images' rows into one AuditAccumulator."""

    def create_accumulator(self):
        return AuditAccumulator()

    def add_input(self, accumulator, row):
        accumulator.add(row)
        return accumulator

    def merge_accumulators(self, accumulators):
        first, *rest = accumulators
        for other in rest:
            first.merge(other)
        return first

    def extract_output(self, accumulator):
        return accumulator


def _plan(_, firsts, records, done, out):
    """(chunk, (position, record, groups)) of every chosen image in a chunk not done: the
    groups' first images, by position, EXPLAIN_CHUNK to a chunk (as `audit_images`). The
    chosen positions are written to OUT/.beam/plan.json, against which the command checks
    the finished run."""
    chosen = {}
    for group, positions in firsts.items():
        for position in positions:
            chosen.setdefault(position, []).append(group)
    write_json(pathlib.Path(out) / WORK / "plan.json", {"positions": sorted(chosen)})
    for rank, position in enumerate(sorted(chosen)):
        chunk = rank // EXPLAIN_CHUNK
        if chunk not in done:
            yield chunk, (position, records[position],
                          sorted(chosen[position], key=GROUPS.index))


def build(pipeline, job: AuditJob, entries, done, shared, attribute=None):
    """Adds the audit to `pipeline`.

    Args:
        job: the job.
        entries: [(position, Record)] of the audited split, in data order.
        done: chunks an earlier run finished (read from OUT, not explained again).
        shared: a `apache_beam.utils.shared.Shared` for the models.
        attribute: per position the image's attribute value, or None.
    """
    values = None if attribute is None else dict(enumerate(attribute))
    classified = (pipeline
                  | "Manifest" >> beam.Create(entries)
                  | "KeyForClassifying" >> beam.Map(lambda e: (e[0] // CLASSIFY_BATCH, e))
                  | "BatchForClassifying" >> beam.GroupByKey()
                  | "Classify" >> beam.ParDo(Classify(job, shared)))
    _ = (classified
         | "AllProbabilities" >> beam.combiners.ToList()
         | "SaveProbabilities" >> beam.Map(_save_probabilities, job.out))
    firsts = (classified
              | "Groups" >> beam.FlatMap(lambda c: [(g, c[0]) for g in _groups_of(
                  c[1], c[2], job.threshold)])
              | "FirstPerGroup" >> beam.combiners.Top.SmallestPerKey(job.count))
    new = (pipeline
           | "Start" >> beam.Create([None])
           | "Plan" >> beam.FlatMap(_plan, beam.pvalue.AsDict(firsts), dict(entries),
                                    set(done), job.out)
           | "BatchForExplaining" >> beam.GroupByKey()
           | "Explain" >> beam.ParDo(Explain(job, shared, values)))
    earlier = pipeline | "DoneChunks" >> beam.Create(sorted(done))
    # The aggregate reads every image as its part keeps it, written now or by an earlier run:
    # a resumed audit sums exactly what a run from scratch sums. The reshuffle keeps the
    # reading and summing out of the explaining stage.
    _ = ((new, earlier)
         | "AllChunks" >> beam.Flatten()
         | "AfterWriting" >> beam.Reshuffle()
         | "ReadParts" >> beam.FlatMap(lambda chunk: read_part(job.out, chunk))
         | "Aggregate" >> beam.CombineGlobally(Combine())
         | "SaveAggregate" >> beam.Map(_save_aggregate, job.out))


def _save_probabilities(classified, out):
    by_position = sorted(classified)
    write_json(pathlib.Path(out) / WORK / "probabilities.json",
               {"positions": [c[0] for c in by_position], "p": [c[2] for c in by_position]})


def _save_aggregate(accumulator, out):
    numbers, arrays = accumulator.state()
    folder = pathlib.Path(out) / WORK
    with atomic_path(folder / "aggregate.npz") as tmp:
        np.savez(tmp, **arrays)
    write_json(folder / "aggregate.json", numbers)


def load_results(out) -> tuple[np.ndarray, AuditAccumulator]:
    """What the pipeline left in OUT/.beam: p(positive) of every image in position order, and
    the merged accumulator."""
    folder = pathlib.Path(out) / WORK
    p = json.loads((folder / "probabilities.json").read_text())["p"]
    with np.load(folder / "aggregate.npz", allow_pickle=False) as arrays:
        loaded = {name: arrays[name] for name in arrays.files}
    numbers = json.loads((folder / "aggregate.json").read_text())
    return np.asarray(p, np.float32), AuditAccumulator.from_state(numbers, loaded)


def figure_reader(out, positions):
    """position -> {image, FIGURE_KEYS...} of an explained image, read from its part (the
    chunk follows from its rank among the explained `positions`)."""
    rank = {p: k for k, p in enumerate(sorted(positions))}
    cache = {}

    def figure_of(position):
        chunk, k = divmod(rank[position], EXPLAIN_CHUNK)
        if chunk not in cache:
            cache.clear()  # parts are read in order of need; keep one
            cache[chunk] = read_part(out, chunk)
        return cache[chunk][k]["figure"]

    return figure_of


def run_audit(job: AuditJob, entries, *, attribute, options, overwrite, describe):
    """Runs the pipeline on `options` (Beam's PipelineOptions) and returns (p of every image,
    accumulator). `describe`: the job as job.json records it (a resumed run must match)."""
    done = shards.start_or_resume(job.out, describe, overwrite=overwrite)
    with failures_in_one_line(job.out):
        with beam.Pipeline(options=options) as pipeline:
            build(pipeline, job, entries, done, Shared(), attribute)
    p, accumulator = load_results(job.out)
    check_complete(job.out, accumulator)
    return p, accumulator


def check_complete(out, accumulator):
    """Raises CovganError unless every planned chunk's part is there and the aggregate holds
    exactly the images the parts hold: a runner that reported success over lost work is not
    believed."""
    planned = json.loads((pathlib.Path(out) / WORK / "plan.json").read_text())["positions"]
    chunks = set(range(-(-len(planned) // EXPLAIN_CHUNK)))
    missing = sorted(chunks - shards.done_chunks(out))
    written = sorted(line["position"] for chunk in sorted(chunks - set(missing))
                     for line in shards.read_lines(out, chunk))
    if missing or written != planned or accumulator.positions() != planned:
        raise CovganError(
            f"The Beam run finished incomplete: {len(missing)} of {len(chunks)} chunks "
            f"unwritten, {len(planned) - len(accumulator.positions())} of {len(planned)} "
            "images missing from the aggregate; run the same command again to go on.")
