"""Suites and methods as YAML data, expanded into one RunSpec per (dataset, method, seed).

A method file may ``extends:`` another (deep-merged, child wins); a suite's ``data:`` and ``trainer:`` sections
override every method's, so the settings that must be shared (image size, the split) are the same for all.
Split settings come only from the suite: every method of a suite trains and tests on one split.

A method's ``grid_search:`` describes its paper's hyper-parameter search (parsed and applied here, run by
``benchmark.grid_search``); it runs only where the suite says ``grid_search: true`` (or gives a mapping, merged over the method's). A suite's
``leaderboard:`` options (e.g. ``{gain: {reference: <method id>}}``) travel in each result to the leaderboard.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

SPLIT_KEYS = ("split_seed", "val_fraction", "test_fraction", "held_out")


class ConfigError(ValueError):
    """A suite or method file is malformed; the message names the file and the key."""


def deep_merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


WHOLE_DATA_KEYS = ("class_map", "class_names", "expansion")  # a label map is replaced whole: two merged maps would be a third task


def suite_over_method(method_data: dict, suite_data: dict) -> dict:
    """A run's data settings: the suite's over the method's, deep-merged, except label maps, which the suite replaces whole."""
    merged = deep_merge(method_data, suite_data)
    merged.update({k: copy.deepcopy(suite_data[k]) for k in WHOLE_DATA_KEYS if k in suite_data})
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_method(path: str | Path) -> dict:
    """A method config with its ``extends`` chain resolved and every section validated (benchmark/schema.py):
    ``model``, ``task``, ``optimizer``, ``monitor``... come back with their defaults filled; ``data`` and
    ``trainer`` hold only the keys given (they are validated whole once merged with the suite's). ``id`` is the
    file's stem."""
    from benchmark.schema import DataConfig, TrainerConfig, validate

    path = Path(path)
    data, chain = _merged_method(path)
    where = str(path) if len(chain) == 1 else f"{path} (extends {' -> '.join(str(p.name) for p in chain[1:])})"
    if "method" not in data:
        raise ConfigError(f"{where}: missing key 'method' (the LightningModule name, e.g. single_net)")
    data["id"] = path.stem
    data["file"] = str(path)
    method = _validated_method(data, where=where)
    method["data"] = validate(DataConfig, method["data"], where=where, section="data", partial=True)
    method["trainer"] = validate(TrainerConfig, method["trainer"], where=where, section="trainer", partial=True)
    return method


def _validated_method(data: dict, *, where: str) -> dict:
    """A method mapping validated as MethodFile, with its own ``model:`` and ``task:`` sections (defaults filled)."""
    from benchmark.schema import METHOD_SCHEMAS, MethodFile, validate

    method = validate(MethodFile, data, where=where)
    method["search_space"] = {key: prior for key, prior in (method.get("search_space") or {}).items() if prior is not None}
    model, task = METHOD_SCHEMAS[method["method"]]
    method["model"] = validate(model, method["model"], where=where, section="model")
    method["task"] = validate(task, method["task"], where=where, section="task")
    return method


NAMED_SECTIONS = ("loss", "optimizer", "scheduler")  # a child that names another kind replaces the whole section


