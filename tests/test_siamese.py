"""Siamese COVID-Net: distance of eq. (1), pair sampling (section 3.1), one-shot validation (3.2.1), templates (3.2.2)."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.sampling import PairBatchDataset, PairBatchSampler
from lightning_modules import get_task_class
from lightning_modules.siamese import SiameseNetwork, WeightedL1Similarity, one_shot_trials


class Stripes(Dataset):
    """Class c: a bright vertical band at position c; noisy, separable."""

    def __init__(self, n=48, classes=3, size=32):
        g = torch.Generator().manual_seed(0)
        self.targets = np.arange(n) % classes
        self.images = torch.randn(n, 1, size, size, generator=g) * 0.3
        width = size // classes
        for i, label in enumerate(self.targets):
            self.images[i, :, :, label * width:(label + 1) * width] += 1.0

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": torch.tensor(self.targets[i]), "index": i}


class BandEncoder(torch.nn.Module):
    """Toy encoder: one-hot of the column band with the most signal (the Stripes class)."""

    out_features = 3

    def forward(self, x):
        columns = x.mean((1, 2))[:, : 3 * (x.shape[-1] // 3)]
        return torch.nn.functional.one_hot(columns.reshape(len(x), 3, -1).mean(2).argmax(1), 3).float()


def _task(**kwargs):
    options = {"class_names": ["a", "b", "c"], "image_size": 32, "model": {"nf": 8, "fc_units": 32}, "optimizer": {"name": "adam", "lr": 1e-3},
               "validation_trials": 12}
    options.update(kwargs)
    return get_task_class("siamese")(**options)


def _pair_loader(dataset, pairs=48, per_batch=16, images=None, seed=0):
    sampler = PairBatchSampler(dataset.targets, pairs_per_epoch=pairs, pairs_per_batch=per_batch, images_per_batch=images, seed=seed)
    return DataLoader(PairBatchDataset(dataset), batch_size=None, sampler=sampler)


def test_alpha_is_learnable_and_the_distance_symmetric():
    layer = WeightedL1Similarity(5)
    x, y = torch.randn(4, 5), torch.randn(4, 5)
    assert torch.allclose(layer(x, y), layer(y, x))
    assert torch.allclose(layer.distance(x, y), (layer.alpha * (x - y).abs()).sum(1))  # eq. (1)
    assert layer.bias is None and WeightedL1Similarity(5, bias=True).bias is not None  # authors' variant only
    before = layer.alpha.detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    layer(x, y).sum().backward()
    assert layer.alpha.grad is not None and layer.alpha.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(before, layer.alpha.detach())


def test_distance_broadcasts_against_templates():
    layer = WeightedL1Similarity(3)
    queries, templates = torch.randn(4, 3), torch.randn(2, 3)
    grid = layer(queries[:, None, :], templates[None])
    assert grid.shape == (4, 2)
    assert torch.allclose(grid[1, 0], layer(queries[1:2], templates[0:1])[0])


def test_pair_sampler_balance_and_class_coverage():
    labels = np.array([0] * 6 + [1] * 50 + [2] * 30)  # class 0 is the small (COVID-19-like) class
    sampler = PairBatchSampler(labels, pairs_per_epoch=100, pairs_per_batch=12, images_per_batch=12, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 9 and sum(len(b[1]) for b in batches) == 100
    same_total, used, same_classes, pair_kinds = 0, set(), [], set()
    for images, left, right, same in batches:
        batch_labels = labels[images]
        assert len(set(images.tolist())) == len(images) <= 12  # each image once per batch
        assert np.bincount(batch_labels, minlength=3).min() >= 2  # every class present, twice at least
        assert np.array_equal(batch_labels[left] == batch_labels[right], same)
        assert not np.any(left[same] == right[same])  # a same pair is two different images
        assert abs(int(same.sum()) - len(same) / 2) <= 0.5  # half same, half different
        same_total += int(same.sum())
        same_classes += batch_labels[left[same]].tolist()
        pair_kinds |= {tuple(sorted(p)) for p in zip(batch_labels[left[~same]], batch_labels[right[~same]])}
        used |= set(images.tolist())
    assert same_total == 50
    assert np.bincount(same_classes).max() - np.bincount(same_classes).min() <= len(batches)  # spread over classes
    assert pair_kinds == {(0, 1), (0, 2), (1, 2)}
    pool_sizes = np.bincount(labels[sorted(used)], minlength=3)
    assert pool_sizes.max() <= 6  # the balanced pool: all 6 of the small class, as many of each other
    assert [b[0].tolist() for b in PairBatchSampler(labels, pairs_per_epoch=100, pairs_per_batch=12, seed=3)] != \
           [b[0].tolist() for b in list(PairBatchSampler(labels, pairs_per_epoch=100, pairs_per_batch=12, seed=4))]


def test_pair_sampler_rejects_what_cannot_make_pairs():
    with pytest.raises(ValueError, match="two train images of every class"):
        PairBatchSampler([0, 1, 1, 1], pairs_per_epoch=8, pairs_per_batch=4)
    with pytest.raises(ValueError, match="at least two classes"):
        PairBatchSampler([0, 0, 0], pairs_per_epoch=8, pairs_per_batch=4)


def test_one_shot_trials_on_a_toy_embedding():
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    queries, references = one_shot_trials(labels, num_classes=3, trials=9, seed=0)
    assert queries.shape == (9,) and references.shape == (9, 3)
    assert labels[queries].tolist() == [0, 1, 2] * 3  # evenly per class, 129 = 3 x 43 in the paper
    assert np.array_equal(labels[references], np.tile([0, 1, 2], (9, 1)))  # one reference per class
    assert np.all(references[np.arange(9), labels[queries]] != queries)  # never the query itself
    assert len(set(queries[labels[queries] == 0].tolist())) == 3  # queries without replacement
    # with embeddings that sit at their class centre, every trial is right; shuffled centres get them wrong
    similarity = WeightedL1Similarity(3)
    with torch.no_grad():
        similarity.alpha.fill_(-1.0)
    centres = torch.eye(3).repeat_interleave(torch.tensor([3, 3, 4]), dim=0) * 5
    logits = similarity(centres[queries][:, None], centres[references])
    assert (logits.argmax(1) == torch.as_tensor(labels[queries])).all()
    shuffled = centres[torch.tensor([3, 4, 5, 6, 7, 8, 9, 0, 1, 2])]  # embeddings of the wrong class
    wrong = similarity(shuffled[queries][:, None], shuffled[references]).argmax(1)
    assert (wrong == torch.as_tensor(labels[queries])).float().mean() < 1
    with pytest.raises(ValueError, match="class '2' has 1"):
        one_shot_trials(np.array([0, 0, 1, 1, 2]), num_classes=3, trials=3)


def test_template_prediction():
    task = _task()
    task.model = SiameseNetwork(BandEncoder())
    with torch.no_grad():
        task.model.similarity.alpha.fill_(-1.0)
    data = Stripes(12)
    templates = task.compute_templates(DataLoader(data, batch_size=5))
    assert torch.allclose(templates, torch.eye(3))  # mean embedding per class
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False)
    task.templates = templates
    trainer.test(task, DataLoader(data, batch_size=5), verbose=False)
    predictions = task.test_predictions
    assert predictions["scores"].shape == (12, 3) and (predictions["scores"] <= 1).all()
    assert torch.equal(predictions["scores"].argmax(1), predictions["labels"])  # most similar template wins


def test_batch_embedding_and_two_tower_agree_on_the_same_pairs():
    task = _task(model={"nf": 8, "fc_units": 32}).eval()
    batch = next(iter(_pair_loader(Stripes(), images=6)))
    assert len(batch["image"]) == 6 and len(batch["left"]) == 16  # 16 pairs from 6 images: 6 encoder passes, not 32
    with torch.no_grad():
        assert torch.allclose(task.pair_logits(batch, "batch"), task.pair_logits(batch, "two_tower"), atol=1e-5)


@pytest.mark.parametrize("pair_embedding", ["batch", "two_tower"])
def test_loss_falls_on_a_separable_toy_set(pair_embedding):
    pl.seed_everything(0)
    task = _task(pair_embedding=pair_embedding, optimizer={"name": "adam", "lr": 3e-3})
    optimizer = task.configure_optimizers()
    batches = list(_pair_loader(Stripes(), pairs=32 * 24, per_batch=32, images=24))
    losses = []
    for batch in batches:
        loss = task.criterion(task.pair_logits(batch), batch["same"].float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.75 * np.mean(losses[:4])  # the floor without a bias is 0.5 ln 2 = 0.35


def test_trains_two_steps_and_validates_with_one_shot_trials(tmp_path):
    task = _task()
    data = Stripes()
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(task, _pair_loader(data, pairs=32), DataLoader(data, batch_size=16))  # two batches of 16 pairs
    assert trainer.global_step == 2
    metrics = trainer.callback_metrics
    assert {"val/accuracy", "val/three_way_accuracy", "val/loss", "val/auroc"} <= set(metrics)
    assert metrics["val/accuracy"] == metrics["val/three_way_accuracy"]


def test_variants_and_start_weights_from_a_single_net(tmp_path):
    paper, authors = _task(), _task(model={"nf": 8, "fc_units": 32, "variant": "authors"})
    dropout = lambda t: [m.p for m in t.model.encoder.head if isinstance(m, torch.nn.Dropout)]
    assert dropout(paper) == [0.0, 0.0, 0.0] and dropout(authors) == [0.5, 0.2, 0.2]
    assert paper.model.similarity.bias is None and authors.model.similarity.bias is not None
    single = get_task_class("single_net")(class_names=["a", "b", "c"], image_size=32, model={"nf": 8, "fc_units": 32})
    torch.save(single.model.state_dict(), tmp_path / "single.pt")
    loaded = _task(start_weights=str(tmp_path / "single.pt"))
    assert torch.equal(loaded.model.encoder.stem[0].weight, single.model.encoder.stem[0].weight)
    with pytest.raises(ValueError, match="pair_embedding"):
        _task(pair_embedding="three_tower")


def test_training_needs_pairs_from_the_data():
    from types import SimpleNamespace

    task = _task()
    task._trainer = SimpleNamespace(datamodule=SimpleNamespace(pair_sampling=None))
    with pytest.raises(ValueError, match="data.pair_sampling"):
        task.setup("fit")
    task._trainer = SimpleNamespace(datamodule=SimpleNamespace(pair_sampling=object()))
    task.setup("fit")  # pairs come from the data: nothing to install
