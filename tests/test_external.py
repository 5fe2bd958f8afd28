"""External test sets: a tiny trained run (single-net and siamese, on the phantoms) scored on a fake Kermany set
through the suite's ``external:`` key and through ``python -m benchmark evaluate``: label maps, left-out images
counted by reason, a planted copy of a training image found and excluded, errors, and the leaderboard section."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.config import ConfigError, load_suite
from benchmark.external.labels import map_labels
from benchmark.external.table import external_section, read_external_results
from benchmark.results import load_results
from tests.conftest import load_maker

REPO = Path(__file__).resolve().parent.parent
KERMANY = load_maker("kermany_pneumonia")
KERMANY_IMAGES = sum(len(names) for names in KERMANY.FILES.values())
KERMANY_NORMALS = sum(len(names) for (_, folder), names in KERMANY.FILES.items() if folder == "NORMAL")
TINY = {"model": {"nf": 8, "fc_units": 16}, "optimizer": {"name": "adam", "lr": 1e-3}, "trainer": {"max_epochs": 1}, "deviations": ["test-sized network"]}


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def _suite(folder: Path, external: list) -> Path:
    _write(folder / "tiny_single_net.yaml", {"extends": str(REPO / "configs/methods/single_net.yaml"), **TINY, "data": {"batch_size": 8}})
    _write(folder / "tiny_siamese.yaml", {"extends": str(REPO / "configs/methods/siamese.yaml"), **TINY, "task": {"validation_trials": 9},
                                          "data": {"batch_size": 8, "pair_sampling": {"pairs_per_epoch": 32}}})
    return _write(folder / "suite.yaml", {
        "name": "tiny", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
        "methods": ["tiny_single_net.yaml", "tiny_siamese.yaml"], "seeds": [0], "logging": {"wandb": False}, "external": external,
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "limit_train_batches": 1, "num_sanity_val_steps": 0},
    })


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions run many times faster on one thread than on two contended ones (a shared CI machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One suite run (two methods) with a fake Kermany set as its external test set."""
    folder = tmp_path_factory.mktemp("external")
    kermany = KERMANY.create(folder / "data")
    suite = _suite(folder, [{"name": "kermany_pneumonia", "root": str(folder / "data")}])
    args = ["run", str(suite), "--out", str(folder / "runs"), "--leaderboard", str(folder / "leaderboard.md"), "--cache-dir", str(folder / "cache")]
    assert main(args) == 0
    return {"folder": folder, "kermany": kermany, "out": folder / "runs", "cache": folder / "cache",
            "single": folder / "runs/results/synthetic/tiny_single_net/seed0.json", "siamese": folder / "runs/results/synthetic/tiny_siamese/seed0.json"}


def _strict_json(text: str) -> dict:
    """JSON as any parser reads it: NaN or Infinity would be an error."""
    return json.loads(text, parse_constant=lambda token: pytest.fail(f"not strict JSON: {token}"))


def _evaluate(capsys, trained, run: str, *extra: str, root: Path | None = None) -> dict:
    capsys.readouterr()
    args = ["evaluate", str(trained[run]), "--dataset", "kermany_pneumonia", "--root", str(root or trained["kermany"]),
            "--cache-dir", str(trained["cache"]), "--json", *extra]
    assert main(args) == 0
    return _strict_json(capsys.readouterr().out)


def test_suite_external_scores_every_run(trained):
    for method in ("tiny_single_net", "tiny_siamese"):
        run = json.loads((trained["out"] / f"results/synthetic/{method}/seed0.json").read_text())
        assert Path(run["checkpoint"]["path"]).is_file() and len(run["checkpoint"]["sha256"]) == 64
        assert run["normalization"]["kind"] == "train_stats" and 0 < run["normalization"]["std"]
        external = json.loads((trained["out"] / f"external/synthetic/{method}/seed0/kermany_pneumonia.json").read_text())
        assert external["run"]["config_fingerprint"] == run["config_fingerprint"] and external["run"]["checkpoint"] == run["checkpoint"]
        assert external["label_map"]["used"] == {"normal": "normal", "pneumonia": "pneumonia"}
        assert external["counts"]["scored"] == external["n_images"] == external["counts"]["listed"] == KERMANY_IMAGES
        assert external["counts"]["per_class"] == {"COVID-19": 0, "normal": KERMANY_NORMALS, "pneumonia": KERMANY_IMAGES - KERMANY_NORMALS}
        assert 0 <= external["metrics"]["accuracy"] <= 1 and sum(map(sum, external["confusion_matrix"])) == KERMANY_IMAGES
        # Kermany has no COVID-19 image: that class has no sensitivity and stays out of the macro values
        metrics = external["metrics"]
        assert metrics["sensitivity/COVID-19"] is None and metrics["auroc_classes"] == ["normal", "pneumonia"]
        assert metrics["balanced_accuracy"] == pytest.approx((metrics["sensitivity/normal"] + metrics["sensitivity/pneumonia"]) / 2)
        predictions = pd.read_csv(external["predictions_file"])
        assert len(predictions) == KERMANY_IMAGES and {"image", "patient_id", "label", "original_label", "score_normal"} <= set(predictions.columns)
        if method == "tiny_siamese":  # sigmoid similarities to the templates of the run's training split
            scores = predictions[["score_COVID-19", "score_normal", "score_pneumonia"]].to_numpy()
            assert ((scores > 0) & (scores < 1)).all()
    assert not (trained["out"] / "results/external").exists()  # the leaderboard's internal results stay apart