def _merged_method(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, list[Path]]:
    """The raw method mapping with its ``extends`` parents deep-merged under it (child wins), and the file chain."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `extends` loops back to itself ({' -> '.join(p.name for p in seen)})")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if not parent:
        return _with_included_stages(data, path, seen), [path]
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a file name, got {parent!r}")
    base, chain = _merged_method(path.parent / parent, seen + (path.resolve(),))
    for key in NAMED_SECTIONS:
        if isinstance(data.get(key), dict) and isinstance(base.get(key), dict) and data[key].get("name", base[key].get("name")) != base[key].get("name"):
            base[key] = {}
    inherited_deviations = base.get("deviations") or []
    merged = deep_merge(base, data)
    merged["deviations"] = inherited_deviations + [d for d in data.get("deviations") or [] if d not in inherited_deviations]
    return _with_included_stages(merged, path, seen), [path] + chain


def _with_included_stages(method: dict, path: Path, seen: tuple[Path, ...]) -> dict:
    """Stages written ``{from: FILE, stage: NAME, ...overrides}`` replaced by that method file's stage (its last one
    when no name is given) with the overrides merged over it: one definition of a stage several chains share."""
    stages = method.get("stages")
    if not isinstance(stages, list):
        return method
    resolved = []
    for entry in stages:
        if isinstance(entry, dict) and "from" in entry:
            source = path.parent / str(entry["from"])
            other, _ = _merged_method(source, seen + (path.resolve(),))
            found = [s for s in other.get("stages") or [] if entry.get("stage") in (None, s.get("name"))]
            if not found:
                names = [s.get("name") for s in other.get("stages") or []]
                raise ConfigError(f"{path}: stages: {source.name} has no stage {entry.get('stage')!r} (its stages: {names})")
            entry = deep_merge(found[-1], {k: v for k, v in entry.items() if k not in ("from", "stage")})
        resolved.append(entry)
    return {**method, "stages": resolved}


@dataclass
class RunSpec:
    """Everything one training run needs; ``run_id`` names its result file."""

    suite: str
    dataset: dict[str, Any]
    method: dict[str, Any]
    seed: int
    data: dict[str, Any]
    trainer: dict[str, Any]
    logging: dict[str, Any] = field(default_factory=dict)
    grid_search: dict[str, Any] | None = None
    leaderboard: dict[str, Any] = field(default_factory=dict)
    statistics: dict[str, Any] = field(default_factory=dict)  # bootstrap settings of the test metrics' CIs
    external: list[dict[str, Any]] = field(default_factory=list)  # test sets scored after the run (benchmark/external/evaluate_set.py)
    stages: list[dict[str, Any]] | None = None  # a chain's resolved stages, the last one this run's (benchmark/chain_config.py)
    explain: dict[str, Any] | None = None  # explanations and probes after the run (benchmark/explain/); not in the fingerprint
    draw: dict[str, Any] | None = None  # a fair sweep's draw (benchmark/tuning.py draw_record); its values are in ``method``

    @property
    def run_id(self) -> str:
        """``<dataset>[/heldout-<sources>]/<method>[/draw<d>]/seed<k>``: the result file's path under ``results/``."""
        held_out = self.data.get("held_out")
        dataset = self.dataset["name"] + (f"/heldout-{'+'.join(safe_name(s) for s in held_out['test'])}" if held_out else "")
        method = self.method["id"] + (f"/draw{self.draw['draw']}" if self.draw else "")
        return f"{dataset}/{method}/seed{self.seed}"


