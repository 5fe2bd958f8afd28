"""The runner's training bookkeeping: images/s counts every training image, the best epoch is read from the best
checkpoint's name without unpickling it."""

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from benchmark.runner import TrainingThroughput, _best_epoch

SCORES = [0.1, 0.9, 0.5]  # validation score per epoch: the best is epoch 1


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        return self.layer(batch["image"]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/score", SCORES[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_throughput_counts_images_and_best_epoch_comes_from_the_checkpoint_name(tmp_path):
    images = [{"image": torch.randn(4)} for _ in range(10)]
    checkpoint = ModelCheckpoint(dirpath=tmp_path, filename="best-{epoch}", monitor="val/score", mode="max", save_top_k=1, enable_version_counter=False)
    throughput = TrainingThroughput()
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", callbacks=[checkpoint, throughput], logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), DataLoader(images, batch_size=4), DataLoader(images, batch_size=5))
    assert throughput.images == 30 and throughput.seconds > 0 and throughput.images_per_second > 0 and throughput.pairs_per_second is None
    assert _best_epoch(checkpoint) == 1 == torch.load(checkpoint.best_model_path, weights_only=False)["epoch"]
    assert _best_epoch(ModelCheckpoint(dirpath=tmp_path)) is None  # nothing saved yet
