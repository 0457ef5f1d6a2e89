"""invert, traverse, gradcam and explain through the command line."""

import json
import re
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import external_references
from PIL import Image

from covgan.cli import main

QUICK = ["--invert-steps", "15", "--restarts", "1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_explain_writes_the_contract_and_a_self_contained_report(tiny_run, phantom_positives,
                                                                  tmp_path):
    out = tmp_path / "explain"
    result = run("explain", *phantom_positives, "--run", tiny_run, "--out", out, *QUICK)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # stdout is the JSON alone
    assert json.loads((out / "explain.json").read_text()) == payload
    assert len(payload["images"]) == 2
    # Progress on stderr, one plain line per update where it is not a terminal.
    progress = [line for line in result.stderr.splitlines() if line.startswith("explaining")]
    assert progress and "2/2 images" in progress[-1] and "left" in progress[-1]
    assert "\x1b[" not in result.stderr
    for entry in payload["images"]:
        for key in ("source", "p_image", "p_reconstruction", "p_counterpart", "p_add_back",
                    "mse", "ssim", "trusted", "crossing_step", "probabilities"):
            assert key in entry, key
        assert len(entry["probabilities"]) == 11
        assert set(entry["files"]) == {"figure", "maps", "strip", "gif", "plot", "film_strip",
                                       "film_gif"}
        # The walk on the film runs from the add-back (the film without the walk's change)
        # to the film itself.
        film_p = entry["film_walk_probabilities"]
        assert len(film_p) == 11
        assert film_p[0] == pytest.approx(entry["p_add_back"], abs=1e-4)
        assert film_p[-1] == pytest.approx(entry["p_image"], abs=1e-4)
        for name in entry["files"].values():
            assert (out / name).stat().st_size > 0
        if entry["p_add_back"] >= 0.5:  # the evidence is not in the reconstruction
            assert not entry["trusted"]
    report = (out / "report.html").read_text()
    # Figure 2's six panels, six maps and the plot as images; the steps of the GAN's walk and
    # of the walk on the film once each, as a style.
    assert report.count('src="data:image/') == 13 * 2
    assert report.count("background-image: url(data:image/") == 2 * 2
    assert report.count("The same walk on this radiograph") == 2
    assert external_references(report) == []  # nothing fetched from anywhere
    # The row of maps leads with the default map (latent gradients on the film), then the rest.
    maps = re.findall(r'alt="explanation map: ([^"]*)"', report)
    assert len(maps) == 2 * 6 and maps[0] == "latent gradients\non the film", maps
    assert [m.split()[0] for m in maps[:6]] == ["latent", "|difference|", "latent", "Grad-CAM",
                                                "input", "Integrated"]
    # Small enough to mail: 32 images under 11 MB.
    assert (out / "report.html").stat().st_size < 2 * 11_000_000 / 32
    with Image.open(out / entry["files"]["gif"]) as gif:
        assert gif.size == (130 - 2, 128 + 16) and gif.n_frames == 2 * 11 - 2  # native size
    with Image.open(out / entry["files"]["film_gif"]) as gif:
        assert gif.size == (130 - 2, 128 + 16) and gif.n_frames == 2 * 11 - 2
    untrusted = sum(not e["trusted"] for e in payload["images"])
    assert report.count("NOT trusted") >= untrusted  # every untrusted image says so
    # A film the classifier calls negative is not explained as if it read positive.
    called_negative = sum(e["p_image"] < 0.5 for e in payload["images"])
    assert report.count("The classifier calls this film negative") == called_negative


