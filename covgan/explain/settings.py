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

# The map covgan leads with (the report's first map, localise's and audit's default_map): the
# walk's change weighted by the classifier's gradient along the walk carried onto the image
# (covgan.explain.maps, "film_gradients"). It was once the same change weighted
# along the GAN's own frames ("latent_gradients"); taking the gradients on the film's pixels
# scored higher on the pointing game on covgan's phantoms, phantoms of another drawing and the
# RSNA films alike, with the relevance mass unchanged (docs/results/localisation.md, The walk
# carried onto the film).
DEFAULT_MAP = "film_gradients"

# The paper's walk: N = 10 steps of lambda = 0.1.
DEFAULT_STEPS = 10
DEFAULT_STEP_SIZE = 0.1


# Where the inversion starts: "normal" (z1, z2 ~ N(0, I) for every start), "zeros" (z1 = 0,
# the authors' start), "encoder" (each image's first start at the run's encoder's E(x), the
# other starts N(0, I); covgan.models.encoder).
Z1_STARTS = ("normal", "zeros", "encoder")

# The weight of the counterpart term where the inversion chooses it (InversionSettings.
# counterpart_weight None) for a gated-residual G. On 64 held-out phantom positives of the
# default tiny run (one seed, docs, Measured log) it made every counterpart negative (62 of 64
# before) and cut the add-backs reading positive from 7 to 2.
COUNTERPART_WEIGHT = 1.0


@dataclasses.dataclass(frozen=True)
class InversionSettings:
    """Eq. 2's weights and its Adam solver.

    The weights are the authors' (a = 4 on MSE, b = 1 on BCE). The authors ran Adam at 0.01 for
    5000 steps from one start; covgan caps each image at `steps` (early stop after `patience`
    steps without a relative improvement of `tolerance`) from `restarts` starts, at a larger
    rate of 0.05, and adds `prior_weight` * (mean(z^2) - 1)^2 to hold z1 and z2 on the Gaussian
    shell where G was trained. `z1_start` is where the starts lie: "normal" (z1 ~ N(0, I),
    like z2), "zeros" (z1 = 0, the authors' start) or "encoder" (each image's first start at
    E(x), both codes; needs a run with an encoder). With several starts, all of them run
    `keep_best_after` steps; then only each image's best goes on, with a fresh Adam state, for
    the rest (0, or at least `steps`: every start runs to the end). On 64 held-out shortcut
    phantoms, 25 took 110 s against 195 s for every start to the end, and ended at a lower
    loss (0.043 against 0.049; the fresh Adam state restarts its steps at full size).

    `counterpart_weight` adds counterpart_weight * BCE(0, C(G(z1, 0))): Eq. 2 alone lets z1
    draw class evidence, so a counterpart can read positive and the walk from it shows only
    part of what the classifier uses. The term holds the walk's start where the method puts
    it, on the negative side, so the evidence lies in what z2 adds or, where G cannot draw it,
    in the residual, which the trust rule's add-back then flags. Near 0 once the counterpart
    reads negative (-log(1 - p)), it pulls only where z1 drifts. None: COUNTERPART_WEIGHT for
    a gated-residual G (its counterpart comes from the same pass; `for_generator`), 0 for
    any other, where it costs a second render of every row and C on it.
    INVERSION_PRESETS names both procedures.
    """

    steps: int = 200
    learning_rate: float = 0.05
    restarts: int = 2
    keep_best_after: int = 25
    mse_weight: float = 4.0
    bce_weight: float = 1.0
    prior_weight: float = 0.03
    tolerance: float = 1e-4
    patience: int = 50
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    z1_start: str = "normal"
    counterpart_weight: float | None = None

    def __post_init__(self):
        if self.keep_best_after < 0:
            raise ValueError(f"keep_best_after must be >= 0, not {self.keep_best_after}")
        if self.counterpart_weight is not None and self.counterpart_weight < 0:
            raise ValueError(f"counterpart_weight must be >= 0 or None, "
                             f"not {self.counterpart_weight}")
        if self.z1_start not in Z1_STARTS:
            raise ValueError(f"z1_start must be one of {Z1_STARTS}, not {self.z1_start!r}")

    def for_generator(self, gated: bool) -> "InversionSettings":
        """These settings with the counterpart weight chosen for a G (`gated`: it has a gated
        residual branch) where they leave it to the inversion (None)."""
        if self.counterpart_weight is not None:
            return self
        return dataclasses.replace(self, counterpart_weight=COUNTERPART_WEIGHT if gated else 0.0)

# How the batched tuning convolves each image with its own branch weights
# (covgan.explain.per_row_weights): one grouped convolution, or each image's patches times its
# kernel (a gradient on every TF build).
CONVOLUTIONS = ("grouped", "patches")

