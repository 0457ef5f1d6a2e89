"""A GAN run's traversal grid as a PNG, drawn by the saved generator.

Rows are the training's own fixed codes (TensorBoard's grid rows: 4 draws of N(0, I) from the
run's seed), columns G(z1, n * 0.1 * z2) for n = 0..10, each tile over the classifier's
p(positive): whether the walk draws opacities in the lungs as p rises, and whether G draws
stripes, at a glance. With a moving average of G's weights (the tiny preset's) the saved
generator holds the averaged weights, which the explanation commands use; TensorBoard's grids,
drawn during training, show the raw ones.

    python tools/traversal_grid.py --run runs/gan --out grid.png
"""

import argparse
import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402

from covgan.io import atomic_path  # noqa: E402
from covgan.training.callbacks import drawn_grid, grid_codes  # noqa: E402
from covgan.training.runs import load_run  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="A trained run folder.")
    parser.add_argument("--out", required=True, help="The PNG to write.")
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args(argv)
    run = load_run(args.run)
    z1, z2 = grid_codes(run.generator, args.rows, run.config.get("seed", 0))
    grid = drawn_grid(run.generator, run.classifier, z1, z2)
    out = pathlib.Path(args.out).with_suffix(".png")
    with atomic_path(out) as tmp:  # keeps the suffix, so OpenCV writes a PNG
        if not cv2.imwrite(str(tmp), grid):
            raise OSError(f"Could not write {out}.")
    print(json.dumps({"run": args.run, "grid": str(out), "shape": list(grid.shape)}))


if __name__ == "__main__":
    main()
