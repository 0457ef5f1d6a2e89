"""Scores by a film attribute: within one class, does the classifier read the attribute?"""

import numpy as np

from covgan.evaluation.attributes import (
    FLAG_DIFFERENCE,
    MISSING,
    attribute_values,
    scores_by_attribute,
)


def readings(shift, n=60, seed=0):
    """Two classes, a view column; AP films read `shift` more positive within each class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n)
    views = np.tile(["AP", "PA", "PA"], 2 * n // 3)
    base = np.where(labels == 1, 0.6, 0.3)
    p = np.clip(base + np.where(views == "AP", shift, 0.0) + rng.normal(0, 0.05, 2 * n), 0, 1)
    return labels, p, views


def test_a_classifier_that_reads_the_view_is_flagged_in_plain_words():
    labels, p, views = readings(0.3)
    result = scores_by_attribute(labels, p, views, column="view",
                                 class_names=("Normal", "Pneumonia"))
    assert set(result["groups"]) == {"AP", "PA"}
    assert result["groups"]["AP"]["n"] == 40
    for name in ("Normal", "Pneumonia"):
        ap, pa = result["within_class"][name]["AP"], result["within_class"][name]["PA"]
        assert ap["low"] < ap["mean"] < ap["high"]
        assert ap["mean"] - pa["mean"] > 0.25
    assert len(result["flags"]) == 2
    flag = result["flags"][1]
    assert flag["higher"] == "AP" and flag["lower"] == "PA" and flag["low"] > 0
    assert flag["text"].startswith("Within the Pneumonia films, AP films read 0.")
    assert "more positive than PA films" in flag["text"]


def test_no_flag_without_an_effect_or_within_noise():
    labels, p, views = readings(0.0)
    result = scores_by_attribute(labels, p, views, column="view")
    assert result["flags"] == []
    assert all(abs(d["difference"]) < FLAG_DIFFERENCE for d in result["differences"])
    # A large difference on a handful of films: its interval reaches 0, so no flag.
    labels = np.array([1] * 10)
    p = np.array([0.9, 0.1, 0.9, 0.1, 0.95, 0.5, 0.2, 0.6, 0.1, 0.7])
    views = np.array(["AP"] * 5 + ["PA"] * 5)
    result = scores_by_attribute(labels, p, views, column="view")
    (difference,) = result["differences"]
    assert difference["difference"] > FLAG_DIFFERENCE and difference["low"] < 0
    assert result["flags"] == []


def test_numeric_columns_are_cut_into_quartiles_and_blanks_kept_apart():
    ages = [str(a) for a in range(20, 100)] + [""]
    values, kind = attribute_values(ages)
    assert kind == "numeric quartiles"
    assert len(set(values) - {MISSING}) == 4 and values[-1] == MISSING
    assert values[0] == values[1] and values[0] != values[-2]
    values, kind = attribute_values(["PA", "AP", "", "PA"])
    assert kind == "categorical" and values == ["PA", "AP", MISSING, "PA"]
