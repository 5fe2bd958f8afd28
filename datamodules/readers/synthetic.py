"""Deterministic synthetic chest X-ray phantoms: the default dataset, so the suite runs with no download.

Each phantom is a thorax (soft tissue, two lungs, mediastinum and heart, spine, ribs, clavicles, diaphragm)
with per-patient anatomy and per-image exposure, rotation, shift and noise, plus a class-specific finding:
  normal     nothing;
  COVID-19   bilateral, peripheral, lower-zone ground-glass opacities (faint, hazy blobs in both lungs);
  pneumonia  unilateral lobar consolidation (one dense lobe-shaped region with air bronchograms).
Patients have 1-3 images each. ``marker_class`` plants a shortcut (issue 12): every image of that class gets a
bright filled square in the top-left corner, outside the lungs' central field (datamodules/lung_regions.py). The set is written once in the COVID-19 Radiography Database layout, with a
patient_map.csv, and read back through the same code as the real database. These are NOT real X-rays: every
table and log that shows them says so.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from datamodules.grouping import DuplicateSearch
from datamodules.locking import file_lock
from datamodules.readers import READERS
from datamodules.readers.covid19_radiography import PATIENT_MAP, Covid19RadiographyReader

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
LAYOUT_DIR = "COVID-19_Radiography_Dataset"
CLASS_FOLDERS = {"COVID-19": "COVID", "normal": "Normal", "pneumonia": "Viral Pneumonia"}
MARKER = "synthetic.json"
IDENTICAL_PIXELS_ONLY = 2.0  # a pixel correlation no pair reaches: only equal cached pixels make a duplicate pair
MARKER_SIDE = 0.11  # of the image side: the planted square ends before the central field (x0 = 0.12), also after a resize


def check_marker_class(marker_class: str | None) -> None:
    if marker_class is not None and marker_class not in CLASS_FOLDERS:
        raise ValueError(f"marker_class={marker_class!r}: not a phantom class; use one of {list(CLASS_FOLDERS)} (or None)")


def plant_marker(image: np.ndarray) -> np.ndarray:
    """The planted shortcut: a white filled square in the top-left corner, outside CENTRAL_FIELD."""
    side = max(1, int(MARKER_SIDE * image.shape[0]))
    image[:side, :side] = 255
    return image


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2) / 2)


def _ellipse(x, y, cx, cy, rx, ry, softness=0.04) -> np.ndarray:
    """Soft-edged filled ellipse, 1 inside and 0 outside."""
    r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return np.clip((1 - r) / softness + 0.5, 0, 1)


def _anatomy(rng: np.random.Generator) -> dict:
    """Per-patient anatomy: stays fixed across a patient's images."""
    return {
        "body_rx": rng.uniform(0.78, 0.92),
        "lung_rx": rng.uniform(0.24, 0.30),
        "lung_ry": rng.uniform(0.50, 0.60),
        "lung_dx": rng.uniform(0.33, 0.40),
        "lung_cy": rng.uniform(-0.08, 0.02),
        "heart_r": rng.uniform(0.20, 0.27),
        "rib_gap": rng.uniform(0.13, 0.17),
        "tissue": rng.uniform(0.45, 0.6),
    }


def _lungs(x, y, a) -> tuple[np.ndarray, np.ndarray]:
    """Right lung (image left) and left lung (image right) masks, with domed bases."""
    masks = []
    for side in (-1, 1):
        cx = side * a["lung_dx"]
        mask = _ellipse(x, y, cx, a["lung_cy"], a["lung_rx"], a["lung_ry"])
        dome = a["lung_cy"] + a["lung_ry"] * 0.75 - 0.25 * ((x - cx) / a["lung_rx"]) ** 2
        mask = mask * np.clip((dome - y) / 0.03 + 0.5, 0, 1)
        masks.append(mask)
    return masks[0], masks[1]


