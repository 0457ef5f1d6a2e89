"""Phantoms of another drawing: a chest-film generator written apart from covgan.data.phantom.

The project's own phantoms are what its defaults were tuned on, so a result that holds only
for them says little about films. This draws a second set with other choices everywhere, for
checking that a figure does not hinge on the first drawing:

- intensities add up in a display space (no attenuation model), the torso placed, tilted and
  cropped by patient, with a dark film border on some;
- lungs as tilted super-ellipses cut by a diaphragm dome, a vessel tree from each hilum,
  ribs as arcs of fixed spacing per patient, the heart and spine as soft bands;
- lesions as irregular patches (thresholded smooth noise in a disc) anywhere in either lung,
  one side or both, from small nodules to a lobe's worth; some faint;
- things real films carry in both classes: ECG electrodes and their leads, a side letter or
  a "PORTABLE" stamp in a corner, exposure, blur and noise that vary by film.

Writes a class-folder tree `covgan data prepare` imports with its masks:

    python tools/alt_phantoms.py OUT [--count 2000] [--seed 0]
    covgan data prepare OUT/images DATA --masks OUT/masks

OUT/images/{Normal,COVID}/alt_NNNNN.png (128x128, 8-bit), OUT/masks/COVID/alt_NNNNN.png
(nonzero: lesion). Film i depends on (seed, i) alone; half the films are positive.
"""

import argparse
import pathlib

import cv2
import numpy as np

SIZE = 256  # drawn at twice the stored size, then area-downsampled
OUT_SIZE = 128
FAINT_SHARE = 0.15  # positives whose patches are faint


def smooth_noise(rng, sigma):
    """A (SIZE, SIZE) field of Gaussian noise blurred by `sigma`, scaled to unit spread."""
    field = cv2.GaussianBlur(rng.standard_normal((SIZE, SIZE)).astype(np.float32), (0, 0),
                             sigma)
    return field / (field.std() + 1e-6)


