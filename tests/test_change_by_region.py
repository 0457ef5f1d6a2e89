"""tools/change_by_region.py on the shared tiny run, in this process."""

import json

from helpers import load_tool


def tool():
    return load_tool("change_by_region")


def test_change_by_region_reports_the_band_and_what_the_classifier_reads(tiny_run, capsys):
    module = tool()
    capsys.readouterr()
    module.main(["--run", str(tiny_run), "--count", "16", "--band", "4"])
    report = json.loads(capsys.readouterr().out)
    assert report["count"] == 16
    assert report["band_share_of_area"] == round(1 - (120 / 128) ** 2, 3)
    assert 0 <= report["share_of_largest_changes_in_band"] <= 1
    profile = report["mean_abs_change"]
    assert all(len(profile[k]) == 4 for k in ("left_columns", "right_columns", "top_rows",
                                               "bottom_rows"))
    assert all(0 <= p <= 1 for p in report["p_positive"].values())
    # The walk's end is the drawn image: the classifier's reading of it is the full change's.
    assert report["p_positive"]["drawn"] != report["p_positive"]["counterpart"]


def test_the_edge_profile_finds_a_line_two_pixels_in():
    import numpy as np

    change = np.zeros((20, 20))
    change[:, 2] = 1.0  # a line two pixels in from the left edge
    profile = tool().edge_profile(change, 4)
    assert profile["left_columns"] == [0.0, 0.0, 1.0, 0.0]
    assert profile["right_columns"] == [0.0] * 4 and profile["interior_median"] == 0.0
