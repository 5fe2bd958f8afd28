"""COVIDx (Wang et al., COVID-Net, 2020): the COVID-Net team's split files, with images in a folder the user names.

Each split file line is ``<patient_id> <filename> <label> [<source>]``, space-separated. Before v3 there is no
source, in v3-v5 the rsna lines lack it, and from v7A on some patient ids hold a space (``COVID 1 COVID(1).png
COVID-19 sirm``), so a line is parsed from the right: source (when present; else ``source`` is blank), label,
filename, and the rest is the patient id. Labels are ``COVID-19``/``normal``/``pneumonia`` (3-class files) or
``positive``/``negative`` (binary files, v6 and the B versions; read as COVID-19 / non-COVID). The files name
the images but do not ship them: images are looked up in ``images_dir`` as ``<split>/<filename>``, then
``<filename>``, then by name anywhere below it, so the COVID-Net ``data/{train,test}`` folders, the Kaggle COVIDx
CXR-2 layout, or a folder of source datasets all work. Listed images that are not found are excluded and counted
(see ``missing`` in the base).

The published test file is the official test split (it wins over the seeded split); the train file's patients
are split into train and val. Patient ids are the file's, so one patient never straddles two splits.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datamodules.readers import READERS
from datamodules.readers.base import Reader
from datamodules.manifest import COVID, NON_COVID, NORMAL, PNEUMONIA, ManifestError, index_by_name, make_manifest, metadata_error

THREE_CLASS = (COVID, NORMAL, PNEUMONIA)
BINARY_LABELS = {"positive": COVID, "negative": NON_COVID}
TASKS = (None, "three_class", "binary")
SPLIT_FILES = {"train": "train", "val": "val", "test": "test"}  # split file stem -> official split
LABELS = set(THREE_CLASS) | set(BINARY_LABELS)


def parse_split_line(line: str) -> tuple[str, str, str, str]:
    """(patient_id, filename, label, source) of one split file line, parsed from the right.

    Three tokens have no source; with more, the last token is the source unless it is a label (a patient id with
    a space and no source)."""
    tokens = line.split()
    if len(tokens) < 3:
        raise ValueError(f"expected '<patient_id> <filename> <label> [<source>]', got {line.strip()!r}")
    source = ""
    if len(tokens) >= 4 and tokens[-1] not in LABELS:
        source = tokens.pop()
    return " ".join(tokens[:-2]), tokens[-2], tokens[-1], "rsna" if source == "rnsa" else source


@READERS.register()
class COVIDxReader(Reader):
    """COVIDx from its split files.

    Args:
        root: the folder holding the split files: a COVID-Net checkout (``labels/``), a folder of label files, or
            the Kaggle COVIDx CXR-2 folder (``train.txt``/``test.txt`` beside ``train/``/``test/``).
        version: which files: ``"5"`` reads ``train_COVIDx5.txt`` and ``test_COVIDx5.txt`` (``"9A"``, ``"8B"``...);
            ``None`` reads ``train.txt``/``val.txt``/``test.txt`` (Kaggle layout). A split without a file is left out.
        images_dir: where the images are (default: ``root``).
        task: ``None`` keeps the file's labels; ``"binary"`` maps COVID-19/positive to COVID-19 and everything else
            to non-COVID (binary labels are renamed so too); ``"three_class"`` requires a 3-class file.
    """

    name = "covidx"
    classes = THREE_CLASS + (NON_COVID,)
    folder_names = ("COVIDx", "covidx", "covidx-splits", "COVID-Net", "covidx-cxr2")
    layout = "split files labels/train_COVIDx<version>.txt and test_COVIDx<version>.txt (or beside them: train.txt, test.txt)"

    def __init__(self, root, *, version: str | None = "5", images_dir: str | Path | None = None, task: str | None = None):
        super().__init__(root)
        if task not in TASKS:
            raise ValueError(f"covidx: task={task!r}; use one of {TASKS}")
        self.version = None if version in (None, "") else str(version)
        self.images_dir = Path(images_dir).expanduser() if images_dir else None
        self.task = task
        self.classes = (COVID, NON_COVID) if task == "binary" else THREE_CLASS if task == "three_class" else self.classes

    @classmethod
    def looks_like_root(cls, path: Path) -> bool:
        return any((path / "labels").glob("*_COVIDx*.txt")) or any(path.glob("*_COVIDx*.txt")) or (path / "test.txt").is_file()

    @property
    def variant(self) -> str:
        return "-".join(filter(None, [f"v{self.version}" if self.version else "kaggle", self.task]))

    @property
    def image_root(self) -> Path:
        return self.images_dir or self.root

    def split_files(self) -> dict[str, Path]:
        """The split files of ``version`` found under root, by official split."""
        found = {}
        for stem, split in SPLIT_FILES.items():
            name = f"{stem}_COVIDx{self.version}.txt" if self.version else f"{stem}.txt"
            for folder in (self.root / "labels", self.root):
                if (folder / name).is_file():
                    found[split] = folder / name
                    break
        if "test" not in found and "train" not in found:
            wanted = f"train_COVIDx{self.version}.txt / test_COVIDx{self.version}.txt" if self.version else "train.txt / test.txt"
            raise ManifestError(f"covidx: no split files {wanted} in {self.root / 'labels'} or {self.root}")
        return found

    def _map_label(self, label: str, path: Path, line: int) -> str:
        if self.task == "binary":
            if label in (COVID, "positive"):
                return COVID
            if label in (NORMAL, PNEUMONIA, "negative"):
                return NON_COVID
        elif label in THREE_CLASS:
            return label
        elif label in BINARY_LABELS and self.task is None:
            return BINARY_LABELS[label]
        elif label in BINARY_LABELS:
            raise metadata_error(path, line, "label", f"binary label {label!r} in a file read with task='three_class'; use task='binary'")
        known = sorted(set(THREE_CLASS) | set(BINARY_LABELS))
        raise metadata_error(path, line, "label", f"unknown label {label!r} (known: {', '.join(known)})")

    def build_manifest(self) -> pd.DataFrame:
        images_dir = self.image_root
        if not images_dir.is_dir():
            raise ManifestError(f"covidx: images folder {images_dir} does not exist")
        rows = []
        self.manifest_excluded = {}
        files = self.split_files()
        for split, path in files.items():
            for line_number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    patient, filename, label, source = parse_split_line(line)
                except ValueError as error:
                    raise metadata_error(path, line_number, "line", str(error)) from None
                rows.append({"filename": filename, "patient_id": patient, "label": self._map_label(label, path, line_number),
                             "source": source, "official_split": split, "_stem": split, "_file": path.name})
        frame = pd.DataFrame(rows)
        origin = " and ".join(str(p) for p in files.values())
        in_files = frame.groupby("filename")["_file"].agg(lambda names: sorted(set(names)))
        # an image listed twice with the same label is kept once; with two labels it is left out, counted
        frame = self.drop_conflicting_labels(frame, origin=origin, key="filename")
        twice = frame["filename"].map(in_files.map(len)) > 1
        if twice.any():  # the same label in two split files: which split it belongs to is unknown
            first = frame.loc[twice, "filename"].iloc[0]
            raise ManifestError(f"covidx: image {first} is listed twice, in {', '.join(in_files[first])}")
        frame["path"], exists = self._locate_images(frame, images_dir)
        frame = self.drop_missing(frame, origin=origin, exists=exists)
        return make_manifest(frame.drop(columns=["filename", "_stem", "_file"]), origin=self.root)

    def _locate_images(self, frame: pd.DataFrame, images_dir: Path) -> tuple[pd.Series, pd.Series]:
        """Each image's path (the expected one when absent) and whether it is on disk."""
        direct = [images_dir / stem / name for stem, name in zip(frame["_stem"], frame["filename"])]
        flat = [images_dir / name for name in frame["filename"]]
        index = None
        paths, exists = [], []
        for first, second, name in zip(direct, flat, frame["filename"]):
            if first.is_file():
                paths.append(first), exists.append(True)
            elif second.is_file():
                paths.append(second), exists.append(True)
            else:
                if index is None:
                    index, _ = index_by_name(images_dir, set(frame["filename"]))
                found = index.get(name)
                paths.append(found if found is not None else first)
                exists.append(found is not None)
        return pd.Series([str(p) for p in paths], index=frame.index), pd.Series(exists, index=frame.index)
