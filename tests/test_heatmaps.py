"""Heatmap explanations (lightning_modules.explain): CAM (transfer paper, section 4), Grad-CAM/++ (siamese paper,
section 3.3.1) and LRP (twice-transfer paper, section 9.1) on every backbone, and the heatmap grid PNG."""

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.explain.heatmap_grid import draw_heatmap_grid
from lightning_modules import get_task_class
from lightning_modules.backbones.heads import LinearHead
from lightning_modules.classifier import BackboneClassifier
from lightning_modules.explain import HEATMAP_METHODS, NotApplicableError, cam_weights, heatmaps, penultimate_features, score_model

CLASSES = ["a", "b", "c"]
SIZE = 32
MODELS = {  # name: (method, model options); the smallest each allows
    "single_net": ("single_net", {"nf": 8, "fc_units": 32}),
    "siamese": ("siamese", {"nf": 8, "fc_units": 32}),
    "acnn_fcn": ("classifier", {"backbone": "acnn", "backbone_options": {"depth": 2}, "head": "fcn"}),
    "resnet50": ("classifier", {"backbone": "resnet50", "head": "linear"}),
    "densenet121": ("classifier", {"backbone": "densenet121", "head": "linear"}),
    "cae_sequence": ("classifier", {"backbone": "cae_encoder", "head": "sequence"}),
}
CAM_MODELS = ("resnet50", "densenet121")
DEEP_MODELS = CAM_MODELS  # one image each: deep on CPU

def _task(name, **kwargs):
    method, model = MODELS[name]
    torch.manual_seed(0)
    task = get_task_class(method)(class_names=kwargs.pop("class_names", CLASSES), image_size=SIZE, model=model, **kwargs)
    if method == "siamese":
        task.templates = torch.rand(len(CLASSES), task.model.encoder.out_features)
    return task


@functools.lru_cache(maxsize=None)
def _cached_task(name):
    return _task(name)


def _images(n=2, size=SIZE):
    return torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(MODELS))
def test_every_method_gives_finite_image_sized_maps(name):
    targets = [2] if name in DEEP_MODELS else [0, 2]
    task, images = _cached_task(name), _images(len(targets))
    for method in HEATMAP_METHODS:
        if method == "cam" and name not in CAM_MODELS:
            with pytest.raises(NotApplicableError, match="CAM"):
                heatmaps(task, images, targets, method)
            continue
        maps = heatmaps(task, images, targets, method)
        assert maps.shape == (len(targets), SIZE, SIZE) and maps.dtype == np.float32 and np.isfinite(maps).all(), (name, method)
        if method.startswith("gradcam"):
            assert maps.min() >= 0 and maps.max() <= 1 + 1e-6


@pytest.mark.parametrize("name", list(MODELS))
def test_penultimate_features(name):
    task = _cached_task(name)
    features = penultimate_features(task, _images())
    width = {"resnet50": 2048, "densenet121": 1024, "acnn_fcn": 16, "cae_sequence": 64}.get(name, 256)
    assert features.shape == (2, width) and not features.requires_grad


def _hand_made_task(stride):
    task = get_task_class("classifier")(class_names=["x", "y"], image_size=SIZE, model={"backbone": "acnn", "backbone_options": {"depth": 1}, "head": "linear"})
    task.model = BackboneClassifier(nn.Sequential(nn.Conv2d(1, 4, 3, stride=stride, padding=1), nn.ReLU()), LinearHead(4, 2))
    with torch.no_grad():
        task.model.backbone[0].weight.copy_(torch.randn(4, 1, 3, 3, generator=torch.Generator().manual_seed(2)))
        task.model.head.layers[-1].weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.0, 1.0, -1.0, 3.0]]))
        task.model.head.layers[-1].bias.copy_(torch.tensor([0.3, -0.1]))
    return task


