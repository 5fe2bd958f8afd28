"""How a chain's stage starts (``start:``): random, ImageNet, a local file, an earlier stage or CheXNet; the
returned line is recorded in the result, so every run says how it started.

From an earlier stage or CheXNet the backbone is carried over exactly and the head is new, except the output
neurons ``keep`` names (lightning_modules/transfer.py). ImageNet and CheXNet weights come from
lightning_modules/pretrained.py (timm's cache or download, or a file the user names; never a silent random start).
"""

from __future__ import annotations

from collections.abc import Mapping
import torch

from lightning_modules.transfer import OutputLayer, TransferError, carry_backbone, keep_outputs, source_output_layer
from lightning_modules.weights import load_start_weights, load_weights


def apply_start(task, start: Mapping, keep: Mapping[str, str], sources: Mapping[str, Mapping]) -> str:
    """Load ``start`` into ``task.model``; ``sources`` holds the records of the chain's earlier stages by name."""
    kind = start["kind"]
    if kind == "random":
        return "random init"
    if kind == "file":
        return "file: " + load_start_weights(task.model, {"file": start["file"], "strict": start.get("strict", True)})
    if kind == "imagenet":
        from lightning_modules.pretrained import imagenet_state_dict

        state, origin = imagenet_state_dict(_architecture(task), file=start.get("file"))
        loaded = load_weights(task.model, state, strict=start.get("strict", True))
        return f"{origin}; {loaded}"
    if kind == "stage":
        source = sources[start["stage"]]
        saved = torch.load(source["weights"]["path"], map_location="cpu", weights_only=True)
        copied = carry_backbone(task.model, saved["state_dict"])
        kept = keep_outputs(task.model, source_output_layer(saved["state_dict"], task.model.head, saved["class_names"]), task.class_names, keep) if keep else []
        sha = source["weights"].get("sha256") or "unknown"
        return _transferred(f"stage {start['stage']} (fingerprint {source['fingerprint']}, weights sha256 {sha[:16]})", copied, kept)
    if kind == "chexnet":
        from lightning_modules.pretrained import CHEXNET_CLASSES, chexnet_state_dict

        state, origin = chexnet_state_dict(start["file"])  # timm densenet121 keys: features.* and the 14-row classifier
        copied = carry_backbone(task.model, {f"backbone.{k}": v for k, v in state.items() if not k.startswith("classifier.")})
        source = OutputLayer(state["classifier.weight"], state.get("classifier.bias"), list(CHEXNET_CLASSES))
        kept = keep_outputs(task.model, source, task.class_names, keep) if keep else []
        return _transferred(origin, copied, kept)
    raise TransferError(f"unknown start {kind!r}")


def _architecture(task) -> str:
    model = task.hparams.get("model") or {}
    return model.get("backbone", "resnet50")


def _transferred(origin: str, copied: int, kept: list[str]) -> str:
    neurons = f"; output neurons kept: {', '.join(kept)}" if kept else "; new head"
    return f"{origin}: backbone carried over ({copied} tensors){neurons}"