def _ribs(x, y, a) -> np.ndarray:
    ribs = np.zeros_like(x)
    for side in (-1, 1):
        for k in range(9):
            y0 = -0.62 + k * a["rib_gap"]
            curve = y0 + 0.35 * (x * side - 0.05) ** 2 - 0.10 * (x * side)
            band = np.exp(-((y - curve) / 0.018) ** 2) * ((x * side) > 0.03) * ((x * side) < 0.85)
            ribs += band
    return np.clip(ribs, 0, 1)


def _covid_opacities(x, y, lungs, a, rng) -> np.ndarray:
    """Bilateral, peripheral, lower-zone ground-glass: several faint broad blobs near each lung's outer base."""
    haze = np.zeros_like(x)
    for side, lung in zip((-1, 1), lungs):
        for _ in range(rng.integers(2, 5)):
            cx = side * (a["lung_dx"] + a["lung_rx"] * rng.uniform(0.25, 0.7))
            cy = a["lung_cy"] + a["lung_ry"] * rng.uniform(0.1, 0.6)
            haze += rng.uniform(0.5, 0.9) * _gauss(x, y, cx, cy, rng.uniform(0.07, 0.12), rng.uniform(0.08, 0.15)) * lung
    return np.clip(haze, 0, 1.2) * 0.22 * rng.uniform(0.2, 1.0)  # severity: from barely visible to obvious


def _lobar_consolidation(x, y, lungs, a, rng) -> np.ndarray:
    """One lung, one lobe: a dense region bounded by a fissure, with darker air bronchograms."""
    side = rng.choice([-1, 1])
    lung = lungs[0] if side == -1 else lungs[1]
    lower = rng.random() < 0.65
    fissure = a["lung_cy"] + rng.uniform(-0.15, 0.1) + 0.3 * (x * side - a["lung_dx"])
    lobe = np.clip(((y - fissure) if lower else (fissure - y)) / 0.03 + 0.5, 0, 1) * lung
    texture = cv2.GaussianBlur(rng.standard_normal(x.shape).astype(np.float32), (0, 0), 3.0)
    bronchi = np.zeros_like(x)
    for _ in range(3):
        angle = rng.uniform(-0.6, 0.6)
        cx = side * a["lung_dx"]
        distance = np.abs((x - cx) * np.cos(angle) - (y - a["lung_cy"]) * np.sin(angle))
        bronchi += np.exp(-(distance / 0.012) ** 2)
    density = rng.uniform(0.08, 0.45)  # severity: from a faint lobe to dense consolidation
    return lobe * (density + 0.05 * texture - 0.12 * np.clip(bronchi, 0, 1))


