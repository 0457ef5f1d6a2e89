"""`covgan audit --runner beam` against the in-process audit on the tiny run's phantoms: the
same audit.json, each image once in the results, through a failed bundle and a killed run."""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from covgan.cli import main
from covgan.evaluation.audit import EXPLAIN_CHUNK
from covgan.evaluation.audit_compare import compare_audits
from covgan.scale import shards
from covgan.scale.workers import FAIL_ONCE

# One worker runs this module: its tests share the local audit.
pytestmark = pytest.mark.xdist_group("beam")

# 96 phantoms, every one classified; 12 positives and 12 false positives explained, in
# chunks of EXPLAIN_CHUNK (the last one partial).
QUICK = ["--invert-steps", "5", "--restarts", "1", "--count", "12", "--split", "all",
         "--attribute", "shortcut", "--quiet"]
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2",
                 "--threads-per-worker", "1"]


def audit_args(tiny_run, phantom_dir, out):
    return ["audit", "--run", str(tiny_run), "--data", str(phantom_dir), "--out", str(out),
            *QUICK]


@pytest.fixture(scope="module")
def local_audit(tiny_run, phantom_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "audit"
    result = CliRunner().invoke(main, audit_args(tiny_run, phantom_dir, out))
    assert result.exit_code == 0, result.output
    return json.loads((out / "audit.json").read_text())


def assert_same_audit(local, out):
    beam = json.loads((out / "audit.json").read_text())
    assert beam["results"] == str(out.resolve() / shards.RESULTS)
    assert (beam["data"], beam["split"], beam["settings"]) == (
        local["data"], local["split"], local["settings"])
    compared = compare_audits(local, beam)
    assert compared["same_flags"] and compared["same_counts"], compared
    assert compared["region_share_max_difference"] < 1e-9, compared
    assert compared["marker_max_difference"]["pointing_game"] < 1e-9, compared
    # By attribute value too: the classifier's readings and each group's shares per value.
    assert beam["attribute"] == local["attribute"]
    for group, part in local["groups"].items():
        for value, summary in part.get("by_value", {}).items():
            assert compare_audits({"groups": {value: summary}, "flags": []},
                                  {"groups": {value: beam["groups"][group]["by_value"][value]},
                                   "flags": []})["region_share_max_difference"] < 1e-9
    assert (out / "audit.html").stat().st_size > 10_000


def ids_in_results(out):
    return collections.Counter(line["id"] for line in shards.all_lines(out))


def test_a_bundle_that_fails_once_is_retried_and_each_image_is_written_once(
        local_audit, tiny_run, phantom_dir, tmp_path, monkeypatch):
    flag = tmp_path / "failed-once"
    monkeypatch.setenv(FAIL_ONCE, f"1:{flag}")  # chunk 1 raises after writing its part
    out = tmp_path / "beam"
    # The bundle-based DirectRunner retries a failed bundle, as Dataflow does (the portable
    # one behind plain "beam" fails the run: see the next test for going on after that).
    result = CliRunner().invoke(main, [*audit_args(tiny_run, phantom_dir, out),
                                       "--runner", "BundleBasedDirectRunner"])
    assert result.exit_code == 0, result.output
    assert flag.exists()  # the failure happened, and the retry found the part written
    counted = ids_in_results(out)
    chosen = sum(g["n"] for name, g in local_audit["groups"].items()
                 if name != "false_negatives")  # false negatives are positives too
    assert len(counted) == chosen and set(counted.values()) == {1}
    assert len(shards.done_chunks(out)) == -(-chosen // EXPLAIN_CHUNK)
    assert_same_audit(local_audit, out)


def test_a_killed_multi_process_run_goes_on_and_explains_no_image_twice(
        local_audit, tiny_run, phantom_dir, tmp_path):
    out = tmp_path / "beam"
    command = [sys.executable, "-m", "covgan", *audit_args(tiny_run, phantom_dir, out),
               "--runner", "beam", *MULTI_PROCESS]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not shards.done_chunks(out) and first.poll() is None:
            assert time.monotonic() < deadline, "no part written in 300 s"
            time.sleep(0.05)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the command and its worker processes
        first.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / shards.RESULTS).glob("part-*")}
    chosen = sum(g["n"] for name, g in local_audit["groups"].items()
                 if name != "false_negatives")
    assert 0 < len(shards.done_chunks(out)) < -(-chosen // EXPLAIN_CHUNK), \
        "killed before any part was written, or after all were"
    # Run again in this process (Beam's in-memory runner): the same job, so it resumes.
    again = CliRunner().invoke(main, [*audit_args(tiny_run, phantom_dir, out),
                                      "--runner", "beam"])
    assert again.exit_code == 0, again.output
    # The parts written before the kill were read, not written again.
    assert {name: (out / shards.RESULTS / name).stat().st_mtime_ns for name in kept} == kept
    assert set(ids_in_results(out).values()) == {1}
    assert_same_audit(local_audit, out)


def test_a_failed_pipeline_ends_in_one_line_that_says_what_is_kept(tmp_path):
    from covgan.errors import CovganError
    from covgan.scale.runner import failures_in_one_line

    traceback = ("Traceback (most recent call last):\n  File ...\nRuntimeError: worker lost "
                 "[while running 'Explain']")
    with pytest.raises(CovganError) as raised:
        with failures_in_one_line(tmp_path):
            raise RuntimeError(traceback)
    assert str(raised.value) == (
        "The Beam pipeline failed (RuntimeError: worker lost [while running 'Explain']); the "
        f"images it finished are kept in {tmp_path / 'results'}: run the same command again to "
        "go on.")


def test_a_run_reported_finished_with_a_chunk_missing_is_not_believed(tmp_path):
    from covgan.errors import CovganError
    from covgan.evaluation.audit_parts import AuditAccumulator
    from covgan.io import write_json
    from covgan.scale.audit_pipeline import WORK, check_complete

    planned = list(range(EXPLAIN_CHUNK + 3))  # two chunks
    write_json(tmp_path / WORK / "plan.json", {"positions": planned})
    shards.write_part(tmp_path, 0, [{"position": p} for p in planned[:EXPLAIN_CHUNK]], {})
    accumulator = AuditAccumulator()
    accumulator.records["positives"] = [{"position": p} for p in planned[:EXPLAIN_CHUNK]]
    with pytest.raises(CovganError, match="1 of 2 chunks unwritten, 3 of 19 images missing"):
        check_complete(tmp_path, accumulator)
    shards.write_part(tmp_path, 1, [{"position": p} for p in planned[EXPLAIN_CHUNK:]], {})
    accumulator.records["positives"] += [{"position": p} for p in planned[EXPLAIN_CHUNK:]]
    check_complete(tmp_path, accumulator)  # complete: no error
