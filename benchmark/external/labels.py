"""How an external dataset's labels become a trained run's classes (``python -m benchmark evaluate``).

Readers share class names ("COVID-19", "normal", "pneumonia", ...), so by default a label keeps its name when the
run has that class; otherwise the run's own ``class_map`` decides (a binary run's ``{COVID-19: COVID-19, "*":
non-COVID}`` sends every other label to non-COVID). A given label map (``--label-map`` or a suite entry's
``label_map``) comes first for the labels it names, and its ``"*"`` catches what is left; a null value leaves a
label out on purpose. A label with no counterpart is left out of the score and counted, never guessed.

Multi-label runs map each finding ('|'-joined) the same way: findings without a counterpart are counted and not
scored; an image none of whose findings maps is left out (mapping a label to "" makes it a no-finding image).
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

WILDCARD = "*"
NO_FINDING = ""
NO_FINDING_NAMES = ("", "no finding", "no_finding")


def check_label_map(label_map: dict | None, classes: list[str], *, multilabel: bool, where: str) -> dict:
    """The given label map, with every target checked against the run's classes (ConfigError naming it)."""
    from benchmark.config import ConfigError

    if label_map is None:
        return {}
    if not isinstance(label_map, dict):
        raise ConfigError(f"{where}: the label map must be a JSON object {{external label: run class}}, got {label_map!r}")
    allowed = set(classes) | ({NO_FINDING} if multilabel else set())
    wrong = {k: v for k, v in label_map.items() if v is not None and v not in allowed}
    if wrong:
        raise ConfigError(f"{where}: label map targets {wrong} are not classes of the run (classes: {', '.join(classes)}; "
                          "null leaves a label out)")
    return {str(k): v for k, v in label_map.items()}


def counterpart(label: str, classes: list[str], given: dict, class_map: dict | None) -> str | None:
    """The run class of one external label (or finding), or None when it has none."""
    if label in given:
        return given[label]
    if label in classes:
        return label
    if class_map:
        mapped = class_map.get(label, class_map.get(WILDCARD))
        if mapped in classes:
            return mapped
    return given.get(WILDCARD)


def map_labels(labels: pd.Series, classes: list[str], given: dict, class_map: dict | None, *, multilabel: bool) -> tuple[pd.Series, dict, dict]:
    """(mapped labels, None where left out; the map used {external label: run class or None}; findings of kept
    multi-label images that were not scored {finding: images})."""
    used: dict[str, str | None] = {}
    unscored: Counter = Counter()
    mapped = []
    for label in labels.astype(str):
        if not multilabel:
            used[label] = counterpart(label, classes, given, class_map)
            mapped.append(used[label])
            continue
        findings = [f for f in label.split("|") if f] or [NO_FINDING]
        targets = []
        for finding in findings:
            target = counterpart(finding, classes, given, class_map)
            if target is None and finding not in given and finding.lower() in NO_FINDING_NAMES:
                target = NO_FINDING  # "No Finding" (ChestX-ray14, CheXpert) is an image without findings, not a finding
            used[finding] = target
            targets.append(target)
        if all(t is None for t in targets):
            mapped.append(None)
            continue
        unscored.update(f for f, t in zip(findings, targets) if t is None)
        mapped.append("|".join(sorted({t for t in targets if t})))
    return pd.Series(mapped, index=labels.index, dtype=object), dict(sorted(used.items())), dict(sorted(unscored.items()))


def map_findings(value: str, classes: list[str], given: dict, class_map: dict | None) -> str:
    """'|'-joined findings of another column a reader encodes (CheXpert's uncertain ones) under the same map."""
    targets = (counterpart(f, classes, given, class_map) for f in str(value or "").split("|") if f)
    return "|".join(sorted({t for t in targets if t}))
