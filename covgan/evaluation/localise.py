"""Which explanation points at the lesions? Every map against the lesion masks.

Held-out positives with lesion masks are explained (inversion, traversal, the gradient maps)
over one or more inversion seeds, and each map is scored against the mask: pointing game,
relevance mass, IoU of the top pixels, AUROC, and deletion and insertion curves through the
classifier. Maps that depend on the inversion (the traversal's) are averaged over the seeds
per image; then every method is compared with Grad-CAM image by image, with a paired
bootstrap 95% interval of the mean difference. The inversion's own quality is reported beside
it (a traversal map is only as good as the reconstruction it comes from), with the
reconstruction residual |x - G(z1, z2)| scored against the masks: where the residual
concentrates in the masks, the GAN failed to reproduce the lesions.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from covgan.evaluation import localisation
from covgan.evaluation.lesion_prior import LESION_PRIOR, off_prior
from covgan.evaluation.metrics import monotone
from covgan.explain.invert import (
    COUNTERPART,
    IMAGE,
    RECONSTRUCTION,
    InversionSettings,
    trust_conditions,
)
from covgan.explain.maps import READS_IMAGE, explanation_maps
from covgan.explain.pipeline import explain
from covgan.explain.settings import DEFAULT_MAP, TuningSettings
from covgan.models.classifier import positive_probability

PAIRED_SCORES = ("pointing_game", "relevance_mass")
# The p(positive) of the image at which the classifier calls it positive (`called_positive`).
CALLED_POSITIVE = 0.5
BOOTSTRAP_SAMPLES = 2000


def paired_interval(differences: np.ndarray, *, seed: int = 0,
                    samples: int = BOOTSTRAP_SAMPLES) -> list[float]:
    """The bootstrap 95% interval of the mean of per-image differences (percentile method)."""
    differences = np.asarray(differences, np.float64)
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (samples, len(differences)))].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _per_image(maps, masks, tie_seed):
    return [localisation.localisation_scores(m, k, seed=tie_seed) for m, k in zip(maps, masks)]


def _curve_areas(probability, images, maps, tie_seed):
    """The mean deletion and insertion areas of one map per image."""
    curves = [localisation.deletion_insertion(probability, image, m, seed=tie_seed)
              for image, m in zip(images, maps)]
    return {f"{kind}_auc": float(np.mean([c[f"{kind}_auc"] for c in curves]))
            for kind in ("deletion", "insertion")}


def _mean_over_seeds(per_seed):
    """Per image, the mean of each score over the seeds' score dicts."""
    averaged = []
    for scores in zip(*per_seed):
        averaged.append({key: (float(np.mean([s[key] for s in scores]))
                               if all(s[key] is not None for s in scores) else None)
                         for key in scores[0]})
    return averaged


# Each way an inversion can fail the trust rule, by the name localisation.json gives it, with
# the condition of `invert.trust_conditions` it breaks.
TRUST_FAILURES = {"ssim": "ssim", "probability_gap": "probability_gap",
                  "add_back_positive": "add_back_negative"}


def _failing(result) -> dict[str, np.ndarray]:
    """Per failure name, where each image fails it (N,) booleans."""
    p = result["probabilities"]
    holds = trust_conditions(p[:, IMAGE], p[:, RECONSTRUCTION], result["ssim"],
                             result["add_back_probabilities"])
    return {name: ~np.asarray(holds[condition]) for name, condition in TRUST_FAILURES.items()}


def trust_failures(result) -> dict[str, float]:
    """The share of images failing each condition of the trust rule
    (`invert.trust_conditions`); an image may fail several: ssim, probability_gap, and
    add_back_positive (what the GAN failed to reproduce is itself enough to make the
    counterpart positive)."""
    return {name: float(np.mean(fails)) for name, fails in _failing(result).items()}


def inversion_per_image(result) -> list[dict]:
    """Each image's inversion as the trust rule reads it: p(positive) of the image, the
    reconstruction, the counterpart and the add-back, SSIM, trusted, and the conditions it
    fails (so a reader can see which images are untrusted, and why)."""
    p, failing = result["probabilities"], _failing(result)
    return [{"p_image": float(p[i, IMAGE]), "p_reconstruction": float(p[i, RECONSTRUCTION]),
             "p_counterpart": float(p[i, COUNTERPART]),
             "p_add_back": float(result["add_back_probabilities"][i]),
             "ssim": float(result["ssim"][i]), "trusted": bool(result["trusted"][i]),
             "untrusted_because": [name for name, fails in failing.items() if fails[i]]}
            for i in range(len(p))]