# What pivotal tuning may change: all of G, or only a gated-residual G's branch.
TUNED_LAYERS = ("all", "branch")
# Which images pivotal tuning fits (TuningSettings.where).
TUNED_IMAGES = ("all", "untrusted")


@dataclasses.dataclass(frozen=True)
class TuningSettings:
    """Pivotal tuning (Roich et al. 2021) after Eq. 2, one image at a time: a copy of G is
    fine-tuned for `steps` Adam steps on MSE(G'(z1, z2), x) + `anchor_weight` *
    MSE(G'(z1, 0), G(z1, 0)), so the detail the latent codes cannot reach (on the phantoms: the
    lesions) is drawn by the tuned copy while its counterpart stays the untuned G's. The walk,
    the maps and the trust rule then use the tuned copy. `steps` = 0 turns it off (this
    dataclass's default; the commands' default is `tuning_settings`'). The learning rate is
    the one Roich et al. tune with; on 16 held-out phantoms, 1e-3 and 3e-3 moved the
    counterparts (negative for 44-88% of them instead of 94%).

    `bce_weight` adds Eq. 2's classifier term, bce_weight * BCE(C(x), C(G'(z1, z2))), so the
    tuned reconstruction is read as the image is (the trust rule's probability gap); 0 fits
    pixels alone, as Roich et al. do. On 16 held-out phantoms (branch, 0.25, before the
    inversion's counterpart term) it removed the probability-gap failures but the branch then
    met the classifier with changes that were not the lesions (the add-back read positive for
    44%); at 0.1 with the residual focus below and the counterpart term, on 64, the add-back
    read positive for 3 of 64 (TUNING_BCE_WEIGHTS).

    `feature_weight` adds a term on what the classifier sees rather than on what it concludes:
    feature_weight * |F(G'(z1, z2)) - F(x)|^2 / |F(x)|^2, F the classifier's activations at
    `feature_layer` (default: its deepest convolution that keeps a quarter of the image's side,
    `feature_convolution`), so the tuned reconstruction holds the patterns C responds to, where
    they are, and not one probability any change could reach.

    `residual_focus` weights the pixel fit by where the inversion missed: each pixel's squared
    error counts 1 + residual_focus * |r| / mean|r|, r = x - G(z1, z2) the untuned residual
    (weights scaled to mean 1), so tuning fits hardest what the codes could not draw, the very
    thing it is there for, rather than the anatomy they already drew. It needs no mask and
    nothing of the classifier.

    `counterpart_fit` (all of G only) replaces the anchor: rather than held to the untuned G's
    counterpart, which draws none of the image's own anatomy, the tuned counterpart is fitted
    to the image itself, counterpart_fit * mean(w * (G'(z1, 0) - x)^2), where the inversion did
    not miss (w = 1 / the residual focus's weights, mean 1), and is held negative, bce_weight *
    BCE(C(G'(z1, 0)), 0). Both images then share the anatomy, and the walk between them is left
    with what the codes missed and the classifier reads as positive. It needs the focus and the
    classifier term (without them the counterpart would be fitted to the lesions too).

    `layers` is what is tuned: "all" of G (Roich et al.), or, for a gated-residual G, only its
    "branch" (the residual stages, the change and the gate). The branch is multiplied by 0 at
    z2 = 0, so the tuned counterpart is the untuned one exactly and needs no anchor; G's trunk
    runs once per image, and each step draws through the branch's few thousand weights alone.

    `where` is which images are tuned: "all", or only those whose untuned explanation the trust
    rule does not trust ("untrusted"). Tuning is there so what the codes could not draw enters
    the walk; where the untuned walk already takes away what the classifier reads (the trust
    rule's add-back), it has nothing to add but what else the codes missed, and on real films,
    whose anatomy a small GAN draws only roughly, that is the anatomy: there the tuned walk
    also changes what lies outside the lungs (docs/results/real-films.md, Tuning only the
    untrusted).
    """

    steps: int = 0
    learning_rate: float = 3e-4
    anchor_weight: float = 1.0
    layers: str = "all"
    bce_weight: float = 0.0
    feature_weight: float = 0.0
    feature_layer: str | None = None
    residual_focus: float = 0.0
    counterpart_fit: float = 0.0
    where: str = "all"

    def __post_init__(self):
        if (self.steps < 0 or self.learning_rate <= 0 or self.anchor_weight < 0
                or self.bce_weight < 0 or self.feature_weight < 0 or self.residual_focus < 0
                or self.counterpart_fit < 0):
            raise ValueError("Tuning needs steps >= 0, learning_rate > 0, and anchor_weight, "
                             "bce_weight, feature_weight, residual_focus and counterpart_fit "
                             f">= 0. Received: {self}.")
        if self.where not in TUNED_IMAGES:
            raise ValueError(f"Tuning's images must be one of {TUNED_IMAGES}, "
                             f"not {self.where!r}.")
        if self.layers not in TUNED_LAYERS:
            raise ValueError(f"Tuning's layers must be one of {TUNED_LAYERS}, "
                             f"not {self.layers!r}.")
        if self.counterpart_fit and (self.layers != "all" or not self.bce_weight
                                     or not self.residual_focus):
            raise ValueError("Fitting the counterpart needs layers='all' (the branch cannot "
                             "move it), bce_weight > 0 and residual_focus > 0 (to keep it "
                             f"negative and off what the inversion missed). Received: {self}.")

    @property
    def uses_classifier(self) -> bool:
        """Whether the objective has a classifier term (the tuner then needs C)."""
        return self.bce_weight > 0 or self.feature_weight > 0


