"""Synthetic frontal chest radiographs with COVID-like findings and lesion masks.

Each phantom is rendered from an attenuation model: a density map is built from
anatomy (soft tissue, lungs, heart, spine, ribs, clavicles, trachea, gastric
bubble) and, for positives, lesions; brightness is `1 - exp(-mu * density)`, as on
a radiograph, where dense tissue is bright. Patients differ in body habitus, lung
size, shape and position, exposure, noise and a slight rotation.

Positives carry bilateral, peripheral, lower-zone-predominant ground-glass
opacities and consolidations whose number, size, place and density vary, so the
positive class is a manifold and not one template. Their lesion mask lies inside
the lungs by construction. Everything is a pure function of (seed, index).
"""

import dataclasses
import hashlib

import cv2
import numpy as np

from covgan.shapes import IMAGE_SIZE

_RENDER_SIZE = 256  # drawn at twice the size, then area-downsampled (anti-aliasing)

# Lesion density multiplier; larger is easier. With it, the tiny classifier lands in
# the 85-97% test accuracy band (docs/guide/data.md, Phantom data): most positives are
# plainly visible, but SUBTLE_FRACTION of them carry a faint burden only, so even a
# converged classifier misses some, as on real films.
DEFAULT_LESION_CONTRAST = 2.0
SUBTLE_FRACTION = 0.12


@dataclasses.dataclass(frozen=True)
class Phantom:
    """One rendered radiograph.

    Attributes:
        image: float32 (128, 128) in [0, 1].
        label: 1 for positive (lesions present), 0 for negative.
        lesion_mask: bool (128, 128), all False for negatives.
        lung_mask: bool (128, 128), both lung fields.
        shortcut: whether the spurious corner marker was stamped.
        marker_mask: bool (128, 128), the marker's bounding box padded by one pixel (where a
            map pointing at the marker has its maximum); all False without a marker.
    """

    image: np.ndarray
    label: int
    lesion_mask: np.ndarray
    lung_mask: np.ndarray
    shortcut: bool
    marker_mask: np.ndarray


def phantom_rng(seed, index):
    """The generator for phantom `index` of data set `seed` (order-independent)."""
    return np.random.default_rng([int(seed), int(index)])


