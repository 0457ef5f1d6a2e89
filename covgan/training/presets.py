"""A GAN run's settings and the presets that fill them, and the classifier's and the
encoder's training settings.

Free of TensorFlow: the command line builds its options and help from these tables.
"""

from __future__ import annotations

import dataclasses

from covgan.errors import CovganError

# covgan's training levers as the paper has them: Eq. 1 alone, a class-blind D, G of [z1, z2],
# nearest-neighbour upsampling.
PAPER_LEVERS = {"lambda_locality": 0.0, "class_critic": False, "gated_residual": False,
                "upsampling": "nearest"}

# Training settings that come with each preset (command-line options override them).
PRESET_TRAINING = {
    # The authors' reference: Adam 2e-4 (beta_1 0.5), batch 32, a plain projection of [z1, z2],
    # and Eq. 1 exactly: none of covgan's training levers.
    "paper": {"epochs": 100, "batch_size": 32, "g_learning_rate": 2e-4,
              "d_learning_rate": 2e-4, "inject_z2": False, "g_ema": 0.0, "lambda_cls": 1.0,
              "augment": False, "padding": "zeros", **PAPER_LEVERS},
    # Small batches for more updates, a faster Adam, z2 fed to every generator stage, a moving
    # average of G's weights, and the classifier term weighted 2 (confident counterparts and
    # positives: lambda 1 gave 0.964 / 0.915, lambda 2 0.978 / 0.97). And the training levers
    # of the explanation (docs, Measured log): a class-aware critic, the gated residual G, the
    # locality penalty at 10 and bilinear upsampling; with pivotal tuning after the inversion
    # they make the walk's map beat Grad-CAM, the input gradient and Integrated Gradients at
    # localising the phantoms' lesions, where the paper's G and D scored at chance.
    "tiny": {"epochs": 18, "batch_size": 16, "g_learning_rate": 5e-4,
             "d_learning_rate": 5e-4, "inject_z2": True, "g_ema": 0.995, "lambda_cls": 2.0,
             "lambda_locality": 10.0, "class_critic": True, "gated_residual": True,
             "upsampling": "bilinear", "augment": False, "padding": "zeros"},
}
# Real radiographs: tiny's G, D, settings and levers, with DiffAugment for a few hundred
# films, reflection padding (a film's edge is no feature of every convolution) and 150 epochs
# (about 33 min on 2 cores for the RSNA adult set's 627 training films). On those films (70
# held-out positives, 3 inversion seeds, the view-balanced classifier, the default tuning)
# latent gradients, the default map when the preset was chosen, scored 0.462 / 0.369 (pointing
# game / relevance mass). G and D twice as wide at
# 32-128 pixels, 120 epochs (53 min; commit 1953a14), drew more of the chest (ribs, clavicles,
# the heart's outline) but pointed at the boxes less often: 0.400 / 0.389, the input
# gradient's 0.500 then ahead (paired interval [-0.195, -0.010]). One GAN run each
# (docs/results/real-films.md, The films preset).
PRESET_TRAINING["films"] = {**PRESET_TRAINING["tiny"], "epochs": 150, "augment": True,
                            "padding": "reflect"}

_TINY = PRESET_TRAINING["tiny"]


@dataclasses.dataclass
class GANTrainingConfig:
    """Everything that defines a GAN run; written to RUN/config.json.

    The defaults are the tiny preset's training settings with covgan's training levers off
    (PAPER_LEVERS): a lever's default is its value before it existed, which is what a run made
    before it was added had. `preset_config` gives a preset's own values, levers included.
    """

    data: str
    classifier: str
    out: str
    preset: str = "tiny"
    epochs: int = _TINY["epochs"]
    batch_size: int = _TINY["batch_size"]
    g_learning_rate: float = _TINY["g_learning_rate"]
    d_learning_rate: float = _TINY["d_learning_rate"]
    beta_1: float = 0.5
    lambda_cls: float = _TINY["lambda_cls"]
    # L1 + TV of G(z1, z2) - G(z1, 0) for positive samples (0: Eq. 1 as the paper has it).
    lambda_locality: float = PAPER_LEVERS["lambda_locality"]
    # Overlap of where two disease codes for one z1 change the image, for positive samples
    # (0: off; in no preset).
    lambda_spread: float = 0.0
    # A projection discriminator that sees each image's class (off: the paper's class-blind D).
    class_critic: bool = PAPER_LEVERS["class_critic"]
    # G(z1, z2) = base(z1) + a masked change drawn from z2, exactly the base at z2 = 0.
    gated_residual: bool = PAPER_LEVERS["gated_residual"]
    # How G upsamples ("nearest", the paper's, or "bilinear") and pads its convolutions
    # ("zeros" or "reflect"): the stripes and the border artefacts (models/generator.py).
    upsampling: str = PAPER_LEVERS["upsampling"]
    padding: str = "zeros"
    g_ema: float = _TINY["g_ema"]  # momentum of a moving average of G's weights; 0 = off
    z1_dim: int = 100
    z2_dim: int = 10
    inject_z2: bool = _TINY["inject_z2"]
    positive_rate: str = "balanced"  # "balanced" (0.5) or "prior" (the data's share)
    # A manifest column (view, site, ...): D's real images weighted so each class has the
    # same mix of its values, so the class-aware critic does not learn the class by it.
    balance_by: str = ""
    augment: bool = False
    mixed_precision: bool = False
    strategy: str = "default"  # "default", "mirrored" or "multiworker"
    summary_every: int = 1
    seed: int = 0
    # Another run folder whose last checkpoint this run starts from (fine-tuning with other
    # weights or rates); its epochs count as this run's first ones.
    init_from: str = ""


def preset_help(setting: str) -> str:
    """'(preset default: tiny 26, paper 100)' for one setting, read from PRESET_TRAINING."""
    def shown(value):
        if isinstance(value, bool):
            return "on" if value else "off"
        return f"{value:g}" if isinstance(value, float) else str(value)

    values = ", ".join(f"{name} {shown(table[setting])}"
                       for name, table in sorted(PRESET_TRAINING.items(), reverse=True))
    return f"(preset default: {values})"


def preset_config(preset: str, **settings: object) -> GANTrainingConfig:
    """A config with `preset`'s training settings, overridden by the non-None `settings`."""
    if preset not in PRESET_TRAINING:
        raise CovganError(f"Unknown preset {preset!r}; one of {sorted(PRESET_TRAINING)}.")
    chosen = {k: v for k, v in settings.items() if v is not None}
    return GANTrainingConfig(preset=preset, **{**PRESET_TRAINING[preset], **chosen})


@dataclasses.dataclass(frozen=True)
class ClassifierTraining:
    """The classifier's training settings (`covgan classifier train`)."""

    preset: str = "tiny"
    epochs: int = 20  # a maximum: training stops early when validation loss stalls
    batch_size: int = 32
    learning_rate: float = 3e-4  # Adam; 1e-3 collapsed to all-positive in 1 run of 3
    patience: int = 5
    balance_classes: bool = True
    augment: bool = False  # shift, zoom, rotation, exposure (real films; classifier_augment)


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """`covgan encoder train`'s settings (covgan.training.encoder); when a training is
    continued `steps` may grow and `real_weight` may change (a refinement on real images after
    E learnt G's samples), nothing else."""

    run: str
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 1e-3
    pixel_weight: float = 10.0
    real_weight: float = 0.0  # MSE(G(E(x)), x) on the run's real training images
    steps_per_epoch: int = 100  # a checkpoint after each
    seed: int = 0
