"""The README's two set-up commands, as written, so the README cannot drift from what works.

The test command must be exactly what .ci/run runs; its decisions about the browser (install,
or skip with a reason) are checked as root, as a sudo user and as a user without sudo in a
sandboxed PATH. The demo command is run verbatim up to and including the install, in a copy of
the tree, with `covgan demo` asked for its --help only (the full demo has its own test).
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def setup_commands():
    """The fenced commands of the README's 'Set up' section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Set up.*?(?=^## )", readme, re.S | re.M)
    assert section, "README.md has no '## Set up' section"
    return [block.strip() for block in re.findall(r"```\n(.*?)```", section.group(0), re.S)]


def test_readme_shows_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = setup_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "\n" not in demo and "\n" not in tests
    assert demo.endswith("covgan demo"), demo
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert ci_lines[-1] == tests, (ci_lines, tests)


def sandbox_path(tmp_path, *, uid, sudo):
    """A PATH with bash, python3 and coreutils but no chromium; `id -u` prints `uid`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "env", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "python3").symlink_to(sys.executable)
    (bin_dir / "apt-get").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    if sudo:
        (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
    for shim in bin_dir.iterdir():
        if not shim.is_symlink():
            shim.chmod(0o755)
    return str(bin_dir)


@pytest.mark.parametrize("uid, sudo, expected", [
    (0, False, "would run: apt-get update && apt-get install chromium"),
    (1000, True, "would run: sudo apt-get update && apt-get install chromium"),
    (1000, False, "the browser tests will be skipped: chromium is missing and could not be "
                  "installed (not root and no sudo)"),
])
def test_test_command_installs_the_browser_only_as_it_can(tmp_path, uid, sudo, expected):
    command = setup_commands()[1]
    env = {"PATH": sandbox_path(tmp_path, uid=uid, sudo=sudo), "COVGAN_TEST_PLAN": "1",
           "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert expected in result.stderr, result.stderr
    assert "would run: python3 -m venv .venv && pip install -e '.[test,docs,beam]'" in result.stdout
    assert "would run: ruff check . && mkdocs build --strict && pytest -q -n 2" in result.stdout


def test_browser_test_skips_only_with_the_reason_the_script_gave(monkeypatch):
    from helpers import chromium

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("COVGAN_SKIP_BROWSER", raising=False)
    with pytest.raises(AssertionError, match="headless Chromium is needed"):
        chromium()  # no reason given: a missing browser is a failure, never a silent skip
    monkeypatch.setenv("COVGAN_SKIP_BROWSER", "chromium is missing (not root and no sudo)")
    with pytest.raises(pytest.skip.Exception, match="not root and no sudo"):
        chromium()


def test_demo_command_installs_and_runs_as_written(tmp_path):
    demo = setup_commands()[0]
    assert demo.count("covgan demo") == 1
    copy = tmp_path / "covgan"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if tracked.returncode != 0:
        pytest.fail(f"git ls-files failed in {ROOT}: {tracked.stderr}")
    for name in filter(None, tracked.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    # pip sees the running environment's packages through PYTHONPATH and installs only covgan
    # into the new venv: the same command, minutes of TensorFlow download saved.
    venv_bin = str(pathlib.Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {
        **{k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
        "PATH": path,
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
    }
    command = demo.replace("covgan demo", "covgan demo --help") + (
        " && .venv/bin/python -c 'import covgan; print(covgan.__file__)'"
    )
    result = subprocess.run(
        ["bash", "-c", command], cwd=copy, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Usage: covgan demo" in result.stdout
    assert str(copy / "covgan" / "__init__.py") in result.stdout  # the copy was installed
