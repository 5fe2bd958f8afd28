"""What a heatmap explains: the module from images to class logits, its Grad-CAM layer, its penultimate features
and its CAM weights, for every task kind (classifier, single-net COVID-Net, siamese COVID-Net)."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from lightning_modules.backbones.heads import LinearHead
from lightning_modules.base import ClassificationTask
from lightning_modules.transfer import output_layer


class NotApplicableError(ValueError):
    """An explanation this model cannot give (the message names the method or head and why)."""


class TemplateSimilarity(nn.Module):
    """Siamese scores as logits: similarity(embed(x), template_k) for each class template k, (B, K) (section 3.2.2)."""

    def __init__(self, network: nn.Module, templates: torch.Tensor):
        super().__init__()
        self.network = network
        self.register_buffer("templates", templates.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.network.embed(x)
        return self.network.similarity(embeddings[:, None, :], self.templates.to(embeddings)[None])


def _is_siamese(task: ClassificationTask) -> bool:
    return hasattr(task.model, "embed") and hasattr(task.model, "similarity")


def score_model(task: ClassificationTask, *, templates: torch.Tensor | None = None) -> nn.Module:
    """Images (B, C, H, W), normalised, -> (B, K) class logits: the task's model, or for the siamese task the
    similarity logit to each class template (``templates`` (K, D), else ``task.templates``)."""
    if not _is_siamese(task):
        return task.model
    templates = templates if templates is not None else getattr(task, "templates", None)
    if templates is None:
        raise NotApplicableError("siamese heatmaps explain the similarity to a class template: templates are needed "
                                 "(pass templates=, or set task.templates, e.g. with task.compute_templates(train loader))")
    return TemplateSimilarity(task.model, torch.as_tensor(templates))


def target_layer(task: ClassificationTask) -> nn.Module:
    """Grad-CAM's layer: ``task.gradcam_target_layer()``; for the siamese task the encoder's last stage, as the
    single-net's (siamese paper, section 3.3.1)."""
    if hasattr(task, "gradcam_target_layer"):
        return task.gradcam_target_layer()
    if _is_siamese(task):
        return task.model.encoder.stages[-1]
    raise NotApplicableError(f"{type(task).__name__} names no Grad-CAM target layer")


@contextmanager
def evaluating(model: nn.Module):
    """Eval mode inside, every module's own training flag restored after."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes.items():
            module.training = mode


def penultimate_features(task: ClassificationTask, images: torch.Tensor, *, templates: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D): the input of the last linear layer (classifiers, single-net), or the embedding (siamese; the
    templates are not needed for it)."""
    with torch.no_grad(), evaluating(task.model):
        if _is_siamese(task):
            return task.model.embed(images)
        _, layer = output_layer(getattr(task.model, "head", task.model))
        captured = []
        handle = layer.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
        try:
            task.model(images)
        finally:
            handle.remove()
        return captured[-1].flatten(1)


def cam_weights(task: ClassificationTask) -> torch.Tensor:
    """(K, channels): the output layer's weights w_ck, only for global average pooling + one linear layer
    (transfer paper, section 4); any other head has no per-channel class weights."""
    head = getattr(task.model, "head", None)
    if isinstance(head, LinearHead):
        return head.layers[-1].weight.detach().clone()
    if _is_siamese(task):
        why = "SiameseNetwork: scores are similarities to class templates, not a linear layer over pooled channels"
    elif head is None:
        why = f"{type(task.model).__name__}: flatten and dense layers, not global average pooling + one linear layer"
    else:
        why = f"head {type(head).__name__}: not global average pooling + one linear layer"
    raise NotApplicableError(f"CAM needs a global-average-pooling + linear head; {why}")