def test_cam_is_the_weighted_sum_of_the_last_maps_upsampled():
    task, images, targets = _hand_made_task(stride=4), _images(), torch.tensor([0, 1])
    w = task.model.head.layers[-1].weight
    with torch.no_grad():
        f = torch.relu(task.model.backbone[0](images))  # (2, 4, 8, 8)
        expected = torch.stack([(w[t][:, None, None] * f[i]).sum(0) for i, t in enumerate(targets)])
        expected = F.interpolate(expected[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[:, 0]
    maps = heatmaps(task, images, targets, "cam")
    np.testing.assert_allclose(maps, expected.numpy(), rtol=1e-5, atol=1e-5)
    assert (maps < 0).any()  # signed: no absolute value (the paper's formula)
    assert torch.equal(cam_weights(task), w)


def test_cam_mean_plus_bias_is_the_logit():
    task, images = _hand_made_task(stride=1), _images()  # full-resolution map: no interpolation
    maps = heatmaps(task, images, [1, 1], "cam")
    with torch.no_grad():
        logits = task.model(images)[:, 1]
    np.testing.assert_allclose(maps.mean((1, 2)) + task.model.head.layers[-1].bias[1].item(), logits.numpy(), rtol=1e-4, atol=1e-5)


def test_lrp_conserves_the_target_logit_of_a_bias_free_model():
    task, images = _hand_made_task(stride=2), _images()  # flat (first) conv, ReLU, GAP (norm rule), epsilon linear
    with torch.no_grad():
        task.model.backbone[0].bias.zero_()
        task.model.head.layers[-1].bias.zero_()
        logits = task.model(images)
    relevance = heatmaps(task, images, [0, 1], "lrp")
    np.testing.assert_allclose(relevance.sum((1, 2)), logits[[0, 1], [0, 1]].numpy(), rtol=1e-3, atol=1e-4)


def test_siamese_target_is_the_template_similarity_and_reaches_the_encoder():
    task = _task("siamese")
    with pytest.raises(NotApplicableError, match="templates"):
        score_model(get_task_class("siamese")(class_names=CLASSES, image_size=SIZE, model=MODELS["siamese"][1]))
    model = score_model(task)
    images = _images()
    logits = model(images)
    embeddings = task.model.embed(images)
    assert torch.allclose(logits, task.model.similarity(embeddings[:, None], task.templates[None]))
    logits[torch.arange(2), logits.argmax(1)].sum().backward()  # the similarity to the predicted class's template
    grads = [p.grad for p in task.model.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    with pytest.raises(NotApplicableError, match="SiameseNetwork"):
        cam_weights(task)


def test_multilabel_findings_give_different_maps():
    task = get_task_class("classifier")(class_names=["effusion", "nodule"], multilabel=True, image_size=SIZE,
                                        model={"backbone": "acnn", "backbone_options": {"depth": 2}, "head": "linear"})
    images = _images(1)
    for method in ("gradcam", "cam", "lrp"):
        first, second = (heatmaps(task, images, [finding], method) for finding in (0, 1))
        assert not np.allclose(first, second), method


def test_the_task_model_is_left_as_found():
    task = _task("acnn_fcn").train()
    task.model.backbone.blocks[0].requires_grad_(False)
    task.model.head.eval()
    state = {k: v.clone() for k, v in task.model.state_dict().items()}
    modes = [m.training for m in task.model.modules()]
    trainable = [p.requires_grad for p in task.model.parameters()]
    for method in ("gradcam", "gradcam++", "lrp"):
        heatmaps(task, _images(), [0, 1], method)
    assert all(torch.equal(state[k], v) for k, v in task.model.state_dict().items())
    assert [m.training for m in task.model.modules()] == modes
    assert [p.requires_grad for p in task.model.parameters()] == trainable
    assert all(p.grad is None for p in task.model.parameters())
    resnet = _cached_task("resnet50").train()
    heatmaps(resnet, _images(), [0, 1], "cam")
    assert all(m.training for m in resnet.model.modules())


def test_bad_targets_and_methods_are_refused():
    task = _cached_task("acnn_fcn")
    with pytest.raises(ValueError, match="targets"):
        heatmaps(task, _images(), [0, 3], "gradcam")
    with pytest.raises(ValueError, match="method"):
        heatmaps(task, _images(), [0, 1], "occlusion")


def test_heatmap_grid_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    rows = [{"image": rng.random((SIZE, SIZE)), "caption": f"image {i}", "maps": {"gradcam": rng.random((SIZE, SIZE)), "lrp": rng.standard_normal((SIZE, SIZE))}} for i in range(2)]
    path = draw_heatmap_grid(rows, tmp_path / "deep" / "grid.png", title="test", signed=True)
    assert path.exists() and path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000
    assert draw_heatmap_grid(rows[:1], tmp_path / "unsigned.png", title="unsigned").stat().st_size > 1000


def test_the_explained_copy_follows_changed_weights():
    """The copy heatmaps() explains is reused between calls only while the model's weights are unchanged."""
    task, images = _task("acnn_fcn"), _images()
    before = heatmaps(task, images, [0, 1], "lrp")
    assert np.array_equal(before, heatmaps(task, images, [0, 1], "lrp"))
    with torch.no_grad():
        for parameter in task.model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    assert not np.allclose(before, heatmaps(task, images, [0, 1], "lrp"))
