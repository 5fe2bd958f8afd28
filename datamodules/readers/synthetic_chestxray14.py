"""Multi-label phantoms in the NIH ChestX-ray14 layout, so ChestX-ray14 tasks and the transfer chains run with no data.

The ``synthetic`` thorax phantoms (synthetic.py) with 0-3 of the 14 findings each ('No Finding' when none), each a
visible mark: a finding-specific density at its own place and size in the lungs, a larger heart (Cardiomegaly), the
lobar consolidation (Pneumonia), darker lungs (Emphysema), a dark apex (Pneumothorax). ``extra_findings`` adds
classes: COVID-19 as the phantoms' ground-glass opacities (the transfer paper's 15-class task, section 5.3), others
as a blob placed by their name. Written once per option set as ``Data_Entry_2017.csv`` + ``images_001/images/`` and
read back by the ChestX-ray14 reader. NOT real X-rays.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from datamodules.locking import file_lock
from datamodules.manifest import COVID
from datamodules.readers import READERS
from datamodules.readers.chestxray14 import FINDINGS, NO_FINDING, ChestXray14Reader
from datamodules.readers.synthetic import _anatomy, _covid_opacities, _gauss, _lobar_consolidation, render_phantom

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SIZE = 64
MARKER = "synthetic.json"
# per finding: (outward offset in lung half-widths, height in lung half-heights, blob width, height, density, inside
# the lung only); Cardiomegaly, Pneumonia, Emphysema and Hernia are drawn their own way (``_findings``)
BLOBS = {
    "Atelectasis": (0.0, -0.35, 0.16, 0.035, 0.3, True),  # a plate-like band, mid-upper zone
    "Effusion": (0.5, 0.75, 0.14, 0.09, 0.4, True),  # the costophrenic angle
    "Infiltration": (0.3, 0.05, 0.06, 0.06, 0.2, True),
    "Mass": (-0.3, -0.05, 0.07, 0.07, 0.4, True),
    "Nodule": (0.35, -0.45, 0.04, 0.04, 0.5, True),
    "Pneumothorax": (0.55, -0.7, 0.12, 0.15, -0.3, True),  # air: darker
    "Consolidation": (0.0, 0.35, 0.1, 0.08, 0.35, True),
    "Edema": (-0.55, 0.0, 0.08, 0.2, 0.25, True),  # perihilar, both lungs
    "Fibrosis": (0.2, -0.6, 0.1, 0.08, 0.25, True),
    "Pleural_Thickening": (1.0, -0.1, 0.025, 0.3, 0.35, False),  # the lateral chest wall
}
# sampling weights: the square root of the findings' ChestX-ray14 counts, so the rare ones (Hernia) stay rare
COUNTS = {"Atelectasis": 11559, "Cardiomegaly": 2776, "Effusion": 13317, "Infiltration": 19894, "Mass": 5782, "Nodule": 6331,
          "Pneumonia": 1431, "Pneumothorax": 5302, "Consolidation": 4667, "Edema": 2303, "Emphysema": 2516, "Fibrosis": 1686,
          "Pleural_Thickening": 3385, "Hernia": 227}


def _blob(name: str) -> tuple:
    """An extra finding other than COVID-19: a blob at a place fixed by its name."""
    h = zlib.crc32(name.encode())
    return ((h % 7) / 10 - 0.3, (h // 7 % 9) / 10 - 0.4, 0.06, 0.06, 0.35, True)


def _findings(names: tuple[str, ...]):
    """The ``findings`` hook of ``render_phantom``: every finding's mark, added up."""
    def add(x, y, lungs, a, rng):
        total = np.zeros_like(x)
        for name in names:
            if name == "Pneumonia":
                total += _lobar_consolidation(x, y, lungs, a, rng)
            elif name == COVID:
                total += _covid_opacities(x, y, lungs, a, rng)
            elif name == "Emphysema":
                total -= 0.15 * rng.uniform(0.6, 1.2) * np.clip(lungs[0] + lungs[1], 0, 1)
            elif name == "Hernia":  # a round density behind the heart, above the diaphragm
                total += 0.3 * rng.uniform(0.6, 1.2) * _gauss(x, y, 0, a["lung_cy"] + a["lung_ry"] * 0.55, 0.08, 0.06)
            elif name != "Cardiomegaly":  # Cardiomegaly: a larger heart in the anatomy
                u, v, sx, sy, density, masked = BLOBS.get(name) or _blob(name)
                for side in ((-1, 1) if name == "Edema" else (rng.choice([-1, 1]),)):
                    cx = side * (a["lung_dx"] + a["lung_rx"] * (u + rng.uniform(-0.1, 0.1)))
                    cy = a["lung_cy"] + a["lung_ry"] * (v + rng.uniform(-0.1, 0.1))
                    mark = _gauss(x, y, cx, cy, sx, sy) * (lungs[0 if side == -1 else 1] if masked else 1)
                    total += density * rng.uniform(0.6, 1.2) * mark
        return total
    return add


