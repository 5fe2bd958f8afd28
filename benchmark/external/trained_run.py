"""A finished run, read back for ``python -m benchmark evaluate``: its result file, its DataModule and its model.

The DataModule is rebuilt from what the result records (dataset, root, data settings, the split file under the
run's ``<out>/splits``), so the external images get exactly the run's preprocessing (image size, input channels,
normalisation kind and statistics), the duplicate search sees its train/val images, and the siamese net its
class templates from the training split. The model is the tested best checkpoint, loaded with the method's own
LightningModule class (its hyper-parameters are saved in it).
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmark.config import ConfigError
from benchmark.results import read_result
from datamodules.atomic import file_sha256
from datamodules.datasets import CachedImageDataset
from datamodules.transforms import build_transform

log = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    result: dict[str, Any]
    result_file: Path
    out_dir: Path
    datamodule: Any  # the run's CXRDataModule, set up
    checkpoint: dict[str, str]  # path, sha256
    normalization: dict[str, Any]  # kind, channels, mean, std

    @property
    def run_id(self) -> str:
        return self.result["run_id"]

    def load_task(self):
        """The method's LightningModule with the tested best checkpoint's weights, in eval mode."""
        from lightning_modules import get_task_class

        cls = get_task_class(self.result["method"]["method"])
        # start weights were only the starting point: the checkpoint holds the trained weights, so the file is not read
        return cls.load_from_checkpoint(self.checkpoint["path"], map_location="cpu", start_weights=None).eval()


def find_result_file(path: str | Path) -> Path:
    """A result JSON given directly, or the one result under a run folder (an ``--out`` folder, its ``results/``,
    or a run's ``logs/<dataset>/<method>/seed<k>`` folder); several or none is a ConfigError listing them."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"{path}: no such result file or run folder")
    parts = path.resolve().parts
    if "logs" in parts:  # <out>/logs/<run_id> -> <out>/results/<run_id>.json
        at = len(parts) - 1 - parts[::-1].index("logs")
        candidate = Path(*parts[:at], "results", *parts[at + 1 :]).with_suffix(".json")
        if candidate.is_file():
            return candidate
    found = sorted((path / "results" if (path / "results").is_dir() else path).rglob("*.json"))
    if len(found) != 1:
        listed = ", ".join(str(p) for p in found[:10]) or "none"
        raise ConfigError(f"{path}: expected one result file, found {len(found)} ({listed}); pass the result file itself")
    return found[0]


def out_dir_of(result_file: Path, run_id: str) -> Path:
    """``<out>`` of ``<out>/results/<run_id>.json``."""
    results = result_file.resolve().parents[len(Path(run_id).parts) - 1]
    if results.name != "results":
        raise ConfigError(f"{result_file}: a result file lies at <out>/results/{run_id}.json (the run's splits and logs are found from there)")
    return results.parent


def load_run(result_file: str | Path, *, cache_dir: Path, datamodule=None) -> TrainedRun:
    """Read a run back; ``datamodule``: the run's own, already set up (the runner passes it; the CLI rebuilds it)."""
    result_file = Path(result_file)
    result, problem = read_result(result_file)
    if problem:
        raise ConfigError(f"{result_file}: {problem}")
    for key in ("run_id", "config", "data_settings"):
        if key not in result:
            raise ConfigError(f"{result_file}: no {key!r} recorded (written by an older version); rerun that run")
    out_dir = out_dir_of(result_file, result["run_id"])
    if datamodule is None:
        datamodule = rebuild_datamodule(result, out_dir=out_dir, cache_dir=Path(cache_dir), where=result_file)
    checkpoint = _checkpoint(result, out_dir, where=result_file)
    rebuilt = datamodule.input_normalization()
    normalization = {"channels": 1, **(result.get("normalization") or result["dataset"].get("normalization") or rebuilt)}
    if not all(np.allclose(normalization[k], rebuilt[k], rtol=0, atol=1e-6) for k in ("mean", "std")):
        log.warning("%s: recorded normalisation %s differs from the rebuilt training split's (mean %s, std %s); using the recorded one",
                    result_file, normalization, rebuilt["mean"], rebuilt["std"])
    return TrainedRun(result, result_file, out_dir, datamodule, checkpoint, normalization)


def rebuild_datamodule(result: dict, *, out_dir: Path, cache_dir: Path, where: Path):
    """The run's DataModule from its result: same dataset, root, options and data settings, its own split file."""
    from benchmark.runner import build_datamodule
    from datamodules import DatasetNotFoundError

    config = result["config"]
    trained = config["stages"][-1] if config.get("stages") else config  # a chain's model is its last stage's
    entry = dict(trained["dataset"])
    entry["root"] = result["dataset"]["root"]
    data = dict(trained["data"])
    if data.get("class_map") and result["dataset"].get("class_map"):
        # the config is stored with sorted keys, which reorders the class map whose values order the classes:
        # the DataModule's own map, in the order it had, is the one the result's dataset records
        data["class_map"] = result["dataset"]["class_map"]
    spec = SimpleNamespace(dataset=entry, data=data, seed=result["seed"])
    datamodule = build_datamodule(spec, out_dir=out_dir, cache_dir=cache_dir)
    if not datamodule.split_path.is_file():
        raise ConfigError(f"{where}: the run's split file {datamodule.split_path} is gone; its train/val images (duplicates, templates) cannot be known")
    recorded = result["dataset"].get("split_sha256")
    if recorded and datamodule.split_sha256 != recorded:
        raise ConfigError(f"{where}: the split file {datamodule.split_path} changed since the run (sha256 {datamodule.split_sha256[:12]}, "
                          f"recorded {recorded[:12]})")
    try:
        datamodule.prepare_data()
        datamodule.setup("test")
    except DatasetNotFoundError as error:
        raise ConfigError(f"{where}: the run's dataset cannot be read again ({error})") from None
    if datamodule.class_names != result["dataset"]["classes"]:
        raise ConfigError(f"{where}: the rebuilt run has classes {datamodule.class_names}, the result {result['dataset']['classes']}")
    return datamodule


def _checkpoint(result: dict, out_dir: Path, *, where: Path) -> dict[str, str]:
    """The tested best checkpoint: the recorded one (its sha256 checked), else the one in the run's log folder."""
    recorded = result.get("checkpoint")
    run_logs = out_dir / "logs" / result["run_id"]
    folder = run_logs / "checkpoints"  # a chain's: logs/<run_id>/stages/<stage>/checkpoints/<phase>/
    if recorded:
        path = Path(recorded["path"])
        if not path.is_file():  # the out folder was moved or the run is read from another working directory
            parts, tail = path.parts, ("logs", *Path(result["run_id"]).parts)
            at = next((i for i in range(len(parts) - len(tail), -1, -1) if parts[i:i + len(tail)] == tail), None)
            path = run_logs.joinpath(*parts[at + len(tail):]) if at is not None else folder / path.name
        if not path.is_file():
            raise ConfigError(f"{where}: checkpoint {recorded['path']} not found (nor {path})")
        sha256 = file_sha256(path)
        if recorded.get("sha256") and sha256 != recorded["sha256"]:
            raise ConfigError(f"{where}: checkpoint {path} is not the one tested (sha256 {sha256[:12]}, recorded {recorded['sha256'][:12]})")
        return {"path": str(path), "sha256": sha256}
    if result.get("stages"):
        folder = run_logs / "stages" / result["stages"][-1]["name"] / "checkpoints"
    found = sorted(folder.rglob("best-*.ckpt"))
    if len(found) != 1:
        raise ConfigError(f"{where}: no checkpoint recorded and {len(found)} best-*.ckpt under {folder}; expected one")
    return {"path": str(found[0]), "sha256": file_sha256(found[0])}


def describe_run(run: TrainedRun) -> dict[str, Any]:
    """What an external result records about the run it scored."""
    result = run.result
    return {"run_id": run.run_id, "result_file": str(run.result_file), "config_fingerprint": result.get("config_fingerprint"),
            "method": {k: result["method"].get(k) for k in ("id", "method", "title")}, "seed": result["seed"],
            "dataset": {k: result["dataset"].get(k) for k in ("name", "synthetic", "stands_in_for", "image_size", "classes", "class_map",
                                                              "multilabel", "split_file", "split_sha256")},
            "metrics": {k: result["metrics"].get(k) for k in ("accuracy", "balanced_accuracy", "auroc") if k in result["metrics"]},
            "checkpoint": run.checkpoint, "normalization": json.loads(json.dumps(run.normalization))}


def score(run: TrainedRun, array_path: Path, rows: np.ndarray, targets: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and targets of cached images ``rows`` (in order) through the run's eval transform and best checkpoint,
    by the method's own ``test_step`` (no Trainer: this also runs on rank 0 alone at the end of a distributed run)."""
    dm = run.datamodule
    norm = run.normalization
    transform = build_transform(None, mean=norm["mean"], std=norm["std"], normalization=norm.get("kind") or dm.normalization,
                                channels=int(norm.get("channels", 1)))
    loader = DataLoader(CachedImageDataset(array_path, rows, targets, transform), batch_size=dm.eval_batch_size, shuffle=False,
                        num_workers=dm.num_workers)
    return score_loader(run.load_task(), loader, dm)


def score_loader(task, loader: DataLoader, dm) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores and targets of every batch of ``loader`` (in dataset order) by ``task``'s own ``test_step``, without a
    Trainer; the siamese net's class templates come from ``dm``'s training split."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    task.to(device)
    was_training, trainer = task.training, task._trainer
    task.eval()
    task._trainer = None  # an in-memory task keeps its Trainer; test_step's self.log must not reach its finished loop
    task._test_outputs = []  # what on_test_epoch_start sets: test_step appends (index, scores, labels)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*self.log.*")  # test_step logs its loss; there is no Trainer to log to
            if hasattr(task, "compute_templates"):  # the siamese net: mean embedding per class of the run's training split
                task.templates = task.compute_templates(dm.train_eval_dataloader())
            for i, batch in enumerate(loader):
                task.test_step({k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}, i)
    finally:
        task._trainer = trainer
        task.train(was_training)
    index, scores, labels = (torch.cat([o[i].cpu() for o in task._test_outputs]) for i in range(3))
    order = torch.argsort(index)
    return scores[order], labels[order]
