import cv2
import numpy as np
import pytest

from covgan.data.images import UnreadableImage, read_radiograph


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


def _write_dicom(path, pixels, photometric):
    # The `test` extra installs pydicom: an import error here fails the test, never skips it.
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    del pydicom


@pytest.mark.parametrize(
    "photometric, left_is_dark", [("MONOCHROME2", True), ("MONOCHROME1", False)]
)
def test_dicom_and_monochrome1_inversion(tmp_path, photometric, left_is_dark):
    pixels = (gradient(160, 160) * 4000).astype(np.uint16)  # left low, right high
    path = tmp_path / "x.dcm"
    _write_dicom(path, pixels, photometric)
    image, info = read_radiograph(path)
    assert info["photometric"] == photometric
    assert (image[:, :10].mean() < image[:, -10:].mean()) == left_is_dark
