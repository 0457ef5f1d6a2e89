"""covgan audit through the command line, on the tiny run and its phantoms."""

import json
import subprocess

import pytest
from click.testing import CliRunner
from helpers import CHROMIUM_FLAGS, chromium, external_references, rendered_images

from covgan.cli import main
from covgan.evaluation.audit import COARSE_MAPS
from covgan.evaluation.regions import MEASURES, REGIONS

# One worker runs this module: its tests share one audit (the `audited` fixture).
pytestmark = pytest.mark.xdist_group("audit")

QUICK = ["--invert-steps", "5", "--restarts", "1", "--count", "2"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def audited(tiny_run, phantom_dir, tmp_path_factory):
    """One audit, with an external set, shared by the tests of its JSON and of its page."""
    out = tmp_path_factory.mktemp("audit") / "audit"
    result = run("audit", "--run", tiny_run, "--out", out, "--external", phantom_dir,
                 "--attribute", "shortcut", *QUICK)
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_audit_writes_groups_flags_and_a_self_contained_page(audited):
    out, stdout = audited
    audit = json.loads((out / "audit.json").read_text())
    assert audit == json.loads(stdout)
    assert audit["default_map"] == "film_gradients" and audit["split"] in ("test", "val")
    assert set(audit["groups"]) == {"positives", "false_positives", "false_negatives"}
    positives = audit["groups"]["positives"]
    assert positives["n"] == 2 and positives["lungs"] == "masks"  # phantoms carry their own
    for method in ("traversal", "latent_gradients", "film_gradients", "gradcam", "gradient",
                   "integrated_gradients"):
        regions = positives["methods"][method]["regions"]
        assert tuple(regions) == REGIONS
        partition = regions["lungs"] + regions["thorax"] + regions["outside_body"]
        assert abs(partition - 1.0) < 1e-6 or partition == 0.0, (method, regions)
    assert set(positives["global_change"]) == set(MEASURES)
    for flag in audit["flags"]:
        if flag["group"] == "classifier":  # the classifier's reading of the attribute
            assert flag["id"] == "within_class_shortcut" and flag["value"] > 0.1
            continue
        assert set(flag) in ({"id", "text", "value", "threshold", "group"},
                             {"id", "text", "value", "threshold", "group", "map", "maps"})
        if "maps" in flag:  # a region flag: led by the largest share of a fine-grained map
            fine = [v for m, v in flag["maps"].items() if m not in COARSE_MAPS]
            assert flag["value"] == max(fine) == flag["maps"][flag["map"]]
    external = audit["external"]
    assert external["external"]["split"] == "all" and external["external"]["n"] == 96
    assert external["own"]["n"] < 96 and external["audit"]["groups"]["positives"]["n"] == 2
    # The first two positives of the whole phantom set (indices 1 and 3) both carry it.
    marker = external["audit"]["groups"]["positives"]["marker"]
    assert marker["n"] == 2 and set(marker["methods"]) == set(positives["methods"])
    assert all(0.0 <= v["pointing_game"] <= 1.0 for v in marker["methods"].values())
    # By the phantoms' shortcut column: the classifier over the whole split, every group's
    # images value by value (the two audited positives split between the values).
    by = audit["attribute"]
    assert by["column"] == "shortcut" and set(by["groups"]) <= {"0", "1"}
    assert sum(g["n"] for g in by["groups"].values()) == external["own"]["n"]
    assert set(by["within_class"]) == {"negative", "positive"}
    parts = positives["by_value"]
    assert sum(part["n"] for part in parts.values()) == 2
    for part in parts.values():
        assert set(part["methods"]) == set(positives["methods"])
        assert set(part["global_change"]) == set(MEASURES)
    page = (out / "audit.html").read_text()
    assert "covgan audit" in page and "External set" in page and "<h2>By shortcut</h2>" in page
    assert page.count('src="data:image/') >= 2 * 5  # a mean map per method and audited group
    assert external_references(page) == []  # nothing fetched from anywhere


def test_the_audit_page_renders_every_picture_in_a_browser(audited, tmp_path):
    browser = chromium()  # skips at once where tools/test.sh could not install it
    out, _ = audited
    drawn, total, dom = rendered_images(out / "audit.html", tmp_path)
    # A mean image and five mean maps per audited group, own set and external set alike.
    assert total >= 2 * 6 and drawn == total
    assert "External set" in dom
    screenshot = tmp_path / "audit.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={screenshot}", "--window-size=1200,1600",
                    (out / "audit.html").as_uri()], capture_output=True, timeout=120)
    assert screenshot.stat().st_size > 20_000  # a page with pictures, not a blank one