def test_explain_with_pivotal_tuning_reports_both_inversions(tiny_run, phantom_positives,
                                                            tmp_path):
    out = tmp_path / "tuned"
    result = run("explain", phantom_positives[0], "--run", tiny_run, "--out", out, *QUICK,
                 "--tune-steps", "3", "--tune-lr", "1e-4", "--tune-where", "all", "--quiet")
    assert "explaining" not in result.stderr  # --quiet: no progress
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    # This run's G has no gated branch: asked for steps, all of it is tuned.
    assert payload["settings"]["tuning"] == {"steps": 3, "learning_rate": 1e-4,
                                             "anchor_weight": 1.0, "layers": "all",
                                             "bce_weight": 0.0, "feature_weight": 0.0,
                                             "feature_layer": None, "residual_focus": 0.0,
                                             "counterpart_fit": 0.0, "where": "all"}
    entry = payload["images"][0]
    assert 0.0 <= entry["ssim_untuned"] <= 1.0 and isinstance(entry["trusted_untuned"], bool)
    assert entry["tuned"] is True
    # By default (--tune-where untrusted): tuned exactly where the untuned explanation was not
    # trusted.
    some = run("explain", *phantom_positives[:2], "--run", tiny_run, "--out",
               tmp_path / "some", *QUICK, "--tune-steps", "3", "--quiet")
    assert some.exit_code == 0, some.output
    payload = json.loads(some.stdout)
    assert payload["settings"]["tuning"]["where"] == "untrusted"
    assert [e["tuned"] for e in payload["images"]] == [not e["trusted_untuned"]
                                                       for e in payload["images"]]
    # The report says which were tuned, and does not call an untuned film's walk a tuned one.
    some_report = (tmp_path / "some" / "report.html").read_text()
    tuned_here = sum(e["tuned"] for e in payload["images"])
    assert some_report.count("<p>Not tuned:") == len(payload["images"]) - tuned_here
    assert some_report.count("<p>Pivotal tuning:") == tuned_here
    report = (out / "report.html").read_text()
    assert "Pivotal tuning" in report and f"{entry['ssim_untuned']:.2f} before tuning" in report

    # The counterpart fit brings the branch's terms; without the classifier term it refuses.
    fitted = run("explain", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "fit",
                 *QUICK, "--tune-steps", "2", "--tune-counterpart-fit", "1")
    assert fitted.exit_code == 0, fitted.output
    tuning = json.loads(fitted.stdout)["settings"]["tuning"]
    assert (tuning["layers"], tuning["counterpart_fit"]) == ("all", 1.0)
    assert tuning["bce_weight"] > 0 and tuning["residual_focus"] > 0
    # The report says what became of the counterpart (the anchored run's held to the untuned).
    assert "held to the untuned GAN's" in report
    assert "held negative by the classifier" in (tmp_path / "fit" / "report.html").read_text()
    refused = run("explain", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "no",
                  *QUICK, "--tune-counterpart-fit", "1", "--tune-bce", "0")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "bce_weight > 0" in refused.output and not (tmp_path / "no").exists()


def test_tuning_only_a_branch_needs_a_gated_generator(tiny_run, phantom_positives, tmp_path):
    result = run("explain", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "x",
                 *QUICK, "--tune-layers", "branch")
    assert result.exit_code != 0
    assert "--gated-residual" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_invert_then_traverse_from_latents(tiny_run, phantom_positives, tmp_path):
    result = run("invert", *phantom_positives, "--run", tiny_run, "--out", tmp_path / "inv", *QUICK)
    assert result.exit_code == 0, result.output
    settings = json.loads(result.stdout)["settings"]
    # Recorded as it ran: left to the inversion, the weight is 0 for a G without a gated branch.
    assert settings["z1_start"] == "normal" and settings["counterpart_weight"] == 0.0
    latents = np.load(tmp_path / "inv" / "latents.npz")
    assert latents["z1"].shape == (2, 8) and latents["z2"].shape == (2, 2)
    assert (tmp_path / "inv" / "00_phantom_00001_counterpart.png").is_file()
    result = run("traverse", "--latents", tmp_path / "inv" / "latents.npz", "--run", tiny_run,
                 "--out", tmp_path / "trav", "--extrapolate", 3, "--sweep", 4)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["images"][0]["probabilities"]) == 14
    assert len(payload["images"][0]["sweep_probabilities"]) == 4
    for suffix in ("traversal.png", "traversal.gif", "probability.png", "difference.png",
                   "sweep.png"):
        assert list((tmp_path / "trav").glob(f"*_{suffix}")), suffix