def _mean_defined(values):
    """The mean of the values that are not None (None if none is)."""
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _inversion_summary(result, images, masks):
    p, walks = result["probabilities"], result["traversal_probabilities"]
    residual = np.abs(images - result["reconstructions"])[..., 0]
    residual_scores = localisation.summarise(_per_image(residual, masks, 0))
    area = float(np.mean([m.mean() for m in masks]))
    change = np.abs(result["difference"][..., 0])
    untuned = {}
    if "ssim_untuned" in result:  # pivotal tuning ran: the inversion's own figures beside
        untuned = {"median_ssim_untuned": float(np.median(result["ssim_untuned"])),
                   "trusted_fraction_untuned": float(np.mean(result["trusted_untuned"]))}
    return {
        "median_ssim": float(np.median(result["ssim"])),
        "trusted_fraction": float(np.mean(result["trusted"])),
        "untrusted_because": trust_failures(result),
        "counterpart_negative_fraction": float(np.mean(p[:, COUNTERPART] < 0.5)),
        "non_decreasing_fraction": float(np.mean([monotone(w, tolerance=0.0) for w in walks])),
        "non_decreasing_fraction_tolerance_0.01": float(np.mean(
            [monotone(w, tolerance=0.01) for w in walks])),
        "image_positive_fraction": float(np.mean(p[:, IMAGE] >= 0.5)),
        # What the GAN failed to reproduce, against the masks (mass / area share: 1 = uniform)
        # and against the tissue just around them (1 = the lesions reproduced as well).
        "residual": {**residual_scores, "mask_area_share": area,
                     "mass_over_area_share": residual_scores["relevance_mass"] / area,
                     "mask_over_surround": _mean_defined(
                         [localisation.surround_contrast(r, m) for r, m in zip(residual, masks)]),
                     "surround_width": localisation.SURROUND_WIDTH},
        # How local the walk's change is: its mean inside the masks and overall.
        "difference_mean": float(change.mean()),
        "difference_mean_in_masks": float(np.mean([c[m].mean() for c, m in zip(change, masks)])),
        **untuned,
        "per_image": inversion_per_image(result),
    }


