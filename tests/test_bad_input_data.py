"""Inputs that are verified, not trusted: every bad input ends in a clear error naming the file, the key or the
image (exit 2 and an ``error:`` line on the command line), or is handled, reported and counted."""

import csv
import json
import os
import shutil

import pytest

from benchmark.cli import main
from benchmark.data_report import data_report
from conftest import load_maker
from datamodules import DATAMODULES, DatasetNotFoundError
from datamodules.readers.cohen_covid import CohenCovidReader
from datamodules.readers.covid19_radiography import Covid19RadiographyReader
from datamodules.readers.covidx import COVIDxReader
from datamodules.manifest import ManifestError
from datamodules.splits import LeakageError, SplitMismatchError, read_split_csv

cohen_maker = load_maker("cohen_covid")


def _dm(cls, root, tmp_path, **kwargs):
    kwargs.setdefault("image_size", 32)
    return DATAMODULES[cls.name](root, cache_dir=tmp_path / "cache", split_dir=tmp_path / "runs" / "splits", **kwargs)


def _report(name, root, tmp_path, *extra):
    """``python -m benchmark data-report`` on the same cache and split folder as ``_dm``."""
    return main(["data-report", name, "--root", str(root), "--image-size", "32", "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "runs"), "--duplicates", "off", *extra])


def _ready(cls, root, tmp_path, **kwargs):
    dm = _dm(cls, root, tmp_path, **kwargs)
    dm.prepare_data()
    dm.setup()
    return dm


def _edit_split(dm, image, column, value):
    """Change one cell of the split file, as a user editing it by hand would."""
    split = read_split_csv(dm.split_path)
    split.loc[split["image"] == image, column] = value
    split.to_csv(dm.split_path, index=False)


# ----- file names that are not UTF-8, symlink loops -----
def _non_utf8_name(folder):
    shutil.copy(folder / "COVID-1.png", os.fsdecode(os.fsencode(folder) + b"/COVID-\xff.png"))
    return ["COVID-\\xff.png"], "file name is not valid UTF-8"


def _symlink_loop(folder):
    os.symlink("COVID-loop-b.png", folder / "COVID-loop-a.png")
    os.symlink("COVID-loop-a.png", folder / "COVID-loop-b.png")
    return ["COVID-loop-a.png", "COVID-loop-b.png"], "symbolic link loop"


@pytest.mark.parametrize("make_odd", [_non_utf8_name, _symlink_loop])
def test_an_odd_file_is_one_reported_unreadable_image_and_the_run_goes_on(radiography_root, tmp_path, capsys, make_odd):
    names, reason = make_odd(radiography_root / "COVID")
    dm = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    assert sum(len(f) for f in dm.frames.values()) == 18 and dm.excluded["unreadable"] == len(names)
    assert sorted(p.rsplit("/", 1)[-1] for p in dm._cache.problems["path"]) == names
    assert set(dm._cache.problems["problem"]) == {reason}
    assert next(iter(dm.train_dataloader()))["image"].shape[1:] == (1, 32, 32)
    assert not any("COVID-loop" in image or "\\x" in image for image in read_split_csv(dm.split_path)["image"])

    assert _report("covid19_radiography", radiography_root, tmp_path) == 0  # the text report, same cache and split
    out = capsys.readouterr().out
    assert all(f"{name}: {reason}" in out for name in names) and f"unreadable {len(names)}" in out
    assert _report("covid19_radiography", radiography_root, tmp_path, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["problem_reasons"] == {reason: len(names)} and report["excluded"]["unreadable"] == len(names)


# ----- the split file is checked against the dataset -----
def test_an_edited_label_in_the_split_file_is_an_error_naming_the_image(radiography_root, tmp_path, capsys):
    dm = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    _edit_split(dm, "COVID/COVID-2.png", "label", "normal")
    edited = dm.split_path.read_bytes()
    with pytest.raises(SplitMismatchError, match=r"COVID/COVID-2.png: 'normal' in the split file, 'COVID-19' in the dataset.*delete it"):
        _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    assert _report("covid19_radiography", radiography_root, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "COVID/COVID-2.png" in err and str(dm.split_path) in err
    assert dm.split_path.read_bytes() == edited  # the evidence is left as it was, nothing rewritten


def test_an_edited_patient_is_an_error(radiography_root, tmp_path):
    dm = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    _edit_split(dm, "Normal/Normal-3.png", "patient_id", "someone")
    with pytest.raises(SplitMismatchError, match=r"another patient_id.*Normal/Normal-3.png: 'someone' in the split file"):
        _ready(Covid19RadiographyReader, radiography_root, tmp_path)


def test_a_patient_in_two_splits_is_an_error_line_not_a_traceback(radiography_root, tmp_path, capsys):
    images = sorted(p.relative_to(radiography_root).as_posix() for p in radiography_root.rglob("*.png"))
    with open(radiography_root / "patient_map.csv", "w") as handle:
        handle.write("image,patient_id\n" + "".join(f"{image},pt{i // 2}\n" for i, image in enumerate(images)))
    dm = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    split = read_split_csv(dm.split_path)
    first = split[split["patient_id"] == "pt0"]
    other = "test" if first["split"].iloc[0] != "test" else "train"
    _edit_split(dm, first["image"].iloc[1], "split", other)
    with pytest.raises(LeakageError, match="1 patients occur in more than one split"):
        _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    assert _report("covid19_radiography", radiography_root, tmp_path) == 2
    assert capsys.readouterr().err.startswith("error: ") and issubclass(LeakageError, ManifestError)


def test_images_gone_or_added_since_the_split_are_reported_and_counted(radiography_root, tmp_path):
    first = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    (radiography_root / "Normal" / "Normal-2.png").unlink()
    shutil.copy(radiography_root / "Normal" / "Normal-1.png", radiography_root / "Normal" / "Normal-new.png")
    dm = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    assert dm.split_path.read_bytes() == first.split_path.read_bytes()  # still the shared split
    assert dm.excluded["missing_file"] == 1 and dm.excluded["not_in_split_file"] == 1
    assert dm.missing["path"].str.endswith("Normal/Normal-2.png").all() and "file not found" in dm.missing["problem"].iloc[0]
    assert sum(len(f) for f in dm.frames.values()) == 17


def test_an_image_the_dataset_no_longer_holds_is_an_error(tmp_path):
    cohen = cohen_maker.create(tmp_path / "data")
    _ready(CohenCovidReader, cohen, tmp_path)
    metadata = cohen / "metadata.csv"
    metadata.write_text(metadata.read_text().replace(",No Finding,", ",todo,", 1))  # nf11.png is unlabelled now
    with pytest.raises(SplitMismatchError, match=r"1 images are in the split file but not in the dataset.*images/nf11.png \(normal\)"):
        _ready(CohenCovidReader, cohen, tmp_path)


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("patient_id", "patient", 1), r"lacks columns \['patient_id'\]"),
    (lambda text: text.replace(",train", ",training", 1), r"1 rows have a split other than.*'training'"),
    (lambda text: text + text.splitlines()[1] + "\n", r"2 rows list the same image"),
])
def test_a_malformed_split_file_is_an_error_naming_it(radiography_root, tmp_path, edit, message):
    dm = _ready(Covid19RadiographyReader, radiography_root, tmp_path)
    dm.split_path.write_text(edit(dm.split_path.read_text()))
    with pytest.raises(SplitMismatchError, match=message):
        _ready(Covid19RadiographyReader, radiography_root, tmp_path)


# ----- a folder that only half matches; fewer than two classes -----
def test_kermany_test_folder_is_not_taken_for_the_radiography_database(tmp_path, capsys):
    kermany = load_maker("kermany_pneumonia").create(tmp_path / "data")
    with pytest.raises(DatasetNotFoundError, match=r"expected class folders COVID/.*holds NORMAL/, PNEUMONIA/"):
        Covid19RadiographyReader.locate(kermany / "test")
    with pytest.raises(DatasetNotFoundError, match="NORMAL/, PNEUMONIA/"):
        _dm(Covid19RadiographyReader, kermany / "test", tmp_path).prepare_data()
    assert _report("covid19_radiography", kermany / "test", tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "NORMAL/, PNEUMONIA/" in err and "COVID/" in err


def test_one_class_is_an_error_before_a_split_is_written(radiography_root, tmp_path, capsys):
    for path in [*(radiography_root / "Normal").glob("*.png"), *(radiography_root / "Viral Pneumonia").rglob("*.png")]:
        path.unlink()
    dm = _dm(Covid19RadiographyReader, radiography_root, tmp_path)
    with pytest.raises(ManifestError, match=r"at least two classes.*only the class 'COVID-19'"):
        dm.prepare_data()
    assert not dm.split_path.exists()  # nothing left behind: a fixed folder gets a fresh split
    assert _report("covid19_radiography", radiography_root, tmp_path) == 2
    assert "only the class 'COVID-19'" in capsys.readouterr().err


def test_a_class_map_leaving_one_class_is_an_error_before_training(radiography_root, tmp_path):
    with pytest.raises(ManifestError, match=r"covid19_radiography-seed0.*only the class 'COVID-19'"):
        _ready(Covid19RadiographyReader, radiography_root, tmp_path, class_map={"COVID-19": "COVID-19"})


# ----- one image listed twice -----
def _append_cohen_rows(cohen, *rows):
    with open(cohen / "metadata.csv", "a", newline="") as handle:
        writer = csv.writer(handle)
        for patientid, finding, filename in rows:
            record = dict.fromkeys(cohen_maker.COLUMNS, "")
            record.update(patientid=patientid, finding=finding, view="PA", modality="X-ray", folder="images", filename=filename)
            writer.writerow([record[c] for c in cohen_maker.COLUMNS])


def test_an_image_listed_with_two_labels_is_left_out_reported_and_counted(tmp_path, caplog):
    cohen = cohen_maker.create(tmp_path / "data")
    _append_cohen_rows(cohen, ("18", "No Finding", "c18.png"), ("19", "COVID-19", "c19.png"))  # a conflict; a plain repeat
    dm = _dm(CohenCovidReader, cohen, tmp_path)
    manifest = dm.build_manifest()
    assert not manifest["path"].str.endswith("c18.png").any() and manifest["path"].str.endswith("c19.png").sum() == 1
    assert dm.manifest_excluded["conflicting_labels"] == 1 and dm.manifest_excluded["listed_twice"] == 2
    assert dm.label_conflicts[["labels"]].to_dict("records") == [{"labels": "COVID-19 / normal"}]
    assert dm.label_conflicts["image"].iloc[0].endswith("images/c18.png") and dm.label_conflicts["origin"].iloc[0].endswith("metadata.csv")
    assert "c18.png (COVID-19 / normal)" in caplog.text and "metadata.csv with different labels" in caplog.text
    report = data_report("cohen_covid", root=cohen, image_size=32, cache_dir=tmp_path / "cache", split_dir=tmp_path / "runs" / "splits",
                         duplicates="off")
    assert report["excluded"]["conflicting_labels"] == 1
    assert sum(s["images"] for s in report["splits"].values()) == 15  # 16 of the fake set, less c18.png


def test_covidx_lines_naming_one_image_twice(tmp_path):
    covidx = load_maker("covidx").create(tmp_path / "data")
    train = covidx / "labels" / "train_COVIDx5.txt"
    text = train.read_text()
    train.write_text(text + "n-20 n20.png pneumonia\nn-21 n21.png normal\n")  # n20: two labels; n21: the same one twice
    dm = _dm(COVIDxReader, covidx, tmp_path, images_dir=covidx / "images")
    names = set(dm.build_manifest()["path"].str.rsplit("/", n=1).str[-1])
    assert "n20.png" not in names and "n21.png" in names and dm.manifest_excluded == {"conflicting_labels": 1}
    assert dm.label_conflicts["labels"].tolist() == ["normal / pneumonia"]
    (covidx / "labels" / "test_COVIDx5.txt").write_text((covidx / "labels" / "test_COVIDx5.txt").read_text() + "n-22 n22.png normal\n")
    train.write_text(text)
    with pytest.raises(ManifestError, match=r"n22.png is listed twice, in test_COVIDx5.txt, train_COVIDx5.txt"):
        _dm(COVIDxReader, covidx, tmp_path, images_dir=covidx / "images").build_manifest()
