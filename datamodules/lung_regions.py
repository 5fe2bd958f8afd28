"""Where the lungs are in each image: for the shortcut probes (issue 12) and the siamese paper's lung crop (section 3.3.1).

A reader that has lung annotations puts them in the manifest column ``lung_boxes`` (the Cohen collection's lung
bounding boxes: one box per lung); every other image gets one fixed central field, the part of a frontal chest
film where the lungs lie, which leaves the borders, corners and burnt-in text outside. Boxes are normalised to the
image, (x0, y0, x1, y1) in [0, 1], so they survive the cache's square resize (datamodules/imageio.resize_square).
Every result that uses a region says which kind it was (``annotation`` or ``central_field``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

LUNG_BOXES_COLUMN = "lung_boxes"
# x0, y0, x1, y1 of the central field: the lungs of a frontal film (and of the phantoms) lie inside; the corners,
# the borders and the markers and letters burnt into them lie outside
CENTRAL_FIELD = (0.12, 0.10, 0.88, 0.85)
ANNOTATION, CENTRAL = "annotation", "central_field"
Box = tuple[float, float, float, float]


def format_boxes(boxes: Iterable[Box]) -> str:
    """The manifest's text for boxes: ``x0 y0 x1 y1`` per box, boxes joined by ``;`` (empty: none annotated)."""
    return ";".join(" ".join(f"{v:.4f}" for v in box) for box in boxes)


def parse_boxes(text) -> list[Box]:
    """Boxes from the manifest's text; empty, missing (NaN) or None gives []. A malformed entry is a ValueError."""
    if text is None or (isinstance(text, float) and np.isnan(text)) or not str(text).strip():
        return []
    boxes = []
    for part in str(text).split(";"):
        values = [float(v) for v in part.split()]
        if len(values) != 4 or not (0 <= values[0] < values[2] <= 1 and 0 <= values[1] < values[3] <= 1):
            raise ValueError(f"lung box {part!r}: expected 'x0 y0 x1 y1' with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")
        boxes.append(tuple(values))
    return boxes


def normalised_box(x: float, y: float, width: float, height: float, image_width: float, image_height: float) -> Box:
    """A pixel box (COCO's x, y, width, height) as a normalised (x0, y0, x1, y1), clipped to the image."""
    x0, y0 = max(0.0, x / image_width), max(0.0, y / image_height)
    x1, y1 = min(1.0, (x + width) / image_width), min(1.0, (y + height) / image_height)
    return (x0, y0, x1, y1)


def lung_region(text) -> tuple[list[Box], str]:
    """(boxes, kind) of one image: its annotated boxes, else the central field."""
    boxes = parse_boxes(text)
    return (boxes, ANNOTATION) if boxes else ([CENTRAL_FIELD], CENTRAL)


def region_mask(boxes: Iterable[Box], size: int | tuple[int, int]) -> np.ndarray:
    """Boolean (H, W) mask, True inside any of the boxes."""
    height, width = (size, size) if isinstance(size, int) else size
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[int(np.floor(y0 * height)):int(np.ceil(y1 * height)), int(np.floor(x0 * width)):int(np.ceil(x1 * width))] = True
    return mask


def union_box(boxes: Iterable[Box]) -> Box:
    """The smallest box holding all the boxes (both lungs: the region a crop keeps)."""
    boxes = list(boxes)
    if not boxes:
        raise ValueError("union_box of no boxes")
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def crop_to_box(pixels: np.ndarray, box: Box) -> np.ndarray:
    """The part of an (H, W) image inside a normalised box (at least one pixel each way)."""
    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = box
    top, left = int(np.floor(y0 * height)), int(np.floor(x0 * width))
    bottom, right = max(top + 1, int(np.ceil(y1 * height))), max(left + 1, int(np.ceil(x1 * width)))
    return pixels[top:bottom, left:right]
