"""The suite's own scheduling: tests marked xdist_group share one worker under tools/test.sh.

The audit and server modules build one expensive module fixture (an audit, a running server)
and rely on this. pytest-xdist marks a group by rewriting node ids, which pytest 9.2 ignores
(pytest-dev/pytest-xdist#1386): the groups were split silently and each fixture built twice.
"""

import os
import subprocess
import sys
import textwrap

GROUPED = """
import os

import pytest

pytestmark = pytest.mark.xdist_group("shared")


@pytest.mark.parametrize("i", range(4))
def test_grouped(i):
    with open(os.path.join(os.environ["GROUPING_OUT"], f"grouped{i}"), "w") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"])
"""

LOOSE = """
import time

import pytest


@pytest.mark.parametrize("i", range(4))
def test_loose(i):
    time.sleep(0.1)
"""


def test_tests_of_one_xdist_group_run_on_one_worker(tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_grouped.py").write_text(textwrap.dedent(GROUPED))
    (suite / "test_loose.py").write_text(textwrap.dedent(LOOSE))
    result = subprocess.run(  # the options tools/test.sh passes
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup",
         "-p", "no:cacheprovider", str(suite)],
        capture_output=True, text=True, timeout=300, cwd=suite,
        env={**os.environ, "GROUPING_OUT": str(tmp_path)})
    assert result.returncode == 0, result.stdout[-3000:]
    workers = {(tmp_path / f"grouped{i}").read_text() for i in range(4)}
    assert len(workers) == 1, f"one xdist_group ran on workers {sorted(workers)}"
