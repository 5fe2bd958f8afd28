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
