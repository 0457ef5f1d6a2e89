"""The audit's aggregation: a group's region shares, its global change and the flags."""

import cv2
import numpy as np
import pytest

from covgan.data.phantom import phantom_rng, render_phantom
from covgan.evaluation.audit import FLAG_THRESHOLDS, flags, group_summary, marker_scores
from covgan.evaluation.regions import REGIONS


@pytest.fixture(scope="module")
def group():
    phantoms = [render_phantom(phantom_rng(7, i), label=1) for i in range(8)]
    return (np.stack([p.image for p in phantoms]), [p.lung_mask for p in phantoms],
            [p.lesion_mask for p in phantoms])


def test_a_map_on_the_lesions_raises_no_flag(group):
    images, lungs, lesions = group
    summary = group_summary(images, {"traversal": np.stack(lesions).astype("f4")}, lungs=lungs)
    assert summary["n"] == 8 and summary["lungs"] == "masks"
    regions = summary["methods"]["traversal"]["regions"]
    assert tuple(regions) == REGIONS and regions["lungs"] == pytest.approx(1.0)
    assert summary["methods"]["traversal"]["mean_map"].shape == (128, 128)
    assert flags(summary, "traversal") == []


def test_a_marker_corner_map_is_flagged_with_its_share(group):
    images, lungs, lesions = group
    maps = np.stack(lesions).astype("f4")
    maps[:, 2:12, 2:12] = 0.5  # 50 against 190-520 lesion pixels: 9-21% of the mass
    summary = group_summary(images, {"integrated_gradients": maps}, lungs=lungs)
    raised = {f["id"]: f for f in flags(summary, "integrated_gradients")}
    corner = raised["corner_upper_left"]
    assert corner["value"] == pytest.approx(
        summary["methods"]["integrated_gradients"]["regions"]["corner_upper_left"], abs=1e-4)
    assert corner["value"] > FLAG_THRESHOLDS["corner"] == corner["threshold"]
    assert "upper-left corner carries" in corner["text"]
    assert "outside_lungs" not in raised and "corner_lower_right" not in raised
    # Grad-CAM's cells are coarser than the regions: the same map under its name raises none.
    coarse = group_summary(images, {"gradcam": maps}, lungs=lungs)
    assert flags(coarse, "gradcam") == []


def test_a_corner_only_the_images_own_maps_see_is_flagged_and_the_walk_said_to_miss_it(group):
    images, lungs, lesions = group
    on_lesions = np.stack(lesions).astype("f4")
    with_corner = on_lesions.copy()
    with_corner[:, 2:12, 2:12] = 1.0
    summary = group_summary(images, {"latent_gradients": on_lesions, "gradient": on_lesions,
                                     "integrated_gradients": with_corner}, lungs=lungs)
    corner = {f["id"]: f for f in flags(summary, "latent_gradients")}["corner_upper_left"]
    assert corner["map"] == "integrated_gradients"
    assert corner["maps"]["latent_gradients"] == 0.0 < FLAG_THRESHOLDS["corner"]
    assert corner["value"] == corner["maps"]["integrated_gradients"] > FLAG_THRESHOLDS["corner"]
    assert "by the integrated_gradients map" in corner["text"]
    assert ("The walk's own map (latent_gradients) puts 0% there: the GAN may not draw"
            in corner["text"])
    # Where the walk's map sees it too, it leads and nothing is said to be missed.
    both = group_summary(images, {"latent_gradients": with_corner, "gradient": on_lesions},
                         lungs=lungs)
    corner = {f["id"]: f for f in flags(both, "latent_gradients")}["corner_upper_left"]
    assert corner["map"] == "latent_gradients" and "may not draw" not in corner["text"]
    # A change the walk draws but the classifier does not weigh is the GAN's, not evidence.
    drawn = group_summary(images, {"traversal": with_corner, "latent_gradients": on_lesions},
                          lungs=lungs)
    corner = {f["id"]: f for f in flags(drawn, "latent_gradients")}["corner_upper_left"]
    assert corner["map"] == "traversal" and "may not draw" not in corner["text"]
    assert "a change of the GAN's rather than the classifier's evidence" in corner["text"]


def test_a_map_that_peaks_on_the_marker_scores_where_the_marker_is_known():
    marked = [render_phantom(phantom_rng(7, i), label=1, shortcut=True) for i in range(4)]
    boxes = [p.marker_mask for p in marked]
    on_marker = np.stack([p.lesion_mask * 0.5 + p.marker_mask for p in marked]).astype("f4")
    on_lesions = np.stack([p.lesion_mask for p in marked]).astype("f4")
    scores = marker_scores({"traversal": on_marker, "gradcam": on_lesions},
                           [boxes[0], None, boxes[2], boxes[3]])
    assert scores["n"] == 3  # the image without a known marker is left out
    assert scores["methods"]["traversal"]["pointing_game"] == 1.0
    assert 0.3 < scores["methods"]["traversal"]["relevance_mass"] < 1.0
    assert scores["methods"]["gradcam"] == {"pointing_game": 0.0, "relevance_mass": 0.0}
    assert marker_scores({"gradcam": on_lesions}, [None] * 4) is None


