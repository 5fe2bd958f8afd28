"""Start weights (lightning_modules/weights.py): files that are no state dict, or do not fit the model, are clear
errors naming the file; ``strict: false`` loads what matches; the supported cases still load strictly."""

import pytest
import pytorch_lightning as pl
import timm
import torch
from torch.utils.data import DataLoader

from conftest import HalvesDataset
from lightning_modules import get_task_class
from lightning_modules.weights import StartWeightsError


def _single_net(start_weights=None, classes=("a", "b", "c")):
    return get_task_class("single_net")(class_names=list(classes), image_size=32, model={"nf": 32, "fc_units": 32}, start_weights=start_weights)


def _classifier(start_weights=None, classes=("a", "b")):
    return get_task_class("classifier")(class_names=list(classes), image_size=32, model={"backbone": "resnet18", "head": "linear"},
                                        start_weights=start_weights)


@pytest.fixture
def resnet18_file(tmp_path):
    """A bare timm ResNet-18 (RGB stem, ImageNet-style fc) state dict, as a downloaded checkpoint would hold."""
    model = timm.create_model("resnet18", pretrained=False)
    torch.save(model.state_dict(), tmp_path / "resnet18.pth")
    return tmp_path / "resnet18.pth", model


def test_a_file_that_is_no_checkpoint_is_an_error_naming_it(tmp_path):
    (tmp_path / "notes.txt").write_text("weights are on the other disk\n")
    with pytest.raises(StartWeightsError, match=r"notes\.txt: not a PyTorch state dict or checkpoint \(a text file\)"):
        _single_net(str(tmp_path / "notes.txt"))
    torch.save(_single_net().model.state_dict(), tmp_path / "whole.pt")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:5000])
    with pytest.raises(StartWeightsError, match=r"cut\.pt: not a PyTorch state dict or checkpoint \(truncated or corrupt"):
        _single_net(str(tmp_path / "cut.pt"))
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")  # a pickled module: weights_only refuses it
    with pytest.raises(StartWeightsError, match=r"module\.pt: not a PyTorch state dict or checkpoint \(holds objects that safe loading refuses"):
        _single_net(str(tmp_path / "module.pt"))
    with pytest.raises(FileNotFoundError, match=r"absent\.pt: start weights file not found"):  # also a StartWeightsError
        _single_net(str(tmp_path / "absent.pt"))


def test_a_state_dict_of_another_architecture_is_an_error_naming_the_keys(resnet18_file):
    file, _ = resnet18_file
    with pytest.raises(StartWeightsError) as error:
        _single_net(str(file))
    message = str(error.value)
    assert message.startswith(f"{file}: does not fit the model (COVIDNetClassifier): only 0 of 176 tensors would load")
    assert "missing in the file: encoder.stem.0.weight, encoder.stem.0.bias" in message
    assert "unexpected in the file: conv1.weight, bn1.weight" in message and "strict: false" in message


def test_strict_false_loads_what_matches_and_reports_the_counts(resnet18_file):
    file, _ = resnet18_file
    task = _single_net({"file": str(file), "strict": False})
    assert task.start_weights == "resnet18.pth (strict: false; loaded 0 of 176 tensors; missing 176, unexpected 122, shape-mismatched 0)"
    with pytest.raises(StartWeightsError, match="start_weights must be a file or"):
        _single_net({"file": str(file), "strict": "no"})


def test_own_lightning_checkpoint_round_trip(tmp_path):
    source = _single_net(classes=("a", "b"))
    loader = DataLoader(HalvesDataset(8, 32), batch_size=8)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(source, loader)
    trainer.save_checkpoint(tmp_path / "last.ckpt")  # keys "model.encoder...", beside optimizer state and hyper-parameters
    task = _single_net(str(tmp_path / "last.ckpt"), classes=("a", "b"))
    assert task.start_weights == "last.ckpt (strict; loaded 176 of 176 tensors; missing 0, unexpected 0, shape-mismatched 0)"
    assert all(torch.equal(a, b) for a, b in zip(task.model.state_dict().values(), source.model.state_dict().values()))


def test_a_bare_backbone_file_loads_strictly_into_a_classifier(resnet18_file):
    file, reference = resnet18_file
    task = _classifier(str(file))
    assert task.start_weights.startswith("resnet18.pth (strict; loaded 120 of 120 backbone tensors; missing 0, unexpected 2,")  # fc.*
    assert torch.allclose(task.model.backbone.conv1.weight, reference.conv1.weight.sum(1, keepdim=True))  # RGB stem folded
    assert torch.equal(task.model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_a_classifier_of_another_task_loads_all_but_its_head(tmp_path):
    three = _classifier(classes=("a", "b", "c"))
    torch.save({"module." + k: v for k, v in three.model.state_dict().items()}, tmp_path / "three.pt")  # a DDP prefix, too
    task = _classifier(str(tmp_path / "three.pt"))
    assert task.start_weights == "three.pt (strict; loaded 120 of 122 tensors; missing 0, unexpected 0, shape-mismatched 2)"
    assert torch.equal(task.model.backbone.conv1.weight, three.model.backbone.conv1.weight)