def test_audit_refuses_an_attribute_no_film_has_in_one_line(tiny_run, tmp_path):
    result = run("audit", "--run", tiny_run, "--out", tmp_path / "out", "--attribute", "site",
                 *QUICK)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: No film has a 'site' column.") and "shortcut" in lines[-1]
    assert not (tmp_path / "out").exists()


def test_audit_refuses_a_missing_run_in_one_line(tmp_path):
    result = run("audit", "--run", tmp_path / "nothing", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error:")
    assert not (tmp_path / "out").exists()


def test_audit_inverts_and_tunes_shorter_than_explain_unless_asked(tmp_path, monkeypatch):
    """The audit's own defaults reach what it runs; a value given, or the authors' preset,
    replaces them. What would run is captured where the audit hands it to `audit_images`."""
    import importlib
    import types

    from covgan.evaluation import audit as audit_module
    from covgan.explain.settings import (
        AUDIT_INVERSION_STEPS,
        AUDIT_RESTARTS,
        AUDIT_TUNING_BCE,
        AUDIT_TUNING_FOCUS,
        AUDIT_TUNING_STEPS,
        BRANCH_TUNING_STEPS,
        COUNTERPART_WEIGHT,
        INVERSION_PRESETS,
        TUNING_BCE_WEIGHTS,
        TUNING_RESIDUAL_FOCUS,
    )
    from covgan.models.generator import build_generator
    from covgan.training import runs

    gated = build_generator("tiny", z1_dim=8, z2_dim=2, gated_residual=True, seed=0)
    monkeypatch.setattr(runs, "load_run", lambda _: types.SimpleNamespace(
        generator=gated, classifier=None, config={"data": "phantom"}))
    asked = []

    def captured(*args, settings, tuning, **kwargs):
        asked.append((settings.steps, settings.restarts, tuning.steps, tuning.bce_weight,
                      tuning.residual_focus, settings.counterpart_weight))
        raise SystemExit(3)

    monkeypatch.setattr(audit_module, "audit_images", captured)
    # The module, not the command its package exports under the same name.
    monkeypatch.setattr(importlib.import_module("covgan.cli.audit"), "load_split",
                        lambda *a: (None,) * 7)
    monkeypatch.setattr(audit_module, "probabilities_of", lambda *a: None)
    monkeypatch.setattr(audit_module, "choose_groups", lambda *a: {})  # the progress bar's total
    covgan, authors = INVERSION_PRESETS["covgan"], INVERSION_PRESETS["authors"]
    explains = ["--invert-steps", "200", "--restarts", "2", "--tune-steps", "400",
                "--tune-bce", str(TUNING_BCE_WEIGHTS["branch"]),
                "--tune-focus", str(TUNING_RESIDUAL_FOCUS["branch"])]
    for extra in ([], explains, ["--preset", "authors"]):
        result = run("audit", "--run", tmp_path / "run", "--out", tmp_path / "out", *extra)
        assert result.exit_code == 3, result.output
    own = (AUDIT_TUNING_BCE, AUDIT_TUNING_FOCUS)
    # The gated G's counterpart term is chosen as it runs (the authors' preset has none).
    assert asked == [
        (AUDIT_INVERSION_STEPS, AUDIT_RESTARTS, AUDIT_TUNING_STEPS, *own, COUNTERPART_WEIGHT),
        (200, 2, 400, TUNING_BCE_WEIGHTS["branch"], TUNING_RESIDUAL_FOCUS["branch"],
         COUNTERPART_WEIGHT),
        (authors.steps, authors.restarts, AUDIT_TUNING_STEPS, *own, 0.0)]
    # Nor does it tune on the classifier's reading or focus on the residual, as explain does.
    assert own == (0.0, 0.0) and min(TUNING_BCE_WEIGHTS["branch"],
                                     TUNING_RESIDUAL_FOCUS["branch"]) > 0
    # Shorter than explain's: the images of a whole split, read together.
    assert AUDIT_INVERSION_STEPS < covgan.steps
    assert AUDIT_RESTARTS < covgan.restarts
    assert AUDIT_TUNING_STEPS < BRANCH_TUNING_STEPS
