import cv2
import numpy as np
import pandas as pd

from datamodules import DATAMODULES
from datamodules.readers.synthetic import CLASS_FOLDERS, _anatomy, _lungs, generate, render_phantom


def test_generator_is_deterministic(tmp_path):
    a = generate(tmp_path / "a", patients_per_class=3, size=64)
    b = generate(tmp_path / "b", patients_per_class=3, size=64)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.png")) and files
    for name in files:
        assert np.array_equal(cv2.imread(str(a / name), 0), cv2.imread(str(b / name), 0))
    other = generate(tmp_path / "c", patients_per_class=3, size=64, seed=1)
    assert not np.array_equal(cv2.imread(str(a / files[0]), 0), cv2.imread(str(other / files[0]), 0))


def test_layout_is_the_radiography_database_with_a_patient_map(tmp_path):
    layout = generate(tmp_path, patients_per_class=4, size=64)
    assert sorted(p.name for p in layout.iterdir() if p.is_dir()) == sorted(CLASS_FOLDERS.values())
    mapping = pd.read_csv(layout / "patient_map.csv")
    assert len(mapping) == len(list(layout.rglob("*.png")))
    assert mapping.groupby("patient_id").size().max() > 1  # some patients have several images
    assert "SYNTHETIC" in (layout / "README.txt").read_text()


def test_findings_raise_lung_density():
    anatomy = _anatomy(np.random.default_rng(5))
    coords = np.linspace(-1, 1, 128, dtype=np.float32)
    lungs = np.clip(sum(_lungs(*np.meshgrid(coords, coords), anatomy)), 0, 1) > 0.5
    mean_in_lungs = {}
    for label in ("normal", "COVID-19", "pneumonia"):
        images = [render_phantom(label, anatomy, np.random.default_rng([i, 9]), 128) for i in range(12)]
        mean_in_lungs[label] = np.mean([img[lungs].mean() for img in images])
    assert mean_in_lungs["COVID-19"] > mean_in_lungs["normal"]
    assert mean_in_lungs["pneumonia"] > mean_in_lungs["normal"]


def test_datamodule_reads_phantoms_through_the_radiography_reader(tmp_path):
    dm = DATAMODULES["synthetic"](cache_dir=tmp_path / "cache", split_dir=tmp_path / "splits", image_size=32, patients_per_class=6, batch_size=4)
    dm.prepare_data()
    dm.setup()
    assert dm.is_synthetic and dm.class_names == ["COVID-19", "normal", "pneumonia"]
    assert set(dm.manifest["source"]) == {"synthetic"}
    assert dm.manifest["patient_id"].str.startswith("synthetic-").all()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 1, 32, 32)


def test_two_phantom_sets_never_share_a_folder_or_a_split(tmp_path):
    from datamodules import DATAMODULES

    default = DATAMODULES["synthetic"](cache_dir=tmp_path / "cache")
    small = DATAMODULES["synthetic"](cache_dir=tmp_path / "cache", patients_per_class=7)
    other = DATAMODULES["synthetic"](cache_dir=tmp_path / "cache", patients_per_class=7, generator_seed=1)
    assert default.split_path.name == "synthetic-seed0-val0.15-test0.15.csv" and default.root == tmp_path / "cache" / "synthetic"
    assert small.split_path.name == "synthetic-p7s0-seed0-val0.15-test0.15.csv" and small.root == tmp_path / "cache" / "synthetic-p7s0"
    assert len({default.split_path, small.split_path, other.split_path}) == 3 and len({default.root, small.root, other.root}) == 3
