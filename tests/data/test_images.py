import cv2
import numpy as np
import pytest
from helpers import write_dicom

from covgan.data.images import UnreadableImage, jpeg_is_complete, read_radiograph


def gradient(height, width):
    return np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))


def test_8bit_png_keeps_values(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((256, 256), 51, np.uint8))
    image, info = read_radiograph(path)
    assert image.shape == (128, 128) and image.dtype == np.float32
    np.testing.assert_allclose(image, 0.2, atol=1e-6)
    assert info["bits"] == 8 and info["channels"] == 1


def test_16bit_png_is_stretched_to_its_range(tmp_path):
    path = tmp_path / "a.png"
    pixels = (gradient(200, 200) * 4095).astype(np.uint16)  # 12-bit data in 16-bit PNG
    cv2.imwrite(str(path), pixels)
    image, info = read_radiograph(path)
    assert info["bits"] == 16
    assert image.min() < 0.02 and image.max() > 0.98


def test_rgb_jpeg_becomes_gray(tmp_path):
    path = tmp_path / "a.jpg"
    colour = np.zeros((300, 300, 3), np.uint8)
    colour[...] = (200, 200, 200)
    cv2.imwrite(str(path), colour)
    image, info = read_radiograph(path)
    assert info["channels"] == 3
    np.testing.assert_allclose(image, 200 / 255, atol=0.02)


def test_rgba_png(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.full((64, 64, 4), 128, np.uint8))
    image, _ = read_radiograph(path)
    np.testing.assert_allclose(image, 128 / 255, atol=0.01)


@pytest.mark.parametrize("aspect", ["crop", "pad"])
def test_non_square_images(tmp_path, aspect):
    path = tmp_path / "tall.png"
    pixels = np.zeros((400, 200), np.uint8)
    pixels[:100] = 255  # bright top quarter: cropped away, or kept when padding
    cv2.imwrite(str(path), pixels)
    image, _ = read_radiograph(path, aspect=aspect)
    assert image.shape == (128, 128)
    if aspect == "crop":
        assert image.max() == 0.0
    else:
        assert image[:20].mean() > 0.9


@pytest.mark.parametrize(
    "content, suffix, reason",
    [
        (b"", ".png", "empty"),
        (b"this is not an image", ".png", "not a decodable image"),
    ],
)
def test_unreadable_files(tmp_path, content, suffix, reason):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with pytest.raises(UnreadableImage, match=reason):
        read_radiograph(path)


def test_truncated_files(tmp_path):
    ok, encoded = cv2.imencode(".jpg", (gradient(256, 256) * 255).astype(np.uint8))
    (tmp_path / "cut.jpg").write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(UnreadableImage, match="truncated"):
        read_radiograph(tmp_path / "cut.jpg")
    ok, encoded = cv2.imencode(
        ".png", (np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8)
    )
    (tmp_path / "cut.png").write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(UnreadableImage):
        read_radiograph(tmp_path / "cut.png")


def test_missing_and_tiny(tmp_path):
    with pytest.raises(UnreadableImage):
        read_radiograph(tmp_path / "absent.png")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(UnreadableImage, match="too small"):
        read_radiograph(tmp_path / "tiny.png")


@pytest.mark.parametrize(
    "photometric, left_is_dark", [("MONOCHROME2", True), ("MONOCHROME1", False)]
)
def test_dicom_and_monochrome1_inversion(tmp_path, photometric, left_is_dark):
    pixels = (gradient(160, 160) * 4000).astype(np.uint16)  # left low, right high
    path = tmp_path / "x.dcm"
    write_dicom(path, pixels, photometric)
    image, info = read_radiograph(path)
    assert info["photometric"] == photometric
    assert (image[:, :10].mean() < image[:, -10:].mean()) == left_is_dark


def test_multiframe_colour_dicom_reads_its_first_frame(tmp_path):
    frames = np.zeros((2, 400, 400, 3), np.uint8)
    frames[0, :, 200:] = (250, 250, 250)  # first frame: right half bright
    frames[1, :, :200] = (250, 250, 250)  # second frame: left half bright
    path = tmp_path / "cine.dcm"
    write_dicom(path, frames, "RGB")
    image, info = read_radiograph(path)
    assert (info["width"], info["height"], info["channels"]) == (400, 400, 3)
    assert image[:, :50].mean() < 0.05 and image[:, -50:].mean() > 0.95


def _jpeg(pixels):
    ok, encoded = cv2.imencode(".jpg", pixels)
    return encoded.tobytes()


def test_jpeg_with_bytes_after_its_end_marker_is_read(tmp_path):
    pixels = (gradient(256, 256) * 255).astype(np.uint8)
    path = tmp_path / "trailer.jpg"
    path.write_bytes(_jpeg(pixels) + b"scanner trailer " * 16)
    image, _ = read_radiograph(path)
    assert image[:, :10].mean() < 0.1 and image[:, -10:].mean() > 0.9


def test_truncated_jpeg_with_a_complete_thumbnail_is_refused(tmp_path):
    # An APP1 segment carrying a whole small JPEG (as EXIF thumbnails do) holds an FF D9
    # of its own; the main image cut short must still be caught.
    thumbnail = _jpeg(np.full((16, 16), 90, np.uint8))
    app1 = b"\xff\xe1" + (len(thumbnail) + 2).to_bytes(2, "big") + thumbnail
    main = _jpeg((gradient(256, 256) * 255).astype(np.uint8))
    whole = main[:2] + app1 + main[2:]
    assert jpeg_is_complete(whole)
    assert not jpeg_is_complete(whole[: len(whole) - 200])
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) - 200])
    with pytest.raises(UnreadableImage, match="truncated"):
        read_radiograph(tmp_path / "cut.jpg")
