from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from benchmark.config import _dataset_entry
from datamodules import DATAMODULES, synthetic_stand_in
from datamodules.combined import TransferChestXray14CovidReader
from datamodules.readers.chestxray14 import FINDINGS, ChestXray14Reader
from datamodules.readers.synthetic_chestxray14 import generate


def _dm(tmp_path, image_size=32, **options):
    dm = DATAMODULES["synthetic_chestxray14"](cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", image_size=image_size, **options)
    dm.prepare_data()
    dm.setup()
    return dm


def _all_targets(dm):
    return np.concatenate([dm.datasets[s].targets for s in ("train", "val", "test")])


def test_written_in_the_chestxray14_layout_and_read_by_its_reader(tmp_path):
    dm = _dm(tmp_path, patients=60)
    root = Path(dm.root)
    entries = pd.read_csv(root / "Data_Entry_2017.csv")
    assert {"Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender", "View Position"} <= set(entries.columns)
    assert all((root / "images_001" / "images" / name).is_file() for name in entries["Image Index"])
    assert ChestXray14Reader(root).build_manifest()["label"].tolist() == dm.manifest["label"].tolist()  # the real reader reads it
    assert dm.is_synthetic and dm.multilabel and dm.class_names == list(FINDINGS)
    targets = _all_targets(dm)
    assert (targets.sum(axis=0) > 0).all() and targets.sum(axis=1).max() <= 3
    assert (entries["Finding Labels"] == "No Finding").any() and (targets.sum(axis=1) == 0).sum() == (entries["Finding Labels"] == "No Finding").sum()
    patients = [set(dm.frames[s]["patient_id"]) for s in ("train", "val", "test")]
    assert all(patients) and not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])


def test_no_finding_and_extra_findings_add_classes(tmp_path):
    with_no_finding = _dm(tmp_path, patients=45, no_finding=True)
    assert with_no_finding.class_names == [*FINDINGS, "No Finding"] and (_all_targets(with_no_finding).sum(axis=0) > 0).all()
    covid = _dm(tmp_path, patients=45, extra_findings=["COVID-19"])
    assert covid.class_names == list(TransferChestXray14CovidReader.classes) and (_all_targets(covid).sum(axis=0) > 0).all()
    assert covid.root != with_no_finding.root and covid.split_path != with_no_finding.split_path  # one folder per option set


def test_generation_is_deterministic(tmp_path):
    a, b = generate(tmp_path / "a", patients=6), generate(tmp_path / "b", patients=6)
    names = sorted(p.name for p in (a / "images_001" / "images").iterdir())
    assert names and (a / "Data_Entry_2017.csv").read_text() == (b / "Data_Entry_2017.csv").read_text()
    assert all(np.array_equal(cv2.imread(str(a / "images_001/images" / n), 0), cv2.imread(str(b / "images_001/images" / n), 0)) for n in names)


def test_a_linear_model_learns_findings_above_chance(tmp_path):
    dm = _dm(tmp_path, patients=150, val_fraction=0.1, test_fraction=0.3, image_size=24)

    def pixels(split):
        data = dm.datasets[split]
        return torch.stack([data[i]["image"].flatten() for i in range(len(data))]), torch.as_tensor(data.targets)

    (x, y), (x_test, y_test) = pixels("train"), pixels("test")
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], y.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), 3e-3, weight_decay=1e-3)
    for _ in range(100):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        scores = model(x_test)
    aucs = {}
    for c, name in enumerate(dm.class_names):
        positive, negative = scores[y_test[:, c] == 1, c], scores[y_test[:, c] == 0, c]
        if len(positive) >= 3:
            aucs[name] = float((positive[:, None] > negative[None, :]).float().mean())
    assert aucs["Cardiomegaly"] > 0.8 and sum(a > 0.75 for a in aucs.values()) >= 3 and np.mean(list(aucs.values())) > 0.6, aucs


def test_readers_name_their_stand_in_and_the_suite_uses_it(tmp_path):
    assert synthetic_stand_in("chestxray14") == ("synthetic_chestxray14", {})
    assert synthetic_stand_in("transfer_chestxray14_covid") == ("synthetic_chestxray14", {"extra_findings": ["COVID-19"]})
    assert synthetic_stand_in("covid19_radiography") == ("synthetic", {})
    assert synthetic_stand_in("synthetic_chestxray14") == ("synthetic_chestxray14", {})
    raw = {"synthetic_without_data_root": True}
    entry = _dataset_entry({"name": "chestxray14", "options": {"no_finding": True}}, tmp_path / "suite.yaml", None, raw)
    assert entry == {"name": "synthetic_chestxray14", "stands_in_for": "chestxray14", "options": {"no_finding": True}}
    entry = _dataset_entry("transfer_chestxray14_covid", tmp_path / "suite.yaml", None, raw)
    assert entry == {"name": "synthetic_chestxray14", "stands_in_for": "transfer_chestxray14_covid", "options": {"extra_findings": ["COVID-19"]}}
    assert _dataset_entry("covid19_radiography", tmp_path / "suite.yaml", None, raw)["name"] == "synthetic"
    assert _dataset_entry("synthetic_chestxray14", tmp_path / "suite.yaml", None, {}) == {"name": "synthetic_chestxray14"}