def super_ellipse(cx, cy, ax, ay, power, angle):
    """A bool mask of |u/ax|^p + |v/ay|^p <= 1 in coordinates tilted by `angle` radians."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    return (np.abs(u / ax) ** power + np.abs(v / ay) ** power) <= 1.0


def lungs(rng, centre_x, top, width, height, tilt):
    """The two lung fields (image left, image right) and their hila, as bool masks."""
    yy = np.mgrid[:SIZE, :SIZE][0].astype(np.float32)
    fields, hila = [], []
    for side in (-1, 1):
        cx = centre_x + side * width * rng.uniform(0.55, 0.7)
        ax = width * rng.uniform(0.36, 0.46)
        ay = height * rng.uniform(0.46, 0.54)
        cy = top + ay
        field = super_ellipse(cx, cy, ax, ay, rng.uniform(2.2, 3.2), side * rng.uniform(0.02, 0.12)
                              + tilt)
        # The diaphragm dome: a parabola lifting the field's floor toward its middle.
        floor = cy + ay * rng.uniform(0.6, 0.85)
        dome = floor - ay * rng.uniform(0.1, 0.25) * (
            1 - ((np.arange(SIZE) - cx) / ax) ** 2).clip(0, None)
        fields.append(field & (yy < dome[None, :]))
        hila.append((cx - side * ax * 0.55, cy - ay * 0.05))
    return fields, hila


def vessel_tree(rng, hilum, field, canvas):
    """Draws thin branching vessels from `hilum` into `field` on `canvas` (in place)."""
    stack = [(hilum, rng.uniform(0, 2 * np.pi), 4.0, 0)]
    while stack:
        (x, y), angle, width, depth = stack.pop()
        length = rng.uniform(12, 26)
        x2, y2 = x + length * np.cos(angle), y + length * np.sin(angle)
        cv2.line(canvas, (int(x), int(y)), (int(x2), int(y2)), 1.0, max(1, int(width)),
                 cv2.LINE_AA)
        if depth < 5 and 0 <= int(y2) < SIZE and 0 <= int(x2) < SIZE and field[int(y2), int(x2)]:
            for turn in rng.uniform(0.2, 0.6, size=2) * np.array([-1, 1]):
                stack.append(((x2, y2), angle + turn, width * 0.7, depth + 1))


def patches(rng, fields, faint):
    """Lesions: (soft density, bool mask) of irregular patches inside the lung fields."""
    density = np.zeros((SIZE, SIZE), np.float32)
    mask = np.zeros((SIZE, SIZE), bool)
    sides = [0, 1] if rng.random() < 0.5 else [int(rng.integers(2))]
    attempts = [(side, int(rng.integers(1, 3))) for side in sides]
    while attempts:
        side, count = attempts.pop(0)
        field = fields[side]
        ys, xs = np.nonzero(field)
        for _ in range(count):
            pick = int(rng.integers(len(ys)))
            radius = rng.uniform(8, 34)
            yy, xx = np.mgrid[:SIZE, :SIZE]
            disc = (xx - xs[pick]) ** 2 + (yy - ys[pick]) ** 2 <= radius ** 2
            shape = disc & (smooth_noise(rng, radius / 3) > rng.uniform(-0.6, 0.2)) & field
            if shape.sum() < 20:
                continue
            strength = rng.uniform(0.04, 0.08) if faint else rng.uniform(0.12, 0.3)
            texture = 0.7 + 0.3 * smooth_noise(rng, 2.0).clip(-1, 1)
            density += strength * cv2.GaussianBlur(shape.astype(np.float32), (0, 0), 2.5) * texture
            mask |= shape
        if not attempts and not mask.any():  # every patch fell outside the lungs: try again
            attempts.append((side, 1))
    return density, mask


def devices(rng, canvas, body):
    """ECG electrodes and their leads, and a corner stamp, on either class (in place, on a
    uint8 canvas: OpenCV writes text on 8-bit images only)."""
    if rng.random() < 0.35:
        for _ in range(int(rng.integers(2, 5))):
            ys, xs = np.nonzero(body)
            pick = int(rng.integers(len(ys)))
            centre = (int(xs[pick]), int(ys[pick]))
            cv2.circle(canvas, centre, int(rng.integers(5, 9)), 255, -1, cv2.LINE_AA)
            end = (int(rng.integers(0, SIZE)), int(rng.choice([0, SIZE - 1])))
            middle = ((centre[0] + end[0]) // 2 + int(rng.integers(-40, 40)),
                      (centre[1] + end[1]) // 2)
            cv2.polylines(canvas, [np.array([centre, middle, end], np.int32)], False, 200, 2,
                          cv2.LINE_AA)
    if rng.random() < 0.5:
        text = "PORTABLE" if rng.random() < 0.4 else str(rng.choice(["R", "L"]))
        corner = (int(rng.integers(8, 40)), int(rng.choice([int(rng.integers(24, 50)),
                                                          int(rng.integers(200, 245))])))
        cv2.putText(canvas, text, corner, cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.6, 1.0), 255,
                    2, cv2.LINE_AA)


def draw(seed, index):
    """Film `index` of set `seed`: (image (128, 128) uint8, label, lesion mask (128, 128) bool)."""
    rng = np.random.default_rng([int(seed), int(index), 7])
    label = int(rng.random() < 0.5)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32)
    centre_x = SIZE / 2 + rng.uniform(-14, 14)
    tilt = rng.uniform(-0.06, 0.06)
    body = super_ellipse(centre_x, SIZE * rng.uniform(0.55, 0.65), SIZE * rng.uniform(0.36, 0.47),
                         SIZE * rng.uniform(0.55, 0.7), 2.5, tilt)
    image = np.full((SIZE, SIZE), rng.uniform(0.03, 0.12), np.float32)
    image += body * (rng.uniform(0.45, 0.6) + 0.08 * (yy / SIZE))
    fields, hila = lungs(rng, centre_x, SIZE * rng.uniform(0.12, 0.2),
                         SIZE * rng.uniform(0.22, 0.28), SIZE * rng.uniform(0.55, 0.65), tilt)
    lung = fields[0] | fields[1]
    image -= rng.uniform(0.25, 0.35) * cv2.GaussianBlur(lung.astype(np.float32), (0, 0), 4)
    vessels = np.zeros((SIZE, SIZE), np.float32)
    for hilum, field in zip(hila, fields):
        for _ in range(int(rng.integers(3, 6))):
            vessel_tree(rng, hilum, field, vessels)
    image += 0.06 * cv2.GaussianBlur(vessels, (0, 0), 1.0) * lung
    ribs = np.zeros((SIZE, SIZE), np.float32)
    spacing = rng.uniform(16, 22)
    for k in range(10):
        y0 = SIZE * 0.12 + k * spacing
        for side in (-1, 1):
            xs = centre_x + side * np.linspace(8, SIZE * 0.42, 40)
            ys = y0 + rng.uniform(0.0016, 0.0026) * (xs - centre_x) ** 2 * (1 if k % 2 else 0.8)
            cv2.polylines(ribs, [np.stack([xs, ys], 1).astype(np.int32)], False, 1.0,
                          int(rng.integers(3, 6)), cv2.LINE_AA)
    image += 0.07 * cv2.GaussianBlur(ribs, (0, 0), 1.5) * body
    heart = super_ellipse(centre_x + SIZE * rng.uniform(0.03, 0.08), SIZE * rng.uniform(0.5, 0.58),
                          SIZE * rng.uniform(0.14, 0.2), SIZE * rng.uniform(0.11, 0.15), 2.0, 0.3)
    spine = np.abs(xx - centre_x) < SIZE * rng.uniform(0.04, 0.06)
    image += 0.2 * cv2.GaussianBlur((heart & body).astype(np.float32), (0, 0), 5)
    image += 0.1 * cv2.GaussianBlur((spine & body).astype(np.float32), (0, 0), 3)
    mask = np.zeros((SIZE, SIZE), bool)
    if label:
        density, mask = patches(rng, fields, faint=rng.random() < FAINT_SHARE)
        image += density
    stamps = np.zeros((SIZE, SIZE), np.uint8)
    devices(rng, stamps, body)
    image = np.maximum(image, stamps / np.float32(255) * rng.uniform(0.8, 1.0))
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.5))
    image = np.clip(image, 0, 1) ** rng.uniform(0.75, 1.35)
    image += rng.normal(0, rng.uniform(0.01, 0.035), image.shape).astype(np.float32)
    if rng.random() < 0.3:  # a dark border where the film was cropped off-centre
        edge = int(rng.integers(6, 20))
        if rng.random() < 0.5:
            image[:, :edge] *= 0.2
        image[:edge] *= 0.2
    small = cv2.resize(np.clip(image, 0, 1), (OUT_SIZE, OUT_SIZE), interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.uint8), (OUT_SIZE, OUT_SIZE),
                            interpolation=cv2.INTER_NEAREST) > 0
    return (small * 255).round().astype(np.uint8), label, small_mask


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    for folder in ("images/Normal", "images/COVID", "masks/COVID"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    counts = [0, 0]
    for index in range(args.count):
        image, label, mask = draw(args.seed, index)
        name = f"alt_{index:05d}.png"
        cv2.imwrite(str(out / "images" / ("COVID" if label else "Normal") / name), image)
        if label:
            cv2.imwrite(str(out / "masks" / "COVID" / name), mask.astype(np.uint8) * 255)
        counts[label] += 1
    print(f"{counts[1]} positives, {counts[0]} negatives in {out}")


if __name__ == "__main__":
    main()
