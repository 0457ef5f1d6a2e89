"""`covgan encoder train`: the encoder that starts the inversion near its answer."""

import click

from covgan.cli.common import SEED_HELP, emit
from covgan.training.presets import EncoderConfig

DEFAULTS = EncoderConfig(run="")


@click.group()
def encoder():
    """Train an encoder E: x -> (z1, z2) on a run's generator (a warm start for Eq. 2)."""


@encoder.command()
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False),
              help="A finished GAN run; E is written to RUN/encoder.keras.")
@click.option("--steps", type=click.IntRange(min=1), default=DEFAULTS.steps, show_default=True,
              help="Adam steps (rounded up to whole checkpoints of 100); a larger number "
                   "continues an earlier training.")
@click.option("--batch-size", type=click.IntRange(min=1), default=DEFAULTS.batch_size,
              show_default=True, help="Codes G draws per step.")
@click.option("--lr", type=click.FloatRange(min=0.0, min_open=True),
              default=DEFAULTS.learning_rate, show_default=True, help="Adam learning rate.")
@click.option("--pixel-weight", type=click.FloatRange(min=0.0), default=DEFAULTS.pixel_weight,
              show_default=True,
              help="Weight of MSE(G(E(x)), x) beside the code error |E(x) - z|^2.")
@click.option("--real-weight", type=click.FloatRange(min=0.0), default=DEFAULTS.real_weight,
              show_default=True,
              help="Weight of MSE(G(E(x)), x) on the run's real training images, added to "
                   "each step; may change when a training is continued (a refinement).")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True, help=SEED_HELP)
def train(run_dir, steps, batch_size, lr, pixel_weight, real_weight, seed):
    """Train E on G's own samples: codes drawn as in training, G draws the images, E learns
    to give the codes back. The inversion commands then take `--start encoder`. With
    --real-weight, E is also fitted to reconstruct the run's real training images through G.

    Killed trainings continue from the last checkpoint when re-run.

    \b
    Example:
      covgan encoder train --run runs/gan
      covgan encoder train --run runs/gan --steps 3500 --real-weight 10
      covgan explain chest.png --run runs/gan --out out/explain --start encoder
    """
    import sys

    from covgan.training.encoder import train_encoder

    config = EncoderConfig(run=str(run_dir), steps=steps, batch_size=batch_size,
                           learning_rate=lr, pixel_weight=pixel_weight,
                           real_weight=real_weight, seed=seed)
    emit(train_encoder(config, verbose=1 if sys.stderr.isatty() else 2))
