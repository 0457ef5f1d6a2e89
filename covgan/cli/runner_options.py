"""`--runner` for the commands that explain many images (audit, explain): in this process, or
on Apache Beam with Beam's own options passed through (`covgan.scale.runner`)."""

from __future__ import annotations

import functools

import click

from covgan.scale.runner import LOCAL

# The commands keep options they do not know, for Beam (`--direct_num_workers=2`, ...).
PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
RUNNER_HELP = (
    "Where the images are explained: local (this process) or beam (Apache Beam's "
    "DirectRunner), or a Beam runner's name (DirectRunner, DataflowRunner, FlinkRunner, "
    "SparkRunner, PortableRunner). With Beam, options covgan does not know go to Beam as "
    "--name=value (--direct_running_mode=multi_processing --direct_num_workers=2, "
    "--project=..., --flink_master=...), results are written image by image under "
    "OUT/results and a run again on the same OUT goes on where it stopped. Needs "
    "`pip install 'covgan[beam]'`.")


def refuse_beam_options_on_a_local_run(runner: str, extra: list[str]) -> None:
    """Raises CovganError naming the first of `extra` (options or arguments the command does
    not know) unless the run is Beam's."""
    from covgan.errors import CovganError

    if runner == LOCAL and extra:
        raise CovganError(f"Unknown option {extra[0]!r} (Beam's options are taken only with "
                          "--runner beam).")


def runner_options(command):
    """--runner and --threads-per-worker; the command receives `runner`, `threads_per_worker`
    and `beam_args` (the options passed through; refused in one line for a local run)."""

    @functools.wraps(command)
    def with_runner(*args, runner, threads_per_worker, **kwargs):
        extra = list(click.get_current_context().args)
        refuse_beam_options_on_a_local_run(runner, extra)
        return command(*args, runner=runner, threads_per_worker=threads_per_worker,
                       beam_args=extra, **kwargs)

    with_runner = click.option(
        "--threads-per-worker", type=click.IntRange(min=0), default=0, show_default=True,
        help="TensorFlow threads in each Beam worker (0: TensorFlow's default, every "
             "core; 1 where several workers share a machine's cores).")(with_runner)
    return click.option("--runner", default=LOCAL, show_default=True, metavar="RUNNER",
                        help=RUNNER_HELP)(with_runner)
