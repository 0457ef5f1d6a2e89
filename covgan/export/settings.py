"""What an export fixes in its SavedModels, free of TensorFlow (the command line reads its
defaults here)."""

import dataclasses

from covgan.explain.settings import InversionSettings


@dataclasses.dataclass(frozen=True)
class ServingSettings:
    """What is fixed at export time and recorded in the model's metadata."""

    traverse_steps: int = 11  # S: images per traversal, n = 0 .. S - 1
    inversion: InversionSettings = InversionSettings()
    seed: int = 0  # of the inversion's random starts
    gradcam_layer: str | None = None
    # The explain signature's tuning of a gated G's branch: None, `covgan explain`'s default
    # for the run's G (settings.tuning_settings); 0, none (explain is then explain_untuned).
    tune_steps: int | None = None
    # Which images it tunes ("all" or "untrusted"); None, `covgan explain`'s default.
    tune_where: str | None = None
    # How that tuning convolves per image (covgan.explain.per_row_weights.CONVOLUTIONS):
    # "grouped" computes what `covgan explain` computes here, to rounding, and faster (8 RSNA
    # films, 400 steps: 27.8 s against 65.3 s; one throw-away measurement),
    # but its gradient needs oneDNN's CPU kernels or a GPU on the server; "patches" runs on any
    # TF build. None: grouped where this process has grouped-convolution gradients.
    tuning_convolution: str | None = None

    @property
    def step_size(self):
        """lambda: the walk reaches z2 itself at the last step."""
        return 1.0 / (self.traverse_steps - 1)
