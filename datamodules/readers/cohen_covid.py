"""COVID-19 image data collection (Cohen, Morrison, Dao, arXiv:2003.11597; ieee8023/covid-chestxray-dataset).

``metadata.csv`` has one row per image (patientid, finding, view, modality, folder, filename, sex, age, ...); the
image is ``<folder>/<filename>``. Only X-ray rows are read; by default only frontal views (PA, AP, AP Supine, AP
semi erect, AP erect) are kept and lateral, blank and '?' views are left out, as the twice-transfer paper removes
lateral views (Bassi & Attux, section 2) and COVID-Net keeps the same frontal list. Rows whose finding is 'todo'
(not yet labelled) are excluded. Findings are flat in early releases ('COVID-19', 'COVID-19, ARDS', 'SARS') and
hierarchical later ('Pneumonia/Viral/COVID-19'); both are mapped:

- ``task="three_class"`` (default): COVID-19 / pneumonia (every other pneumonia: viral, bacterial, fungal, lipoid,
  aspiration, unspecified) / normal ('No Finding'); other findings (ARDS alone, tuberculosis) are outside the task.
- ``task="binary"``: COVID-19 / non-COVID (every other labelled finding).

Patient ids are the metadata's ``patientid``. A few files are listed twice under two patient ids (in the
2020-06 snapshot patients 339/340 repeat the images of 285/287): the first row is kept and the later patient id
is merged into the first, so the two records can never land in different splits.

The collection's lung bounding boxes (``annotations/imageannotation_ai_lung_bounding_boxes.json``, COCO style, one box
per lung in the original image's pixels) become the manifest column ``lung_boxes``, normalised by the annotation's own
width and height so they hold for our resized copies ("" for an image without boxes; datamodules/lung_regions.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader
from datamodules.lung_regions import LUNG_BOXES_COLUMN, format_boxes, normalised_box
from datamodules.manifest import COVID, NON_COVID, NORMAL, PNEUMONIA, make_manifest, metadata_error, read_metadata_csv

FRONTAL_VIEWS = ("PA", "AP", "AP Supine", "AP semi erect", "AP erect")
REQUIRED = ("patientid", "finding", "view", "modality", "filename")
UNLABELLED = {"todo", "unknown"}
NOT_PNEUMONIA = {"ards", "tuberculosis"}
PNEUMONIAS = {
    "pneumonia", "sars", "mers", "mers-cov", "streptococcus", "staphylococcus", "klebsiella", "chlamydophila",
    "legionella", "pneumocystis", "mycoplasma bacterial pneumonia", "mycoplasma", "e.coli", "influenza",
    "varicella", "bacterial", "viral", "fungal", "lipoid", "aspiration", "nocardia", "herpes", "aspergillosis",
    "candida", "lung opacity", "h1n1",
}
TASKS = ("three_class", "binary")
LUNG_BOXES_FILE = Path("annotations") / "imageannotation_ai_lung_bounding_boxes.json"


def read_lung_boxes(path: Path) -> dict[str, str]:
    """{file name: format_boxes text} from the COCO-style lung box file ({} when absent); a malformed file is a
    ManifestError naming it."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        images = {image["id"]: (str(image["file_name"]), float(image["width"]), float(image["height"])) for image in data["images"]}
        boxes: dict[str, list] = {}
        for note in sorted(data["annotations"], key=lambda a: (a["image_id"], a.get("category_id", 0))):
            name, width, height = images[note["image_id"]]
            if all(v is None for v in note["bbox"]):  # upstream lists a few lungs with an empty box [null, null, null, null]
                continue
            x, y, w, h = (float(v) for v in note["bbox"])
            box = normalised_box(x, y, w, h, width, height)
            if box[0] < box[2] and box[1] < box[3]:  # a box wholly outside its image is dropped
                boxes.setdefault(name, []).append(box)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, ZeroDivisionError) as error:
        raise metadata_error(path, None, "annotations", f"malformed lung bounding box file ({type(error).__name__}: {error})") from None
    return {name: format_boxes(found) for name, found in boxes.items()}


def url_source(url: str) -> str:
    """The domain of a metadata ``url`` without ``www.`` (radiopaedia.org, eurorad.org, sirm.org, github.com ...),
    lower case; "unknown" when blank or without a host."""
    url = str(url or "").strip()
    if not url:
        return "unknown"
    host = urlsplit(url if "://" in url else "//" + url).hostname or ""
    host = host.removeprefix("www.")
    return host or "unknown"


def finding_category(finding: str) -> str | None:
    """'covid', 'normal', 'pneumonia', 'other', None (unlabelled), or 'unknown' for a finding this reader does not know."""
    parts = [p.strip().lower() for p in re.split(r"[/,]", finding) if p.strip()]
    if not parts or parts[0] in UNLABELLED:
        return None
    if "covid-19" in parts:
        return "covid"
    if parts == ["no finding"]:
        return "normal"
    if parts[0] == "pneumonia" or any(p in PNEUMONIAS for p in parts):
        return "pneumonia"
    if all(p in NOT_PNEUMONIA for p in parts):
        return "other"
    return "unknown"


