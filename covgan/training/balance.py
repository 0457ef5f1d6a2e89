"""Loss weights that balance the classes, or each class's mix of a manifest column.

The classifier (`covgan classifier train --balance-by`) weights its loss with them; the GAN
(`covgan train --balance-by`) weights its critic's real images, so that a column that goes
with the class (the view, the site) is not what the class-aware critic learns the class by.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from covgan.data.layout import column_values
from covgan.evaluation.attributes import attribute_values


def class_weights(records):
    """Weights n / (2 n_c) that balance the two classes' share of the loss."""
    counts = np.bincount([r.label for r in records], minlength=2)
    if counts.min() == 0:
        return None
    return {c: float(len(records) / (2 * counts[c])) for c in (0, 1)}


def balance_weights(records: Sequence, column: str,
                    balance_classes: bool = True) -> tuple[list[float], dict]:
    """Per-record loss weights under which each class has the same mix of a column's values.

    Within class y a film of value v weighs P(v) / P(v | y), P(v) the value's share of all the
    records, so each class's weighted mix is the overall one (over the values the class has
    at all; a value a class lacks is listed, since no weight can supply it). With
    `balance_classes` the weights also carry n / (2 n_y), as `class_weights` does. The
    weights are scaled to mean 1.

    Returns:
        (weights, table): table is JSON-ready: {column, values: {CLASS: {VALUE: {n, weight}}},
        absent: {CLASS: [VALUE, ...]}}.
    """
    values, _ = attribute_values(column_values(records, column))
    labels = np.asarray([r.label for r in records])
    values = np.asarray(values, object)
    overall = {v: float(np.mean(values == v)) for v in sorted(set(values))}
    weights = np.zeros(len(records))
    table = {"column": column, "values": {}, "absent": {}}
    for label in (0, 1):
        in_class = labels == label
        if not in_class.any():
            continue
        present = {v: share for v, share in overall.items() if np.any(in_class & (values == v))}
        total = sum(present.values())
        for v in present:
            members = in_class & (values == v)
            weights[members] = (present[v] / total) / members.mean() * in_class.mean()
            if balance_classes:
                weights[members] *= len(records) / (2 * in_class.sum())
        table["absent"][str(label)] = [v for v in overall if v not in present]
    weights /= weights.mean()
    for label in (0, 1):
        table["values"][str(label)] = {
            v: {"n": int(np.sum((labels == label) & (values == v))),
                "weight": round(float(weights[(labels == label) & (values == v)][0]), 4)}
            for v in overall if np.any((labels == label) & (values == v))}
    return weights.tolist(), table