def test_evidence_outside_the_lungs_and_a_widening_walk_are_flagged(group):
    images, _, _ = group
    outside = np.zeros_like(images)
    outside[:, 100:120, 40:90] = 1.0  # below the lungs (abdomen)
    narrow = np.zeros_like(images)
    for i, image in enumerate(images):  # the chest squeezed to 85% of its width
        squeezed = cv2.resize(image, (109, 128), interpolation=cv2.INTER_AREA)
        narrow[i, :, 9:118] = squeezed
    summary = group_summary(images, {"traversal": outside}, counterparts=narrow,
                            reconstructions=images)
    assert summary["lungs"] == "approximate"
    raised = {f["id"]: f for f in flags(summary, "traversal", group="false_positives")}
    assert raised["outside_lungs"]["value"] > 0.9
    assert "(lung fields estimated, not drawn)" in raised["outside_lungs"]["text"]
    assert "false positives (8 images" in raised["outside_lungs"]["text"]
    assert raised["narrower_counterparts"]["value"] > 0.05
    # The same walk without the change in width raises no such flag.
    same = group_summary(images, {"traversal": outside}, counterparts=images,
                         reconstructions=images)
    assert "narrower_counterparts" not in {f["id"] for f in flags(same, "traversal")}


def test_the_strongest_images_of_a_flag_come_first_and_reach_the_page(group, tmp_path):
    from covgan.evaluation.audit import strongest
    from covgan.output.audit_report import write_audit_report

    images, lungs, _ = group
    maps = np.zeros(images.shape, "f4")
    maps[:, 60:70, 30:40] = 1.0  # the same spot in every lung, so only the corner differs
    weights = np.linspace(0.2, 1.0, len(images))  # image 7 has the brightest corner
    maps[:, 2:12, 2:12] = weights[:, None, None]
    summary = group_summary(images, {"traversal": maps}, lungs=lungs,
                            counterparts=images, reconstructions=images)
    order = strongest(summary, "corner_upper_left", "traversal", count=3)
    assert list(order) == [7, 6, 5]
    raised = [{**f, "group": "positives"} for f in flags(summary, "traversal")]
    assert any(f["id"] == "corner_upper_left" for f in raised)
    count = len(images)
    rows = {"reconstructions": images, "counterparts": images * 0.9,
            "probabilities": np.full((count, 3), 0.5, "f4"), "add_backs": images,
            "add_back_probabilities": np.full(count, 0.5, "f4"),
            "gradcam": np.zeros((count, 128, 128), "f4")}
    pictures = {"positives": {
        "mean_image": images.mean(0), "maps": {"traversal": summary["methods"]["traversal"]
                                               .pop("mean_map")},
        "indices": np.arange(count), "images": images[..., None], "rows": rows,
        "strongest": {f["id"]: strongest(summary, f["id"], "traversal") for f in raised}}}
    for values in summary["methods"].values():
        values.pop("per_image")
    summary.pop("changes")
    result = {"run": "r", "data": "d", "split": "test", "default_map": "traversal",
              "groups": {"positives": {**summary, "trusted": 1.0}}, "flags": raised}
    write_audit_report(tmp_path / "audit.html", result, pictures)
    page = (tmp_path / "audit.html").read_text()
    assert "upper-left corner carries" in page
    first = page.index('alt="Figure 2 of image 7"')
    assert first < page.index('alt="Figure 2 of image 6"') < page.index('alt="Figure 2 of image 0"')


def test_the_classifiers_reading_of_an_attribute_leads_the_page(group, tmp_path):
    from covgan.evaluation.attributes import scores_by_attribute
    from covgan.output.audit_report import write_audit_report

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    views = np.tile(["<b>AP</b>", "PA", "PA"], 40)
    p = np.clip(np.where(labels == 1, 0.6, 0.2) + np.where(views == "PA", 0.0, 0.3)
                + rng.normal(0, 0.05, 120), 0, 1)
    by = scores_by_attribute(labels, p, views, column="view")
    raised = [{**f, "value": f["difference"], "threshold": by["flag_difference"],
               "group": "classifier"} for f in by["flags"]]
    assert len(raised) == 2
    result = {"run": "r", "data": "d", "split": "heldout", "default_map": "traversal",
              "groups": {"positives": {"n": 0}}, "flags": raised, "attribute": by}
    write_audit_report(tmp_path / "audit.html", result, {})
    page = (tmp_path / "audit.html").read_text()
    # The flag comes first, in plain words, and the value's markup is shown, not run.
    lead = page.index('<div class="flag">Within the negative films, &lt;b&gt;AP&lt;/b&gt; films')
    assert lead < page.index("<h2>By view</h2>")
    assert "<b>AP</b>" not in page
