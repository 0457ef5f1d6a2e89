"""Scores computed from arrays: classifier quality (and, later, GAN and explanation scores)."""

import numpy as np


def roc_auc(labels, scores):
    """Area under the ROC curve by the rank-sum (Mann-Whitney) statistic, ties averaged.

    Returns None when only one class is present.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.bincount(inverse, weights=ranks) / counts)[inverse]
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
