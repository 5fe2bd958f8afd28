import cv2
import numpy as np
import pytest
from PIL import Image

from datamodules.imageio import ImageReadError, read_grayscale


@pytest.fixture
def gradient():
    return np.tile(np.arange(0, 250, 5, dtype=np.uint8), (50, 1))


def test_gray_rgb_rgba_and_palette_png_decode_to_the_same_gray(tmp_path, gradient):
    Image.fromarray(gradient).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([gradient] * 3, -1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([gradient] * 3 + [np.full_like(gradient, 255)])).save(tmp_path / "rgba.png")
    Image.fromarray(gradient).convert("P").save(tmp_path / "palette.png")
    for name in ("gray", "rgb", "rgba", "palette"):
        pixels = read_grayscale(tmp_path / f"{name}.png")
        assert pixels.dtype == np.uint8 and pixels.shape == (50, 50)
        assert np.abs(pixels.astype(int) - gradient).max() <= 2, name


def test_16_bit_png_is_scaled_to_8_bits(tmp_path, gradient):
    cv2.imwrite(str(tmp_path / "deep.png"), gradient.astype(np.uint16) * 256)
    pixels = read_grayscale(tmp_path / "deep.png")
    assert pixels.dtype == np.uint8 and pixels.max() == 255 and pixels.min() == 0


def test_a_jpg_that_is_really_a_png_is_read_by_content(tmp_path, gradient):
    Image.fromarray(gradient).save(tmp_path / "liar.jpg", format="PNG")
    assert np.array_equal(read_grayscale(tmp_path / "liar.jpg"), gradient)


@pytest.mark.parametrize("content, reason", [(b"", "empty file"), (b"hello world" * 10, "corrupt")])
def test_bad_files_raise_with_path_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as error:
        read_grayscale(path)
    assert str(path) in str(error.value)


def test_truncated_png_and_jpeg_are_caught(tmp_path, gradient):
    for suffix in (".png", ".jpg"):
        path = tmp_path / f"whole{suffix}"
        cv2.imwrite(str(path), gradient)
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        with pytest.raises(ImageReadError, match="truncated"):
            read_grayscale(cut)


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        read_grayscale(tmp_path / "nope.png")


# ----- more formats seen in the seed datasets -----


def test_cmyk_jpeg_and_gray_alpha_png(tmp_path, gradient):
    Image.fromarray(gradient).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    Image.fromarray(gradient).convert("LA").save(tmp_path / "gray_alpha.png")
    for name in ("cmyk.jpg", "gray_alpha.png"):
        pixels = read_grayscale(tmp_path / name)
        assert pixels.shape == (50, 50) and np.abs(pixels.astype(int) - gradient).max() <= 2, name


def test_rgba_with_transparent_alpha_keeps_the_gray_values(tmp_path, gradient):
    Image.fromarray(np.dstack([gradient] * 3 + [np.zeros_like(gradient)])).save(tmp_path / "clear.png")  # alpha = 0
    assert np.abs(read_grayscale(tmp_path / "clear.png").astype(int) - gradient).max() <= 1


def test_16_bit_rgb_png_and_tiff_and_jpeg_named_png(tmp_path, gradient):
    expected = np.round(gradient.astype(float) * 255 / gradient.max())
    cv2.imwrite(str(tmp_path / "rgb16.png"), np.dstack([gradient.astype(np.uint16) * 256] * 3))
    Image.fromarray(gradient.astype(np.uint16) * 16).save(tmp_path / "gray12in16.tif")
    for name in ("rgb16.png", "gray12in16.tif"):
        pixels = read_grayscale(tmp_path / name)
        assert pixels.dtype == np.uint8 and np.abs(pixels - expected).max() <= 1, name
    Image.fromarray(gradient).save(tmp_path / "liar.png", format="JPEG", quality=100)
    assert np.abs(read_grayscale(tmp_path / "liar.png").astype(int) - gradient).max() <= 2


def test_a_dcm_that_is_really_a_png_is_read_by_content(tmp_path, gradient):
    Image.fromarray(gradient).save(tmp_path / "scan.dcm", format="PNG")
    assert np.array_equal(read_grayscale(tmp_path / "scan.dcm"), gradient)


def _dicom(path, pixels, *, photometric="MONOCHROME2", window=None, rescale=None, voi_lut=None, preamble=True):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        item = Dataset()
        item.add_new(0x00283002, "US", [len(voi_lut), 0, 8])  # LUTDescriptor: entries, first stored value, bits
        item.add_new(0x00283006, "US", [int(v) for v in voi_lut])  # LUTData
        ds.VOILUTSequence = [item]
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=preamble)
    return path


@pytest.fixture
def ramp12():
    return np.tile(np.linspace(0, 4095, 64).round().astype(np.uint16), (16, 1))


def test_dicom_monochrome2_and_inverted_monochrome1(tmp_path, ramp12):
    plain = read_grayscale(_dicom(tmp_path / "m2.dcm", ramp12))
    inverted = read_grayscale(_dicom(tmp_path / "m1.dcm", ramp12, photometric="MONOCHROME1"))
    assert plain.dtype == np.uint8 and plain.shape == (16, 64)
    assert plain[0, 0] == 0 and plain[0, -1] == 255 and np.all(np.diff(plain[0].astype(int)) >= 0)
    assert np.abs(inverted.astype(int) - (255 - plain.astype(int))).max() <= 1  # bone bright in both


def test_dicom_window_is_applied_after_the_rescale(tmp_path, ramp12):
    # Stored 0..4095, rescaled by 2x - 1000 to -1000..7190; the window 1000 +- 1000 (in rescaled units) covers
    # stored values 500..1500: everything below is black, everything above is white, linear in between.
    pixels = read_grayscale(_dicom(tmp_path / "win.dcm", ramp12, window=(1000, 2000), rescale=(2, -1000)))
    stored = ramp12[0]
    assert np.all(pixels[0][stored <= 480] == 0) and np.all(pixels[0][stored >= 1520] == 255)
    middle = (stored > 600) & (stored < 1400)
    assert middle.any() and np.all((pixels[0][middle] > 0) & (pixels[0][middle] < 255))


def test_dicom_voi_lut_sequence_is_applied(tmp_path):
    stored = np.tile(np.arange(0, 64, dtype=np.uint16), (16, 1))
    lut = np.where(np.arange(64) < 32, 0, 255)  # a step: the LUT, not the raw ramp, must come out
    pixels = read_grayscale(_dicom(tmp_path / "lut.dcm", stored, voi_lut=lut))
    assert set(np.unique(pixels)) == {0, 255}
    assert np.all(pixels[:, :32] == 0) and np.all(pixels[:, 32:] == 255)


def test_dicom_without_preamble_or_with_a_wrong_extension(tmp_path, ramp12):
    bare = read_grayscale(_dicom(tmp_path / "bare.dcm", ramp12, preamble=False))
    misnamed = read_grayscale(_dicom(tmp_path / "misnamed.png", ramp12))
    assert bare[0, -1] == 255 and misnamed[0, -1] == 255


def test_truncated_dicom_is_a_clear_error(tmp_path, ramp12):
    whole = _dicom(tmp_path / "whole.dcm", ramp12).read_bytes()
    (tmp_path / "cut.dcm").write_bytes(whole[: len(whole) - 1000])
    with pytest.raises(ImageReadError, match="corrupt or unsupported") as error:
        read_grayscale(tmp_path / "cut.dcm")
    assert "cut.dcm" in str(error.value)
