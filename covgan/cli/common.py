"""What every command shares: one-line errors, JSON results, progress, seeding."""

import json
import os
import sys

import click

from covgan.errors import CovganError

# The help of options many commands share, said once.
RUN_HELP = "A run folder that `covgan train` wrote (config.json, generator.keras, ...)."
OUT_HELP = "Output folder, written atomically; refused if it is not empty, unless --overwrite."
SEED_HELP = "Seed of every random draw the command makes (starts, shuffles, bootstraps)."

# Errors a user can act on; anything else (a ValueError included) is a bug and keeps its
# traceback. Input the library refuses with ValueError reaches a command as a CovganError.
_USER_ERRORS = (CovganError, FileExistsError, FileNotFoundError, PermissionError)


class CovganGroup(click.Group):
    """A group that turns user errors into `Error: <one line>` and exit status 1.

    Set COVGAN_DEBUG=1 to see the traceback instead.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _USER_ERRORS as error:
            if os.environ.get("COVGAN_DEBUG"):
                raise
            message = " ".join(str(error).split()) or type(error).__name__
            raise click.ClickException(message) from None


def emit(payload):
    """Prints a command's result as JSON on stdout (and nothing else goes there)."""
    click.echo(json.dumps(payload, indent=2))


def progressbar(length, label):
    """A progress bar on stderr; its `update(n)` is the library's progress callback."""
    return click.progressbar(length=length, label=label, file=sys.stderr, show_eta=True)


def seed_everything(seed):
    """Seeds Python, NumPy and TensorFlow through Keras, once per command."""
    import keras

    keras.utils.set_random_seed(seed)


def mixed_precision_for_this_command(enabled):
    """Under --mixed-precision, Keras' global policy is mixed (bfloat16 on CPU, float16 on
    GPU) for the rest of the command, so models loaded after this compute in it; the previous
    policy comes back when the command ends (commands also run in-process, in tests)."""
    if not enabled:
        return
    import keras

    from covgan.models.precision import mixed_policy_name

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(mixed_policy_name())
    click.get_current_context().call_on_close(
        lambda: keras.mixed_precision.set_global_policy(previous))
    warn_if_bfloat16_is_emulated()


def warn_if_bfloat16_is_emulated():
    """Under --mixed-precision on a CPU without bfloat16 instructions, says on stderr that the
    command will run slower, not faster: the flag still does what it was asked."""
    from covgan.cpu import bfloat16_is_emulated
    from covgan.models.precision import mixed_policy_name

    if mixed_policy_name() == "mixed_bfloat16" and bfloat16_is_emulated():
        click.echo("Warning: --mixed-precision on a CPU without bfloat16 instructions "
                   "(AVX512_BF16, AMX): TensorFlow emulates bfloat16 here, so this runs slower "
                   "than float32 (16x for the tiny inversion step on such a CPU), not faster.",
                   err=True)
