"""A Beam run's results on disk: per chunk of images one part, written atomically, so that a
run killed or retried leaves each image once and a run again on the same folder goes on.

```
OUT/
  job.json                 what was asked (run and its model files' digests, data, settings):
                           a run on the same OUT resumes only the same job
  results/part-000012.jsonl  one line per image of chunk 12: its id and every score
  results/part-000012.npz    that chunk's arrays (maps, images), compressed, in 1/255 steps
```

A chunk's number follows from the job alone (the chosen images in data order, EXPLAIN_CHUNK
to a chunk), so a retried or resumed chunk has the same images and the same name: its part
is replaced, never doubled. The .npz is written first and the .jsonl last; a chunk is done
when its .jsonl is there.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import shutil
from collections.abc import Iterator, Mapping

import numpy as np

from covgan.errors import CovganError
from covgan.io import atomic_path, write_json

RESULTS = "results"
JOB = "job.json"
# Images and maps (values in [0, 1]) are kept in 1/255 steps, as the pages show them: every
# score is computed from the full-precision arrays before they are stored, and a chunk of 16
# images with every map takes about 1 MB instead of 10.
LEVELS = 255


def part_stem(chunk: int) -> str:
    return f"part-{chunk:06d}"


def write_part(out: str | os.PathLike, chunk: int, lines: list[dict],
               arrays: Mapping[str, np.ndarray]) -> None:
    """Writes chunk `chunk`'s lines and arrays (arrays first; the lines make it done)."""
    folder = pathlib.Path(out) / RESULTS
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: _stored(a) for name, a in arrays.items()})
    with atomic_path(folder / f"{part_stem(chunk)}.npz") as tmp:
        tmp.write_bytes(buffer.getvalue())
    with atomic_path(folder / f"{part_stem(chunk)}.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _stored(array):
    """Pictures (more than a few values) in 1/255 steps as uint8; scalars and short vectors
    (probabilities) as they are."""
    array = np.asarray(array)
    if array.dtype.kind != "f" or array.size <= 3:
        return array
    return np.round(np.clip(array, 0.0, 1.0) * LEVELS).astype(np.uint8)


def _loaded(array):
    array = np.asarray(array)
    return array.astype(np.float32) / LEVELS if array.dtype == np.uint8 else array


def done_chunks(out: str | os.PathLike) -> set[int]:
    """The chunks whose part is complete."""
    folder = pathlib.Path(out) / RESULTS
    return {int(p.stem.split("-")[1]) for p in folder.glob("part-*.jsonl")}


def read_lines(out: str | os.PathLike, chunk: int) -> list[dict]:
    path = pathlib.Path(out) / RESULTS / f"{part_stem(chunk)}.jsonl"
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_arrays(out: str | os.PathLike, chunk: int) -> dict[str, np.ndarray]:
    path = pathlib.Path(out) / RESULTS / f"{part_stem(chunk)}.npz"
    with np.load(path, allow_pickle=False) as arrays:
        return {name: _loaded(arrays[name]) for name in arrays.files}


def all_lines(out: str | os.PathLike) -> Iterator[dict]:
    """Every image's line, chunk by chunk."""
    for chunk in sorted(done_chunks(out)):
        yield from read_lines(out, chunk)


def model_digests(run_dir: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of each model file of a run: a resumed job must explain with the same models."""
    digests = {}
    for path in sorted(pathlib.Path(run_dir).glob("*.keras")):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digests[path.name] = digest.hexdigest()
    return digests


def start_or_resume(out: str | os.PathLike, job: dict, *, overwrite: bool) -> set[int]:
    """Prepares OUT for `job` and returns the chunks already done there.

    A new or empty OUT (or any OUT with `overwrite`) starts afresh; an OUT holding the same
    job's parts resumes.

    Raises:
        CovganError: OUT holds something else (another job's results, other files), named.
    """
    out = pathlib.Path(out)
    job = json.loads(json.dumps(job))  # as job.json holds it (tuples as lists)
    if out.exists() and not out.is_dir():
        raise CovganError(f"{out} exists and is not a folder.")
    recorded = out / JOB
    if overwrite and out.exists():
        shutil.rmtree(out)
    elif out.is_dir() and any(out.iterdir()):
        if not recorded.exists():
            raise CovganError(f"{out} exists, is not empty and holds no Beam job "
                              f"({JOB}); pass --overwrite to replace it.")
        before = json.loads(recorded.read_text())
        changed = sorted(k for k in set(before) | set(job) if before.get(k) != job.get(k))
        if changed:
            raise CovganError(f"{out} holds another job's results (it differs in: "
                              f"{', '.join(changed)}); pass --overwrite to start afresh.")
        return done_chunks(out)
    write_json(out / JOB, job)
    return set()
