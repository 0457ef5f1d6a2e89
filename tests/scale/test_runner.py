"""--runner: Beam's options passed through, Beam missing said in one line, and the default
install without Beam."""

import configparser
import pathlib
import subprocess
import sys

import pytest
from click.testing import CliRunner

from covgan.cli import main
from covgan.errors import CovganError
from covgan.scale import runner

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_beam_options_pass_through_and_unknown_ones_are_refused():
    options = runner.pipeline_options("beam", ["--direct_num_workers=2",
                                               "--direct_running_mode", "multi_processing"])
    known = options.get_all_options()
    assert known["runner"] == "DirectRunner" and known["direct_num_workers"] == 2
    assert known["direct_running_mode"] == "multi_processing"
    assert runner.pipeline_options("FlinkRunner", []).get_all_options()["runner"] == "FlinkRunner"
    with pytest.raises(CovganError, match="Unknown option --no_such_option"):
        runner.pipeline_options("beam", ["--no_such_option=1"])


def test_without_beam_the_runner_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: None)
    result = CliRunner().invoke(main, ["audit", "--run", str(tmp_path), "--out",
                                       str(tmp_path / "out"), "--runner", "beam"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: --runner beam needs Apache Beam, which is not installed: "
        "pip install 'covgan[beam]'"]


def test_a_local_run_refuses_options_only_beam_takes(tmp_path):
    result = CliRunner().invoke(main, ["explain", str(tmp_path), "--run", str(tmp_path),
                                       "--out", str(tmp_path / "out"),
                                       "--direct_num_workers=2"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Unknown option '--direct_num_workers=2'" in result.stderr


def test_the_default_install_does_not_pull_beam_in():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    required = config["options"]["install_requires"].lower()
    assert "beam" not in required
    assert "apache-beam" in config["options.extras_require"]["beam"]
    # Nor does the command line import it until a Beam run is asked for.
    code = "import sys, covgan.cli, covgan.api; sys.exit('apache_beam' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