def test_planted_copy_of_a_training_image_is_found_and_left_out(trained, capsys, tmp_path):
    run = json.loads(trained["single"].read_text())
    split = pd.read_csv(run["dataset"]["split_file"])
    image = split.loc[split["split"] == "train", "image"].iloc[0]
    source = Path(run["dataset"]["root"]) / image
    kermany = KERMANY.create(tmp_path / "data")
    planted = kermany / "test" / "NORMAL" / "IM-9999-0001.png"
    shutil.copyfile(source, planted)

    result = _evaluate(capsys, trained, "single", root=tmp_path / "data")
    pairs = [p for p in result["duplicates"]["pairs"] if p["external_path"] == str(planted) and p["kind"] == "identical"]
    assert len(pairs) == 1 and pairs[0]["run_split"] == "train" and pairs[0]["external_label"] == "normal"
    assert Path(pairs[0]["run_path"]).resolve() == source.resolve()
    # phantoms share one anatomical template, so other phantoms may match it too; no other Kermany image does
    assert {p["external_path"] for p in result["duplicates"]["pairs"]} == {str(planted)}
    assert result["counts"]["left_out"]["duplicate_of_train_val"] == 1
    assert result["counts"]["scored"] == KERMANY_IMAGES and result["counts"]["listed"] == KERMANY_IMAGES + 1
    assert "IM-9999-0001.png" not in set(pd.read_csv(result["predictions_file"])["image"].map(lambda p: Path(p).name))

    kept = _evaluate(capsys, trained, "single", "--keep-duplicates", root=tmp_path / "data")
    assert kept["counts"]["scored"] == KERMANY_IMAGES + 1 and kept["counts"]["duplicates_kept"] == 1
    assert kept["set_name"] == "kermany_pneumonia-with_copies"
    assert kept["counts"]["left_out"]["duplicate_of_train_val"] == 0


def test_labels_without_counterpart_are_counted_and_a_label_map_maps_them(trained, capsys):
    options = ["--options", '{"task": "three_class"}']
    result = _evaluate(capsys, trained, "siamese", *options)
    left = result["counts"]["no_counterpart_by_label"]
    assert set(left) == {"bacterial_pneumonia", "viral_pneumonia"} and sum(left.values()) == KERMANY_IMAGES - KERMANY_NORMALS
    assert result["counts"]["left_out"]["no_counterpart"] == KERMANY_IMAGES - KERMANY_NORMALS
    assert result["counts"]["scored"] == KERMANY_NORMALS and result["label_map"]["used"]["viral_pneumonia"] is None
    assert result["metrics"]["auroc"] is None and result["metrics"]["auroc_classes"] == []  # one class: no AUROC, not 0
    assert Path(result["_file"]).name == "kermany_pneumonia-three_class.json"

    mapped = _evaluate(capsys, trained, "siamese", *options, "--label-map", '{"*": "pneumonia"}')
    assert mapped["counts"]["scored"] == KERMANY_IMAGES and mapped["label_map"]["used"]["bacterial_pneumonia"] == "pneumonia"
    assert mapped["set_name"].startswith("kermany_pneumonia-three_class-map") and Path(result["_file"]).is_file()  # its own file


