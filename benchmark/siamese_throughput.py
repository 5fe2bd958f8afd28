"""Training pairs per second of the siamese COVID-Net: batch embedding (one encoder pass per image of a batch)
against the two-tower forward (two passes per pair), in one run, same model, same start weights, same pairs.

    python -m benchmark.siamese_throughput                       # CPU-sized: nf 32, 64 px
    python -m benchmark.siamese_throughput --nf 128 --fc-units 1024 --image-size 224 --device cuda   # paper width

Each path trains ``--steps`` optimizer steps (after ``--warmup`` untimed ones) on the same pre-built batches of
``--pairs-per-batch`` pairs drawn by the training sampler from ``--images-per-batch`` images; data loading is not
timed. Random images stand in for X-rays: the cost does not depend on the pixels.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from datamodules.sampling import PairBatchSampler
from lightning_modules.siamese import SiameseCOVIDNet


def build_batches(*, classes: int, per_class: int, image_size: int, pairs_per_batch: int, images_per_batch: int | None, steps: int, device: torch.device, seed: int = 0) -> list[dict]:
    labels = np.repeat(np.arange(classes), per_class)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(len(labels), 1, image_size, image_size, generator=generator)
    sampler = PairBatchSampler(labels, pairs_per_epoch=steps * pairs_per_batch, pairs_per_batch=pairs_per_batch, images_per_batch=images_per_batch, seed=seed)
    batches = []
    for indices, left, right, same in sampler:
        batches.append({"image": images[torch.as_tensor(indices)].to(device), "left": torch.as_tensor(left, device=device),
                        "right": torch.as_tensor(right, device=device), "same": torch.as_tensor(same, device=device)})
    return batches


def time_path(task: SiameseCOVIDNet, batches: list[dict], *, pair_embedding: str, warmup: int, device: torch.device) -> dict:
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    task.train()

    def step(batch):
        loss = task.criterion(task.pair_logits(batch, pair_embedding), batch["same"].float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for batch in batches[:warmup]:
        step(batch)
    timed = batches[warmup:]
    _sync(device)
    started = time.perf_counter()
    for batch in timed:
        step(batch)
    _sync(device)
    seconds = time.perf_counter() - started
    pairs = sum(len(b["left"]) for b in timed)
    passes = sum(len(b["image"]) if pair_embedding == "batch" else 2 * len(b["left"]) for b in timed)
    return {"pairs_per_second": pairs / seconds, "encoder_images_per_second": passes / seconds, "seconds": seconds, "pairs": pairs, "encoder_passes": passes}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmark.siamese_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nf", type=int, default=32)
    parser.add_argument("--fc-units", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--pairs-per-batch", type=int, default=32)
    parser.add_argument("--images-per-batch", type=int, default=None, help="images embedded per batch (default: as many as pairs)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--precision", choices=("32", "bf16"), default="32", help="bf16: autocast on CUDA")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(0)
    task = SiameseCOVIDNet(class_names=["COVID-19", "normal", "pneumonia"], image_size=args.image_size,
                           model={"nf": args.nf, "fc_units": args.fc_units}, optimizer={"name": "adam", "lr": 1e-4}).to(device)
    start = copy.deepcopy(task.state_dict())
    batches = build_batches(classes=3, per_class=max(64, args.images_per_batch or args.pairs_per_batch), image_size=args.image_size,
                            pairs_per_batch=args.pairs_per_batch, images_per_batch=args.images_per_batch, steps=args.steps + args.warmup, device=device)
    print(f"siamese COVID-Net nf={args.nf} fc_units={args.fc_units} {args.image_size}px, {task.parameter_count() / 1e6:.2f}M parameters, "
          f"device {device}{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, precision {args.precision}")
    print(f"{args.steps} timed steps of {args.pairs_per_batch} pairs from {len(batches[0]['image'])} images per batch (after {args.warmup} warm-up steps)")
    results = {}
    for path in ("batch", "two_tower"):
        task.load_state_dict(start)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16" and device.type == "cuda"):
            results[path] = time_path(task, batches, pair_embedding=path, warmup=args.warmup, device=device)
        r = results[path]
        print(f"{path:>9}: {r['pairs_per_second']:9.1f} pairs/s  {r['encoder_images_per_second']:9.1f} encoder images/s  ({r['encoder_passes']} encoder passes in {r['seconds']:.2f} s)")
    print(f"batch embedding speed-up: {results['batch']['pairs_per_second'] / results['two_tower']['pairs_per_second']:.2f}x pairs/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
