"""tools/class_difference.py: the class difference as is and balanced by a column."""

import json

import numpy as np
from helpers import load_tool

from covgan.data import layout


def confounded_set(folder):
    """Positives carry a bright lower-right square; films of view A a bright upper-left one,
    and 6 of 8 positives are A against 2 of 8 negatives."""
    records = []
    for i in range(16):
        label, view = i // 8, ("A" if (i % 8) < (6 if i >= 8 else 2) else "B")
        image = np.full((128, 128), 0.3, np.float32)
        if label:
            image[80:112, 80:112] = 0.8
        if view == "A":
            image[16:48, 16:48] = 0.8
        layout.write_png(folder / "images" / f"{i}.png", image)
        records.append(layout.Record(f"images/{i}.png", label, str(i), "train",
                                     extra=(("view", view),)))
    layout.write_manifest(folder / layout.MANIFEST, records)


def test_balancing_takes_the_views_square_out_of_the_class_difference(tmp_path, capsys):
    confounded_set(tmp_path)
    load_tool("class_difference").main(["--data", str(tmp_path), "--by", "view",
                                        "--figure", str(tmp_path / "fig.png")])
    result = json.loads(capsys.readouterr().out)
    assert result["films"] == {"0": {"A": 2, "B": 6}, "1": {"A": 6, "B": 2}}
    # As is, the difference holds the view's square (share of A 0.75 - 0.25) and the class's.
    assert result["as_is"]["correlation_with"]["A"] > 0.3
    # Balanced, and within each view, only the class's square, which two disjoint squares'
    # correlation puts a little below 0 (-0.07), not at the as-is 0.4.
    assert abs(result["balanced"]["correlation_with"]["A"]) < 0.1
    assert all(abs(w["correlation_with"]["A"]) < 0.1 for w in result["within"].values())
    assert result["as_is"]["mean_abs"] > result["balanced"]["mean_abs"]
    assert (tmp_path / "fig.png").stat().st_size > 1000