def safe_name(text: str) -> str:
    """``text`` usable in a file name (a source such as ``radiopaedia.org`` or ``Hospital A``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._") or "_"


@dataclass
class Suite:
    name: str
    path: Path
    description: str
    runs: list[RunSpec]
    raw: dict[str, Any]


def load_suite(path: str | Path, *, data_root: str | Path | None = None, seeds: list[int] | None = None, trainer_overrides: dict | None = None,
               cache_dir: str | Path | None = None) -> Suite:
    """Read, validate and expand a suite: one RunSpec per (dataset, held-out source, method, draw, seed), each with
    the effective settings (suite over method over defaults), validated before anything is trained or written.
    ``cache_dir`` is where a ``split: {test: each}`` reads the dataset's sources from (its manifest)."""
    from benchmark.chain_config import expand_chain, final_dataset
    from benchmark.held_out import held_out_splits
    from benchmark.schema import DataConfig, SuiteFile, TrainerConfig, validate
    from benchmark.tuning import check_space

    path = Path(path)
    given = _read_yaml(path)
    raw = validate(SuiteFile, given, where=str(path))  # defaults filled: seeds, logging, leaderboard
    tuning = raw.get("tuning")
    if tuning and "seeds" in given:
        raise ConfigError(f"{path}: a sweep's `tuning.trials` sets the seeds (0..trials-1); remove `seeds:` (--seeds still overrides)")
    suite_data = validate(DataConfig, raw.get("data"), where=str(path), section="data", partial=True)
    suite_trainer = validate(TrainerConfig, raw.get("trainer"), where=str(path), section="trainer", partial=True)
    overrides = validate(TrainerConfig, trainer_overrides or {}, where="command line", section="trainer", partial=True)
    suite_trainer = deep_merge(suite_trainer, overrides)
    name = raw.get("name") or path.stem
    splits = [entry.get("split") if isinstance(entry, dict) else None for entry in raw["datasets"]]
    datasets = [_dataset_entry(entry, path, data_root, raw) for entry in raw["datasets"]]
    variants = [(dataset, held_out) for dataset, split in zip(datasets, splits)
                for held_out in held_out_splits(dataset, split or raw.get("split"), suite_data=suite_data, tuning=tuning,
                                                cache_dir=cache_dir, where=f"{path}: datasets.{dataset['name']}.split")]
    methods = [load_method(path.parent / m) for m in raw["methods"]]
    for method in methods:
        check_space(method, where=method["file"])
    drawn = [(variant, draw) for method in methods for variant, draw in _draws(method, tuning, raw, path)]
    run_seeds = seeds if seeds is not None else (list(range(tuning["trials"])) if tuning else raw["seeds"])
    leaderboard = {k: v for k, v in raw["leaderboard"].items() if v is not None}
    external = [_external_entry(entry, path, data_root, raw) for entry in raw["external"]]
    common = lambda: {"leaderboard": copy.deepcopy(leaderboard), "statistics": dict(raw["statistics"]), "explain": copy.deepcopy(raw.get("explain"))}
    runs = []
    for variant_number, (dataset, held_out) in enumerate(variants):
        shared = {**suite_data, "held_out": held_out} if held_out else suite_data
        for method, draw in drawn:
            if method.get("stages"):  # a chain (benchmark/chain_config.py)
                own = final_dataset(method, suite_path=path, data_root=data_root, raw=raw)
                if own is not None and variant_number:
                    continue  # its last stage names its own dataset: one run per seed, whatever the suite's datasets
                run_dataset = own or dataset
                stages = expand_chain(method, suite_path=path, suite_data=shared if own is None else suite_data, suite_trainer=suite_trainer,
                                      data_root=data_root, raw=raw, run_dataset=run_dataset)
                for seed in run_seeds:
                    runs.append(RunSpec(name, run_dataset, method, int(seed), stages[-1]["data"], stages[-1]["trainer"], raw["logging"],
                                        # the external sets are for the suite's task, not a dataset a chain names itself
                                        external=copy.deepcopy(external) if own is None else [], stages=copy.deepcopy(stages),
                                        draw=copy.deepcopy(draw), **common()))
                continue
            data = suite_over_method(method.get("data", {}), shared)
            for key in SPLIT_KEYS:  # the split belongs to the suite, never to a method
                data.pop(key, None)
                if key in shared:
                    data[key] = shared[key]
            where = f"{path} with {method['file']}"
            data = validate(DataConfig, data, where=where, section="data")
            trainer = validate(TrainerConfig, deep_merge(method.get("trainer", {}), suite_trainer), where=where, section="trainer")
            grid = _grid_search(raw.get("grid_search"), method, path)
            for seed in run_seeds:
                runs.append(RunSpec(name, dataset, method, int(seed), data, trainer, raw["logging"], grid_search=copy.deepcopy(grid),
                                    external=copy.deepcopy(external), draw=copy.deepcopy(draw), **common()))
            if grid:
                _validate_grid_points(runs[-1], grid, where=f"{method['file']} grid_search")
    _check_start_weights(methods)
    if raw.get("phantoms"):
        runs = [phantom_profile(spec, raw["phantoms"]) for spec in runs]
    return Suite(name, path, raw["description"], runs, raw)


def _draws(method: dict, tuning: dict | None, raw: dict, path: Path) -> list[tuple[dict, dict | None]]:
    """(the method with a draw's values set and validated, the draw's record) for each draw of a sweep; the method
    itself and no record without ``tuning``. A method without a search space trains its paper defaults only (draw 0)."""
    from benchmark.tuning import draw_record, draw_values, method_with_draw

    if not tuning:
        return [(method, None)]
    if raw.get("grid_search") and method.get("grid_search"):
        raise ConfigError(f"{path}: method {method['id']} has a grid search and the suite a tuning budget; a sweep gives every method the same random draws (use one or the other)")
    count = tuning["draws"] if method.get("search_space") else 1
    drawn = []
    for number in range(count):
        values = draw_values(method.get("search_space") or {}, seed=tuning["seed"], draw=number)
        variant = method_with_draw(method, values)
        where = f"{method['file']} search_space draw {number} {values}"
        if values:
            variant = {**_validated_method(variant, where=where), "data": variant["data"], "trainer": variant["trainer"]}
        drawn.append((variant, draw_record(method, tuning, number, values)))
    return drawn