def render_phantom(label: str, anatomy: dict, rng: np.random.Generator, size: int = 256, findings=None) -> np.ndarray:
    """One phantom image as uint8, size x size; ``findings(x, y, (right, left), anatomy, rng)``, when given, adds
    more density before exposure and noise (the multi-label phantoms, synthetic_chestxray14.py)."""
    coords = np.linspace(-1, 1, size, dtype=np.float32)
    x, y = np.meshgrid(coords, coords)
    angle = np.deg2rad(rng.uniform(-6, 6))
    shift_x, shift_y = rng.uniform(-0.05, 0.05, size=2)
    x, y = (x * np.cos(angle) - y * np.sin(angle)) - shift_x, (x * np.sin(angle) + y * np.cos(angle)) - shift_y

    a = anatomy
    body = _ellipse(x, y + 0.1, 0, 0, a["body_rx"], 1.15, softness=0.08)
    right, left = _lungs(x, y, a)
    lungs_mask = np.clip(right + left, 0, 1)
    heart = _ellipse(x, y, 0.1, a["lung_cy"] + 0.3, a["heart_r"] * 1.3, a["heart_r"], softness=0.15)
    mediastinum = _ellipse(x, y, 0, -0.2, 0.09, 0.6, softness=0.2)
    spine = np.exp(-(x / 0.06) ** 2) * (y > -0.9)
    abdomen = np.clip((y - (a["lung_cy"] + a["lung_ry"] * 0.7)) / 0.05, 0, 1) * body
    clavicles = sum(np.exp(-((y - (-0.7 + 0.25 * np.abs(x - s * 0.25))) / 0.025) ** 2) * (np.abs(x - s * 0.3) < 0.3) for s in (-1, 1))

    image = 0.06 + a["tissue"] * body
    image -= 0.38 * lungs_mask * (1 - 0.5 * np.clip(heart + mediastinum, 0, 1))
    image += 0.18 * np.clip(heart + mediastinum, 0, 1) + 0.1 * spine * body + 0.15 * abdomen
    image += 0.12 * _ribs(x, y, a) * body * (1 - abdomen) + 0.15 * clavicles * body
    vessels = cv2.GaussianBlur(rng.standard_normal(x.shape).astype(np.float32), (0, 0), 2.0)
    image += 0.03 * vessels * lungs_mask

    if label == "COVID-19":
        image += _covid_opacities(x, y, (right, left), a, rng)
    elif label == "pneumonia":
        image += _lobar_consolidation(x, y, (right, left), a, rng)
    elif label != "normal":
        raise ValueError(f"unknown phantom class {label!r}")
    if findings is not None:
        image += findings(x, y, (right, left), a, rng)

    exposure = rng.uniform(0.8, 1.2)
    gamma = rng.uniform(0.85, 1.15)
    image = np.clip(image * exposure, 0, 1) ** gamma
    image += rng.normal(0, rng.uniform(0.01, 0.05), image.shape)
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def generate(root: str | Path, *, patients_per_class: int = 100, max_images_per_patient: int = 3, size: int = 256, seed: int = 0,
             marker_class: str | None = None) -> Path:
    """Write the phantom set under ``root`` in the Radiography Database layout (once; reused afterwards);
    ``marker_class``: every image of that class carries the planted corner square (plant_marker)."""
    check_marker_class(marker_class)
    root = Path(root)
    params = {"version": GENERATOR_VERSION, "patients_per_class": patients_per_class, "max_images_per_patient": max_images_per_patient, "size": size, "seed": seed}
    if marker_class is not None:  # only when planted: a clean set's parameters (and its cache) stay as they were
        params["marker_class"] = marker_class
    layout = root / LAYOUT_DIR
    with file_lock(root / "generate.lock"):  # parallel jobs (submitit, DDP ranks) write one set: one generates, the others wait
        return _generate(layout, params, patients_per_class, max_images_per_patient, size, seed, marker_class)


def _generate(layout: Path, params: dict, patients_per_class: int, max_images_per_patient: int, size: int, seed: int,
              marker_class: str | None) -> Path:
    marker = layout / MARKER
    if marker.exists() and json.loads(marker.read_text()) == params:
        return layout
    shutil.rmtree(layout, ignore_errors=True)  # other parameters: start clean, leave no stale images behind
    log.info("generating synthetic phantoms (%d patients per class) in %s", patients_per_class, layout)
    mapping = []
    for class_index, (label, folder) in enumerate(CLASS_FOLDERS.items()):
        directory = layout / folder
        directory.mkdir(parents=True, exist_ok=True)
        number = 0
        for patient in range(patients_per_class):
            patient_rng = np.random.default_rng([seed, class_index, patient])
            anatomy = _anatomy(patient_rng)
            for visit in range(int(patient_rng.integers(1, max_images_per_patient + 1))):
                number += 1
                image_rng = np.random.default_rng([seed, class_index, patient, visit, 1])
                name = f"{folder}-{number}.png"
                image = render_phantom(label, anatomy, image_rng, size)
                cv2.imwrite(str(directory / name), plant_marker(image) if label == marker_class else image)
                mapping.append({"image": f"{folder}/{name}", "patient_id": f"synthetic-{folder.replace(' ', '_')}-{patient:04d}"})
    pd.DataFrame(mapping).to_csv(layout / PATIENT_MAP, index=False)
    planted = "" if marker_class is None else f"Planted shortcut: every {marker_class} image has a white square in its top-left corner.\n"
    (layout / "README.txt").write_text("SYNTHETIC chest X-ray phantoms made by datamodules/readers/synthetic.py. Not real patients; not for any clinical claim.\n" + planted)
    marker.write_text(json.dumps(params))
    return layout


