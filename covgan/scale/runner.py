"""Which engine runs a command (`--runner`) and the Beam pipeline options it passes through.

`--runner local` (the default) runs in this process. `--runner beam` runs on Beam's
DirectRunner; a Beam runner's own name (DirectRunner, DataflowRunner, FlinkRunner,
SparkRunner, PortableRunner, ...) runs on that runner. Options the command does not know
(`--direct_num_workers 2`, `--project`, `--flink_master`, ...) go to Beam's PipelineOptions
as they are.
"""

from __future__ import annotations

import contextlib
import importlib.util
import pathlib

from covgan.errors import CovganError
from covgan.scale.shards import RESULTS

LOCAL = "local"
BEAM = "beam"
INSTALL_HINT = "pip install 'covgan[beam]'"


def is_beam(runner: str) -> bool:
    """Whether `runner` names a Beam run (anything but "local")."""
    return runner != LOCAL


def require_beam() -> None:
    """Raises CovganError, in one line that says how to install it, where Apache Beam is
    missing."""
    if importlib.util.find_spec("apache_beam") is None:
        raise CovganError(f"--runner beam needs Apache Beam, which is not installed: "
                          f"{INSTALL_HINT}")


def beam_arguments(runner: str, extra: list[str]) -> list[str]:
    """Beam's command-line arguments: the runner (DirectRunner for "beam") and the options
    passed through.

    Raises:
        CovganError: an argument that is not an option (a stray value), named.
    """
    stray = [a for a in extra if not a.startswith("--") and not _is_value(extra, a)]
    if stray:
        raise CovganError(f"Unexpected argument {stray[0]!r}: Beam's options are given as "
                          "--name value or --name=value.")
    return [f"--runner={'DirectRunner' if runner == BEAM else runner}", *extra]


def _is_value(arguments, argument):
    """Whether `argument` follows an option without "=" (its value)."""
    index = arguments.index(argument)
    return index > 0 and arguments[index - 1].startswith("--") and "=" not in arguments[index - 1]


def pipeline_options(runner: str, extra: list[str]):
    """Beam's PipelineOptions for `runner` and the passed-through options; unknown to Beam
    too is refused in one line."""
    require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(beam_arguments(runner, extra))
    unknown = options.get_all_options(retain_unknown_options=True)
    known = options.get_all_options()
    extra_names = sorted(set(unknown) - set(known))
    if extra_names:
        raise CovganError(f"Unknown option --{extra_names[0]} (neither covgan's nor Beam's).")
    return options


@contextlib.contextmanager
def failures_in_one_line(out):
    """A failed pipeline (a worker's exception, after the runner's own retries) ends the
    command with one line saying that what finished is kept; Beam has logged the traceback."""
    try:
        yield
    except Exception as error:  # the runner re-raises a worker's error as it was
        # A worker's error reaches here with its traceback as text: its last line says it.
        lines = str(error).strip().splitlines()
        said = lines[-1] if lines else type(error).__name__
        raise CovganError(
            f"The Beam pipeline failed ({said}); the images it finished are kept in "
            f"{pathlib.Path(out) / RESULTS}: run the same command again to go on.") from error
