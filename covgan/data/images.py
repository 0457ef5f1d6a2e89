"""Reading any radiograph file into the project's image convention.

PNG (8 or 16 bit), JPEG, BMP and TIFF through OpenCV; DICOM through pydicom when
it is installed. 1, 3 or 4 channels become one. 8-bit files keep their values
(v / 255); 16-bit files and DICOM are stretched from their own minimum to maximum,
since their stored range (often 10-14 bits) varies by scanner. Non-square images
are centre-cropped to a square by default (`aspect="crop"`) so no artificial
border appears, which a classifier could learn as a shortcut; `aspect="pad"` keeps
the whole field of view and pads with the image's edge value instead. Resizing
uses OpenCV's area interpolation.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import cv2
import numpy as np

from covgan.shapes import IMAGE_SIZE

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
DICOM_SUFFIXES = (".dcm", ".dicom")
MIN_SIDE = 16

# Errors only: a corrupt file is reported by us, in one line, not by libpng on stderr.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


class UnreadableImage(Exception):
    """A file that cannot be decoded as a radiograph; the message says why."""


def is_image_file(path: str | os.PathLike) -> bool:
    return pathlib.Path(path).suffix.lower() in IMAGE_SUFFIXES + DICOM_SUFFIXES


def image_files(paths: list[str | os.PathLike]) -> list[str]:
    """The paths, each folder replaced by the image files under it (recursively, sorted).

    Raises:
        UnreadableImage: a folder holding no image file.
    """
    found = []
    for path in paths:
        if pathlib.Path(path).is_dir():
            inside = sorted(str(p) for p in pathlib.Path(path).rglob("*")
                            if p.is_file() and is_image_file(p))
            if not inside:
                raise UnreadableImage(f"{path} holds no image file.")
            found += inside
        else:
            found.append(str(path))
    return found


def read_radiograph(path: str | os.PathLike, *, size: int = IMAGE_SIZE,
                    aspect: str = "crop") -> tuple[np.ndarray, dict]:
    """Reads a file into a float32 (size, size) array in [0, 1].

    Args:
        path: image or DICOM file.
        size: output side in pixels.
        aspect: "crop" (centre square) or "pad" (edge-padded square).

    Returns:
        (image, info) where info records the original shape, bit depth and channels.

    Raises:
        UnreadableImage: missing, empty, truncated, not an image, or too small.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        pixels, info = _read_dicom(path)
    else:
        pixels, info = _read_raster(path)
    if pixels.ndim != 2:  # the readers reduce every layout they know to one plane
        raise UnreadableImage(f"unsupported pixel layout (array of shape {pixels.shape})")
    if min(pixels.shape[:2]) < MIN_SIDE:
        raise UnreadableImage(f"too small ({pixels.shape[1]}x{pixels.shape[0]} pixels)")
    if not np.isfinite(pixels).all():
        raise UnreadableImage("contains NaN or infinite values")
    squared = square(pixels, aspect)
    resized = cv2.resize(squared, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(resized, 0.0, 1.0).astype(np.float32), info


def _read_raster(path):
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise UnreadableImage(f"cannot be read ({error.strerror})") from None
    if data.size == 0:
        raise UnreadableImage("empty file")
    if path.suffix.lower() in (".jpg", ".jpeg") and not jpeg_is_complete(data.tobytes()):
        # OpenCV decodes a truncated JPEG with a grey bottom and only a warning.
        raise UnreadableImage("truncated JPEG (no end-of-image marker)")
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise UnreadableImage("not a decodable image (corrupt, truncated or another format)")
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    depth = pixels.dtype.itemsize * 8
    if channels == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2GRAY)
    elif channels == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    elif pixels.ndim == 3:
        pixels = pixels[..., 0]
    if pixels.dtype == np.uint8:
        gray = pixels.astype(np.float32) / 255.0
    else:
        gray = _stretch(pixels.astype(np.float32))
    info = {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
            "bits": depth, "channels": channels}
    return gray, info


def jpeg_is_complete(data: bytes) -> bool:
    """Whether a JPEG's segments run from its start to an end-of-image marker.

    Walks the markers instead of looking for FF D9 near the end, so bytes appended
    after the image (some scanners and editors add them) are accepted and an end
    marker inside an embedded EXIF thumbnail does not hide a truncated image.
    """
    if data[:2] != b"\xff\xd8":
        return True  # not a JPEG stream: the decoder will say so
    i, n = 2, len(data)
    while i + 1 < n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
        elif marker == 0xD9:
            return True
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
        else:
            if i + 4 > n:
                return False
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
            if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
                i = _end_of_scan(data, i)
                if i < 0:
                    return False
    return False