# Tuning's learning rate where none is asked, per what is tuned: Roich et al.'s for all of G;
# ten times that for a gated G's branch (measured on 16 held-out phantoms of a trained run,
# 400 steps: 3e-4, 1e-3 and 3e-3 kept the lesions in the walk, best at 3e-3; 1e-2 broke it).
TUNING_LEARNING_RATES = {"all": 3e-4, "branch": 3e-3}
# The commands tune a gated-residual G's branch for this many steps unless told otherwise.
BRANCH_TUNING_STEPS = 400
# `covgan audit` explains hundreds of images and reads their maps together, so by default it
# inverts for half explain's steps from one start, and tunes a gated G's branch for 150 steps
# (`--invert-steps 200 --restarts 2 --tune-steps 400` give explain's back). On the shortcut
# phantoms' test split (64 positives, 34 of them marked), the default map then peaked on the
# marker in 32 of 34 (31 of 34 at explain's lengths) and gave the upper-left corner 22.5% of
# its mass (23.6%), 70 times the clean classifier's share: the same findings from less work
# per image (docs/results/shortcut-audit.md has the times). Three fresh GANs against one shortcut
# classifier later peaked on the marker in 15, 33 and 12 of 34 at 150 steps and 26, 33 and 14
# at 400: it depends on whether the GAN's walk draws the marker, and the audit's corner flag
# (every map) was raised in all six; 400 would cost 1.6x the time for one GAN in three.
AUDIT_INVERSION_STEPS = 100
AUDIT_RESTARTS = 1
AUDIT_TUNING_STEPS = 150
# Nor does the audit tune on the classifier's reading or focus on the residual
# (TUNING_BCE_WEIGHTS, TUNING_RESIDUAL_FOCUS: what raises explain's trust). On the shortcut
# phantoms' 227 audited films (200 positives, 27 false negatives) with them the audit took
# 688 s, without them 545 s (478 and 463 s a day earlier, before the counterpart term), and the
# default map peaked on the marker in 85 and 86 of 97 marked films (88 before): the same
# finding in the 10 minutes the audit is given.
AUDIT_TUNING_BCE = 0.0
AUDIT_TUNING_FOCUS = 0.0
# The commands' weight of the classifier-feature term in tuning (TuningSettings.feature_weight),
# per what is tuned. Measured for the branch only, 400 steps at 3e-3 (docs, Measured log): on the
# shortcut phantoms' 34 marked test positives the default map then peaks on the marker in 31
# (24 without), and on 64 clean held-out positives every localisation score and the trusted
# share rose a little; whole-G tuning was not measured with it, so it stays 0 there.
TUNING_FEATURE_WEIGHTS = {"all": 0.0, "branch": 0.05}
# The commands' classifier term (TuningSettings.bce_weight) and residual focus
# (TuningSettings.residual_focus) in tuning, per what is tuned. Measured for the branch only,
# with the inversion's counterpart term, on 64 held-out phantom positives of the default tiny
# run, one seed (docs, Measured log): with neither, the tuned reconstruction of 6 of 64 read more
# than 0.1 less positive than the image and 57 of 64 inversions were trusted; with both, 61 of
# 64, the residual's share in the lesions fell from 2.04x to 1.81x their area, and the
# localisation scores moved by no more than a few images. Whole-G tuning was not measured with
# them, so they stay 0 there.
TUNING_BCE_WEIGHTS = {"all": 0.0, "branch": 0.1}
TUNING_RESIDUAL_FOCUS = {"all": 0.0, "branch": 4.0}
# Which images the commands tune (TuningSettings.where): only those the trust rule does not
# trust untuned. On the RSNA films (70 held-out positives, the balanced classifier's run, 3
# seeds) the default map's relevance mass rose from 0.304 (every film tuned) to 0.369, its
# pointing game 0.452 to 0.462, trusted 98.6-100% either way; on the phantoms' default run (64
# held-out positives, 3 seeds) 0.724 / 0.224 against 0.734 / 0.213 for one seed tuned
# throughout, every paired interval above 0 (docs/results/real-films.md, Tuning only the
# untrusted). The films it leaves untuned are the ones the trust rule passes as they are.
DEFAULT_TUNED_IMAGES = "untrusted"
# Fitting all of G's counterpart to the image (TuningSettings.counterpart_fit) was measured with
# the branch's terms and steps (docs, Measured log), so asking for it brings those defaults along
# (all of G at its own learning rate).
COUNTERPART_FIT_TERMS = "branch"