def render_phantom(
    rng, *, label, shortcut=False, lesion_contrast=DEFAULT_LESION_CONTRAST
):
    """Renders one phantom.

    Args:
        rng: a `numpy.random.Generator`, e.g. from `phantom_rng(seed, index)`.
        label: 0 (negative, no lesions) or 1 (positive).
        shortcut: stamp a bright letter marker in the upper-left corner.
        lesion_contrast: multiplier on lesion density.

    Returns:
        A `Phantom`.
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1. Received: label={label}.")
    size = _RENDER_SIZE
    anatomy = _draw_anatomy(rng, size)
    density = anatomy.density
    lesion_mask = np.zeros((size, size), np.float32)
    if label == 1:
        lesion_density, lesion_mask = _draw_lesions(rng, anatomy.lungs, size)
        subtle = rng.random() < SUBTLE_FRACTION
        burden = rng.uniform(0.1, 0.3) if subtle else rng.uniform(0.7, 1.3)
        density = density + lesion_contrast * burden * lesion_density
    image = _expose(rng, density)

    # A slight patient rotation, applied to the image and both masks alike.
    angle = rng.uniform(-4.0, 4.0)
    shift = rng.uniform(-0.02, 0.02, size=2) * size
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    matrix[:, 2] += shift
    warp = dict(dsize=(size, size), borderMode=cv2.BORDER_REPLICATE)
    image = cv2.warpAffine(image, matrix, flags=cv2.INTER_LINEAR, **warp)
    lungs = cv2.warpAffine(anatomy.lungs, matrix, flags=cv2.INTER_LINEAR, **warp)
    lesions = cv2.warpAffine(lesion_mask, matrix, flags=cv2.INTER_LINEAR, **warp)

    def downsample(array):
        return cv2.resize(array, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)

    image = downsample(image)
    lung_mask = downsample(lungs) > 0.5
    lesion_mask = (downsample(lesions) > 0.5) & lung_mask

    # Detector noise and a touch of blur differ between machines and exposures.
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.7))
    image = image + rng.normal(0.0, rng.uniform(0.005, 0.02), image.shape)
    marker_mask = _stamp_marker(rng, image) if shortcut else np.zeros(image.shape, bool)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return Phantom(image, int(label), lesion_mask, lung_mask, bool(shortcut), marker_mask)


def phantom_label(index):
    """Balanced labels: even indices negative, odd positive."""
    return int(index) % 2


def stable_fraction(key):
    """A number in [0, 1) that depends only on `key` (same on every machine)."""
    digest = hashlib.sha256(str(key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclasses.dataclass(frozen=True)
class _Anatomy:
    density: np.ndarray  # float32 (size, size)
    lungs: np.ndarray  # float32 (size, size), 1 inside the lung fields


def _draw_anatomy(rng, size):
    s = float(size)
    cx = s * rng.uniform(0.47, 0.53)
    body_half = s * rng.uniform(0.36, 0.46)

    # Soft tissue: neck, sloping shoulders and torso; thicker near the midline.
    body = np.zeros((size, size), np.float32)
    neck = s * rng.uniform(0.07, 0.09)
    shoulder_y = s * rng.uniform(0.10, 0.16)
    outline = [
        (cx - neck, -1), (cx - neck, s * 0.05), (cx - body_half * 0.8, shoulder_y),
        (cx - body_half * 1.02, shoulder_y + s * 0.08), (cx - body_half, s * 0.5),
        (cx - body_half * 0.94, s + 1), (cx + body_half * 0.94, s + 1), (cx + body_half, s * 0.5),
        (cx + body_half * 1.02, shoulder_y + s * 0.08), (cx + body_half * 0.8, shoulder_y),
        (cx + neck, s * 0.05), (cx + neck, -1),
    ]
    cv2.fillPoly(body, [np.round(np.array(outline) * 16).astype(np.int32)], 1.0, cv2.LINE_8, 4)
    body = cv2.GaussianBlur(body, (0, 0), s * 0.02)
    xs = (np.arange(size, dtype=np.float32) - cx) / body_half
    thickness = np.clip(1.0 - 0.35 * xs**2, 0.45, 1.0)[None, :]
    density = body * thickness * rng.uniform(0.85, 1.05)

    # Lung fields: the patient's right lung is on the image's left.
    top = s * rng.uniform(0.15, 0.21)
    bottom = s * rng.uniform(0.70, 0.80)
    gap = s * rng.uniform(0.045, 0.065)
    width = body_half * rng.uniform(0.70, 0.82)
    heart_push = s * rng.uniform(0.03, 0.07)
    lungs = np.zeros((size, size), np.float32)
    for side in (-1, 1):
        polygon = _lung_outline(
            rng, cx, side, top, bottom, gap, width, heart_push if side > 0 else 0.0, s
        )
        cv2.fillPoly(lungs, [polygon], 1.0, cv2.LINE_8, 4)
    lungs_soft = cv2.GaussianBlur(lungs, (0, 0), s * 0.008)
    # Bases are less dense than apices; markings come from smooth noise.
    ys = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None]
    aeration = rng.uniform(0.62, 0.74) * (0.9 + 0.15 * ys)
    markings = _smooth_noise(rng, size, s * 0.012) * 0.06
    density = density - lungs_soft * (aeration - markings)

    # Mediastinum and heart shadow, overlapping the left lung's lower medial part.
    heart = np.zeros((size, size), np.float32)
    hx = cx + s * rng.uniform(0.05, 0.08)
    hy = bottom - s * rng.uniform(0.08, 0.12)
    axes = _pt(s * rng.uniform(0.15, 0.19), s * rng.uniform(0.11, 0.14))
    cv2.ellipse(heart, _pt(hx, hy), axes, rng.uniform(-25, -10), 0, 360, 1.0, -1)
    cv2.rectangle(heart, _pt(cx - gap * 0.9, top + s * 0.05), _pt(cx + gap * 0.9, hy), 1.0, -1)
    heart = cv2.GaussianBlur(heart, (0, 0), s * 0.01)
    density = density + heart * lungs_soft * 0.6
    # The lung field seen on the film excludes what the heart shadow hides.
    lungs = lungs * (heart < 0.5)

    # Gastric bubble under the left hemidiaphragm, trachea down the midline.
    air = np.zeros((size, size), np.float32)
    if rng.random() < 0.7:
        bubble = _pt(cx + width * rng.uniform(0.5, 0.8), bottom + s * 0.05)
        cv2.ellipse(air, bubble, _pt(s * 0.04, s * 0.022), 0, 180, 360, 1.0, -1)
    cv2.rectangle(air, _pt(cx - s * 0.014, 0), _pt(cx + s * 0.014, top + s * 0.1), 0.8, -1)
    density = density - cv2.GaussianBlur(air, (0, 0), s * 0.006) * 0.3

    density = density + _draw_bones(rng, size, cx, top, bottom, body_half) * body
    return _Anatomy(density.astype(np.float32), lungs)


def _lung_outline(rng, cx, side, top, bottom, gap, width, heart_push, s):
    """A closed lung polygon: apex, convex lateral wall, diaphragm dome, medial wall."""
    medial = cx + side * gap
    lateral = medial + side * width * rng.uniform(0.92, 1.05)
    base = bottom + s * rng.uniform(-0.02, 0.02)
    dome = s * rng.uniform(0.04, 0.08)
    n = 24
    t = np.linspace(0.0, 1.0, n)
    # Lateral wall: from the apex, widening quickly, down to the costophrenic angle.
    lat_x = medial + (lateral - medial) * np.sin(np.pi / 2 * np.clip(t * 1.25, 0, 1)) ** 0.6
    lat_y = top + (base - top) * t
    # Diaphragm dome from the costophrenic angle to the medial base.
    u = np.linspace(0.0, 1.0, n)[1:]
    dome_x = lateral + (medial + side * heart_push - lateral) * u
    dome_y = base - dome * np.sin(np.pi * np.clip(u * 1.15, 0, 1)) - s * 0.03 * u
    # Medial wall: pushed laterally by the heart on the left, below the hilum.
    v = np.linspace(1.0, 0.0, n)[1:-1]
    med_x = medial + side * heart_push * np.clip((v - 0.45) / 0.4, 0, 1) ** 1.5
    med_y = top + (base - s * 0.03 - top) * v
    xs = np.concatenate([lat_x, dome_x, med_x])
    ys = np.concatenate([lat_y, dome_y, med_y])
    # Round the apex a little.
    ys[:3] += np.array([s * 0.01, 0.0, 0.0])
    return np.round(np.stack([xs, ys], axis=1) * 16).astype(np.int32)


def _draw_bones(rng, size, cx, top, bottom, body_half):
    s = float(size)
    bones = np.zeros((size, size), np.float32)
    # Spine, with darker disc spaces.
    spine = s * rng.uniform(0.030, 0.040)
    cv2.rectangle(bones, _pt(cx - spine, 0), _pt(cx + spine, s), 0.14, -1)
    step = s * rng.uniform(0.040, 0.048)
    for y in np.arange(rng.uniform(0, step), s, step):
        cv2.line(bones, _pt(cx - spine, y), _pt(cx + spine, y), 0.07, max(1, int(s * 0.006)))
    rib_step = (bottom - top) / rng.uniform(8.5, 9.5)
    thickness = max(2, int(s * rng.uniform(0.012, 0.016)))
    u = np.linspace(0.0, 1.0, 24)
    for side in (-1, 1):
        y0 = top - rib_step * 0.6 + rng.uniform(-2, 2)
        for _ in range(10):
            # Posterior rib: rises from the spine, arches and falls along the wall.
            x = cx + side * (s * 0.035 + body_half * 0.97 * u)
            y = y0 - rib_step * 0.9 * np.sin(np.pi * u * 0.85) + rib_step * 2.6 * u**3
            _polyline(bones, x, y, 0.09, thickness)
            # Anterior rib: fainter, from the lateral wall obliquely down to the midline.
            x = cx + side * body_half * (0.95 - 0.65 * u)
            y = y0 + rib_step * 1.2 + rib_step * 2.2 * u + rib_step * 0.6 * np.sin(np.pi * u)
            _polyline(bones, x, y, 0.045, thickness + 1)
            y0 += rib_step * rng.uniform(0.95, 1.05)
        # Clavicle: from the sternal notch outwards and slightly up.
        y = top - s * rng.uniform(0.0, 0.03)
        start = _pt(cx + side * s * 0.04, y + s * 0.02)
        end = _pt(cx + side * body_half * rng.uniform(0.75, 0.9), y - s * 0.02)
        cv2.line(bones, start, end, 0.2, max(3, int(s * 0.022)), cv2.LINE_AA)
    return cv2.GaussianBlur(bones, (0, 0), s * 0.004)


def _draw_lesions(rng, lungs, size):
    """Lesion density and mask, inside the lungs, peripheral and lower-zone."""
    s = float(size)
    inside = (lungs > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    ys = np.arange(size, dtype=np.float32)[:, None] / s
    lateral = np.abs(np.arange(size, dtype=np.float32)[None, :] / s - 0.5) * 2.0
    # Prefer the periphery (near the pleura, away from the midline) and the lower zones.
    weight = (inside * np.exp(-depth / (s * 0.05)) * lateral**2 * np.exp(3.0 * ys)).ravel()
    left = weight * (np.arange(weight.size) % size < size // 2)
    # Cumulative distributions, sampled by inverse transform: both lungs, left, right.
    cdfs = [np.cumsum(w) for w in (weight, left, weight - left)]

    density = np.zeros((size, size), np.float32)
    mask = np.zeros((size, size), np.float32)
    count = int(rng.integers(2, 7))
    for k in range(count):
        # The first two lesions go one to each lung: the findings are bilateral.
        cdf = cdfs[1 + k] if k < 2 else cdfs[0]
        flat_index = min(int(np.searchsorted(cdf, rng.random() * cdf[-1])), cdf.size - 1)
        cy, cx = divmod(flat_index, size)
        consolidation = rng.random() < 0.35
        radius = s * (rng.uniform(0.025, 0.05) if consolidation else rng.uniform(0.04, 0.09))
        amplitude = rng.uniform(0.30, 0.50) if consolidation else rng.uniform(0.14, 0.28)
        profile = _blob(rng, size, cx, cy, radius, sharp=consolidation)
        density += amplitude * profile
        mask = np.maximum(mask, (profile > 0.35).astype(np.float32))
    texture = 0.75 + 0.5 * _smooth_noise(rng, size, s * 0.01)
    density = density * texture * inside
    return density, mask * inside


def _blob(rng, size, cx, cy, radius, sharp):
    """A lobulated opacity profile in [0, 1], peaked at (cx, cy), zero far away."""
    angle = rng.uniform(0, np.pi)
    elong = rng.uniform(0.6, 1.0)
    phases = rng.uniform(0, 2 * np.pi, size=2)
    profile = np.zeros((size, size), np.float32)
    # Evaluate only in a window around the lesion: the profile is ~0 beyond 2.5 radii.
    reach = int(np.ceil(radius * 2.5))
    top, left = max(0, cy - reach), max(0, cx - reach)
    bottom, right = min(size, cy + reach + 1), min(size, cx + reach + 1)
    yy, xx = np.mgrid[top:bottom, left:right].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / radius
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / (radius * elong)
    theta = np.arctan2(v, u)
    lobes = 1.0 + 0.2 * np.sin(3 * theta + phases[0]) + 0.1 * np.sin(5 * theta + phases[1])
    r = np.sqrt(u**2 + v**2) / lobes
    if sharp:
        window = 1.0 / (1.0 + np.exp((r - 1.0) * 8.0))
    else:
        window = np.exp(-0.5 * (r / 0.6) ** 2)
    profile[top:bottom, left:right] = window
    return profile


def _expose(rng, density):
    """Radiographic exposure: brightness rises with attenuation, then a window."""
    mu = rng.uniform(1.1, 1.5)
    image = 1.0 - np.exp(-mu * np.maximum(density, 0.0))
    low, high = rng.uniform(0.02, 0.08), rng.uniform(0.9, 1.0)
    image = np.clip((image - low) / (high - low), 0.0, 1.0)
    return (image ** rng.uniform(0.85, 1.2)).astype(np.float32)


def _stamp_marker(rng, image):
    """Stamps a bright letter in the upper-left corner, like a burned-in marker; returns the
    letter's bounding box padded by one pixel, as a mask."""
    x = int(rng.integers(4, 12))
    y = int(rng.integers(14, 22))
    marker = np.zeros(image.shape, np.uint8)  # anti-aliased text needs 8-bit
    cv2.putText(marker, "C", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
    np.maximum(image, marker.astype(np.float32) / 255.0, out=image)
    left, top, width, height = cv2.boundingRect(marker)
    box = np.zeros(image.shape, bool)
    box[max(top - 1, 0):top + height + 1, max(left - 1, 0):left + width + 1] = True
    return box


def _smooth_noise(rng, size, sigma):
    """Zero-mean, unit-range smooth noise."""
    noise = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma)
    return noise / (np.abs(noise).max() + 1e-6)


def _polyline(canvas, xs, ys, value, thickness):
    points = np.round(np.stack([xs, ys], axis=1) * 16).astype(np.int32)
    cv2.polylines(canvas, [points], False, value, thickness, cv2.LINE_AA, 4)


def _pt(x, y):
    return int(round(x)), int(round(y))