def score_localisation(generator: keras.Model, classifier: keras.Model, images: np.ndarray,
                       masks: np.ndarray, *, settings: InversionSettings = InversionSettings(),
                       seeds: tuple[int, ...] = (0,), curves: bool = True,
                       tie_seed: int = 0, encoder: keras.Model | None = None,
                       tuning: TuningSettings = TuningSettings(),
                       prior: np.ndarray | None = None,
                       progress: Callable[[int], None] | None = None) -> dict:
    """Scores every map of every image against its mask.

    Args:
        images: (N, 128, 128, 1) positives.
        masks: (N, 128, 128) boolean lesion masks.
        settings: the inversion's settings.
        seeds: inversion start seeds; maps that depend on the inversion are averaged over them.
        curves: also compute deletion and insertion curves (slower).
        tie_seed: seed of the random order among equal map values.
        encoder: the run's E, for `settings.z1_start` "encoder".
        tuning: pivotal tuning after each inversion (`TuningSettings`; steps 0: none).
        prior: (128, 128) where lesions usually lie (`lesion_prior.mask_prior`), scored
            as one more baseline, the same map for every film, "lesion_prior"; and every map
            again over the films whose lesion it misses (`off_prior`).
        progress: called with the number of images just explained (each seed explains all).

    Returns:
        {"default_map", "methods": {method: {pointing_game, relevance_mass, iou_topk, auroc[,
        deletion_auc, insertion_auc]}}, "paired_vs_gradcam": {method: {score: [low, high]}},
        "paired_vs_baselines": {inversion map: {baseline: {score: [low, high]}}},
        "per_image": {method: [{score: value} per image]}, "n", "seeds", "inversion": {...},
        "inversion_per_seed": [...], "methods_on_trusted_only", "called_positive": {n,
        threshold, methods, paired_vs_baselines} (the same scores over the images the
        classifier itself calls positive: asking what makes a film positive that the
        classifier calls negative is another question), "off_prior": the same over the films
        whose lesion the prior misses (with `prior`)}.
    """
    images, masks = np.asarray(images, np.float32), np.asarray(masks, bool)
    # The image-only maps (Grad-CAM, gradients) come with the first seed; no inversion moves them.
    results = [explain(generator, classifier, images, settings=settings, seed=seed,
                       image_maps=seed == seeds[0], encoder=encoder, tuning=tuning,
                       progress=progress)
               for seed in seeds]

    def probability(batch):
        return np.asarray(positive_probability(classifier, batch))

    # Every registered map, by its name; those of the walk depend on the inversion (and its
    # seed), the others (the baselines) read the image alone.
    keys = {m.name: m.key for m in explanation_maps()}
    walk_maps = [m.name for m in explanation_maps() if m.needs_walk]
    baselines = [m.name for m in explanation_maps(READS_IMAGE)]
    per_image, first_seed, methods = {}, {}, {}
    for method, key in keys.items():
        runs = results if method in walk_maps else results[:1]
        per_seed = [_per_image(r[key], masks, tie_seed) for r in runs]
        first_seed[method] = per_seed[0]
        per_image[method] = _mean_over_seeds(per_seed)
        methods[method] = localisation.summarise(per_image[method])
        if curves:
            methods[method].update(_curve_areas(probability, images, results[0][key], tie_seed))
    if prior is not None:  # one map for every film: where lesions usually lie
        prior_maps = np.broadcast_to(prior, masks.shape)
        per_image[LESION_PRIOR] = first_seed[LESION_PRIOR] = _per_image(prior_maps, masks,
                                                                         tie_seed)
        methods[LESION_PRIOR] = localisation.summarise(per_image[LESION_PRIOR])
        if curves:
            methods[LESION_PRIOR].update(_curve_areas(probability, images, prior_maps,
                                                      tie_seed))
        baselines.append(LESION_PRIOR)
    # A walk map averaged over the seeds' inversions (each scaled to peak 1 again): one map
    # per film from several inversions, steadier than any one of them where a film's
    # inversion is not fixed by the film (docs: Real films, how much rounding moves an
    # explanation). Scored as one more method, "<map>_seed_mean".
    if len(results) > 1:
        for method in list(walk_maps):
            mean = np.mean([r[keys[method]] for r in results], axis=0)
            peaks = mean.reshape(len(mean), -1).max(axis=1)[:, None, None]
            mean = np.divide(mean, peaks, out=np.zeros_like(mean), where=peaks > 0)
            averaged = f"{method}_seed_mean"
            per_image[averaged] = first_seed[averaged] = _per_image(mean, masks, tie_seed)
            methods[averaged] = localisation.summarise(per_image[averaged])
            keys[averaged] = averaged
            walk_maps.append(averaged)

    scored = [*keys, *([LESION_PRIOR] if prior is not None else [])]

    def paired_against(method, baseline, kept=None):
        return paired_scores(per_image[method], per_image[baseline], kept, seed=tie_seed)

    paired = {method: paired_against(method, "gradcam") for method in scored
              if method != "gradcam"}
    # The bar an explanation must clear: above every baseline, not only Grad-CAM.
    against_baselines = {method: {baseline: paired_against(method, baseline)
                                  for baseline in baselines}
                         for method in walk_maps}
    # Does the default beat the other maps of the walk (what it was chosen over), film by film?
    default_vs_walk_maps = {method: paired_against(DEFAULT_MAP, method) for method in walk_maps
                            if method != DEFAULT_MAP}
    # Does averaging the inversions beat the single inversion's map, film by film?
    seed_mean_vs_single = {method: paired_against(f"{method}_seed_mean", method)
                           for method in walk_maps if f"{method}_seed_mean" in per_image}

    def subset(kept) -> dict:
        """Every map's means, and the walk maps against the baselines, over the kept films."""
        return {"n": int(kept.sum()),
                "methods": {method: localisation.summarise(
                    [s for s, keep in zip(per_image[method], kept) if keep])
                    for method in scored},
                "paired_vs_baselines": {method: {baseline: paired_against(method, baseline,
                                                                          kept)
                                                 for baseline in baselines}
                                        for method in walk_maps}} if kept.any() else {"n": 0}

    trusted = results[0]["trusted"]
    called = results[0]["probabilities"][:, 0] >= CALLED_POSITIVE
    off = {"off_prior": subset(off_prior(prior, masks))} if prior is not None else {}
    summaries = [_inversion_summary(result, images, masks) for result in results]
    return {
        "default_map": DEFAULT_MAP,
        "methods": methods,
        "paired_vs_gradcam": paired,
        "paired_vs_baselines": against_baselines,
        "default_vs_walk_maps": default_vs_walk_maps,
        "seed_mean_vs_single": seed_mean_vs_single,
        # Each image's scores (averaged over the seeds), so runs of other seeds can be pooled.
        "per_image": per_image,
        "n": int(len(images)),
        "seeds": list(seeds),
        "inversion": summaries[0],
        "inversion_per_seed": summaries,
        "methods_on_trusted_only": {
            method: localisation.summarise([s for s, t in zip(first_seed[method], trusted) if t])
            for method in scored
        } if trusted.any() else None,
        "called_positive": {**subset(called), "threshold": CALLED_POSITIVE},
        **off,
    }