class FindingsReader(Reader):
    """A metadata.csv in the ieee8023 style (patientid, finding, view): the task and view options shared by the
    Cohen collection and the agchung collections that copy its format."""

    def __init__(self, root, *, task: str = "three_class", views: list[str] | tuple[str, ...] | None = FRONTAL_VIEWS):
        super().__init__(root)
        if task not in TASKS:
            raise ValueError(f"{self.name}: task={task!r}; use one of {TASKS}")
        self.task = task
        self.views = None if views is None else tuple(views)
        self.classes = (COVID, NORMAL, PNEUMONIA) if task == "three_class" else (COVID, NON_COVID)

    @staticmethod
    def metadata_columns(path: Path) -> list[str]:
        """The header of ``path/metadata.csv`` beside an ``images/`` folder, or [] when the layout is not there."""
        if not ((path / "metadata.csv").is_file() and (path / "images").is_dir()):
            return []
        with open(path / "metadata.csv", "rb") as handle:
            return [c.strip() for c in handle.readline().decode("latin-1").split(",")]

    @property
    def variant(self) -> str:
        if self.views is None:
            views = "allviews"
        elif {v.lower() for v in self.views} == {v.lower() for v in FRONTAL_VIEWS}:
            views = "frontal"
        else:
            views = "+".join(re.sub(r"\W+", "", v) for v in self.views)
        return f"{self.task}-{views}"

    def metadata_row(self, record, path, label: str, patient: str) -> dict:
        """One manifest row of an ieee8023-style metadata record (this collection and the agchung ones)."""
        return {"path": str(path), "label": label, "patient_id": patient, "source": self.name, "view": record.view.strip(),
                "sex": getattr(record, "sex", ""), "age": pd.to_numeric(getattr(record, "age", ""), errors="coerce"),
                "finding": record.finding}


@READERS.register()
class CohenCovidReader(FindingsReader):
    """ieee8023 covid-chestxray-dataset from its metadata.csv.

    Args:
        task: ``"three_class"`` (COVID-19 / normal / pneumonia) or ``"binary"`` (COVID-19 / non-COVID).
        views: the views to keep (matched case-insensitively); ``None`` keeps every X-ray view, blank included.
    """

    name = "cohen_covid"
    folder_names = ("covid-chestxray-dataset", "cohen-covid-chestxray", "ieee8023-covid-chestxray-dataset")
    layout = "metadata.csv (with a 'filename' column) beside images/"

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return "filename" in cls.metadata_columns(path)  # the agchung collections have no such column

    def _label(self, category: str, finding: str, path: Path, line: int) -> str | None:
        if category == "unknown":
            raise metadata_error(path, line, "finding", f"unknown finding {finding!r}: not COVID-19, 'No Finding', a pneumonia, "
                                 f"or one of {sorted(NOT_PNEUMONIA | UNLABELLED)}")
        if self.task == "binary":
            return COVID if category == "covid" else NON_COVID
        return {"covid": COVID, "normal": NORMAL, "pneumonia": PNEUMONIA}.get(category)

    def metadata_row(self, record, path, label: str, patient: str) -> dict:
        """The manifest ``source`` is the publication or site the image came from (url_source): the collection
        gathers images from many, and a leave-one-source-out split (source_split.py) holds one of them out."""
        return {**super().metadata_row(record, path, label, patient), "source": url_source(getattr(record, "url", ""))}

    def build_manifest(self) -> pd.DataFrame:
        path = self.root / "metadata.csv"
        meta = read_metadata_csv(path, required=REQUIRED)
        meta["line"] = np.arange(len(meta)) + 2
        xray = meta[meta["modality"].str.strip().str.lower() == "x-ray"]
        excluded = {"not_xray": len(meta) - len(xray), "view": 0, "unlabelled": 0, "label_outside_task": 0}
        if self.views is not None:
            keep = xray["view"].str.strip().str.lower().isin({v.lower() for v in self.views})
            excluded["view"] = int((~keep).sum())
            xray = xray[keep]
        empty = xray["finding"].str.strip() == ""
        if empty.any():
            raise metadata_error(path, int(xray.loc[empty, "line"].iloc[0]), "finding", "empty finding")
        for column in ("patientid", "filename"):
            blank = xray[column].str.strip() == ""
            if blank.any():
                raise metadata_error(path, int(xray.loc[blank, "line"].iloc[0]), column, f"empty {column}")
        rows = []
        for record in xray.itertuples(index=False):
            category = finding_category(record.finding)
            if category is None:
                excluded["unlabelled"] += 1  # 'todo': not yet labelled
                continue
            label = self._label(category, record.finding, path, record.line)
            if label is None:
                excluded["label_outside_task"] += 1
                continue
            folder = getattr(record, "folder", "") or "images"
            rows.append(self.metadata_row(record, self.root / folder / record.filename, label, str(record.patientid).strip()))
        self.manifest_excluded = excluded
        listed = self._merge_repeated_patients(pd.DataFrame(rows))
        frame = self.drop_conflicting_labels(listed, origin=path)  # a file listed with two labels is left out, counted
        excluded["listed_twice"] = len(listed) - len(frame) - int(listed["path"].isin(self.label_conflicts["image"]).sum())
        frame = self.drop_missing(frame, origin=path)
        lung_boxes = read_lung_boxes(self.root / LUNG_BOXES_FILE)
        images = self.root / "images"  # the annotations name files of images/
        frame[LUNG_BOXES_COLUMN] = [lung_boxes.get(Path(p).name, "") if Path(p).parent == images else "" for p in frame["path"]]
        return make_manifest(frame, origin=path)

    @staticmethod
    def _merge_repeated_patients(frame: pd.DataFrame) -> pd.DataFrame:
        """For a file listed twice under two patient ids, give every image of the later patient the first's id (the
        repeated rows themselves are merged, or left out when their labels differ, by drop_conflicting_labels)."""
        repeated = frame["path"].duplicated()
        if not repeated.any():
            return frame
        first_patient = frame.drop_duplicates("path").set_index("path")["patient_id"]
        alias = {later: first_patient[path] for path, later in zip(frame.loc[repeated, "path"], frame.loc[repeated, "patient_id"])
                 if later != first_patient[path]}
        return frame.assign(patient_id=frame["patient_id"].map(lambda p: alias.get(p, p)))
