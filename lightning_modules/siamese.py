"""Siamese COVID-Net (Castro Sundin et al., *Siamesifying the COVID-Net*, sections 2.1, 2.3, 3.1-3.3).

Two images go through one shared COVID-Net encoder (the single-net's convolutional part and dense layers, 256-d
output); their similarity is sigmoid(d(x, y)) with the weighted L1 distance d(x, y) = sum_i alpha_i |x_i - y_i|
of eq. (1), alpha learned with the network; binary cross-entropy against same-class = 1 (section 2.3).

- Training: per epoch, the paper's balanced pool (all COVID-19 training images plus as many of each other class)
  and N pairs, half same-class, half different-class (section 3.1; ``datamodules.sampling.PairBatchSampler``).
  ``pair_embedding: batch`` embeds each image of a batch once and forms the pairs from those embeddings;
  ``two_tower`` runs the encoder on both images of every pair (the textbook siamese forward), for comparison.
- Validation: N-way one-shot trials (three-way for three classes, section 3.2.1): a validation image is compared
  with one reference image of each class and the most similar class wins; 129 trials by default, evenly per
  class, the same trials every epoch. Logged as ``val/accuracy`` (and ``val/three_way_accuracy``).
- Test: class templates are the mean training embedding of each class (section 3.2.2); a test image's scores are
  its similarities to the templates, its prediction the most similar class.

``variant: authors`` follows the authors' code instead (notes in the papers folder): a bias in the sigmoid
layer (their Dense(1, sigmoid) on |f1 - f2|; their same = 0 / different = 1 targets are the same model with the
signs of alpha and bias flipped) and dropout 0.5/0.2/0.2 inside the siamese branch, which the paper applies to
the single-net only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lightning_modules.backbones.covidnet import COVIDNetEncoder
from lightning_modules.base import ClassificationTask
from lightning_modules.predictions import deduplicate
from lightning_modules.registries import METHODS

VARIANTS = {"paper": {"distance_bias": False, "dropout": (0.0, 0.0, 0.0)}, "authors": {"distance_bias": True, "dropout": (0.5, 0.2, 0.2)}}
PAIR_EMBEDDINGS = ("batch", "two_tower")


class WeightedL1Similarity(nn.Module):
    """Similarity logit sum_i alpha_i |x_i - y_i| (+ bias in the authors' variant); sigmoid gives the similarity.

    alpha is unconstrained, as in Koch et al.'s siamese net that the paper follows. It starts negative, drawn from
    -U(0, l) with l the Glorot-uniform limit of the authors' Keras Dense(1), so that an untrained network already
    calls nearer images more similar (with random signs it would as often pick the farthest template); bias 0.
    Without a bias (eq. (1)) sigmoid(d) <= 0.5 wherever alpha <= 0, so same-class pairs cannot reach a loss of
    zero; rankings (predictions, AUROC) are unaffected.
    """

    def __init__(self, dim: int, bias: bool = False):
        super().__init__()
        limit = math.sqrt(6.0 / (dim + 1))
        self.alpha = nn.Parameter(-torch.empty(dim).uniform_(0.0, limit))
        self.bias = nn.Parameter(torch.zeros(())) if bias else None

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Eq. (1) over the last dimension; broadcasts, so (B, 1, D) against (1, K, D) gives (B, K)."""
        return ((x - y).abs() * self.alpha).sum(-1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logit = self.distance(x, y)
        return logit + self.bias if self.bias is not None else logit


class SiameseNetwork(nn.Module):
    """Shared encoder plus the similarity layer. ``encoder`` keys match the single-net's, so its weights load."""

    def __init__(self, encoder: nn.Module, bias: bool = False):
        super().__init__()
        self.encoder = encoder
        self.similarity = WeightedL1Similarity(encoder.out_features, bias=bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Two-tower forward: similarity logits of image pairs (x[i], y[i])."""
        return self.similarity(self.embed(x), self.embed(y))


def one_shot_trials(labels: np.ndarray, *, num_classes: int, trials: int, seed: int = 0, class_names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """N-way one-shot trials (section 3.2.1, as the authors' three_way_validation.py draws them).

    Trial t asks about an image of class t mod N; each trial also holds one reference image of every class, the
    one of the query's class distinct from the query. Queries are drawn without replacement while a class has
    images left. Returns (queries (T,), references (T, N)), positions into ``labels``.
    """
    labels = np.asarray(labels)
    names = class_names or [str(c) for c in range(num_classes)]
    members = [np.flatnonzero(labels == c) for c in range(num_classes)]
    for c, m in enumerate(members):
        if len(m) < 2:
            raise ValueError(f"one-shot validation needs at least 2 validation images of every class; class {names[c]!r} has {len(m)}")
    rng = np.random.default_rng(seed)
    counts = [len(range(c, trials, num_classes)) for c in range(num_classes)]
    per_class_queries = [rng.choice(m, n, replace=n > len(m)) for m, n in zip(members, counts)]
    queries, references = np.empty(trials, dtype=np.int64), np.empty((trials, num_classes), dtype=np.int64)
    for t in range(trials):
        c = t % num_classes
        query = per_class_queries[c][t // num_classes]
        queries[t] = query
        for k, m in enumerate(members):
            references[t, k] = rng.choice(m[m != query] if k == c else m)
    return queries, references


@METHODS.register()
class SiameseCOVIDNet(ClassificationTask):
    name = "siamese"

    def __init__(self, *, pair_embedding: str = "batch", validation_trials: int = 129, validation_seed: int = 0, **kwargs):
        if pair_embedding not in PAIR_EMBEDDINGS:
            raise ValueError(f"pair_embedding must be one of {PAIR_EMBEDDINGS}, not {pair_embedding!r}")
        super().__init__(**kwargs)
        if self.multilabel:
            raise ValueError("the siamese COVID-Net is a single-label method")
        self.pair_embedding = pair_embedding
        self.validation_trials = int(validation_trials)
        self.validation_seed = int(validation_seed)
        self.templates: torch.Tensor | None = None

    def configure_models(self) -> None:
        options = dict(self.hparams.model or {})
        variant = options.get("variant", "paper")
        if variant not in VARIANTS:
            raise ValueError(f"siamese variant must be one of {sorted(VARIANTS)}, not {variant!r}")
        defaults = VARIANTS[variant]
        encoder = COVIDNetEncoder(
            in_chans=self.hparams.in_chans,
            image_size=self.hparams.image_size,
            nf=options.get("nf", 128),
            fc_units=options.get("fc_units", 1024),
            dropout=tuple(_given(options, "dropout", defaults)),
        )
        self.model = SiameseNetwork(encoder, bias=bool(_given(options, "distance_bias", defaults)))

    def configure_losses(self) -> None:
        self.criterion = nn.BCEWithLogitsLoss()  # eq. (3) on the sigmoid similarity; target 1 = same class

    # ----- training on pairs -----
    def setup(self, stage: str) -> None:
        """The pairs come from the data (``data.pair_sampling``, datamodules/sampling.py); without them, say so."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and stage == "fit" and getattr(datamodule, "pair_sampling", None) is None:
            raise ValueError("the siamese COVID-Net trains on pairs: set data.pair_sampling (see configs/methods/siamese.yaml)")

    def pair_logits(self, batch: dict, pair_embedding: str | None = None) -> torch.Tensor:
        images, left, right = batch["image"], batch["left"], batch["right"]
        if (pair_embedding or self.pair_embedding) == "batch":
            embeddings = self.model.embed(images)  # one encoder pass per image
            return self.model.similarity(embeddings[left], embeddings[right])
        return self.model(images[left], images[right])  # two encoder passes per pair

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of ``x``; with ``y``, the similarity logits of the pairs (x[i], y[i])."""
        return self.model.embed(x) if y is None else self.model(x, y)

    def training_step(self, batch, batch_idx):
        logits = self.pair_logits(batch)
        loss = self.criterion(logits, batch["same"].float())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(logits))
        return loss

    def on_train_epoch_end(self) -> None:
        pass  # the pair loss is logged per step; training makes no class predictions to score

    # ----- validation: one-shot trials -----
    def on_validation_epoch_start(self) -> None:
        self._val_outputs = []

    def validation_step(self, batch, batch_idx):
        self._val_outputs.append((batch["index"], self.model.embed(batch["image"]), batch["label"]))

    def on_validation_epoch_end(self) -> None:
        outputs, self._val_outputs = self._val_outputs, []
        if self.trainer.sanity_checking or not outputs:
            return
        index, embeddings, labels = self._gather(outputs)
        queries, references = one_shot_trials(labels.cpu().numpy(), num_classes=self.num_classes, trials=self.validation_trials, seed=self.validation_seed, class_names=self.class_names)
        queries, references = torch.as_tensor(queries, device=embeddings.device), torch.as_tensor(references, device=embeddings.device)
        logits = self.model.similarity(embeddings[queries][:, None, :], embeddings[references])  # (T, N)
        target = labels[queries]
        same = F.one_hot(target, self.num_classes).float()
        scores = torch.sigmoid(logits)
        accuracy = (scores.argmax(1) == target).float().mean()
        self.log("val/loss", self.criterion(logits, same), prog_bar=True)
        self.log(f"val/{_way(self.num_classes)}_accuracy", accuracy, prog_bar=True)
        self.val_metrics.update(scores, target)
        self._log_epoch_metrics("val")

    def _gather(self, outputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All validation embeddings on every rank, each image once, in index order."""
        index, embeddings, labels = (torch.cat([o[i] for o in outputs]) for i in range(3))
        if self.trainer.world_size > 1:
            index, embeddings, labels = (self.all_gather(t).flatten(0, 1) for t in (index, embeddings, labels))
        return deduplicate(index, embeddings, labels)

    # ----- test: class templates -----
    @torch.no_grad()
    def compute_templates(self, loader) -> torch.Tensor:
        """Mean embedding of each class over ``loader`` (the train split, in order, with eval transforms)."""
        sums = torch.zeros(self.num_classes, self.model.encoder.out_features, device=self.device)
        counts = torch.zeros(self.num_classes, device=self.device)
        for batch in loader:
            labels = batch["label"].to(self.device)
            sums.index_add_(0, labels, self.model.embed(batch["image"].to(self.device)).float())
            counts.index_add_(0, labels, torch.ones_like(labels, dtype=torch.float))
        empty = [self.class_names[c] for c in (counts == 0).nonzero().flatten().tolist()]
        if empty:
            raise ValueError(f"no training images of class(es) {empty}: the siamese test needs a template per class")
        return sums / counts[:, None]

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            self.templates = self.compute_templates(datamodule.train_eval_dataloader())
        elif self.templates is None:
            raise RuntimeError("the siamese test needs class templates: test with a datamodule, or set task.templates")

    def test_step(self, batch, batch_idx):
        embeddings = self.model.embed(batch["image"])
        scores = torch.sigmoid(self.model.similarity(embeddings[:, None, :], self.templates.to(embeddings)[None]))  # (B, N)
        self.test_metrics.update(scores, batch["label"])
        self._test_outputs.append((batch["index"], scores, batch["label"]))


def _given(options: dict, key: str, defaults: dict):
    """``options[key]`` unless it is absent or None (a validated config says None for "the variant's default")."""
    value = options.get(key)
    return defaults[key] if value is None else value


def _way(n: int) -> str:
    return {2: "two", 3: "three", 4: "four"}.get(n, str(n)) + "_way"