def test_the_authors_preset_with_a_shorter_run(tiny_run, phantom_positives, tmp_path):
    result = run("invert", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "inv",
                 "--preset", "authors", "--invert-steps", 5)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    settings = payload["settings"]
    assert (settings["steps"], settings["learning_rate"], settings["beta_1"],
            settings["restarts"], settings["z1_start"]) == (5, 0.01, 0.5, 1, "zeros")
    assert payload["images"][0]["inversion_steps"] == 5  # no early stop
    assert settings["counterpart_weight"] == 0.0
    result = run("invert", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "w",
                 "--invert-steps", 2, "--counterpart-weight", 2)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["counterpart_weight"] == 2.0
    result = run("invert", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "bad",
                 "--preset", "theirs")
    assert result.exit_code == 2 and "theirs" in result.output


def test_gradcam_alone_and_with_the_papers_figure(tiny_run, phantom_positives, tmp_path):
    result = run("gradcam", *phantom_positives, "--classifier", tiny_run / "classifier.keras",
                 "--out", tmp_path / "cam")
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "cam").glob("*_gradcam.png"))) == 2
    result = run("gradcam", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "fig",
                 *QUICK)
    assert result.exit_code == 0, result.output
    figure = cv2.imread(str(next((tmp_path / "fig").glob("*_figure.png"))))
    assert figure.shape[1] >= 5 * 256  # five panels side by side
    assert "ssim" in json.loads(result.stdout)["images"][0]


def test_bad_inputs_get_clear_errors_or_warnings(tiny_run, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = run("explain", text, "--run", tiny_run, "--out", tmp_path / "a", *QUICK)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error:")
    assert "notes.png" in result.stderr and not (tmp_path / "a").exists()

    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((128, 128), np.nan, np.float32))
    result = run("invert", nan, "--run", tiny_run, "--out", tmp_path / "b", *QUICK)
    assert result.exit_code == 1 and "NaN" in result.stderr

    odd = tmp_path / "odd.png"
    cv2.imwrite(str(odd), np.random.default_rng(0).integers(0, 255, (300, 200, 3), np.uint8))
    black = tmp_path / "black.png"
    cv2.imwrite(str(black), np.zeros((128, 128), np.uint8))
    result = run("invert", odd, black, "--run", tiny_run, "--out", tmp_path / "c", *QUICK)
    assert result.exit_code == 0, result.output
    warnings = [e["warnings"] for e in json.loads(result.stdout)["images"]]
    assert any("resized from 200x300" in w for w in warnings[0])
    assert any("3 channels" in w for w in warnings[0])
    assert any("uniform" in w for w in warnings[1])
    assert "Warning:" in result.stderr

    result = run("traverse", "--run", tiny_run, "--out", tmp_path / "d")
    assert result.exit_code == 1 and "either IMAGES or --latents" in result.stderr
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, z1=np.zeros((1, 3)), z2=np.zeros((1, 2)))
    result = run("traverse", "--latents", wrong, "--run", tiny_run, "--out", tmp_path / "e")
    assert result.exit_code == 1 and "needs (N, 8)" in result.stderr


