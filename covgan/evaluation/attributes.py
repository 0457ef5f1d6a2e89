"""A classifier scored by a film attribute (view, sex, age, site, ...): does it read the
attribute as well as the disease?

Per value of the attribute: the usual scores (accuracy, AUC, sensitivity, specificity). Then,
within each class, the mean p(positive) of each value with a bootstrap 95% interval, and for
every pair of values the difference of their means with its own interval. Within one class
the disease is the same, so a classifier that reads one value as more positive than another
is reading the attribute: such a pair is flagged when the difference exceeds
`FLAG_DIFFERENCE` and its interval lies away from 0, in plain words ("within the positive
films, AP films read 0.31 more positive than PA films"). Values with fewer than
`MIN_FILMS` films in a class are reported but not compared there. A numeric column with many
values (age) is cut into quartile bins first.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from covgan.evaluation.metrics import classification_scores

FLAG_DIFFERENCE = 0.1
MIN_FILMS = 5
BOOTSTRAP_SAMPLES = 2000
# A numeric column with more distinct values than this is binned into NUMERIC_BINS quantiles.
MAX_NUMERIC_VALUES = 8
NUMERIC_BINS = 4
MISSING = "(missing)"


def attribute_values(raw: Sequence[str]) -> tuple[list[str], str]:
    """Each film's value of an attribute as a group name, and how the groups were made.

    Returns:
        (values, kind): kind "categorical" (each distinct value a group; empty cells grouped
        as "(missing)") or "numeric quartiles" (a column of numbers with more than
        MAX_NUMERIC_VALUES distinct values, cut at its quartiles into groups named "lo-hi").
    """
    raw = [str(v).strip() for v in raw]
    present = [v for v in raw if v]
    numbers = _numbers(present)
    if numbers is None or len(set(present)) <= MAX_NUMERIC_VALUES:
        return [v or MISSING for v in raw], "categorical"
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, NUMERIC_BINS + 1)))
    names = [f"{lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]
    values = []
    for v in raw:
        if not v:
            values.append(MISSING)
            continue
        index = int(np.searchsorted(edges, float(v), side="right")) - 1
        values.append(names[min(max(index, 0), len(names) - 1)])
    return values, "numeric quartiles"


def scores_by_attribute(labels: Sequence[int], probabilities: Sequence[float],
                        values: Sequence[str], *, column: str = "attribute",
                        threshold: float = 0.5, class_names: tuple[str, str] = ("negative",
                                                                                 "positive"),
                        seed: int = 0, samples: int = BOOTSTRAP_SAMPLES) -> dict:
    """The classifier's scores and readings by attribute value (see the module docstring).

    Args:
        labels: (N,) 0/1.
        probabilities: (N,) p(positive).
        values: (N,) each film's group (`attribute_values`).
        column: the attribute's name, for the flags' text.
        threshold: the decision threshold of the scores.
        class_names: the names of class 0 and 1 in the flags' text.
        seed: seed of the bootstrap.
        samples: bootstrap resamples.

    Returns:
        A JSON-ready dict: {column, groups: {VALUE: scores}, within_class: {CLASS: {VALUE:
        {n, mean, low, high}}}, differences: [{class, higher, lower, difference, low, high,
        flagged}], flags: [{id, text, ...}]}.
    """
    labels = np.asarray(labels, int)
    probabilities = np.asarray(probabilities, np.float64)
    values = np.asarray(values, object)
    rng = np.random.default_rng(seed)
    order = sorted(set(values), key=lambda v: (-int(np.sum(values == v)), str(v)))
    groups = {v: classification_scores(labels[values == v], probabilities[values == v],
                                       threshold) for v in order}
    within, differences = {}, []
    for label, name in enumerate(class_names):
        in_class = labels == label
        readings = {v: probabilities[in_class & (values == v)] for v in order}
        within[name] = {v: _mean_interval(p, rng, samples) for v, p in readings.items() if len(p)}
        compared = [v for v in order if len(readings[v]) >= MIN_FILMS]
        for a, b in itertools.combinations(compared, 2):
            if readings[a].mean() < readings[b].mean():
                a, b = b, a
            low, high = _difference_interval(readings[a], readings[b], rng, samples)
            difference = float(readings[a].mean() - readings[b].mean())
            differences.append({
                "class": name, "higher": a, "lower": b, "difference": difference,
                "low": low, "high": high, "n_higher": len(readings[a]),
                "n_lower": len(readings[b]),
                "flagged": bool(difference > FLAG_DIFFERENCE and low > 0)})
    flags = [_flag(column, d, within) for d in differences if d["flagged"]]
    return {"column": column, "threshold": threshold, "groups": groups, "within_class": within,
            "differences": differences, "flags": flags, "flag_difference": FLAG_DIFFERENCE,
            "min_films": MIN_FILMS}


def _flag(column, d, within):
    means = within[d["class"]]
    return {
        "id": f"within_class_{column}",
        "text": (f"Within the {d['class']} films, {d['higher']} films read "
                 f"{d['difference']:.2f} more positive than {d['lower']} films (95% interval "
                 f"{d['low']:.2f} to {d['high']:.2f}; mean p {means[d['higher']]['mean']:.2f} "
                 f"against {means[d['lower']]['mean']:.2f}, n {d['n_higher']} and "
                 f"{d['n_lower']}): the classifier reads the {column}, not only the disease."),
        **{k: d[k] for k in ("class", "higher", "lower", "difference", "low", "high")},
    }


def _mean_interval(values, rng, samples):
    means = values[rng.integers(0, len(values), (samples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"n": int(len(values)), "mean": float(values.mean()), "low": float(low),
            "high": float(high)}


def _difference_interval(a, b, rng, samples):
    """Bootstrap 95% interval of mean(a) - mean(b), each group resampled on its own."""
    means_a = a[rng.integers(0, len(a), (samples, len(a)))].mean(axis=1)
    means_b = b[rng.integers(0, len(b), (samples, len(b)))].mean(axis=1)
    low, high = np.percentile(means_a - means_b, [2.5, 97.5])
    return float(low), float(high)


def _numbers(values):
    try:
        return np.asarray([float(v) for v in values], np.float64) if values else None
    except ValueError:
        return None