def _end_of_scan(data, i):
    """Index of the marker that ends the scan starting at i, or -1 if the data runs out."""
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= len(data):
            return -1
        following = data[i + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed byte or restart marker
            i += 2
        elif following == 0xFF:
            i += 1
        else:
            return i


def _read_dicom(path):
    try:
        import pydicom
        from pydicom.pixels import apply_voi_lut
    except ImportError:
        raise UnreadableImage(
            "DICOM needs pydicom: pip install 'covgan[dicom]'"
        ) from None
    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array.astype(np.float32)
        # The header says what the axes are: (frames,) rows, columns, (samples).
        if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
            pixels = pixels[0]
        samples = int(getattr(dataset, "SamplesPerPixel", 1) or 1)
        if samples > 1:
            pixels = pixels[..., :3] @ np.float32([0.299, 0.587, 0.114])  # pydicom gives RGB
        else:
            pixels = apply_voi_lut(pixels, dataset).astype(np.float32)
    except Exception as error:  # pydicom raises many types for bad files
        raise UnreadableImage(f"not a readable DICOM file ({type(error).__name__})") from None
    if pixels.ndim != 2:
        raise UnreadableImage(f"unsupported DICOM pixel layout (array of shape {pixels.shape})")
    gray = _stretch(pixels)
    photometric = str(getattr(dataset, "PhotometricInterpretation", ""))
    if photometric == "MONOCHROME1":  # high values are dark: invert
        gray = 1.0 - gray
    info = {"width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
            "bits": int(getattr(dataset, "BitsStored", 16)), "channels": samples,
            "photometric": photometric}
    return gray, info


def _stretch(pixels):
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros_like(pixels, dtype=np.float32)
    return ((pixels - low) / (high - low)).astype(np.float32)


def square(image: np.ndarray, aspect: str, pad_value: float | None = None) -> np.ndarray:
    """The centre square ("crop") or the whole image padded to a square ("pad": edge values
    repeated, or `pad_value` where given, as masks need)."""
    height, width = image.shape
    if height == width:
        return image
    if aspect == "crop":
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return image[top : top + side, left : left + side]
    if aspect == "pad":
        side = max(height, width)
        top, left = (side - height) // 2, (side - width) // 2
        border = (cv2.BORDER_REPLICATE, 0) if pad_value is None else (
            cv2.BORDER_CONSTANT, pad_value)
        return cv2.copyMakeBorder(image, top, side - height - top, left, side - width - left,
                                  border[0], value=border[1])
    raise ValueError(f"aspect must be 'crop' or 'pad'. Received: aspect={aspect!r}.")


def load_inputs(paths: Sequence[str | os.PathLike], *,
                aspect: str = "crop") -> tuple[np.ndarray, list[list[str]]]:
    """Reads images given on a command line, with warnings a user should see.

    Accepts image files, DICOM, and .npy arrays (H, W) or (H, W, 1) of floats in [0, 1].

    Returns:
        (images (N, 128, 128, 1) float32, warnings: one list of strings per image).

    Raises:
        UnreadableImage: naming the file, for anything that cannot be used.
    """
    images, warnings = [], []
    for path in map(pathlib.Path, paths):
        notes = []
        try:
            if path.suffix.lower() == ".npy":
                image, info = _read_array(path, aspect)
            else:
                image, info = read_radiograph(path, aspect=aspect)
        except UnreadableImage as error:
            raise UnreadableImage(f"{path}: {error}") from None
        if (info["width"], info["height"]) != (IMAGE_SIZE, IMAGE_SIZE):
            notes.append(f"{path.name}: resized from {info['width']}x{info['height']} to "
                         f"{IMAGE_SIZE}x{IMAGE_SIZE}.")
        if info["channels"] > 1:
            notes.append(f"{path.name}: {info['channels']} channels converted to grayscale.")
        if image.max() - image.min() < 1e-3:
            notes.append(f"{path.name}: the image is uniform (blank); its explanation "
                         "cannot show anything meaningful.")
        images.append(image[..., None])
        warnings.append(notes)
    return np.stack(images).astype(np.float32), warnings


def _read_array(path, aspect):
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UnreadableImage(f"not a readable .npy array ({type(error).__name__})") from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise UnreadableImage(f"expected an (H, W) or (H, W, 1) array, got shape {array.shape}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise UnreadableImage("contains NaN or infinite values")
    if min(array.shape) < MIN_SIDE:
        raise UnreadableImage(f"too small ({array.shape[1]}x{array.shape[0]} pixels)")
    squared = square(np.clip(array, 0.0, 1.0), aspect)
    image = cv2.resize(squared, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image, {"width": array.shape[1], "height": array.shape[0], "bits": 32, "channels": 1}