def phantom_profile(spec: RunSpec, profile: dict) -> RunSpec:
    """``spec`` with the suite's ``phantoms:`` caps applied to its trainer, its chain's stages and phases, when its
    data are synthetic phantoms (every stage's); on real data it is returned as it is."""
    from datamodules import DATAMODULES

    stages = spec.stages or [{"dataset": spec.dataset}]
    if not all(DATAMODULES[stage["dataset"]["name"]].is_synthetic for stage in stages):
        return spec

    def capped(trainer: dict) -> dict:
        trainer = dict(trainer)
        for key in ("max_epochs", "limit_train_batches", "limit_val_batches"):
            cap, value = profile.get(key), trainer.get(key)
            if cap is not None:
                trainer[key] = cap if value is None or isinstance(value, float) else min(int(value), cap)
        return trainer

    def sized(entry: dict) -> dict:  # the phantom set's size, unless the entry names one
        options = entry.get("options") or {}
        if entry.get("name") != "synthetic" or not profile.get("patients_per_class") or "patients_per_class" in options:
            return entry
        return {**entry, "options": {**options, "patients_per_class": profile["patients_per_class"]}}

    chain = None
    if spec.stages:
        chain = copy.deepcopy(spec.stages)
        for stage in chain:
            stage["trainer"] = {k: v for k, v in capped(stage["trainer"]).items() if k != "max_epochs"}
            stage["dataset"] = sized(stage["dataset"])
            if stage.get("pool"):
                stage["pool"]["extra"] = [sized(entry) for entry in stage["pool"].get("extra", [])]
            for phase in stage["phases"]:
                phase["epochs"] = min(phase["epochs"], profile.get("max_epochs") or phase["epochs"])
    return replace(spec, dataset=sized(spec.dataset), trainer=capped(spec.trainer), stages=chain)


def _check_start_weights(methods: list[dict]) -> None:
    """Every start-weights file exists and holds a state dict, before anything trains (its keys are matched
    against the model when the run builds it)."""
    from lightning_modules.weights import read_state_dict

    files = {spec if isinstance(spec, str) else spec["file"] for spec in (m.get("start_weights") for m in methods) if spec}
    files |= {stage["start"]["file"] for m in methods for stage in m.get("stages") or [] if stage["start"]["kind"] == "file"}
    for file in sorted(files):
        read_state_dict(file)


def validate_spec(spec: RunSpec, *, where: str) -> RunSpec:
    """A spec whose sections are validated again (a grid point changes them); defaults filled."""
    from benchmark.schema import DataConfig, TrainerConfig, validate

    return replace(spec, method=_validated_method(spec.method, where=where), data=validate(DataConfig, spec.data, where=where, section="data"),
                   trainer=validate(TrainerConfig, spec.trainer, where=where, section="trainer"))


def _validate_grid_points(spec: RunSpec, grid: dict, *, where: str) -> None:
    """Every point of a grid search is a valid configuration (a typo in an axis fails before any training)."""
    axes, overrides = parse_grid(grid, where=where)
    for values in points(axes):
        validate_spec(apply(spec, values, overrides), where=f"{where} point {values}")


def _grid_search(suite_grid: Any, method: dict, path: Path) -> dict | None:
    """The search a run does: none unless the suite enables it; the method's own grid, merged with the suite's."""
    if not suite_grid:
        return None
    grid = deep_merge(method.get("grid_search") or {}, suite_grid if isinstance(suite_grid, dict) else {})
    if not grid:
        return None  # `grid_search: true` and a method without a search of its own: train it as configured
    parse_grid(grid, where=f"{path} (method {method['id']})")
    return grid


# ----- grid-search parsing and applying (benchmark/grid_search.py runs the searches) -----
GRID_SECTIONS = ("data", "trainer", "model", "optimizer", "loss", "scheduler", "task")


def parse_grid(grid: dict, *, where: str = "grid_search") -> tuple[dict[str, list], dict[str, Any]]:
    """Split a ``grid_search`` mapping into axes ({dotted key: values}) and search-only overrides."""
    axes, overrides = {}, {}
    for key, value in grid.items():
        if key == "seed":
            continue
        if "." in key:
            section, name = key.split(".", 1)
            if section not in GRID_SECTIONS:
                raise ConfigError(f"{where}: grid axis {key!r} must start with one of {', '.join(GRID_SECTIONS)}")
            if section == "data" and name in (*SPLIT_KEYS, "image_size"):
                raise ConfigError(f"{where}: grid axis {key!r} would change the shared split or images; the suite fixes it")
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{where}: grid axis {key!r} needs a non-empty list of values")
            axes[key] = value
        elif key in GRID_SECTIONS and isinstance(value, dict):
            overrides[key] = value
        else:
            raise ConfigError(f"{where}: unknown grid_search key {key!r}; use '<section>.<key>: [values]' axes or {', '.join(GRID_SECTIONS)} mappings")
    if not axes:
        raise ConfigError(f"{where}: grid_search has no axis (a dotted key with a list of values)")
    return axes, overrides


