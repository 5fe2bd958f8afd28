"""The leaderboard's chain sections: the multi-label stages' per-finding test AUROCs (the transfer paper's Table 1
comes from its ChestX-ray14 stage), and each chain method's phases (twice transfer's Figure 1: the best network
of every phase, tested).

Both read only what result files record (``stages``, ``phases``); a stage several methods share is shown once.
"""

from __future__ import annotations

import os
from collections import defaultdict


def _cell(values: list[float | None], ci: list[float] | None = None) -> str:
    """A leaderboard cell, as every table writes it (leaderboard._summary)."""
    from benchmark.leaderboard import _summary

    return _summary(values, ci)


def stage_auroc_section(results: list[dict]) -> list[str]:
    """One table per multi-label stage dataset: every stage (by fingerprint) with its mean and per-finding test AUROC
    and 95% CI (one seed) or mean ± sd over seeds, and the methods that use it."""
    stages: dict[tuple, dict[int, dict]] = defaultdict(dict)
    users: dict[tuple, set] = defaultdict(set)
    for result in results:
        for stage in result.get("stages") or []:
            if not (stage.get("dataset") or {}).get("multilabel") or not stage.get("test"):
                continue
            key = (stage["dataset"]["name"], tuple(stage["dataset"]["classes"]), stage["fingerprint"], stage["name"])
            stages[key].setdefault(stage["seed"], stage)
            users[key].add(result["method"]["id"])
    if not stages:
        return []
    lines = []
    for dataset in sorted({(k[0], k[1]) for k in stages}):
        keys = [k for k in stages if (k[0], k[1]) == dataset]
        classes = list(dataset[1])
        lines += [f"## Multi-label stages: {dataset[0]} ({len(classes)} outputs), test AUROC per finding", "",
                  "Each chain stage trained on a multi-label dataset, tested on its own test split (a stage several methods "
                  "share is trained once and shown once). Cells: one seed `AUROC [95% CI]`; several `mean ± sd (n=seeds)`.", ""]
        header = ["Stage", "Used by", "Start", "Seeds", "Mean AUROC"] + classes
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key in sorted(keys, key=lambda k: (k[3], sorted(users[k]))):
            runs = [stages[key][seed] for seed in sorted(stages[key])]
            one = runs[0]["test"].get("ci") if len(runs) == 1 else None
            metric = lambda name: [r["test"]["metrics"].get(name) for r in runs]  # noqa: E731
            cells = [f"{key[3]} `{key[2][:8]}`", ", ".join(sorted(users[key])), runs[0]["start"].split(":")[0].split(" (")[0],
                     ",".join(str(r["seed"]) for r in runs), _cell(metric("auroc"), (one or {}).get("auroc"))]
            cells += [_cell(metric(f"auroc/{c}"), (one or {}).get(f"auroc/{c}")) for c in classes]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def pretraining_section(results: list[dict], *, relative_to=None) -> list[str]:
    """One row per autoencoder stage (CAE paper, section 3.1) that a run used: the images it pretrained on, by
    source, what the pool left out (downstream val/test images, their copies and patients), its epochs, the best
    network's reconstruction metrics on the pool's validation images, and its input/reconstruction grid."""
    stages: dict[tuple, dict[int, dict]] = defaultdict(dict)
    users: dict[tuple, set] = defaultdict(set)
    for result in results:
        for stage in result.get("stages") or []:
            if stage.get("pool"):
                key = (stage["name"], stage["fingerprint"])
                stages[key].setdefault(stage["seed"], stage)
                users[key].add(result["method"]["id"])
    if not stages:
        return []
    lines = ["## Autoencoder pretraining stages", "",
             "Unsupervised stages (CAE paper, section 3.1) on a pool of the downstream task's train split and any extra sets, "
             "without any image in, copying, or of a patient of the downstream val/test split (the paper's pool held its test "
             "images). Reconstruction metrics of the best network on the pool's validation images (fixed, by patient).", "",
             "| Stage | Used by | Seed | Pool (train / val images by source) | Left out | Epochs | MSE | PSNR (dB) | SSIM | Grid |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(stages):
        for seed in sorted(stages[key]):
            stage = stages[key][seed]
            sources = stage["pool"]["by_source"]
            pool = "; ".join(f"{name} {c['train']} / {c['val']}" for name, c in sources.items())
            left = {reason: n for c in sources.values() for reason, n in c["left_out"].items() if n}
            left_text = ", ".join(f"{reason} {n}" for reason, n in sorted(left.items())) or "none"
            metrics = (stage.get("reconstruction") or {}).get("metrics", {})
            fmt = lambda name, digits: "n/a" if metrics.get(name) is None else f"{metrics[name]:.{digits}f}"  # noqa: E731
            grid = stage.get("reconstruction_grid")
            if grid and relative_to is not None and os.path.isabs(grid):
                grid = os.path.relpath(grid, relative_to)
            lines.append(f"| {key[0]} `{key[1][:8]}` | {', '.join(sorted(users[key]))} | {seed} | {pool} | {left_text} | {stage['epochs']} | "
                         f"{fmt('mse', 4)} | {fmt('psnr', 2)} | {fmt('ssim', 3)} | {f'[png]({grid})' if grid else 'none'} |")
    return lines + [""]


def phase_lines(runs: list[dict]) -> list[str]:
    """A chain method's phases of its last stage: epochs, what trained, best epoch, validation score and the test
    accuracy (macro AUROC for multi-label) of the phase's best network, over the method's seeds."""
    chains = [r for r in runs if r.get("phases")]
    if not chains:
        return []
    first = chains[0]
    multilabel = bool(first["dataset"].get("multilabel"))
    metric, label = ("auroc", "Test macro AUROC") if multilabel else ("accuracy", "Test accuracy")
    stages = "; then ".join(f"**{s['name']}** ({'reused' if s.get('reused') else 'trained'}, {s['epochs']} epochs; start: {s['start']})" for s in first.get("stages") or [])
    lines = [f"- Chain: {stages}." if stages else "", "",
             "| Phase | Epochs | Trains | Best epoch | Best val. score | " + label + " |", "|---|---|---|---|---|---|"]
    for index, phase in enumerate(first["phases"]):
        per_seed = [r["phases"][index] for r in chains if len(r["phases"]) > index]
        tests = [(p.get("test") or {}) for p in per_seed]
        ci = tests[0].get("ci", {}).get(metric) if len(tests) == 1 else None
        trains = phase["train"] if isinstance(phase["train"], str) else ", ".join(phase["train"])
        for step in phase.get("unfreeze") or []:  # gradual unfreezing within the phase
            modules = step["modules"] if isinstance(step["modules"], str) else ", ".join(step["modules"])
            trains += f"; +{modules} from epoch {phase['first_epoch'] + step['epoch']}" + (f" at lr {step['lr']:g}" if step.get("lr") else "")
        epochs = f"{phase['first_epoch']}-{phase['last_epoch']}" + (" (stopped early)" if phase.get("stopped_early") else "")
        lines.append(f"| {phase['name']} | {epochs} | {trains} | {phase.get('best_epoch')} | "
                     f"{_cell([p.get('best_validation_score') for p in per_seed])} | {_cell([t.get('metrics', {}).get(metric) for t in tests], ci)} |")
    return lines + [""]
