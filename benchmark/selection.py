"""Model selection for a fair comparison (DomainBed, Gulrajani & Lopez-Paz 2021).

Every method gets the same N random hyper-parameter draws (draw 0 = its paper defaults), each trained K times
(trials = seeds); a named rule picks one draw per (task, method). ``validation`` and
``leave-one-source-out-validation`` (WILDS-style held-out source validation, Koh et al. 2021) see only
``validation_view`` of a result, so they cannot read test numbers; ``oracle`` picks by the test metric and is
only an upper bound. A result without ``tuning`` is an untuned run: draw 0, passed through unchanged.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from types import MappingProxyType

from benchmark.results import table_key

RULES = ("validation", "leave-one-source-out-validation", "oracle")
DEFAULT_RULE = "validation"


def draw_of(result: dict) -> int:
    return int((result.get("tuning") or {}).get("draw", 0))


def is_tuned(result: dict) -> bool:
    return bool(result.get("tuning"))


def rule_of(result: dict) -> str:
    """The rule a result's run was tuned for (``tuning.select``); ``validation`` by default and in place of the
    oracle or an unknown name, so that no recorded rule lets test data choose the leaderboard's rows."""
    rule = (result.get("tuning") or {}).get("select")
    return rule if rule in RULES[:2] else DEFAULT_RULE


def checkpoint_of(result: dict) -> str:
    return (result.get("selection") or {}).get("checkpoint") or "validation"


def task_key(result: dict) -> tuple:
    """The main table's key; for a leave-one-source-out run one without the split hash (which changes with the
    held-out source): dataset, image size, classes, held-out field and sources."""
    held = result.get("held_out")
    if not held:
        return table_key(result)
    dataset = result["dataset"]
    return (dataset["name"], dataset["image_size"], tuple(dataset["classes"]), held.get("field"), tuple(held.get("test") or ()))


def validation_view(result: dict) -> MappingProxyType:
    """What a validation rule may read of a result: never its metrics, CIs, predictions or held-out scores."""
    return MappingProxyType({"draw": draw_of(result), "seed": result.get("seed"), "best_validation_score": result.get("best_validation_score"),
                             "monitor": dict(result.get("monitor") or {}), "selection": dict(result.get("selection") or {})})


def candidates(results: list[dict]) -> dict[tuple, dict[int, list[dict]]]:
    """Tuned results by (task key, method id), then by draw."""
    grouped: dict[tuple, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        if is_tuned(result):
            grouped[(task_key(result), result["method"]["id"])][draw_of(result)].append(result)
    return {key: dict(draws) for key, draws in grouped.items()}


def _best(scores: dict[int, list[float | None]], mode: str) -> int | None:
    """The draw of the best mean score (``mode`` max or min); ties go to the lower draw."""
    means = {draw: statistics.mean(v) for draw, values in scores.items() if (v := [x for x in values if x is not None])}
    if not means:
        return None
    sign = -1 if mode == "max" else 1
    return min(means, key=lambda draw: (sign * means[draw], draw))


def choose_by_validation(views: list[MappingProxyType]) -> int | None:
    """The draw of the best mean ``best_validation_score`` over its trials, in the monitor's mode."""
    scores: dict[int, list] = defaultdict(list)
    for view in views:
        scores[view["draw"]].append(view["best_validation_score"])
    return _best(scores, (views[0]["monitor"] or {}).get("mode", "max") if views else "max")


def oracle_metric(result: dict, metric: str | None = None) -> tuple[str, str]:
    """(test metric, mode) the oracle maximises: the one its table shows (``metric``, else balanced_accuracy; auroc
    for multi-label), so that the upper bound is never below the validation choice on its own column."""
    return metric or ("auroc" if result["dataset"].get("multilabel") else "balanced_accuracy"), "max"


def _applies(rule: str, result: dict) -> bool:
    return rule == "oracle" or checkpoint_of(result) == rule


def select(results: list[dict], rule: str, metric: str | None = None) -> dict[tuple, int]:
    """{(task key, method id): chosen draw} of the tuned results ``rule`` applies to."""
    if rule not in RULES:
        raise ValueError(f"unknown selection rule {rule!r}; known: {', '.join(RULES)}")
    chosen = {}
    for key, draws in candidates([r for r in results if _applies(rule, r)]).items():
        if rule == "oracle":
            runs = [r for runs in draws.values() for r in runs]
            name, mode = oracle_metric(runs[0], metric)
            draw = _best({d: [r["metrics"].get(name) for r in rs] for d, rs in draws.items()}, mode)
        else:
            draw = choose_by_validation([validation_view(r) for runs in draws.values() for r in runs])
        if draw is not None:
            chosen[key] = draw
    return chosen


def selected_results(results: list[dict], rule: str, metric: str | None = None) -> list[dict]:
    """The results of the chosen draws only; untuned results pass through, tuned ones the rule does not apply to drop.
    ``metric``: the oracle's (the column a table shows)."""
    chosen = select(results, rule, metric)
    return [r for r in results if not is_tuned(r) or chosen.get((task_key(r), r["method"]["id"])) == draw_of(r)]


def selected_by_recorded_rule(results: list[dict]) -> list[dict]:
    """Each result kept when its draw is chosen by the rule it records (``tuning.select``): the leaderboard's input."""
    kept = {id(r) for rule in {rule_of(r) for r in results} for r in selected_results([r for r in results if rule_of(r) == rule], rule)}
    return [r for r in results if id(r) in kept]