def paired_scores(rows: list[dict], baseline_rows: list[dict], kept=None, *,
                  seed: int = 0) -> dict:
    """{score: paired 95% interval of rows minus baseline_rows} over PAIRED_SCORES, image by
    image (localisation.json's per_image rows of two maps; `kept`: a mask of the images to
    pair)."""
    pairs = zip(rows, baseline_rows)
    if kept is not None:
        pairs = [pair for pair, keep in zip(pairs, kept) if keep]
    pairs = list(pairs)
    return {score: paired_interval([a[score] - b[score] for a, b in pairs], seed=seed)
            for score in PAIRED_SCORES}


def table(scores: dict) -> str:
    """A plain-text table of the method scores, for people (stderr)."""
    keys = ("pointing_game", "relevance_mass", "iou_topk", "auroc", "deletion_auc",
            "insertion_auc")
    width = max(len(m) for m in scores["methods"]) + 2
    lines = [f"{'method':<{width}}" + "".join(f"{k:>15}" for k in keys)
             + f"{'pointing - Grad-CAM (95%)':>30}{'mass - Grad-CAM (95%)':>28}"]
    for method, values in scores["methods"].items():
        cells = "".join(f"{values[k]:>15.3f}" if values.get(k) is not None else f"{'-':>15}"
                        for k in keys)
        paired = scores["paired_vs_gradcam"].get(method)
        intervals = ("".join(f"{f'[{low:+.3f}, {high:+.3f}]':>29}" for low, high in
                             (paired[s] for s in PAIRED_SCORES)) if paired else "")
        lines.append(f"{method:<{width}}{cells} {intervals}")
    default = scores["default_map"]
    # The default minus each baseline, then minus each other map of the walk.
    against = {**scores.get("paired_vs_baselines", {}).get(default, {}),
               **scores.get("default_vs_walk_maps", {})}
    for other, paired in against.items():
        lines.append(f"{default} - {other}: " + ", ".join(
            f"{score} [{low:+.3f}, {high:+.3f}]" for score, (low, high) in paired.items()))
    called, off = scores.get("called_positive", {}), scores.get("off_prior", {})
    for subset, which in ((called, f"the classifier calls positive (p >= "
                                   f"{called.get('threshold')})"),
                          (off, f"whose lesion {LESION_PRIOR}'s peak misses")):
        if subset.get("n"):
            lines.append(f"on the {subset['n']} images {which}: " + ", ".join(
                f"{method} {values['pointing_game']:.3f} / {values['relevance_mass']:.3f}"
                for method, values in subset["methods"].items())
                + " (pointing game / relevance mass)")
    inversion = scores["inversion"]
    residual = inversion["residual"]
    around = residual.get("mask_over_surround")
    lines.append(f"inversion (first seed): median SSIM {inversion['median_ssim']:.3f}, trusted "
                 f"{inversion['trusted_fraction']:.1%}; the residual's mass in the masks "
                 f"{residual['mass_over_area_share']:.2f}x their area share, its mean "
                 + (f"{around:.2f}x" if around is not None else "-")
                 + f" that of the {residual['surround_width']}-pixel band around them")
    lines.append(f"n = {scores['n']} images x {len(scores['seeds'])} inversion seed(s); "
                 f"default map: {scores['default_map']}; deletion: lower is better; "
                 "all others: higher is better")
    return "\n".join(lines)
