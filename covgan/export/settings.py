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

    @property
    def step_size(self):
        """lambda: the walk reaches z2 itself at the last step."""
        return 1.0 / (self.traverse_steps - 1)