@READERS.register()
class SyntheticReader(Covid19RadiographyReader):
    """The phantom set, generated on first use and read through the Radiography Database reader."""

    name = "synthetic"
    is_synthetic = True
    # Phantoms share one anatomical template: different patients correlate like copies, so grouping by duplicates
    # would merge most of them. They are generated, never copied, so there is nothing to group; when grouping is
    # asked for (group_duplicates, or a held_out split, which always groups) only copies with identical pixels count.
    group_duplicates_by_default = False
    duplicate_search = DuplicateSearch(max_distance=0, min_correlation=IDENTICAL_PIXELS_ONLY)
    classes = ("COVID-19", "normal", "pneumonia")

    def __init__(self, root: str | Path | None = None, *, patients_per_class: int = 100, generator_seed: int = 0,
                 marker_class: str | None = None, sources: int = 1, cache_dir: str | Path = ".cache/cxrbench", **kwargs):
        """``root``: where the phantoms are written (default: ``<cache_dir>/synthetic``, plus the generator options
        when they are not the defaults, so two phantom sets never overwrite each other). ``marker_class``: plant the
        corner-square shortcut on every image of that class (the shortcut probes' positive control, issue 12).
        ``sources``: with k > 1 the patients of each class are dealt round-robin to the sites ``site0..site{k-1}``
        (manifest ``source``), so every site has every class (leave-one-source-out tests); the images do not change."""
        check_marker_class(marker_class)
        if int(sources) < 1:
            raise ValueError(f"{self.name}: sources={sources!r}; give 1 or more sites")
        self.sources = int(sources)
        self.patients_per_class = patients_per_class
        self.generator_seed = generator_seed
        self.marker_class = marker_class
        super().__init__(root or Path(cache_dir) / "-".join(filter(None, ["synthetic", self._generator_tag])), **kwargs)

    @property
    def _generator_tag(self) -> str:
        defaults = self.patients_per_class == 100 and self.generator_seed == 0
        marker = self.marker_class and "marker_" + re.sub(r"[^A-Za-z0-9_.-]", "_", self.marker_class)
        return "-".join(filter(None, ["" if defaults else f"p{self.patients_per_class}s{self.generator_seed}", marker]))

    @property
    def variant(self) -> str:
        """The generator options too: a split of one phantom set never serves another."""
        return "-".join(filter(None, [super().variant, self._generator_tag, f"sites{self.sources}" if self.sources > 1 else ""]))

    def build_manifest(self) -> pd.DataFrame:
        generate(self.root, patients_per_class=self.patients_per_class, seed=self.generator_seed, marker_class=self.marker_class)
        manifest = super().build_manifest()
        manifest["source"] = "synthetic"
        if self.sources > 1:  # the patient's number within its class (synthetic-<folder>-NNNN), dealt round-robin
            number = manifest["patient_id"].str.rsplit("-", n=1).str[1].astype(int)
            manifest["source"] = [f"site{n % self.sources}" for n in number]
        return manifest


@READERS.register()
class SyntheticShortcutReader(SyntheticReader):
    """The phantoms with a planted shortcut, as a dataset of its own name (its runs never share an id with the clean
    set's): every COVID-19 phantom carries the corner square. The probes must flag a model trained on it (issue 12)."""

    name = "synthetic_shortcut"

    def __init__(self, root: str | Path | None = None, *, marker_class: str | None = "COVID-19", **kwargs):
        super().__init__(root, marker_class=marker_class, **kwargs)