def test_old_result_without_checkpoint_or_normalisation_is_read_back(trained, capsys, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(trained["out"], out)
    path = out / "results/synthetic/tiny_single_net/seed0.json"
    result = json.loads(path.read_text())
    expected = result.pop("checkpoint"), result.pop("normalization")
    path.write_text(json.dumps(result))
    capsys.readouterr()
    assert main(["evaluate", str(out / "logs/synthetic/tiny_single_net/seed0"), "--dataset", "kermany_pneumonia", "--root", str(trained["kermany"]),
                 "--cache-dir", str(trained["cache"]), "--json"]) == 0
    external = _strict_json(capsys.readouterr().out)
    assert external["run"]["checkpoint"]["sha256"] == expected[0]["sha256"]
    assert external["run"]["normalization"]["mean"] == pytest.approx(expected[1]["mean"])
    assert external["_file"].startswith(str(out / "external"))


def test_bad_input_is_a_clean_error(trained, capsys, tmp_path):
    base = ["evaluate", str(trained["single"]), "--cache-dir", str(trained["cache"])]
    cases = [
        (["--dataset", "kermany_pneumonai", "--root", str(trained["kermany"])], "did you mean `kermany_pneumonia`"),
        (["--dataset", "kermany_pneumonia", "--root", str(tmp_path / "nowhere")], "does not exist"),
        (["--dataset", "kermany_pneumonia"], "needs a root"),
        (["--dataset", "kermany_pneumonia", "--root", str(trained["kermany"]), "--label-map", '{"normal": "healthy"}'], "not classes of the run"),
        (["--dataset", "kermany_pneumonia", "--root", str(trained["kermany"]), "--options", '{"image_size": 64}'], "come from the run"),
        (["--dataset", "kermany_pneumonia", "--root", str(trained["kermany"]), "--label-map", '{"*": null, "normal": null, "pneumonia": null}'], "no image"),
    ]
    for extra, message in cases:
        capsys.readouterr()
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err, (extra, err)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path), "--dataset", "kermany_pneumonia", "--root", str(trained["kermany"])]) == 2
    assert "expected one result file, found 0" in capsys.readouterr().err


def test_suite_external_entries_are_validated(tmp_path):
    for entry, message in [({"name": "kermany_pneumonia", "label_mapp": {}}, "did you mean `label_map`"),
                           ({"name": "kermany", "root": str(tmp_path)}, "unknown dataset 'kermany'"),
                           ({"name": "kermany_pneumonia", "duplicates": "drop"}, "duplicates")]:
        with pytest.raises(ConfigError, match=message):
            load_suite(_suite(tmp_path, [entry]))
    suite = load_suite(_suite(tmp_path, ["kermany_pneumonia"]))  # no data root: the phantom suite skips it
    assert suite.runs[0].external[0]["skipped"].startswith("no data root")


def test_label_maps_single_and_multi_label():
    labels = pd.Series(["COVID-19", "normal", "pneumonia", "Lung_Opacity"])
    mapped, used, _ = map_labels(labels, ["COVID-19", "non-COVID"], {}, {"COVID-19": "COVID-19", "*": "non-COVID"}, multilabel=False)
    assert list(mapped) == ["COVID-19", "non-COVID", "non-COVID", "non-COVID"]
    mapped, used, _ = map_labels(labels, ["COVID-19", "normal", "pneumonia"], {"Lung_Opacity": None}, None, multilabel=False)
    assert mapped.isna().tolist() == [False, False, False, True] and used["Lung_Opacity"] is None
    findings = pd.Series(["Effusion|Hernia", "", "Hernia", "COVID-19"])
    mapped, used, unscored = map_labels(findings, ["Effusion", "Pneumonia"], {"COVID-19": "Pneumonia"}, None, multilabel=True)
    assert mapped.tolist() == ["Effusion", "", None, "Pneumonia"] and unscored == {"Hernia": 1} and used["Hernia"] is None


def test_leaderboard_section_sets_external_beside_internal(trained):
    results = load_results(trained["out"] / "results")
    external = read_external_results(trained["out"])
    assert len(external) >= 2 and all(e["kind"] == "external" for e in external)
    lines = external_section(results, external)
    assert lines[0] == "## External test sets"
    rows = [line for line in lines if line.startswith("| tiny_")]
    assert any(row.startswith("| tiny_single_net | synthetic (SYNTHETIC) | kermany_pneumonia | 0 |") for row in rows)
    assert external_section(results, []) == []


def test_multilabel_run_maps_finding_names(tmp_path, capsys):
    """A ChestX-ray14 classifier scored on CheXpert: same-named findings map, Pleural Effusion through the label
    map, CheXpert-only findings are counted and not scored, No Finding images are all-negative."""
    nih = load_maker("chestxray14").create(tmp_path / "data")
    chexpert = load_maker("chexpert").create(tmp_path / "data")
    _write(tmp_path / "tiny_classifier.yaml", {"method": "classifier", "model": {"backbone": "acnn", "backbone_options": {"depth": 1}, "head": "linear"},
                                               "monitor": {"metric": "val/loss", "mode": "min"}, "data": {"batch_size": 8}})
    _write(tmp_path / "suite.yaml", {
        "name": "tiny", "datasets": [{"name": "chestxray14", "root": str(nih)}], "methods": ["tiny_classifier.yaml"], "seeds": [0],
        "logging": {"wandb": False}, "data": {"image_size": 32, "val_fraction": 0.25, "test_fraction": 0.2},
        "trainer": {"accelerator": "cpu", "max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0},
    })
    out, cache = tmp_path / "runs", tmp_path / "cache"
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(out), "--leaderboard", str(tmp_path / "board.md"), "--cache-dir", str(cache)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--dataset", "chexpert", "--root", str(chexpert), "--cache-dir", str(cache), "--json",
                 "--label-map", '{"Pleural Effusion": "Effusion"}']) == 0
    result = _strict_json(capsys.readouterr().out)
    used = result["label_map"]["used"]
    assert result["multilabel"] and used["Pleural Effusion"] == "Effusion" and used["Cardiomegaly"] == "Cardiomegaly" and used["No Finding"] == ""
    assert used["Support Devices"] is None and "Support Devices" in result["counts"]["unscored_findings"]
    assert result["counts"]["scored"] == result["n_images"] > 0 and "auroc" in result["metrics"]
    predictions = pd.read_csv(result["predictions_file"])
    assert len(predictions) == result["counts"]["scored"] and "score_Effusion" in predictions.columns


