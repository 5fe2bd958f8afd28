"""Pretrained starts (lightning_modules/pretrained.py): CheXNet files mapped onto timm's DenseNet-121, ImageNet weights
from a file or the Hugging Face cache, and a quick, precise error offline. No test touches the network."""

import os
import socket
import time

import pytest
import timm
import torch
from huggingface_hub import constants
from safetensors.torch import save_file

from lightning_modules import pretrained
from lightning_modules.pretrained import CHEXNET_CLASSES, chexnet_state_dict, hub_reachable, imagenet_state_dict
from lightning_modules.weights import StartWeightsError


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection attempt is recorded and refused; the test fails if one was made."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert not attempts, f"network attempted: {attempts}"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache for the test (the variable for subprocesses, the constant for this process)."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def _densenet(num_classes=14):
    return timm.create_model("densenet121", pretrained=False, num_classes=num_classes)


def _arnoweng_layout(state):
    """A timm DenseNet-121 state dict as arnoweng/CheXNet's model.pth.tar holds it (PyTorch 0.3 torchvision names)."""
    out = {}
    for key, tensor in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for name in ("norm1", "relu1", "conv1", "norm2", "relu2", "conv2"):
            key = key.replace(f".{name}.", f".{name[:-1]}.{name[-1]}.") if ".denselayer" in key else key
        out["module.densenet121." + key.replace("classifier.", "classifier.0.")] = tensor
    return {"epoch": 1, "state_dict": out}


def test_arnoweng_chexnet_maps_onto_timm_densenet121(tmp_path):
    source = _densenet()
    file = tmp_path / "model.pth.tar"
    torch.save(_arnoweng_layout(source.state_dict()), file)
    assert any(".norm.1." in k for k in torch.load(file)["state_dict"])
    state, described = chexnet_state_dict(str(file))
    assert described.startswith(f"chexnet: file {file} (sha256 ")
    backbone = timm.create_model("densenet121", pretrained=False, num_classes=0, global_pool="")
    backbone.load_state_dict({k: v for k, v in state.items() if k.startswith("features.")}, strict=True)
    for key, tensor in backbone.state_dict().items():
        assert torch.equal(tensor, source.state_dict()[key]), key
    assert state["classifier.weight"].shape == (14, 1024) and state["classifier.bias"].shape == (14,)
    for row, finding in enumerate(CHEXNET_CLASSES):  # rows in CheXNet's order: output-neuron keeping copies Pneumonia's
        assert torch.equal(state["classifier.weight"][row], source.classifier.weight[row]), finding
    assert CHEXNET_CLASSES.index("Pneumonia") == 6 and len(CHEXNET_CLASSES) == 14
    _densenet().load_state_dict(state, strict=True)


