"""Training images per second of a method through the Lightning Trainer (the runner's path) against a plain PyTorch
loop on the same model, start weights, batches, optimizer and precision: what the framework costs.

    python -m benchmark.training_throughput                               # CPU-sized: single-net quick profile, 64 px
    python -m benchmark.training_throughput --method configs/methods/single_net.yaml --image-size 224 \\
        --precision bf16-mixed --device cuda --steps 300                  # the paper profile on a GPU

The method file is loaded and validated like a suite's (benchmark/config.py). Both paths train ``--steps``
optimizer steps after ``--warmup`` untimed ones on the same in-memory batches (random images stand in for X-rays:
the cost does not depend on the pixels; data loading is not what is measured). The clock is read after a CUDA
synchronisation. Peak GPU memory is per path. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.config import load_method
from lightning_modules import get_task_class

AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


class RandomImages(Dataset):
    """``n`` random 1-channel images with cycling labels, as the DataModules' batches look."""

    def __init__(self, n: int, size: int, classes: int):
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 1, size, size, generator=generator)
        self.labels = torch.arange(n) % classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "index": i}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepClock(pl.Callback):
    """Seconds from the start of step ``warmup`` to the end of training, read after a CUDA synchronisation."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup, self.device, self.started, self.seconds = warmup, device, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup and self.started is None:
            _sync(self.device)
            self.started = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        _sync(self.device)
        self.seconds = time.perf_counter() - self.started


def build(method: dict, *, image_size: int, classes: int):
    cls = get_task_class(method["method"])
    return cls(class_names=[f"class{i}" for i in range(classes)], image_size=image_size, model=method.get("model"), loss=method.get("loss"),
               optimizer=method.get("optimizer"), scheduler=None, **method.get("task", {}))


def lightning_path(task, loader, *, steps: int, warmup: int, precision: str, device: torch.device) -> float:
    clock = StepClock(warmup, device)
    trainer = pl.Trainer(accelerator=device.type if device.type != "cuda" else "gpu", devices=1, precision=precision, max_steps=warmup + steps,
                         limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[clock], num_sanity_val_steps=0)
    trainer.fit(task, train_dataloaders=loader)
    return clock.seconds


def plain_path(task, loader, *, steps: int, warmup: int, precision: str, device: torch.device) -> float:
    task = task.to(device).train()
    optimizer = task.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    dtype = AUTOCAST.get(precision)
    done, started = 0, None
    while done < warmup + steps:
        for batch in loader:
            if done == warmup:
                _sync(device)
                started = time.perf_counter()
            if done == warmup + steps:
                break
            images, labels = batch["image"].to(device, non_blocking=True), batch["label"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = task.criterion(task(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
    _sync(device)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="configs/methods/single_net_quick.yaml")
    parser.add_argument("--image-size", type=int, default=None, help="default: the method's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the method's")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--precision", default="32-true", help="32-true on CPU; bf16-mixed for the GPU profile")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    method = load_method(args.method)
    size = args.image_size or method["data"].get("image_size", 224)
    batch = args.batch_size or method["data"].get("batch_size", 16)
    device = torch.device(args.device)
    pl.seed_everything(0, verbose=False)
    task = build(method, image_size=size, classes=args.classes)
    start = copy.deepcopy(task.state_dict())
    loader = DataLoader(RandomImages(batch * 16, size, args.classes), batch_size=batch, shuffle=True, drop_last=True,
                        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
    report = {"method": method["id"], "image_size": size, "batch_size": batch, "precision": args.precision, "steps": args.steps,
              "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
              "parameters": sum(p.numel() for p in task.parameters())}
    for name, path in (("lightning", lightning_path), ("plain", plain_path)):
        task.load_state_dict(start)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        seconds = path(task, loader, steps=args.steps, warmup=args.warmup, precision=args.precision, device=device)
        report[f"{name}_images_per_second"] = round(args.steps * batch / seconds, 1)
        if device.type == "cuda":
            report[f"{name}_peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    report["lightning_over_plain"] = round(report["lightning_images_per_second"] / report["plain_images_per_second"], 3)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