def test_a_chain_run_is_evaluated_with_its_last_stage_classes(tmp_path):
    """A chain's model is its last stage's: the DataModule rebuilt for ``evaluate`` takes that stage's dataset and
    data settings, and its class map in its own order (the stored config sorts keys: COVID-19, normal, pneumonia
    would be a different class order from the trained normal, viral_pneumonia, COVID-19)."""
    kermany = KERMANY.create(tmp_path / "data")
    rename = {"normal": "normal", "pneumonia": "viral_pneumonia", "COVID-19": "COVID-19"}
    stage = lambda name, **more: {"name": name, "dataset": {"name": "covid19_radiography", "options": {"patients_per_class": 8}},
                                  "head": "sigmoid", "phases": [{"name": "all", "epochs": 1}], **more}
    (tmp_path / "chain.yaml").write_text(yaml.safe_dump(sort_keys=False, data={  # the class map in its order
        "method": "classifier", "title": "tiny chain", "model": {"backbone": "resnet10t", "head": "linear"},
        "optimizer": {"name": "sgd", "lr": 0.01}, "monitor": {"metric": "val/loss", "mode": "min"},
        "stages": [stage("pre", data={"class_map": {"COVID-19": "COVID-19", "*": "other"}}),
                   stage("final", start={"stage": "pre"}, data={"class_map": rename})]}))
    suite = _write(tmp_path / "suite.yaml", {
        "name": "chain", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
        "methods": ["chain.yaml"], "seeds": [0], "logging": {"wandb": False},
        "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "limit_train_batches": 1,
                    "num_sanity_val_steps": 0}})
    out, cache = tmp_path / "runs", tmp_path / "cache"
    assert main(["run", str(suite), "--out", str(out), "--cache-dir", str(cache), "--leaderboard", str(tmp_path / "lb.md")]) == 0
    result_file = out / "results/synthetic/chain/seed0.json"
    run = json.loads(result_file.read_text())
    assert run["dataset"]["classes"] == ["normal", "viral_pneumonia", "COVID-19"]
    moved = tmp_path / "moved"  # the recorded checkpoint path is gone: found again under logs/<run_id>/stages/final/
    shutil.move(out, moved)
    result_file = moved / "results/synthetic/chain/seed0.json"
    assert main(["evaluate", str(result_file), "--dataset", "kermany_pneumonia", "--root", str(kermany), "--cache-dir", str(cache)]) == 0
    external = json.loads((moved / "external/synthetic/chain/seed0/kermany_pneumonia.json").read_text())
    assert external["classes"] == run["dataset"]["classes"]
    assert external["label_map"]["used"]["pneumonia"] == "viral_pneumonia"
    assert Path(external["run"]["checkpoint"]["path"]).parts[-5:-2] == ("stages", "final", "checkpoints")
    assert external["run"]["checkpoint"]["sha256"] == run["checkpoint"]["sha256"]


def test_a_per_class_sample_scores_at_most_that_many_images_of_each_class_the_same_each_time(trained, capsys):
    first = _evaluate(capsys, trained, "single", "--max-per-class", "2")
    again = _evaluate(capsys, trained, "single", "--max-per-class", "2")
    assert first["counts"]["per_class"] == {"COVID-19": 0, "normal": 2, "pneumonia": 2} and first["counts"]["scored"] == 4
    assert first["counts"]["sample"]["kept_of"] == {"normal": [2, KERMANY_NORMALS], "pneumonia": [2, KERMANY_IMAGES - KERMANY_NORMALS]}
    assert first["counts"]["left_out"]["not_sampled"] == KERMANY_IMAGES - 4 and first["set_name"] == "kermany_pneumonia-max2s0"
    assert set(pd.read_csv(first["predictions_file"])["image"]) == set(pd.read_csv(again["predictions_file"])["image"])  # drawn once, seeded
    other = _evaluate(capsys, trained, "single", "--max-per-class", "2", "--sample-seed", "1")
    assert other["set_name"] == "kermany_pneumonia-max2s1" and other["counts"]["scored"] == 4
