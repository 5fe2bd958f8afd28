"""Heatmaps of one class (or finding) per image: Grad-CAM and Grad-CAM++ (pytorch-grad-cam), CAM and LRP (zennit).

Grad-CAM follows the siamese paper (section 3.3.1), on the task's Grad-CAM layer; for the siamese net the target
is the similarity logit to a class template. CAM follows the transfer paper (section 4), LRP the twice-transfer
paper (section 9.1). Every method runs on a deep copy of the model in eval mode, so the task's model keeps its
mode, requires_grad flags and (empty) gradients. Deviations from the papers:

- CAM: no absolute value (the paper's M_c = sum_k w_ck f_k, signed; the transfer authors' code takes abs(M_c)); f_k
  is the map the head pools (post-ReLU for ResNet/DenseNet, as the paper says); bilinear upsampling to the image.
- LRP: zennit's ``EpsilonPlusFlat`` stands in for iNNvestigate's ``LRP-PresetAFlat``: the same rule per layer kind
  (epsilon for dense layers, alpha1-beta0 for conv layers, which is zennit's ZPlus, flat for the first layer), but
  zennit's stabilisers (epsilon 1e-6) and its treatment of the other layers, as follows. BatchNorm merges into a
  preceding conv/linear only within an nn.Sequential (``SequentialMergeBatchNorm``: the ACNN blocks); elsewhere
  (timm ResNet/DenseNet, which have no zennit canonizer, the FCN head's Dropout-separated BN) plain gradient passes
  through BN. Layers without an LRP rule pass the plain gradient: LSTMs (CAE sequence head), residual/dense tensor
  sums, max-pooling, functional ReLUs (CAE encoder), the siamese weighted-L1 distance to the template. A tensor sum
  copies the relevance to both summands (no zennit ``Sum`` module), so relevance is not conserved through skip
  connections. In-place ReLUs are turned off in the copy. The output relevance is the one-hot target times its
  logit; the map is summed over input channels.
- Grad-CAM/++: pytorch-grad-cam's ReLU and per-image min-max scaling to [0, 1], resized with OpenCV (bilinear).
"""

from __future__ import annotations

import copy
import itertools
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonPlusFlat

from lightning_modules.base import ClassificationTask
from lightning_modules.explain.scoring import cam_weights, evaluating, score_model, target_layer

HEATMAP_METHODS = ("gradcam", "gradcam++", "cam", "lrp")
GRADCAM_CLASSES = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus}


def heatmaps(task: ClassificationTask, images: torch.Tensor, targets, method: str, *, templates: torch.Tensor | None = None) -> np.ndarray:
    """(B, H, W) float32 maps of ``method`` for class (finding) ``targets[i]`` of image i; ``images`` (B, C, H, W)
    normalised as in training; ``templates`` only for the siamese task (else ``task.templates``), whose target k is
    the similarity to class k's template (the paper's Grad-CAM explains the predicted class: pass the arg-max)."""
    if method not in HEATMAP_METHODS:
        raise ValueError(f"heatmap method {method!r}: one of {', '.join(HEATMAP_METHODS)}")
    targets = torch.as_tensor(targets, dtype=torch.long).flatten()
    if len(targets) != len(images) or targets.min() < 0 or targets.max() >= task.num_classes:
        raise ValueError(f"targets: one class index in [0, {task.num_classes}) per image, got {targets.tolist()} for {len(images)} images")
    device = next(task.model.parameters()).device
    images, targets = images.to(device), targets.to(device)
    if method == "cam":
        maps = class_activation_maps(task, images, targets)
    else:
        model = score_model(task, templates=templates)
        if method == "lrp":
            maps = lrp_maps(_explainable_copy(model), images, targets)
        else:
            explained, layer = _explainable_copy(model), target_layer(task)
            layer = explained.get_submodule(next(name for name, module in model.named_modules() if module is layer))
            maps = gradcam_maps(explained, layer, images, targets, method)
    return np.ascontiguousarray(maps, dtype=np.float32)


_COPIES: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module]]" = weakref.WeakKeyDictionary()


def _explainable_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode, every parameter trainable (gradients reach every layer), no in-place ops.
    Kept while the model's tensors are unchanged (their in-place version counters), so a run's many maps copy it once."""
    versions = tuple(t._version for t in itertools.chain(model.parameters(), model.buffers()))
    cached = _COPIES.get(model)
    if cached is not None and cached[0] == versions:
        return cached[1]
    explained = copy.deepcopy(model).eval().requires_grad_(True)
    for module in explained.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
    _COPIES[model] = (versions, explained)
    return explained


def gradcam_maps(model: nn.Module, layer: nn.Module, images: torch.Tensor, targets: torch.Tensor, method: str) -> np.ndarray:
    """Grad-CAM (siamese paper, section 3.3.1) or Grad-CAM++ on ``layer``: pytorch-grad-cam, each map in [0, 1]."""
    with torch.enable_grad(), GRADCAM_CLASSES[method](model=model, target_layers=[layer]) as explainer:
        return explainer(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])


def lrp_maps(model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """LRP (twice-transfer paper, section 9.1) with zennit's EpsilonPlusFlat; signed relevance summed over channels."""
    composite = EpsilonPlusFlat(canonizers=[SequentialMergeBatchNorm()])
    with torch.enable_grad(), Gradient(model=model, composite=composite) as attributor:
        _, relevance = attributor(images, lambda output: F.one_hot(targets, output.shape[1]).to(output) * output)
    return relevance.sum(1).detach().cpu().numpy()


def class_activation_maps(task: ClassificationTask, images: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """CAM (transfer paper, section 4): M_c = sum_k w_ck f_k over the map the head pools, upsampled bilinearly to the
    image size; signed, no absolute value. Only for global-average-pooling + linear heads."""
    weights = cam_weights(task).to(images.device)  # raises NotApplicableError for any other head
    with torch.no_grad(), evaluating(task.model):
        features = task.model.features(images)  # (B, channels, h, w)
    maps = torch.einsum("bc,bchw->bhw", weights[targets].to(features), features)
    maps = F.interpolate(maps[:, None], size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    return maps.float().cpu().numpy()
