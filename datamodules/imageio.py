"""Decode any chest X-ray file into one single-channel uint8 image, or say exactly why it cannot be read.

Decoding goes by the file's content, not its extension (some .jpg files are PNGs). Handles 8- and 16-bit
PNG/JPEG/TIFF, gray, gray+alpha, RGB, RGBA, palette and CMYK (through OpenCV, then Pillow as a fallback) and
DICOM (pydicom, with or without the preamble: modality LUT (rescale), then VOI LUT or window, MONOCHROME1
inverted).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DICOM_MAGIC_OFFSET = 128
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8"


class ImageReadError(OSError):
    """An image could not be decoded; ``reason`` says why in a few words."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Scale any integer or float array to 0..255; 16-bit and float images are windowed to their own range."""
    if pixels.dtype == np.uint8:
        return pixels
    pixels = pixels.astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    return np.clip((pixels - low) * (255.0 / (high - low)) + 0.5, 0, 255).astype(np.uint8)


def _to_gray(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        return pixels[:, :, 0]
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        # OpenCV returns BGR(A); alpha is dropped, not composited: X-rays carry no meaningful transparency.
        return cv2.cvtColor(np.ascontiguousarray(pixels[:, :, :3]), cv2.COLOR_BGR2GRAY)
    raise ValueError(f"unexpected pixel array shape {pixels.shape}")


def _read_dicom(path: Path) -> np.ndarray:
    """Pixels as a radiologist would see them: modality LUT (rescale), then the VOI LUT or window, then
    MONOCHROME1 (white = low values) inverted so that bone is bright as in every other format."""
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    dataset = pydicom.dcmread(str(path), force=True)
    pixels = dataset.pixel_array
    if int(getattr(dataset, "NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[0]  # multi-frame: first frame
    if int(getattr(dataset, "SamplesPerPixel", 1) or 1) > 1:
        return cv2.cvtColor(_to_uint8(np.ascontiguousarray(pixels[:, :, :3])), cv2.COLOR_RGB2GRAY)  # pydicom gives RGB
    pixels = apply_voi_lut(apply_modality_lut(pixels, dataset), dataset)
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return _to_uint8(np.asarray(pixels))


def _read_with_pillow(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):
            return _to_uint8(np.asarray(image))
        return np.asarray(image.convert("L"))


def read_grayscale(path: str | Path) -> np.ndarray:
    """Return the image at ``path`` as a 2-D uint8 array; raise ImageReadError naming the problem."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageReadError(path, "file not found") from None
    except OSError as error:
        raise ImageReadError(path, f"unreadable ({error.strerror or error})") from None
    if not data:
        raise ImageReadError(path, "empty file")
    # Decoders return a partly grey image for a cut-off file instead of failing: check the end markers.
    if data.startswith(PNG_SIGNATURE) and b"IEND" not in data[-64:]:
        raise ImageReadError(path, "truncated PNG (no IEND chunk)")
    if data.startswith(JPEG_SIGNATURE) and b"\xff\xd9" not in data[-4096:]:
        raise ImageReadError(path, "truncated JPEG (no end-of-image marker)")
    try:
        is_raster = data.startswith((PNG_SIGNATURE, JPEG_SIGNATURE))
        if data[DICOM_MAGIC_OFFSET : DICOM_MAGIC_OFFSET + 4] == b"DICM" or (path.suffix.lower() == ".dcm" and not is_raster):
            pixels = _read_dicom(path)
        else:
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
            pixels = _to_uint8(_to_gray(decoded)) if decoded is not None else _read_with_pillow(data)
    except ImageReadError:
        raise
    except Exception as error:  # any decoder failure becomes one clear, per-file reason
        raise ImageReadError(path, f"corrupt or unsupported image ({type(error).__name__}: {error})") from None
    if pixels.ndim != 2 or min(pixels.shape) < 8:
        raise ImageReadError(path, f"implausible image size {pixels.shape}")
    return pixels


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size with OpenCV's area interpolation, as the siamese paper does (section 3.1)."""
    return cv2.resize(pixels, (size, size), interpolation=cv2.INTER_AREA)
