"""Settings of the explanation algorithms, free of TensorFlow: the command line reads its
defaults here without loading a model library, and the algorithms take them as arguments."""

import dataclasses

# An inversion is trusted only if its reconstruction looks like the image (SSIM), the
# classifier sees it as it sees the image, and the evidence is in the reconstruction: what the
# GAN failed to reproduce, added back to the negative counterpart, must read negative.
SSIM_TRUST_THRESHOLD = 0.5
PROBABILITY_TRUST_GAP = 0.1
ADD_BACK_THRESHOLD = 0.5
# Columns of an inversion's "probabilities": p(positive) of these three images.
PROBABILITY_COLUMNS = ("image", "reconstruction", "counterpart")
IMAGE, RECONSTRUCTION, COUNTERPART = range(3)

# The paper's walk: N = 10 steps of lambda = 0.1.
DEFAULT_STEPS = 10
DEFAULT_STEP_SIZE = 0.1


@dataclasses.dataclass(frozen=True)
class InversionSettings:
    """Eq. 2's weights and its Adam solver.

    The weights are the authors' (a = 4 on MSE, b = 1 on BCE). The authors ran Adam at 0.01 for
    5000 steps from one start; covgan caps each image at `steps` (early stop after `patience`
    steps without a relative improvement of `tolerance`) from `restarts` starts, at a larger
    rate of 0.05, and adds `prior_weight` * (mean(z^2) - 1)^2 to hold z1 and z2 on the Gaussian
    shell where G was trained.
    """

    steps: int = 200
    learning_rate: float = 0.05
    restarts: int = 2
    mse_weight: float = 4.0
    bce_weight: float = 1.0
    prior_weight: float = 0.03
    tolerance: float = 1e-4
    patience: int = 50
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
