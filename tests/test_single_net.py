import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from conftest import HalvesDataset, train_losses
from lightning_modules import get_task_class


def _task():
    return get_task_class("single_net")(
        class_names=["a", "b"], image_size=64, model={"nf": 8, "fc_units": 32}, optimizer={"name": "adam", "lr": 1e-3}
    )


def test_loss_falls_on_a_separable_toy_set():
    pl.seed_everything(0)
    task = _task()
    batch = next(iter(DataLoader(HalvesDataset(64, 64), batch_size=32, shuffle=True)))
    losses = train_losses(task, batch, 40)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_trains_two_steps_with_a_lightning_trainer(tmp_path):
    task = _task()
    loader = DataLoader(HalvesDataset(16, 64), batch_size=8)
    trainer = pl.Trainer(max_steps=2, limit_val_batches=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(task, loader, loader)
    assert trainer.global_step == 2
    assert "val/accuracy" in trainer.callback_metrics and "val/sensitivity/a" in trainer.callback_metrics


def test_start_weights_load_from_a_local_file_only(tmp_path):
    source = _task()
    torch.save(source.model.state_dict(), tmp_path / "weights.pt")
    task = get_task_class("single_net")(class_names=["a", "b"], image_size=64, model={"nf": 8, "fc_units": 32}, start_weights=str(tmp_path / "weights.pt"))
    assert task.start_weights.startswith("weights.pt")
    assert torch.equal(next(task.model.parameters()), next(source.model.parameters()))
    assert _task().start_weights == "random init"
    try:
        get_task_class("single_net")(class_names=["a", "b"], image_size=64, model={"nf": 8, "fc_units": 32}, start_weights=str(tmp_path / "none.pt"))
    except FileNotFoundError as error:
        assert "none.pt" in str(error)
    else:
        raise AssertionError("a missing weights file must fail")
