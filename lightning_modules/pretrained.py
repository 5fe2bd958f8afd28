"""Pretrained starts: ImageNet weights of a timm backbone and a user's CheXNet checkpoint, as state dicts.

ImageNet: a file named in the config, else timm's file in the Hugging Face cache (read without the hub), else a
download by timm when the hub answers within ``timeout`` seconds, else a StartWeightsError saying what to fetch
and where to put it; never a silent random start. The papers used torchvision's weights: timm's ``<name>.tv_in1k``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
from huggingface_hub import constants, hf_hub_url, try_to_load_from_cache
from timm.models import get_pretrained_cfg

from lightning_modules.weights import StartWeightsError, read_state_dict

HUB_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm fetches from the hub, in its order of preference
CHEXNET_CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
                   "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")  # CheXNet's output order
_DOTTED = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12]\..+)$")  # old torchvision DenseNet: norm.1 -> norm1
_WRAPPERS = ("module.", "densenet121.", "model.")  # DataParallel, arnoweng's DenseNet121 wrapper, a task


def imagenet_state_dict(architecture: str, *, file: str | None = None, online: bool | None = None,
                        timeout: float = 3.0) -> tuple[dict[str, torch.Tensor], str]:
    """ImageNet weights of timm ``architecture`` (RGB stem, no classifier) and a line saying where they came from.

    ``online``: None probes the hub for ``timeout`` s (offline without probing when HF_HUB_OFFLINE is set), False never
    downloads, True downloads without probing.
    """
    if file:
        state = {_torchvision_name(k): v for k, v in read_state_dict(file).items()}
        return state, f"imagenet: file {Path(file).expanduser()} (sha256 {_sha256(file)})"
    tag = f"{architecture}.tv_in1k" if "." not in architecture and get_pretrained_cfg(f"{architecture}.tv_in1k") else architecture
    cfg = get_pretrained_cfg(tag)
    repo = cfg.hf_hub_id if cfg else None
    if not repo:
        raise StartWeightsError(f"timm has no ImageNet weights on the Hugging Face hub for {tag!r}: name a file in the config "
                                f"(start: {{imagenet: {{file: PATH}}}})")
    names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_FILES
    cached = _cached(repo, names)
    if cached:
        return _timm_backbone(tag, cached), f"imagenet: timm {tag} from the Hugging Face cache {cached} (sha256 {_sha256(cached)})"
    why = None
    if online is False:
        why = "online: false"
    elif online is None and _env_offline():
        why = "HF_HUB_OFFLINE is set"
    elif online is None and not hub_reachable(timeout):
        why = f"{urlparse(constants.ENDPOINT).hostname} did not answer within {timeout:g} s"
    if why is None:
        try:
            with _hub_offline(False):
                state = timm.create_model(tag, pretrained=True, num_classes=0, global_pool="").state_dict()
            cached = _cached(repo, names)
            where = f"{cached} (sha256 {_sha256(cached)})" if cached else f"the cache {constants.HF_HUB_CACHE}"
            return state, f"imagenet: timm {tag} downloaded from the Hugging Face hub to {where}"
        except Exception as error:  # the hub or the connection failed mid-way
            why = f"the download failed: {type(error).__name__}: {str(error)[:200]}"
    raise StartWeightsError(
        f"no ImageNet weights for {architecture} (timm {tag}): {names[0]} of the hub model {repo} is not in the Hugging Face "
        f"cache {constants.HF_HUB_CACHE} and was not downloaded ({why}). Either download {hf_hub_url(repo, names[0])} on a "
        f"machine with internet and name it as a file in the config (start: {{imagenet: {{file: PATH}}}}), or copy that "
        f"machine's cache folder models--{repo.replace('/', '--')} into {constants.HF_HUB_CACHE}, or run online (online: true)")


def chexnet_state_dict(file: str) -> tuple[dict[str, torch.Tensor], str]:
    """A CheXNet checkpoint as timm densenet121(num_classes=14) tensors: the backbone under ``features.*`` and the
    14 findings' classifier as ``classifier.weight`` (14, 1024) and ``classifier.bias``, rows in CHEXNET_CLASSES order."""
    try:
        raw = read_state_dict(file)
    except StartWeightsError as error:
        if "safe loading refuses" not in str(error):
            raise
        raise StartWeightsError(
            f"{error}. A reproduce-chexnet `checkpoint` holds the whole pickled model; convert it once (only a file you trust): "
            f"python -c \"import torch; torch.save(torch.load('{file}', weights_only=False)['model'].state_dict(), 'chexnet.pth')\" "
            f"then name chexnet.pth in the config") from None
    state = {}
    for key, tensor in raw.items():
        while key.startswith(_WRAPPERS):
            key = key.split(".", 1)[1]
        state[_torchvision_name(key).replace("classifier.0.", "classifier.")] = tensor
    want = timm.create_model("densenet121", pretrained=False, num_classes=len(CHEXNET_CLASSES)).state_dict()
    for key in want:  # checkpoints from before PyTorch 0.4 have no BatchNorm counters
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.tensor(0))
    missing = [k for k in want if k not in state]
    wrong = [f"{k} {tuple(state[k].shape)}" for k in want if k in state and state[k].shape != want[k].shape]
    if missing or wrong:
        raise StartWeightsError(
            f"{file}: not a CheXNet DenseNet-121 checkpoint with 14 outputs: {len(missing)} of {len(want)} tensors missing "
            f"(first: {', '.join(missing[:3]) or 'none'}), wrong shapes: {', '.join(wrong[:3]) or 'none'}; the file holds "
            f"{len(raw)} tensors, e.g. {', '.join(list(raw)[:3])}")
    return {k: state[k] for k in want}, f"chexnet: file {Path(file).expanduser()} (sha256 {_sha256(file)}; 14 ChestX-ray14 outputs)"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host accepts a connection within ``timeout`` s (a thread bounds the name lookup too)."""
    url = urlparse(constants.ENDPOINT)
    answered = []

    def connect():
        try:
            socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
            answered.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def _cached(repo: str, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` of hub model ``repo`` in the Hugging Face cache, found without the network."""
    for name in names:
        path = try_to_load_from_cache(repo, name, cache_dir=constants.HF_HUB_CACHE)
        if isinstance(path, str):
            return path
    return None


def _timm_backbone(tag: str, path: str) -> dict[str, torch.Tensor]:
    """timm model ``tag`` without classifier, its pretrained weights read by timm from the local ``path``."""
    with _hub_offline(True):
        model = timm.create_model(tag, pretrained=True, num_classes=0, global_pool="", pretrained_cfg_overlay={"file": path})
    return model.state_dict()


def _env_offline() -> bool:
    """HF_HUB_OFFLINE is set now or was when huggingface_hub was imported."""
    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


@contextmanager
def _hub_offline(offline: bool):
    """huggingface_hub's offline mode (its import-time constant and the variable) set for one call, then restored."""
    before, variable = constants.HF_HUB_OFFLINE, os.environ.pop("HF_HUB_OFFLINE", None)
    constants.HF_HUB_OFFLINE = offline
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before
        os.environ.pop("HF_HUB_OFFLINE", None)
        if variable is not None:
            os.environ["HF_HUB_OFFLINE"] = variable


def _torchvision_name(key: str) -> str:
    """timm's DenseNet name of an old torchvision key (``...denselayer1.norm.1.weight`` -> ``...norm1.weight``)."""
    found = _DOTTED.match(key)
    return found.group(1) + found.group(2) if found else key


def _sha256(path: str | Path) -> str:
    """The file's SHA-256, recorded with the weights' source."""
    with open(Path(path).expanduser(), "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
