"""report.html and audit.html come from templates with autoescaping: what a user's files and
metadata carry is shown as text, and each page still says what it must."""

import numpy as np

from covgan.output.report import write_report

MARKUP = "<script>alert(1)</script>"


def entry(plot, **changes):
    tile = np.zeros((8, 8), np.uint8)
    return {"source": f"{MARKUP}.png", "p_image": 0.12, "p_reconstruction": 0.5,
            "p_counterpart": 0.1, "mse": 0.01, "ssim": 0.3, "trusted": False,
            "p_add_back": 0.7, "crossing_step": -1, "probabilities": [0.1, 0.2, 0.3],
            "warnings": [f"warning {MARKUP}"], "figure_panels": ([tile, tile], ["a", "b"]),
            "map_panels": ([tile], [f"map {MARKUP}"]), "strip_image": np.zeros((8, 24), np.uint8),
            "plot": str(plot), **changes}


def test_the_explanation_report_escapes_what_it_is_given_and_says_why(tmp_path):
    import cv2

    plot = tmp_path / "plot.png"
    cv2.imwrite(str(plot), np.zeros((4, 4), np.uint8))
    path = tmp_path / "report.html"
    write_report(path, [entry(plot), entry(plot, p_image=0.9, trusted=True, ssim=0.9,
                                           p_add_back=0.1, ssim_untuned=0.6,
                                           trusted_untuned=False, tuned=True),
                        entry(plot, p_image=0.8, trusted=True, ssim=0.7, p_add_back=0.1,
                              ssim_untuned=0.7, trusted_untuned=True, tuned=False)],
                 title=f"report {MARKUP}", settings={"run": MARKUP, "tuning": {"layers": "branch"}},
                 ssim_threshold=0.5, probability_gap=0.1)
    page = path.read_text()
    assert MARKUP not in page
    # The title twice; per film its name twice and the warning; the map's caption; the run.
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    # The negative film is not explained as positive, and its failed conditions are named.
    assert page.count("The classifier calls this film negative</b> (p = 0.12)") == 1
    assert "the reconstruction looks different (SSIM 0.30 &lt; 0.5)" in page
    assert "the classifier sees it differently (p differs by 0.38 &gt; 0.1)" in page
    assert "reads positive (p = 0.70)" in page
    assert "exactly the untuned GAN's" in page and "SSIM 0.60 before tuning" in page
    # A film the trust rule passed untuned was not tuned (the default), and says so.
    assert page.count("<p>Pivotal tuning:") == 1 and page.count("<p>Not tuned:") == 1
    assert page.count("<b>Trusted.</b>") == 2 and page.count("NOT trusted:") == 1
    # A trusted film's banner states the rule's threshold, not a closeness it did not measure.
    assert "passes the trust rule's likeness test (SSIM 0.70, at least 0.5" in page
    assert ".film1 { background-image: url(data:image/" in page


def test_the_audit_page_escapes_metadata_values(tmp_path):
    from covgan.evaluation.audit import audit_images
    from covgan.explain.invert import InversionSettings
    from covgan.models.classifier import build_classifier
    from covgan.models.generator import build_generator
    from covgan.output.audit_report import write_audit_report

    rng = np.random.default_rng(0)
    images = rng.random((6, 128, 128, 1)).astype("float32")
    labels = np.array([1, 1, 1, 0, 0, 0])
    probabilities = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.7])
    views = ["PA", MARKUP, "PA", MARKUP, "PA", MARKUP]
    result, pictures = audit_images(
        build_generator("tiny", z1_dim=8, z2_dim=2, seed=0), build_classifier("tiny", seed=0),
        images, labels, probabilities, count=2,
        settings=InversionSettings(steps=2, restarts=1), attribute=views, attribute_name="view")
    result.update(run=f"runs/{MARKUP}", data="data", split="test")
    write_audit_report(tmp_path / "audit.html", result, pictures)
    page = (tmp_path / "audit.html").read_text()
    assert MARKUP not in page
    assert "runs/&lt;script&gt;" in page and "<h2>By view</h2>" in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # run, the tables' values