def tuning_settings(gated: bool, *, steps: int | None = None,
                    branch_steps: int = BRANCH_TUNING_STEPS,
                    learning_rate: float | None = None, anchor_weight: float | None = None,
                    layers: str | None = None, bce_weight: float | None = None,
                    feature_weight: float | None = None, feature_layer: str | None = None,
                    residual_focus: float | None = None,
                    counterpart_fit: float | None = None,
                    where: str | None = None) -> TuningSettings:
    """The tuning the commands run, from what was asked (None: not asked).

    A gated-residual G (`gated`) has its branch tuned by default: `branch_steps` steps at
    TUNING_LEARNING_RATES["branch"] with the feature term, the classifier term and the residual
    focus at TUNING_FEATURE_WEIGHTS, TUNING_BCE_WEIGHTS and TUNING_RESIDUAL_FOCUS["branch"]; its
    counterpart cannot move, and without it the walk misses what the codes cannot draw
    (docs/guide/explain.md). Any other G is tuned only when steps or `layers` are asked, all
    of it. Only the images whose untuned explanation the trust rule does not trust are
    tuned unless `where` says "all" (DEFAULT_TUNED_IMAGES). Asking for `counterpart_fit`
    tunes all of G, `branch_steps` steps, with the branch's terms (COUNTERPART_FIT_TERMS)
    wherever they are not asked. Asking for `layers` without
    steps tunes them `branch_steps` steps (`--tune-layers all` alone used to tune nothing).
    """
    fitted = bool(counterpart_fit)
    asked_layers = layers is not None
    layers = layers or ("all" if fitted or not gated else "branch")
    terms = COUNTERPART_FIT_TERMS if fitted else layers
    if steps is None:
        steps = branch_steps if layers == "branch" or fitted or asked_layers else 0
    return TuningSettings(
        steps=steps,
        learning_rate=learning_rate or TUNING_LEARNING_RATES[layers],
        anchor_weight=TuningSettings.anchor_weight if anchor_weight is None else anchor_weight,
        layers=layers,
        bce_weight=TUNING_BCE_WEIGHTS[terms] if bce_weight is None else bce_weight,
        feature_weight=(TUNING_FEATURE_WEIGHTS[terms] if feature_weight is None
                        else feature_weight),
        feature_layer=feature_layer,
        residual_focus=(TUNING_RESIDUAL_FOCUS[terms] if residual_focus is None
                        else residual_focus),
        counterpart_fit=counterpart_fit or 0.0,
        where=where or DEFAULT_TUNED_IMAGES)


# Images tuned at the same time, each by its own copy of G in its own thread. One image's step
# is small (batch 1, a few thousand weights) and leaves part of 2 cores idle: on a 2-core
# machine like CI's, 8 shortcut phantoms tuned 400 steps with the feature term took 3.49 s
# each one after another and 2.63 s each two at a time (throw-away measurement, one run).
TUNING_THREADS = 2
# Images whose gated branches are tuned in one batch, each by its own copy (batched_tuning.py;
# used where grouped convolutions have gradients, else TUNING_THREADS). On a 2-core AMD EPYC
# with oneDNN, 16 of the default run's images tuned 2.0x faster per image than one at a time
# and 1.28x faster than TUNING_THREADS (tools/bench.py --parts tuning_batch;
# docs/results/performance.md, Batched tuning).
TUNING_BATCH = 16


# `--preset` of the inversion commands. "authors" is the paper's own procedure, run by covgan's
# solver: one start with z1 = 0 and z2 ~ N(0, I), Adam at 0.01 with beta_1 = 0.5, no prior, no
# counterpart term, all 5000 steps (patience = steps: early stopping never fires). covgan's
# solver keeps the best iterate where the authors keep the last; on a descent that runs all its
# steps they coincide.
INVERSION_PRESETS = {
    "covgan": InversionSettings(),
    "authors": InversionSettings(steps=5000, learning_rate=0.01, restarts=1, prior_weight=0.0,
                                 patience=5000, beta_1=0.5, z1_start="zeros",
                                 counterpart_weight=0.0),
}


def inversion_settings(preset: str = "covgan", **overrides) -> InversionSettings:
    """The preset's settings with the given fields replaced; None leaves a field as the preset
    has it (the command line passes None for an option the user did not give)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return dataclasses.replace(INVERSION_PRESETS[preset], **given)
