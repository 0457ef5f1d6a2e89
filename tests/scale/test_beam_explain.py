"""`covgan explain FOLDER --runner beam`: the local command's explanation of every image,
written image by image; an unreadable image listed, not fatal; the same OUT resumed."""

import json
import shutil

from click.testing import CliRunner

from covgan.cli import main
from covgan.scale import shards

QUICK = ["--invert-steps", "5", "--restarts", "1", "--quiet"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_beam_explains_a_folder_as_the_local_command_does(tiny_run, phantom_dir, tmp_path):
    folder = tmp_path / "films"
    folder.mkdir()
    for source in sorted((phantom_dir / "images").glob("*.png"))[:5]:
        shutil.copy(source, folder / source.name)
    local = run("explain", folder, "--run", tiny_run, "--out", tmp_path / "local", *QUICK)
    assert local.exit_code == 0, local.output
    (folder / "zz_broken.png").write_bytes(b"not an image")
    out = tmp_path / "beam"
    beam = run("explain", folder, "--run", tiny_run, "--out", out, *QUICK, "--runner", "beam")
    assert beam.exit_code == 0, beam.output
    payload = json.loads((out / "explain.json").read_text())
    assert payload == json.loads(beam.stdout) and payload["unreadable"] == 1
    *explained, broken = payload["images"]
    assert broken["source"].endswith("zz_broken.png") and "not a decodable image" in broken["error"]
    for mine, theirs in zip(explained, json.loads(local.stdout)["images"], strict=True):
        for key in ("p_image", "p_counterpart", "ssim", "trusted", "crossing_step", "map_peaks",
                    "film_walk_probabilities"):
            assert mine[key] == theirs[key], key
    arrays = shards.read_arrays(out, 0)
    assert arrays["0/maps/latent_gradients"].shape == (128, 128)
    assert {f"4/{key}" for key in ("reconstructions", "counterparts", "add_backs")} <= set(arrays)

    again = run("explain", folder, "--run", tiny_run, "--out", out, *QUICK, "--runner", "beam")
    assert again.exit_code == 0 and json.loads(again.stdout) == payload  # done: read back
    other = run("explain", folder, "--run", tiny_run, "--out", out, "--invert-steps", "6",
                "--restarts", "1", "--quiet", "--runner", "beam")
    assert other.exit_code == 1
    assert "holds another job's results (it differs in: settings)" in other.stderr
