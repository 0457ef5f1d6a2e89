"""Every command's --help says what each option is for, and the command list reads whole."""

import click
from click.testing import CliRunner
from helpers import leaf_commands

from covgan.cli import main


def test_every_option_has_help():
    bare = [f"covgan {' '.join(path)} {option.opts[0]}"
            for path, command in leaf_commands(main) for option in command.params
            if isinstance(option, click.Option) and not option.help
            and "--help" not in option.opts]
    assert bare == []


def test_the_command_list_cuts_no_summary_short():
    listing = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    commands = listing[listing.index("Commands:"):].splitlines()[1:]
    # click ends a summary at the first full stop: "(Eq." was all that was left of two.
    assert commands and not [line for line in commands if line.rstrip().endswith("(Eq.")]
    assert not [line for line in commands if "minutes" in line]  # timings live in the docs
