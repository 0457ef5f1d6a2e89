"""A Beam run's parts on disk: written whole, read back, and a folder resumed only by the same
job."""

import json

import numpy as np
import pytest

from covgan.errors import CovganError
from covgan.scale import shards

JOB = {"command": "audit", "run": "/runs/gan", "settings": {"steps": 5, "sizes": (8, 2)}}


def test_a_part_round_trips_its_lines_and_its_arrays_in_255_steps(tmp_path):
    picture = np.linspace(0, 1, 128 * 128, dtype=np.float32).reshape(128, 128)
    shards.write_part(tmp_path, 3, [{"id": "a.png", "p": 0.25}, {"id": "b.png", "p": 0.75}],
                      {"0/map": picture, "0/probabilities": np.array([0.1, 0.2, 0.3])})
    assert shards.done_chunks(tmp_path) == {3}
    assert [line["id"] for line in shards.all_lines(tmp_path)] == ["a.png", "b.png"]
    arrays = shards.read_arrays(tmp_path, 3)
    assert np.abs(arrays["0/map"] - picture).max() <= 0.5 / 255 + 1e-7
    np.testing.assert_array_equal(arrays["0/probabilities"], [0.1, 0.2, 0.3])  # kept exact
    assert not [p for p in (tmp_path / "results").iterdir() if p.name.startswith(".")]


def test_only_the_same_job_resumes_a_folder(tmp_path):
    out = tmp_path / "out"
    assert shards.start_or_resume(out, JOB, overwrite=False) == set()
    shards.write_part(out, 0, [{"id": "a.png"}], {})
    assert shards.start_or_resume(out, json.loads(json.dumps(JOB)), overwrite=False) == {0}
    other = {**JOB, "settings": {"steps": 6, "sizes": (8, 2)}}
    with pytest.raises(CovganError, match=r"another job's results \(it differs in: settings\)"):
        shards.start_or_resume(out, other, overwrite=False)
    assert shards.start_or_resume(out, other, overwrite=True) == set()  # afresh
    assert shards.done_chunks(out) == set()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(CovganError, match="holds no Beam job"):
        shards.start_or_resume(tmp_path / "mine", JOB, overwrite=False)