def test_localise_scores_every_map_against_gradcam(tiny_run, phantom_dir, tmp_path):
    copy = tmp_path / "run"  # localise writes RUN/localisation.json; the shared run stays as is
    shutil.copytree(tiny_run, copy)
    result = run("localise", "--run", copy, "--data", phantom_dir, "--count", 3,
                 "--split", "heldout", "--seeds", 2, "--invert-steps", 10, "--restarts", 1)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["split"] == "heldout"
    # The same scores over the images the classifier itself calls positive.
    p_image = [r["p_image"] for r in scores["inversion"]["per_image"]]
    called = scores["called_positive"]
    assert called["n"] == sum(p >= 0.5 for p in p_image)
    if called["n"]:
        kept = [row for row, p in zip(scores["per_image"]["gradcam"], p_image) if p >= 0.5]
        assert called["methods"]["gradcam"]["relevance_mass"] == pytest.approx(
            np.mean([r["relevance_mass"] for r in kept]))
    # Every map, and with two seeds each walk map averaged over their inversions.
    walk_maps = {"traversal", "latent_gradients", "film_gradients"}
    seed_means = {f"{m}_seed_mean" for m in walk_maps}
    # The film-blind prior, from the training positives' masks, is one more baseline.
    baselines = {"gradcam", "gradient", "integrated_gradients", "lesion_prior"}
    assert set(scores["methods"]) == walk_maps | seed_means | baselines
    assert scores["lesion_prior_from"]["split"] == "train"
    assert scores["lesion_prior_from"]["masks"] > 0
    assert scores["off_prior"]["n"] == sum(r["pointing_game"] < 0.5
                                           for r in scores["per_image"]["lesion_prior"])
    assert set(scores["seed_mean_vs_single"]) == walk_maps
    assert scores["default_map"] == "film_gradients" and scores["seeds"] == [0, 1]
    for values in scores["methods"].values():
        for key in ("pointing_game", "relevance_mass", "iou_topk", "auroc"):
            assert 0.0 <= values[key] <= 1.0
    assert set(scores["paired_vs_gradcam"]) == set(scores["methods"]) - {"gradcam"}
    for intervals in scores["paired_vs_gradcam"].values():
        for low, high in intervals.values():
            assert -1.0 <= low <= high <= 1.0
    assert set(scores["paired_vs_baselines"]) == walk_maps | seed_means
    # The default against the other maps of the walk, which it was chosen over.
    assert set(scores["default_vs_walk_maps"]) == (walk_maps | seed_means) - {"film_gradients"}
    assert "film_gradients - latent_gradients: pointing_game [" in result.stderr
    for against in scores["paired_vs_baselines"].values():
        assert set(against) == baselines
    # Against Grad-CAM, both blocks hold the same interval.
    assert (scores["paired_vs_baselines"]["latent_gradients"]["gradcam"]
            == scores["paired_vs_gradcam"]["latent_gradients"])
    # Per image, the scores whose means the methods block reports.
    for method, rows in scores["per_image"].items():
        assert len(rows) == 3
        assert np.mean([r["relevance_mass"] for r in rows]) == pytest.approx(
            scores["methods"][method]["relevance_mass"])
    assert "film_gradients - integrated_gradients" in result.stderr
    assert len(scores["inversion_per_seed"]) == 2
    # Each image's inversion, per seed: its share of trusted images is the summary's.
    for summary in scores["inversion_per_seed"]:
        rows = summary["per_image"]
        assert len(rows) == 3
        assert np.mean([r["trusted"] for r in rows]) == pytest.approx(summary["trusted_fraction"])
        assert all(r["trusted"] == (r["untrusted_because"] == []) for r in rows)
    residual = scores["inversion"]["residual"]
    assert residual["mass_over_area_share"] == pytest.approx(
        residual["relevance_mass"] / residual["mask_area_share"])
    # The residual inside the masks against the band around them: defined for these lesions.
    assert residual["mask_over_surround"] > 0 and residual["surround_width"] == 8
    assert f"{residual['mask_over_surround']:.2f}x that of the 8-pixel band" in result.stderr
    assert scores["n"] == 3 and len(scores["images"]) == 3
    assert all((phantom_dir / path).is_file() for path in scores["images"])
    assert "pointing_game" in result.stderr  # the table, for people
    assert json.loads((copy / "localisation.json").read_text()) == scores
    assert not (tiny_run / "localisation.json").exists()


def test_settings_the_options_make_impossible_are_one_line_errors(tiny_run, phantom_positives,
                                                                  tmp_path):
    # The settings refuse them (ValueError); from the command line that is the user's input,
    # not a bug: one line, exit 1, no traceback.
    result = run("explain", phantom_positives[0], "--run", tiny_run, "--out", tmp_path / "o",
                 "--tune-counterpart-fit", "1", "--tune-focus", "0")
    assert result.exit_code == 1
    assert "Fitting the counterpart needs" in result.output and "Traceback" not in result.output


def test_a_bug_keeps_its_traceback(monkeypatch):
    # A ValueError from inside covgan is a bug: it is not dressed as a user error.
    import covgan.data.synth

    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(covgan.data.synth, "synthesize", broken)
    result = CliRunner().invoke(main, ["data", "synth", "/tmp/covgan-never-written",
                                       "--count", "4"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
