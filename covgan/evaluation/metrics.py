"""Scores computed from arrays: classifier quality (and, later, GAN and explanation scores)."""

import numpy as np


def average_ranks(values):
    """1-based ranks of `values`, ties sharing their average rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(a, b):
    """Spearman's rank correlation, or nan where either side is constant."""
    ra, rb = average_ranks(a), average_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def monotone(sequence, tolerance=0.01):
    """True when no step falls by more than `tolerance` below the one before it."""
    return bool(np.all(np.diff(np.asarray(sequence, dtype=np.float64)) >= -tolerance))


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

    d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), the square
    roots taken through symmetric eigendecompositions.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root)


def roc_auc(labels, scores):
    """Area under the ROC curve by the rank-sum (Mann-Whitney) statistic, ties averaged.

    Returns None when only one class is present.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return None
    ranks = average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def classification_scores(labels, probabilities, threshold=0.5):
    """Accuracy, AUC, sensitivity, specificity and confusion matrix for p(positive).

    Args:
        labels: (N,) 0/1 ground truth.
        probabilities: (N,) p(positive).
        threshold: decision threshold on p(positive).

    Returns:
        A JSON-ready dict; confusion_matrix is [[TN, FP], [FN, TP]] (rows: truth).
    """
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    n = len(labels)

    def ratio(a, b):
        return a / b if b else None

    sensitivity, specificity = ratio(tp, tp + fn), ratio(tn, tn + fp)
    return {
        "accuracy": ratio(tp + tn, n),
        "auc": roc_auc(labels, probabilities),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": (
            (sensitivity + specificity) / 2 if None not in (sensitivity, specificity) else None
        ),
        "precision": ratio(tp, tp + fp),
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "n": n,
        "threshold": threshold,
    }
