"""Benchmark: batched tf.function inversion (Eq. 2) against an eager per-image loop.

The eager loop is the authors' procedure: one image at a time, z as a variable,
an Adam optimizer object, Python stepping. Both run the same number of steps on
the same loss from the same starts (early stopping off), so their final losses
must agree; the JSON reports images per second for each and the ratio, measured
side by side in one run.

    python tools/bench_inversion.py --run runs/gan --images 64 --steps 100
    python tools/bench_inversion.py --preset tiny   # untrained models, no run needed
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# isort: off
from covgan.cpu import use_onednn  # noqa: E402

use_onednn()  # before TensorFlow is imported, as the commands do
# isort: on
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from covgan.explain.invert import InversionSettings, make_inversion_fn  # noqa: E402
from covgan.models import losses  # noqa: E402
from covgan.models.generator import code_sizes  # noqa: E402


def eager_inversion(generator, classifier, image, z1, z2, settings):
    """One image, the way a plain script does it: variables, an optimizer, a Python loop."""
    z = tf.Variable(np.concatenate([z1, z2])[None])
    d1 = z1.shape[-1]
    optimizer = keras.optimizers.Adam(settings.learning_rate, beta_1=settings.beta_1,
                                      beta_2=settings.beta_2, epsilon=settings.epsilon)
    target = classifier(image[None], training=False)[:, 1]
    for _ in range(settings.steps):
        with tf.GradientTape() as tape:
            reconstruction = generator([z[:, :d1], z[:, d1:]], training=False)
            p = classifier(reconstruction, training=False)[:, 1]
            loss = settings.mse_weight * losses.mean_squared_error(reconstruction, image[None])
            loss += settings.bce_weight * losses.binary_cross_entropy(target, p)
        optimizer.apply([tape.gradient(loss, z)], [z])
    reconstruction = generator([z[:, :d1], z[:, d1:]], training=False)
    p = classifier(reconstruction, training=False)[:, 1]
    final = settings.mse_weight * losses.mean_squared_error(reconstruction, image[None])
    final += settings.bce_weight * losses.binary_cross_entropy(target, p)
    return float(final[0])


def models(args):
    if args.run:
        from covgan.training.runs import load_run

        run = load_run(args.run)
        return run.generator, run.classifier
    from covgan.models.classifier import build_classifier
    from covgan.models.generator import build_generator

    return build_generator(args.preset, seed=0), build_classifier(
        "vgg16" if args.preset == "paper" else "tiny", seed=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a trained run (default: untrained --preset models)")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "paper"])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--eager-images", type=int, default=8,
                        help="images the eager loop inverts (its rate is per image)")
    args = parser.parse_args()

    generator, classifier = models(args)
    rng = np.random.default_rng(0)
    d1, d2 = code_sizes(generator)
    targets = generator([rng.standard_normal((args.images, d1)).astype("float32"),
                         rng.standard_normal((args.images, d2)).astype("float32")]).numpy()
    z1 = rng.standard_normal((args.images, d1)).astype("float32")
    z2 = rng.standard_normal((args.images, d2)).astype("float32")
    # The authors' loss (no prior term), the same for both loops.
    settings = InversionSettings(steps=args.steps, restarts=1, patience=args.steps + 1,
                                 learning_rate=0.05, prior_weight=0.0)

    solve = make_inversion_fn(generator, classifier, settings)
    solve(targets[:2], z1[:2], z2[:2])  # trace once, outside the timing
    started = time.perf_counter()
    *_, batched_loss, _ = solve(targets, z1, z2)
    batched_seconds = time.perf_counter() - started

    eager_count = min(args.eager_images, args.images)
    eager_inversion(generator, classifier, targets[0], z1[0], z2[0],
                    InversionSettings(steps=2, learning_rate=0.05))  # warm-up
    started = time.perf_counter()
    eager_losses = [eager_inversion(generator, classifier, targets[i], z1[i], z2[i], settings)
                    for i in range(eager_count)]
    eager_seconds = time.perf_counter() - started

    batched_rate = args.images / batched_seconds
    eager_rate = eager_count / eager_seconds
    batched_loss = batched_loss.numpy()
    print(json.dumps({
        "benchmark": "inversion", "preset": args.preset, "run": args.run,
        "steps": args.steps, "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "batched": {"images": args.images, "seconds": round(batched_seconds, 2),
                    "images_per_second": round(batched_rate, 3)},
        "eager": {"images": eager_count, "seconds": round(eager_seconds, 2),
                  "images_per_second": round(eager_rate, 3)},
        "ratio": round(batched_rate / eager_rate, 2),
        "final_loss": {
            "batched_mean_same_images": float(batched_loss[:eager_count].mean()),
            "eager_mean": float(np.mean(eager_losses)),
            "max_abs_difference": float(np.max(np.abs(batched_loss[:eager_count] - eager_losses))),
        },
    }, indent=2))


if __name__ == "__main__":
    main()