def test_reproduce_chexnet_state_dict_loads_and_its_pickled_model_gets_the_conversion_hint(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.densenet121(weights=None)
    model.classifier = torch.nn.Sequential(torch.nn.Linear(1024, 14), torch.nn.Sigmoid())
    torch.save(model.state_dict(), tmp_path / "converted.pth")
    state, _ = chexnet_state_dict(str(tmp_path / "converted.pth"))
    assert torch.equal(state["classifier.weight"], model.classifier[0].weight)
    torch.save({"model": model, "best_loss": 0.1, "epoch": 3}, tmp_path / "checkpoint")
    with pytest.raises(StartWeightsError, match=r"checkpoint: .*torch.load\(.*weights_only=False\)\['model'\]\.state_dict\(\)"):
        chexnet_state_dict(str(tmp_path / "checkpoint"))


def test_a_file_that_is_not_chexnet_is_an_error_naming_it(tmp_path):
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(StartWeightsError, match=r"resnet18\.pth: not a CheXNet DenseNet-121 .* e\.g\. conv1\.weight"):
        chexnet_state_dict(str(tmp_path / "resnet18.pth"))
    torch.save(_densenet(1000).state_dict(), tmp_path / "imagenet.pth")  # the right backbone, an ImageNet classifier
    with pytest.raises(StartWeightsError, match=r"imagenet\.pth: .*wrong shapes: classifier\.weight \(1000, 1024\)"):
        chexnet_state_dict(str(tmp_path / "imagenet.pth"))


def test_imagenet_weights_from_a_file_named_in_the_config(tmp_path, hf_cache):
    source = timm.create_model("densenet121", pretrained=False)
    old_names = {k.replace(".norm1.", ".norm.1."): v for k, v in source.state_dict().items()}  # torchvision's own file
    torch.save(old_names, tmp_path / "densenet121-a639ec97.pth")
    state, described = imagenet_state_dict("densenet121", file=str(tmp_path / "densenet121-a639ec97.pth"), online=True)
    assert described.startswith(f"imagenet: file {tmp_path / 'densenet121-a639ec97.pth'} (sha256 ")
    assert set(state) == set(source.state_dict())
    save_file(source.state_dict(), tmp_path / "model.safetensors")
    state, _ = imagenet_state_dict("densenet121", file=str(tmp_path / "model.safetensors"))
    assert torch.equal(state["features.conv0.weight"], source.features.conv0.weight)


@pytest.mark.parametrize("online, offline_variable, why", [
    (False, None, "online: false"), (None, "1", "HF_HUB_OFFLINE is set"), (None, None, "did not answer within 3 s")])
def test_offline_without_cached_weights_is_a_quick_error_saying_what_to_fetch(hf_cache, monkeypatch, online, offline_variable, why):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    if offline_variable:
        monkeypatch.setenv("HF_HUB_OFFLINE", offline_variable)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(pretrained, "hub_reachable", lambda timeout: False)  # online=None: the probe finds no hub
    start = time.monotonic()
    with pytest.raises(StartWeightsError) as error:
        imagenet_state_dict("densenet121", online=online)
    assert time.monotonic() - start < 5
    message = str(error.value)
    for needed in (why, "timm/densenet121.tv_in1k", "model.safetensors", str(hf_cache), "a file in the config",
                   "https://huggingface.co/timm/densenet121.tv_in1k/resolve/main/model.safetensors"):
        assert needed in message


def test_imagenet_weights_from_the_hugging_face_cache_without_network(hf_cache, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the cache is read without the hub even when not told offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    source = timm.create_model("densenet121", pretrained=False)
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_cache / "models--timm--densenet121.tv_in1k"
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    save_file(source.state_dict(), repo / "snapshots" / revision / "model.safetensors")
    start = time.monotonic()
    state, described = imagenet_state_dict("densenet121")
    assert time.monotonic() - start < 5
    assert described.startswith(f"imagenet: timm densenet121.tv_in1k from the Hugging Face cache {repo}")
    expected = timm.create_model("densenet121", pretrained=False, num_classes=0, global_pool="").state_dict()
    assert set(state) == set(expected)
    for key, tensor in state.items():
        assert torch.equal(tensor, source.state_dict()[key]), key
    assert constants.HF_HUB_OFFLINE is False and "HF_HUB_OFFLINE" not in os.environ  # restored after the call


def test_online_true_lets_timm_download_with_the_hub_allowed_and_a_failure_is_an_error(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    seen = []

    def download(name, **options):
        seen.append((name, options.get("pretrained"), constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")))
        raise OSError("connection reset")

    monkeypatch.setattr(pretrained.timm, "create_model", download)
    with pytest.raises(StartWeightsError, match=r"the download failed: OSError: connection reset"):
        imagenet_state_dict("resnet50", online=True)
    assert seen == [("resnet50.tv_in1k", True, False, None)]
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_the_probe_gives_up_within_its_timeout(no_network, monkeypatch):
    def hang(address, timeout=None):
        no_network.append(address)
        time.sleep(5)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    start = time.monotonic()
    assert hub_reachable(timeout=0.3) is False
    assert time.monotonic() - start < 1
    assert no_network == [("huggingface.co", 443)]
    no_network.clear()


def test_torchvision_tags_for_the_papers_backbones():
    for name in ("resnet50", "densenet121", "densenet201"):
        assert pretrained.get_pretrained_cfg(f"{name}.tv_in1k").hf_hub_id == f"timm/{name}.tv_in1k"


def test_network_e_starts_from_chexnet_keeping_the_pneumonia_neuron(tmp_path):
    """Twice transfer, network E (section 6.2): CheXNet's backbone carried over, its Pneumonia row copied to
    viral pneumonia, the other outputs new."""
    from lightning_modules.classifier import ImageClassifier
    from lightning_modules.starts import apply_start

    source = _densenet()
    file = tmp_path / "model.pth.tar"
    torch.save(_arnoweng_layout(source.state_dict()), file)
    task = ImageClassifier(class_names=["normal", "viral_pneumonia", "COVID-19"], image_size=32, in_chans=3,
                           model={"backbone": "densenet121", "head": "linear"}, head_activation="sigmoid")
    started = apply_start(task, {"kind": "chexnet", "file": str(file)}, {"viral_pneumonia": "Pneumonia"}, {})
    assert "viral_pneumonia <- Pneumonia" in started
    assert torch.equal(task.model.backbone.features.conv0.weight, source.features.conv0.weight)
    output = task.model.head.layers[3]
    assert torch.equal(output.weight[1], source.classifier.weight[6]) and torch.equal(output.bias[1], source.classifier.bias[6])
    assert not torch.equal(output.weight[0], source.classifier.weight[0])


def test_imagenet_start_with_neither_cache_nor_file_fails_fast_naming_the_file(hf_cache, monkeypatch):
    from lightning_modules.classifier import ImageClassifier
    from lightning_modules.starts import apply_start

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    task = ImageClassifier(class_names=["a", "b"], image_size=32, in_chans=3, model={"backbone": "resnet50", "head": "linear"})
    started = time.perf_counter()
    with pytest.raises(StartWeightsError, match="resnet50.tv_in1k"):
        apply_start(task, {"kind": "imagenet"}, {}, {})
    assert time.perf_counter() - started < 5
