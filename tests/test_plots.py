"""Per-run plots (ROC, confusion matrix, reliability diagram): valid PNGs for single- and multi-label scores, written
atomically, recorded in the result JSON by a real tiny run, and logged to W&B offline with the suite's summary table."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from matplotlib.figure import Figure
from PIL import Image
from torchmetrics.classification import MulticlassCalibrationError

from benchmark.cli import main
from benchmark.loggers import build_loggers, finish_wandb, log_plots_to_wandb, log_suite_summary
from benchmark.plots import draw_run_plots
from benchmark.statistics import confidence_bins

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["COVID-19", "normal", "pneumonia"]


def _single_label(n=60, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=generator)  # class 2 (pneumonia) is absent from this test set
    logits = torch.randn(n, 3, generator=generator) + 2.0 * torch.nn.functional.one_hot(labels, 3)
    return torch.softmax(logits, dim=1), labels


def _multilabel(n=50, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n, 4), generator=generator)
    labels[:, 3] = 0  # a finding with no positive test image
    labels[:5, 1] = -1  # unknown (CheXpert U-Ignore): left out
    scores = torch.sigmoid(torch.randn(n, 4, generator=generator) + 1.5 * (labels == 1))
    return scores, labels


def _assert_pngs(plots: dict, names: set, folder: Path):
    assert set(plots) == names
    for path in plots.values():
        assert path.parent == folder and path.suffix == ".png"
        with Image.open(path) as image:
            image.verify()  # a complete, valid PNG
        with Image.open(path) as image:
            assert image.format == "PNG" and 300 <= image.width <= 3000 and 300 <= image.height <= 3000
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.png" for name in names)  # no temporary file left


def test_single_label_plots_with_a_class_absent_from_the_test_set(tmp_path):
    scores, labels = _single_label()
    plots = draw_run_plots(scores, labels, CLASSES, multilabel=False, out_dir=tmp_path / "plots", title="run [SYNTHETIC DATA]")
    _assert_pngs(plots, {"roc", "confusion", "reliability"}, tmp_path / "plots")


def test_multilabel_plots_ignore_unknown_targets_and_have_no_confusion_matrix(tmp_path):
    scores, labels = _multilabel()
    plots = draw_run_plots(scores, labels, ["Atelectasis", "Mass", "Nodule", "Hernia"], multilabel=True, out_dir=tmp_path, title="cxr14")
    _assert_pngs(plots, {"roc", "reliability"}, tmp_path)


def test_roc_legend_gives_auroc_and_names_the_absent_class(tmp_path, monkeypatch):
    legends = []
    original = Figure.savefig

    def capture(figure, *args, **kwargs):
        legends.extend(text.get_text() for ax in figure.axes if ax.get_legend() for text in ax.get_legend().get_texts())
        return original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    scores, labels = _single_label()
    draw_run_plots(scores, labels, CLASSES, multilabel=False, out_dir=tmp_path, title="t")
    from torchmetrics.functional.classification import binary_auroc

    auroc = float(binary_auroc(scores[:, 0], (labels == 0).long()))
    assert f"COVID-19 (AUROC {auroc:.3f}, n={int((labels == 0).sum())})" in legends
    assert "pneumonia: absent from the test set, no curve" in legends


def test_reliability_bins_match_torchmetrics_ece():
    scores, labels = _single_label(n=400, seed=1)
    confidence, predicted = scores.max(dim=1)
    bins = confidence_bins(confidence.numpy(), (predicted == labels).numpy())
    expected = MulticlassCalibrationError(num_classes=3, n_bins=15, norm="l1")(scores, labels)
    assert bins["ece"] == pytest.approx(float(expected), abs=1e-6)
    assert bins["count"].sum() == 400 and len(bins["count"]) == 15
    filled = bins["count"] > 0
    assert np.all((bins["confidence"][filled] >= bins["edges"][:-1][filled]) & (bins["confidence"][filled] <= bins["edges"][1:][filled]))
    edges = confidence_bins(np.array([1.0, 1.0, 0.5, 0.5]), np.array([1, 0, 1, 1]))
    assert edges["count"][-1] == 2 and edges["count"][7] == 2  # confidence 1 falls in the last bin
    assert edges["ece"] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)  # each bin: |accuracy - confidence| 0.5, half the predictions


def test_a_crash_while_writing_leaves_no_half_png(tmp_path, monkeypatch):
    scores, labels = _single_label()
    draw_run_plots(scores, labels, CLASSES, multilabel=False, out_dir=tmp_path, title="first")
    before = (tmp_path / "roc.png").read_bytes()

    def torn(figure, target, **kwargs):
        Path(target).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", torn)
    with pytest.raises(OSError, match="disk full"):
        draw_run_plots(scores, labels, CLASSES, multilabel=False, out_dir=tmp_path, title="second")
    assert (tmp_path / "roc.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "reliability.png", "roc.png"]


def _offline_runs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("offline-run-*"))


def test_plots_and_suite_summary_reach_offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-default"))
    scores, labels = _single_label()
    plots = draw_run_plots(scores, labels, CLASSES, multilabel=False, out_dir=tmp_path / "plots", title="t")
    loggers = build_loggers(tmp_path / "run", run_name="r", group="g", config={}, logging_config={"wandb": {"mode": "offline"}}, synthetic=True)
    log_plots_to_wandb(loggers, plots)
    finish_wandb()
    (run,) = _offline_runs(tmp_path / "run")
    media = {p.name.split("_")[0] for p in (run / "files/media/images/plots").glob("*.png")}
    assert media == {"roc", "confusion", "reliability"}

    results = [{"run_id": f"synthetic/m/seed{s}", "method": {"id": "m"}, "dataset": {"name": "synthetic", "synthetic": True}, "seed": s,
                "n_test_images": 10, "metrics": {"accuracy": 0.5 + s / 10, "auroc": 0.7}} for s in (0, 1)]
    log_suite_summary(results, {"wandb": {"mode": "offline"}}, "tiny", log_dir=tmp_path / "suite")
    (summary,) = _offline_runs(tmp_path / "suite")
    (table,) = (summary / "files/media/table").glob("suite_summary_*.table.json")
    content = json.loads(table.read_text())
    assert content["columns"][:4] == ["run_id", "method", "dataset", "seed"] and len(content["data"]) == 2
    assert content["data"][1][0] == "synthetic/m/seed1" and content["data"][1][content["columns"].index("accuracy")] == pytest.approx(0.6)
    assert not (tmp_path / "wandb-default").exists()


def test_no_wandb_when_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-default"))
    monkeypatch.chdir(tmp_path)
    loggers = build_loggers(tmp_path / "run", run_name="r", group="g", config={}, logging_config={"wandb": False}, synthetic=False)
    log_plots_to_wandb(loggers, {"roc": tmp_path / "roc.png"})  # only the CSV logger: nothing to do, the file is not read
    log_suite_summary([{"run_id": "x", "metrics": {}}], {"wandb": False}, "tiny", log_dir=tmp_path / "suite")
    log_suite_summary([{"run_id": "x", "metrics": {}}], {"wandb": {"enabled": False}}, "tiny", log_dir=tmp_path / "suite")
    assert not _offline_runs(tmp_path) and not (tmp_path / "suite").exists() and not (tmp_path / "wandb-default").exists()


@pytest.mark.run_plots
def test_a_tiny_run_writes_plots_records_them_and_logs_them_to_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-default"))
    method = {"extends": str(REPO / "configs/methods/single_net.yaml"), "model": {"nf": 8, "fc_units": 16}, "deviations": ["test-sized network"]}
    (tmp_path / "tiny_single_net.yaml").write_text(yaml.safe_dump(method))
    suite = {"name": "tiny", "datasets": [{"name": "covid19_radiography", "options": {"patients_per_class": 8}}], "synthetic_without_data_root": True,
             "methods": ["tiny_single_net.yaml"], "seeds": [0], "logging": {"wandb": {"mode": "offline"}},
             "data": {"image_size": 32, "split_seed": 0, "val_fraction": 0.25, "test_fraction": 0.25, "batch_size": 8},
             "trainer": {"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False, "num_sanity_val_steps": 0, "enable_model_summary": False}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    out = tmp_path / "runs"
    assert main(["run", str(tmp_path / "suite.yaml"), "--out", str(out), "--leaderboard", str(tmp_path / "lb.md"), "--cache-dir", str(tmp_path / "cache")]) == 0

    result = json.loads((out / "results/synthetic/tiny_single_net/seed0.json").read_text())
    assert result["plots"] == {name: f"plots/synthetic/tiny_single_net/seed0/{name}.png" for name in ("roc", "confusion", "reliability")}
    _assert_pngs({k: out / v for k, v in result["plots"].items()}, {"roc", "confusion", "reliability"}, out / "plots/synthetic/tiny_single_net/seed0")
    (run,) = _offline_runs(out / "logs/synthetic/tiny_single_net/seed0")
    assert {p.name.split("_")[0] for p in (run / "files/media/images/plots").glob("*.png")} == {"roc", "confusion", "reliability"}
    (summary,) = _offline_runs(out / "logs/suites/tiny")
    (table,) = (summary / "files/media/table").glob("suite_summary_*.table.json")
    assert json.loads(table.read_text())["data"][0][0] == "synthetic/tiny_single_net/seed0"