def apply(spec, values: dict[str, Any], overrides: dict[str, Any] | None = None):
    """A copy of ``spec`` with section overrides deep-merged, then the dotted ``values`` set."""
    method, data, trainer = copy.deepcopy(spec.method), copy.deepcopy(spec.data), copy.deepcopy(spec.trainer)
    sections = {"data": data, "trainer": trainer}
    for section, settings in (overrides or {}).items():
        target = sections.get(section)
        if target is not None:
            target.update(deep_merge(target, settings))
        else:
            method[section] = deep_merge(method.get(section) or {}, settings)
    for key, value in values.items():
        section, path = key.split(".", 1)
        target = sections.get(section)
        if target is None:
            if not isinstance(method.get(section), dict):
                method[section] = {}
            target = method[section]
        set_dotted(target, path, value)
    return replace(spec, method=method, data=data, trainer=trainer, grid_search=None)


def set_dotted(mapping: dict, path: str, value: Any) -> None:
    """``mapping[a][b] = value`` for ``path`` ``a.b`` (missing levels created)."""
    *parents, leaf = path.split(".")
    for parent in parents:
        mapping = mapping.setdefault(parent, {})
    mapping[leaf] = value


def points(axes: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, as {dotted key: value}."""
    return [dict(zip(axes, combination)) for combination in itertools.product(*axes.values())]


def _dataset_entry(entry: Any, path: Path, data_root: str | Path | None, raw: dict) -> dict:
    """Resolve which dataset a suite entry means: with no data root, a suite that allows it uses the dataset's
    synthetic stand-in (``datamodules.synthetic_stand_in``: the phantoms, or the ChestX-ray14-layout ones), with the
    stand-in's options under the entry's. Its ``options`` are checked against that DataModule's own arguments."""
    from benchmark.schema import closest, dataset_options
    from datamodules import DATAMODULES, synthetic_stand_in

    entry = {"name": entry} if isinstance(entry, str) else {k: v for k, v in entry.items() if v is not None and k != "split"}
    if entry["name"] not in DATAMODULES:
        raise ConfigError(f"{path}: datasets: unknown dataset {entry['name']!r}{closest(entry['name'], DATAMODULES)} (known: {', '.join(sorted(DATAMODULES))})")
    if data_root is not None:
        entry["data_root"] = str(data_root)
    elif "root" not in entry and raw.get("synthetic_without_data_root") and not DATAMODULES[entry["name"]].is_synthetic:
        stand_in, options = synthetic_stand_in(entry["name"])
        entry = {"name": stand_in, "stands_in_for": entry["name"], **{k: v for k, v in entry.items() if k != "name"},
                 "options": {**options, **(entry.get("options") or {})}}
    elif "root" not in entry and not DATAMODULES[entry["name"]].is_synthetic:
        raise ConfigError(f"{path}: dataset {entry['name']!r} needs a data root (--data-root DIR or DATA_ROOT=DIR)")
    # the options go to the DataModule that runs (the phantoms, where they stand in for a dataset)
    options = dataset_options(DATAMODULES[entry["name"]], entry.pop("options", None) or {}, where=f"{path}: datasets.{entry.get('stands_in_for', entry['name'])}.options")
    return {**entry, "options": options} if options else entry


def _external_entry(entry: Any, path: Path, data_root: str | Path | None, raw: dict) -> dict:
    """An ``external:`` test set with its folder found now (``root``, else under the data root), so a wrong path
    fails before any training. Without any data root, a suite that runs on the phantoms skips it (logged)."""
    from benchmark.external.evaluate_set import check_options, resolve_root

    entry = {"name": entry} if isinstance(entry, str) else {k: v for k, v in entry.items() if v is not None}
    where = f"{path}: external.{entry['name']}"
    root = entry.get("root") or data_root
    if root is None and raw.get("synthetic_without_data_root") and entry["name"] != "synthetic":
        return {**entry, "skipped": "no data root (--data-root DIR); the suite runs on the phantoms"}
    located = resolve_root(entry["name"], root, where=where)
    entry["root"] = None if located is None else str(located)
    entry["options"] = check_options(entry["name"], entry.get("options"), where=f"{where}.options")
    return entry