def generate(layout: str | Path, *, patients: int = 300, seed: int = 0, extra_findings: tuple[str, ...] = ()) -> Path:
    """Write the set in the ChestX-ray14 layout under ``layout`` (once per option set; reused afterwards)."""
    layout = Path(layout)
    params = {"version": GENERATOR_VERSION, "patients": patients, "seed": seed, "size": SIZE, "extra_findings": list(extra_findings)}
    marker = layout / MARKER
    if marker.exists() and json.loads(marker.read_text()) == params:
        return layout
    shutil.rmtree(layout, ignore_errors=True)
    log.info("generating synthetic ChestX-ray14 phantoms (%d patients) in %s", patients, layout)
    images = layout / "images_001" / "images"
    images.mkdir(parents=True)
    names = list(FINDINGS) + list(extra_findings)
    weights = np.sqrt([COUNTS.get(n, np.median(list(COUNTS.values()))) for n in names])
    rows = []
    for patient in range(patients):
        rng = np.random.default_rng([seed, patient])
        anatomy, sex, age = _anatomy(rng), rng.choice(["M", "F"]), int(rng.integers(18, 90))
        for visit in range(int(rng.integers(1, 4))):
            image_rng = np.random.default_rng([seed, patient, visit, 1])
            count = image_rng.choice(4, p=[0.35, 0.35, 0.2, 0.1])
            found = list(image_rng.choice(len(names), count, replace=False, p=weights / weights.sum()))
            if visit == 0 and patient % 3 == 0 and patient // 3 % len(names) not in found:  # every class gets positives
                found = found[:2] + [patient // 3 % len(names)]
            findings = tuple(names[i] for i in sorted(found))
            a = {**anatomy, "heart_r": anatomy["heart_r"] * 1.4} if "Cardiomegaly" in findings else anatomy
            name = f"{patient + 1:08d}_{visit:03d}.png"
            cv2.imwrite(str(images / name), render_phantom("normal", a, image_rng, SIZE, findings=_findings(findings)))
            rows.append({"Image Index": name, "Finding Labels": "|".join(findings) or NO_FINDING, "Follow-up #": visit,
                         "Patient ID": patient + 1, "Patient Age": age, "Patient Gender": sex,
                         "View Position": "PA" if image_rng.random() < 0.6 else "AP"})
    pd.DataFrame(rows).to_csv(layout / "Data_Entry_2017.csv", index=False)
    (layout / "README.txt").write_text("SYNTHETIC chest X-ray phantoms made by datamodules/readers/synthetic_chestxray14.py. Not real patients.\n")
    marker.write_text(json.dumps(params))
    return layout


@READERS.register()
class SyntheticChestXray14Reader(ChestXray14Reader):
    """The multi-label phantoms, generated on first use and read by the ChestX-ray14 reader.

    Args:
        patients: patients generated (1-3 images each, about 2 on average).
        generator_seed: seed of the anatomy, findings and rendering.
        extra_findings: classes after the 14 findings (``["COVID-19"]``: the transfer paper's 15-class task).
    """

    name = "synthetic_chestxray14"
    is_synthetic = True
    group_duplicates_by_default = False  # phantoms share one template (see synthetic.py)
    folder_names = ()

    def __init__(self, root: str | Path | None = None, *, patients: int = 300, generator_seed: int = 0, extra_findings: list[str] | None = None,
                 no_finding: bool = False, views: list[str] | None = None, cache_dir: str | Path = ".cache/cxrbench"):
        """``root``: where the set is written (default: ``<cache_dir>/synthetic_chestxray14``), one folder per option set."""
        self.findings = FINDINGS + tuple(f for f in (extra_findings or ()) if f not in FINDINGS)
        self.extra_findings = self.findings[len(FINDINGS):]
        self.patients, self.generator_seed = int(patients), int(generator_seed)
        tag = f"p{self.patients}-g{self.generator_seed}" + "".join("-" + re.sub(r"[^A-Za-z0-9_.-]", "_", f) for f in self.extra_findings)
        self.tag = tag
        super().__init__(Path(root or Path(cache_dir) / self.name) / f"ChestX-ray14-{tag}", no_finding=no_finding, views=views)

    @property
    def variant(self) -> str:
        return "-".join(filter(None, [self.tag, super().variant]))

    def build_manifest(self) -> pd.DataFrame:
        with file_lock(Path(f"{self.root}.lock")):
            generate(self.root, patients=self.patients, seed=self.generator_seed, extra_findings=self.extra_findings)
        manifest = super().build_manifest()
        manifest["source"] = "synthetic"
        return manifest
