"""The `covgan` command line: one click group, one file per command family.

Commands parse options, seed, read and write files, and call the library;
TensorFlow is imported inside commands so `covgan --help` answers at once.
"""

import os

from covgan.cpu import use_onednn

# The command line's environment, set before any command imports TensorFlow: its oneDNN
# kernels, and its C++ log lines kept off stderr.
use_onednn()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import click  # noqa: E402

from covgan.cli.audit import audit  # noqa: E402
from covgan.cli.classifier import classifier  # noqa: E402
from covgan.cli.common import CovganGroup  # noqa: E402
from covgan.cli.data import data  # noqa: E402
from covgan.cli.demo import demo  # noqa: E402
from covgan.cli.encoder import encoder  # noqa: E402
from covgan.cli.explain import explain, gradcam, invert, traverse  # noqa: E402
from covgan.cli.gan import evaluate, localise, train  # noqa: E402
from covgan.cli.serving import export, query, serve  # noqa: E402


@click.group(cls=CovganGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="covgan")
def main():
    """covgan: visual explanations of a chest X-ray classifier by GAN latent traversal.

    Results go to stdout as JSON; progress and logs go to stderr.

    \b
    Example:
      covgan data synth phantoms --count 2000 --preview sheet.png
      covgan classifier train --data phantom --preset tiny --out runs/clf
    """


main.add_command(data)
main.add_command(classifier)
main.add_command(train)
main.add_command(evaluate)
main.add_command(encoder)
for command in (invert, traverse, gradcam, explain, localise, audit, export, serve, query, demo):
    main.add_command(command)
