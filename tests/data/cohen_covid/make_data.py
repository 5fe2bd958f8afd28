"""Make a tiny fake ieee8023 covid-chestxray-dataset: metadata.csv (the real 29 columns) and images/.

Rows cover what the reader must handle: flat and hierarchical findings ('COVID-19, ARDS',
'Pneumonia/Viral/COVID-19'), other pneumonias, 'No Finding', 'todo', ARDS alone, PA/AP/AP Supine/lateral/blank
views, a CT row in volumes/, one file listed under two patient ids (as 285/339 upstream) and one listed X-ray
whose file is absent. annotations/imageannotation_ai_lung_bounding_boxes.json gives lung boxes for a few images,
in the pixels of an "original" larger than the fake file (as upstream, whose copies here are resized). Run as a script to write it to ./covid-chestxray-dataset.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np

COLUMNS = [
    "patientid", "offset", "sex", "age", "finding", "survival", "intubated", "intubation_present", "went_icu",
    "in_icu", "needed_supplemental_O2", "extubated", "temperature", "pO2_saturation", "leukocyte_count",
    "neutrophil_count", "lymphocyte_count", "view", "modality", "date", "location", "folder", "filename", "doi",
    "url", "license", "clinical_notes", "other_notes", "",
]
# patientid, sex, age, finding, view, modality, folder, filename
ROWS = [
    ("1", "M", "65", "COVID-19", "PA", "X-ray", "images", "c1-pa.jpg"),
    ("1", "M", "65", "COVID-19", "L", "X-ray", "images", "c1-l.jpg"),
    ("2", "F", "52", "COVID-19, ARDS", "AP Supine", "X-ray", "images", "c2.png"),
    ("3", "", "", "Pneumonia/Viral/COVID-19", "AP", "X-ray", "images", "c3.png"),
    ("4", "F", "70", "COVID-19", "AP erect", "X-ray", "images", "c4.jpeg"),
    ("5", "M", "40", "COVID-19", "", "X-ray", "images", "c5-noview.png"),
    ("6", "M", "38", "COVID-19", "Axial", "CT", "volumes", "c6.nii.gz"),
    ("7", "F", "33", "SARS", "PA", "X-ray", "images", "sars7.jpg"),
    ("8", "M", "61", "Streptococcus", "PA", "X-ray", "images", "strep8.jpg"),
    ("9", "M", "58", "Pneumonia/Bacterial/Klebsiella", "AP", "X-ray", "images", "kleb9.png"),
    ("10", "F", "45", "Pneumocystis", "PA", "X-ray", "images", "pcp10.png"),
    ("11", "F", "29", "No Finding", "PA", "X-ray", "images", "nf11.png"),
    ("12", "M", "30", "No Finding", "PA", "X-ray", "images", "nf12.png"),
    ("13", "F", "41", "No Finding", "AP", "X-ray", "images", "nf13.png"),
    ("14", "", "", "todo", "PA", "X-ray", "images", "todo14.jpg"),
    ("15", "M", "72", "ARDS", "AP Supine", "X-ray", "images", "ards15.png"),
    ("16", "M", "80", "Legionella", "PA", "X-ray", "images", "leg16-pa.jpg"),
    ("16", "M", "80", "Legionella", "PA", "X-ray", "images", "leg16-pa2.jpg"),
    ("17", "F", "66", "COVID-19", "PA", "X-ray", "images", "c17-absent.png"),
    ("18", "M", "55", "COVID-19", "PA", "X-ray", "images", "c18.png"),
    ("19", "F", "47", "COVID-19", "AP", "X-ray", "images", "c19.png"),
    ("20", "M", "80", "Legionella", "PA", "X-ray", "images", "leg16-pa.jpg"),  # same file as patient 16
    ("20", "M", "80", "Legionella", "AP", "X-ray", "images", "leg20-ap.jpg"),
]
ABSENT = "c17-absent.png"
# the publication each image came from (metadata ``url``; the reader's ``source`` is its domain); others are blank
URLS = {
    "c1-pa.jpg": "https://radiopaedia.org/cases/covid-19-pneumonia-2", "c1-l.jpg": "https://radiopaedia.org/cases/covid-19-pneumonia-2",
    "c2.png": "https://www.eurorad.org/case/16664", "c3.png": "https://www.sirm.org/2020/03/covid-19-caso-3/",
    "sars7.jpg": "https://github.com/ieee8023/covid-chestxray-dataset/issues/1", "nf11.png": "radiopaedia.org/cases/normal-chest-1",
    "strep8.jpg": "https://WWW.Eurorad.org/case/1", "c18.png": "http://www.sirm.org/2020/03/18/covid-19-caso-18/",
}
# file name: (original width, height, [(category, [x, y, w, h]), ...]); category 1 right lung, 2 left lung
LUNG_BOXES = {
    "c1-pa.jpg": (1000, 800, [(1, [100, 80, 350, 600]), (2, [550, 80, 350, 600])]),
    "nf11.png": (400, 500, [(2, [220, 50, 140, 400]), (1, [40, 50, 140, 400])]),
    "c6.nii.gz": (512, 512, [(1, [0, 0, 100, 100])]),  # a CT volume: never in an X-ray manifest
    "leg16-pa2.jpg": (600, 600, [(1, [None] * 4), (2, [None] * 4)]),  # upstream lists a few lungs with empty boxes
}
LUNG_BOXES_FILE = "annotations/imageannotation_ai_lung_bounding_boxes.json"


def write_lung_boxes(base: Path) -> Path:
    """The COCO-style lung box file for LUNG_BOXES (images, annotations, categories, as upstream)."""
    images, annotations = [], []
    for image_id, (name, (width, height, boxes)) in enumerate(LUNG_BOXES.items(), start=1):
        images.append({"id": image_id, "file_name": name, "width": width, "height": height})
        annotations += [{"id": len(annotations) + 1, "image_id": image_id, "category_id": c, "bbox": b, "segmentation": []} for c, b in boxes]
    categories = [{"id": 1, "name": "Right Lung", "supercategory": "Lungs"}, {"id": 2, "name": "Left Lung", "supercategory": "Lungs"}]
    path = base / LUNG_BOXES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def create(root: Path, size: int = 24) -> Path:
    base = Path(root) / "covid-chestxray-dataset"
    (base / "images").mkdir(parents=True, exist_ok=True)
    (base / "volumes").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    with open(base / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for patientid, sex, age, finding, view, modality, folder, filename in ROWS:
            record = dict.fromkeys(COLUMNS, "")
            record.update(patientid=patientid, sex=sex, age=age, finding=finding, view=view, modality=modality, folder=folder, filename=filename,
                          url=URLS.get(filename, ""))
            writer.writerow([record[c] for c in COLUMNS])
            target = base / folder / filename
            if filename != ABSENT and not target.exists():
                ok, data = cv2.imencode(".png" if filename.endswith(".png") else ".jpg", rng.integers(0, 256, (size, size), dtype=np.uint8))
                target.write_bytes(data.tobytes())
    write_lung_boxes(base)
    return base


if __name__ == "__main__":
    print(create(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
